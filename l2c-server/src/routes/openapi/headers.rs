//! Headers that come from the layer stack rather than from a handler: the idempotency key a
//! write must send, and the response headers the layers add to every answer.

use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{RefOr, Required};
use utoipa::{IntoParams, Modify};

use super::responses::{header, rate_limit_headers, string_schema};

/// The pattern `IdempotencyLayer` applies to a key: 1–255 visible ASCII characters.
pub const KEY_PATTERN: &str = "^[\\x21-\\x7E]{1,255}$";

/// The idempotency key of a write (`IdempotencyLayer`): `X-Request-Id`, required.
///
/// The layer also accepts the IETF draft's `Idempotency-Key` in its place (equal to
/// `X-Request-Id` when both are sent). OpenAPI cannot say "one of two headers", so the document
/// names the spec's header as the required one and describes the other: every request valid by
/// the document is accepted, and a write without `X-Request-Id` (and without the alias) is
/// answered 400 `idempotency_key_missing`, as the document says.
#[derive(Debug)]
pub struct IdempotencyKey;

impl IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("X-Request-Id")
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(
                    "Idempotency key (spec §6; 1–255 visible ASCII), unique per logical request \
                     and reused on every retry of it: a retry with the same key and body replays \
                     the first answer (`Idempotent-Replayed: true`) instead of running again; \
                     the same key with another body is 422. Required on every write (400 \
                     `idempotency_key_missing` without it); the IETF name `Idempotency-Key` is \
                     accepted in its place, and must be equal when both are sent. Echoed on the \
                     response.",
                ))
                .schema(Some(
                    string_schema()
                        .min_length(Some(1))
                        .max_length(Some(255))
                        .pattern(Some(KEY_PATTERN)),
                ))
                .build(),
        ]
    }
}

/// Adds to every operation the response headers the layers put on its answers:
///
/// - `X-Request-Id` on every answer (`RequestIdLayer` wraps the whole application);
/// - on operations that require a bearer token (the rate limit sits behind authentication),
///   `RateLimit` / `RateLimit-Policy` on the successful answers;
/// - on those that are also writes (POST/PUT/PATCH: `IdempotencyLayer`),
///   `Idempotent-Replayed` on the successful answers.
///
/// It decides from what the operation declares (its `security` and method), never from its path,
/// and only adds headers a response does not declare itself.
#[derive(Debug)]
pub struct StackHeaders;

impl StackHeaders {
    fn apply(method: &HttpMethod, op: &mut Operation) {
        let bearer = op.security.as_ref().is_some_and(|requirements| {
            requirements
                .iter()
                .any(|r| *r != SecurityRequirement::default())
        });
        let write = bearer
            && matches!(
                method,
                HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch
            );
        for (status, response) in op.responses.responses.iter_mut() {
            let RefOr::T(r) = response else { continue };
            r.headers
                .entry("X-Request-Id".to_owned())
                .or_insert_with(|| {
                    header(
                        "The request's id: the client's `X-Request-Id` echoed, or a generated one",
                        string_schema(),
                    )
                });
            if !status.starts_with('2') {
                continue;
            }
            if bearer {
                for (name, h) in rate_limit_headers() {
                    r.headers.entry(name.to_owned()).or_insert(h);
                }
            }
            if write {
                r.headers
                    .entry("Idempotent-Replayed".to_owned())
                    .or_insert_with(|| {
                        header(
                            "`true` when this is the stored answer to an earlier request with \
                             the same idempotency key",
                            string_schema().enum_values(Some(["true"])),
                        )
                    });
            }
        }
    }
}

impl Modify for StackHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (method, op) in [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Delete, &mut item.delete),
                (HttpMethod::Patch, &mut item.patch),
            ] {
                if let Some(op) = op {
                    Self::apply(&method, op);
                }
            }
        }
    }
}
