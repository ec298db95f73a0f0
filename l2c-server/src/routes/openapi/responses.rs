//! The answers a layer of the stack gives instead of the handler, one [`IntoResponses`] set per
//! layer. A route lists in its `#[utoipa::path(responses(…))]` the sets of the layers in front of
//! it, next to its own rows; a set is listed only where the route has no row of its own for that
//! status (OpenAPI has one response per status), and a route that has one names the layer's
//! cause in its own description instead.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

/// The media type of every problem body.
const PROBLEM_JSON: &str = "application/problem+json";

pub(super) fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

pub(super) fn header(description: &str, schema: ObjectBuilder) -> Header {
    HeaderBuilder::new()
        .schema(schema)
        .description(Some(description))
        .build()
}

fn retry_after(description: &str) -> Header {
    header(
        description,
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1)),
    )
}

/// A problem+json answer with `description`.
fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

fn one(status: &str, response: ResponseBuilder) -> BTreeMap<String, RefOr<Response>> {
    BTreeMap::from([(status.to_owned(), RefOr::T(response.build()))])
}

/// `JwtAuthLayer` and `RequireScopeLayer`: 401 without a valid bearer token, 403 when the token
/// lacks the route's scope (the one named in the operation's `security`).
#[derive(Debug)]
pub struct Authenticated;

impl IntoResponses for Authenticated {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let challenge = |text: &str| header(text, string_schema());
        BTreeMap::from([
            (
                "401".to_owned(),
                RefOr::T(
                    problem(
                        "No bearer token, or one that is malformed, expired, not yet valid, \
                         signed with another key, revoked, or of a disabled client \
                         (`invalid_token`)",
                    )
                    .header(
                        "WWW-Authenticate",
                        challenge("`Bearer realm=\"l2c\", error=\"invalid_token\"` (RFC 6750)"),
                    )
                    .build(),
                ),
            ),
            (
                "403".to_owned(),
                RefOr::T(
                    problem("The token lacks the scope this route requires (`insufficient_scope`)")
                        .header(
                            "WWW-Authenticate",
                            challenge(
                                "`Bearer realm=\"l2c\", error=\"insufficient_scope\", scope=\"…\"`",
                            ),
                        )
                        .build(),
                ),
            ),
        ])
    }
}

/// The IETF `RateLimit` / `RateLimit-Policy` headers every answer of a rate-limited route carries.
pub(super) fn rate_limit_headers() -> [(&'static str, Header); 2] {
    [
        (
            "RateLimit",
            header(
                "Remaining quota (draft-ietf-httpapi-ratelimit-headers), e.g. \
                 `\"default\";r=99;t=1`",
                string_schema(),
            ),
        ),
        (
            "RateLimit-Policy",
            header(
                "The quota policy, e.g. `\"default\";q=100;w=1` (and \
                 `\"concurrency\";q=5;qu=\"concurrent-requests\"` on the export)",
                string_schema(),
            ),
        ),
    ]
}

fn rate_limited(description: &str) -> ResponseBuilder {
    let mut r = problem(description).header(
        "Retry-After",
        retry_after("Seconds to wait before retrying (rounded up, at least 1)"),
    );
    for (name, h) in rate_limit_headers() {
        r = r.header(name, h);
    }
    r
}

/// `KeyedRateLimitLayer`: 429 over the client's quota.
#[derive(Debug)]
pub struct RateLimited;

impl IntoResponses for RateLimited {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            "429",
            rate_limited("Over the client's request quota (`rate_limited`); never queued"),
        )
    }
}

/// `KeyedRateLimitLayer` and `ConcurrencyCapLayer`: 429 over the quota or over the cap of
/// concurrent long-running requests.
#[derive(Debug)]
pub struct RateLimitedOrCapped;

impl IntoResponses for RateLimitedOrCapped {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            "429",
            rate_limited(
                "Over the client's request quota, or more long-running requests of this client \
                 in flight than the cap (`rate_limited`); never queued",
            ),
        )
    }
}

/// The text of a `database_unavailable` answer, for routes that have a 503 of their own.
pub const DATABASE_UNAVAILABLE: &str = "The database cannot be reached in time \
     (`database_unavailable`): nothing was changed; retry after `Retry-After` seconds with the \
     same idempotency key";

/// Any route that reads or writes the database: 503 when no connection comes in time.
#[derive(Debug)]
pub struct DatabaseUnavailable;

impl IntoResponses for DatabaseUnavailable {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            "503",
            problem(DATABASE_UNAVAILABLE).header(
                "Retry-After",
                retry_after("Seconds to wait before retrying"),
            ),
        )
    }
}

/// `IdempotencyLayer` on a write without a 400 of its own: the key is missing or malformed.
#[derive(Debug)]
pub struct IdempotencyKeyRefused;

impl IntoResponses for IdempotencyKeyRefused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            "400",
            problem(
                "No `X-Request-Id` (`idempotency_key_missing`), a key that is not 1–255 visible \
                 ASCII characters (`idempotency_key_invalid`), or `X-Request-Id` and \
                 `Idempotency-Key` differing (`idempotency_key_conflict`)",
            ),
        )
    }
}

/// `IdempotencyLayer` on a write without a 409 of its own: the same key is still running.
#[derive(Debug)]
pub struct IdempotencyInFlight;

impl IntoResponses for IdempotencyInFlight {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            "409",
            problem(
                "A request with the same idempotency key is still running \
                 (`idempotency_key_in_use`); retry after `Retry-After`",
            )
            .header("Retry-After", retry_after("Seconds to wait (1)")),
        )
    }
}

/// `IdempotencyLayer` on a write without a 422 of its own: the key was used with another body.
#[derive(Debug)]
pub struct IdempotencyKeyReused;

impl IntoResponses for IdempotencyKeyReused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            "422",
            problem(
                "The idempotency key was already used with a different request body \
                 (`idempotency_key_reused`)",
            ),
        )
    }
}

/// The body limit in front of every JSON write: 413 over 1 MiB.
#[derive(Debug)]
pub struct BodyTooLarge;

impl IntoResponses for BodyTooLarge {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            "413",
            problem("The body is over 1 MiB (`payload_too_large`)"),
        )
    }
}
