//! JSON bodies: [`JsonBody`] keeps the raw bytes (leads store their payload verbatim), [`Json`]
//! only the value; both check the media type, the size and the shape the same way.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use l2c_core::Problem;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Refused;
use super::integral::Integral;

/// The largest request body the business endpoints accept: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A JSON request body, parsed, with the bytes it was parsed from.
#[derive(Debug, Clone)]
pub struct JsonBody<T> {
    /// The parsed value.
    pub value: T,
    /// The body as received.
    pub raw: Bytes,
}

/// A JSON body (request) or JSON response. As an extractor it is [`JsonBody`] without the raw
/// bytes: the same checks, the same rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        JsonBody::<T>::from_request(req, state)
            .await
            .map(|body| Json(body.value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn is_json(req: &Request) -> bool {
    json_media_type_with(req.headers(), false) == Some(true)
}

/// Whether the `Content-Type` names JSON (`application/json` or `application/…+json`; with
/// `text/json` too when `text_json`), or `None` when there is no such header. Parameters such
/// as `charset` are ignored.
pub(crate) fn json_media_type_with(headers: &http::HeaderMap, text_json: bool) -> Option<bool> {
    let ct = headers.get(header::CONTENT_TYPE)?;
    let Ok(ct) = ct.to_str() else {
        return Some(false);
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(
        essence == "application/json"
            || (text_json && essence == "text/json")
            || (essence.starts_with("application/") && essence.ends_with("+json")),
    )
}

/// 413 `payload_too_large`.
pub fn payload_too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload Too Large",
    )
    .with_detail(format!(
        "the request body is larger than {MAX_BODY_BYTES} bytes"
    ))
}

/// Whether the JSON text starts an object (after leading whitespace).
fn is_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|b| *b == b'{')
}

/// Parses `bytes` as JSON into `T`, naming the field of a shape error.
///
/// An integer field also accepts a whole number written with a fraction or an exponent (`3.0`,
/// `1e3`), as JSON Schema's `integer` does (see the `integral` module). The common body is read
/// once, without tracking the path; a refused body is read again with the path tracked, and
/// only a body refused for its shape that has such a number in it once more with the
/// whole-float conversion, and when that fails too its error (the same
/// deserializer's, named the same way) is the answer.
///
/// # Errors
///
/// 400 `malformed_json` or 422 `invalid_body` problems.
// A problem is what the caller gets back; it is built once per refused request.
#[allow(clippy::result_large_err)]
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // Most bodies are valid, and the path is only needed to explain a refusal: read without
    // tracking it first (serde_path_to_error keeps every key it passes as a `String`), and
    // with it only for a body that fails.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let err = match read::<T>(bytes, false) {
        Ok(v) => return Ok(v),
        Err(err) => err,
    };
    let err = match err {
        ReadError::Value(e) if e.inner().is_data() && has_fraction_or_exponent(bytes) => {
            match read::<T>(bytes, true) {
                Ok(v) => return Ok(v),
                Err(again) => again,
            }
        }
        other => other,
    };
    Err(err.into_problem())
}

/// Why a body could not be read into its type.
enum ReadError {
    /// The value itself: syntax, EOF or shape, with the path to where it failed.
    Value(serde_path_to_error::Error<serde_json::Error>),
    /// Something after the value.
    Trailing(serde_json::Error),
}

/// Reads one JSON value of type `T` followed by nothing but whitespace; with `whole_floats`,
/// integer fields also take whole floats.
fn read<T: DeserializeOwned>(bytes: &[u8], whole_floats: bool) -> Result<T, ReadError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = if whole_floats {
        serde_path_to_error::deserialize(Integral(&mut *de))
    } else {
        serde_path_to_error::deserialize(&mut *de)
    }
    .map_err(ReadError::Value)?;
    // Only whitespace may follow the value: `{…}garbage` or `{…}{…}` is not one JSON body.
    de.end().map_err(ReadError::Trailing)?;
    Ok(value)
}

impl ReadError {
    fn into_problem(self) -> Problem {
        let err = match self {
            ReadError::Value(err) => err,
            ReadError::Trailing(inner) => return malformed(&inner),
        };
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.classify() != serde_json::error::Category::Data {
            return malformed(&inner);
        }
        let field = if path == "." { String::new() } else { path };
        // serde names a missing field in its message, not in the path.
        let message = inner.to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(|name| {
                if field.is_empty() {
                    name.to_owned()
                } else {
                    format!("{field}.{name}")
                }
            });
        let field = missing.unwrap_or(field);
        let detail = if field.is_empty() {
            strip_position(&message)
        } else {
            format!("`{field}`: {}", strip_position(&message))
        };
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "Unprocessable Content",
        )
        .with_detail(detail);
        if !field.is_empty() {
            p = p.with_extension("field", field);
        }
        p
    }
}

/// 400 `malformed_json`.
fn malformed(inner: &serde_json::Error) -> Problem {
    Problem::bad_request(
        "malformed_json",
        format!("the body is not valid JSON: {inner}"),
    )
}

/// Whether the JSON text has a number with a fraction or an exponent outside its strings: a
/// cheap test before reading a refused body a second time.
fn has_fraction_or_exponent(bytes: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut after_digit = false;
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            // Outside strings a `.` is only ever a fraction, an `e` after a digit an exponent
            // (`true` and `false` have theirs after a letter).
            b'.' => return true,
            b'e' | b'E' if after_digit => return true,
            _ => {}
        }
        after_digit = b.is_ascii_digit();
    }
    false
}

/// serde_json appends " at line 1 column 42"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported Media Type",
            )
            .with_detail("send the body with `Content-Type: application/json`")
            .into());
        }
        let raw = match Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(payload_too_large().into());
            }
            Err(_) => {
                return Err(Problem::bad_request(
                    "invalid_body",
                    "the request body could not be read",
                )
                .into());
            }
        };
        if !is_object(&raw) && serde_json::from_slice::<serde::de::IgnoredAny>(&raw).is_ok() {
            // Every request body of the API is an object; serde would otherwise read a struct
            // from an array (`[null, null]`) as if its fields had been given in order.
            return Err(
                Problem::bad_request("invalid_body", "the body must be a JSON object").into(),
            );
        }
        let value = parse_json(&raw)?;
        Ok(JsonBody { value, raw })
    }
}

#[cfg(test)]
mod tests {
    use l2c_core::api::orders::SyncOrder;

    use super::*;

    #[test]
    fn shape_errors_name_the_field() {
        let p = parse_json::<SyncOrder>(br#"{"externalOrderNo":"A","status":"NOPE"}"#).unwrap_err();
        assert_eq!(p.status, 422);
        assert_eq!(p.extensions["field"], "status");
        let p = parse_json::<SyncOrder>(
            br#"{"externalOrderNo":"A","status":"DEPOSIT_PAID","paymentStatus":"UNPAID",
                "amounts":{"total":"x"},"version":1}"#,
        )
        .unwrap_err();
        assert_eq!(p.extensions["field"], "amounts.total");
        let p = parse_json::<SyncOrder>(
            br#"{"externalOrderNo":"A","status":"DEPOSIT_PAID","paymentStatus":"UNPAID",
                "amounts":{"total":1},"version":1,
                "payments":[{"kind":"DEPOSIT","method":"ALIPAY","channelTransactionId":"t","paidAt":"2026-01-01T00:00:00+08:00"}]}"#,
        )
        .unwrap_err();
        assert_eq!(p.extensions["field"], "payments[0].amount");
        let p = parse_json::<SyncOrder>(br#"{"status":"DEPOSIT_PAID"}"#).unwrap_err();
        assert_eq!(p.extensions["field"], "externalOrderNo");
    }

    /// A complete order whose numbers are written as given.
    fn order(total: &str, quantity: &str, version: &str) -> String {
        format!(
            r#"{{"externalOrderNo":"A","status":"DEPOSIT_PAID","paymentStatus":"DEPOSIT_PAID",
                "amounts":{{"total":{total},"deposit":500000,"paid":500000}},
                "items":[{{"name":"衣柜","quantity":{quantity},"unitPrice":3980000}}],
                "customer":{{"name":"李四","mobile":"13912345678"}},"version":{version}}}"#
        )
    }

    /// JSON Schema's `integer` includes `3.0` and `1e3`; the published document promises it.
    #[test]
    fn integer_fields_take_whole_numbers_written_as_floats() {
        let o = parse_json::<SyncOrder>(order("3980000.0", "1.0", "2e0").as_bytes()).unwrap();
        assert_eq!(o.amounts.total, 3_980_000);
        assert_eq!(o.items[0].quantity, 1);
        assert_eq!(o.version, 2);
        let plain = parse_json::<SyncOrder>(order("3980000", "1", "2").as_bytes()).unwrap();
        assert_eq!(o, plain);
    }

    #[test]
    fn fractions_and_numbers_beyond_the_type_are_refused_naming_the_field() {
        for (body, field, wanted) in [
            (
                order("3980000", "1.5", "1"),
                "items[0].quantity",
                "floating point `1.5`",
            ),
            (order("1e300", "1", "1"), "amounts.total", "floating point"),
            (
                order("3980000", "-0.0", "1"),
                "items[0].quantity",
                "floating point `-0.0`",
            ),
            (
                order("3980000", "5e9", "1"),
                "items[0].quantity",
                "5000000000",
            ),
            // The whole floats before it are fine: the error names the field really at fault.
            (
                order("3980000.0", "1.5", "1"),
                "items[0].quantity",
                "floating point `1.5`",
            ),
        ] {
            let p = parse_json::<SyncOrder>(body.as_bytes()).unwrap_err();
            assert_eq!((p.status, p.code.as_ref()), (422, "invalid_body"), "{body}");
            assert_eq!(p.extensions["field"], field, "{body}");
            let detail = p.detail.unwrap();
            assert!(detail.starts_with(&format!("`{field}`: ")), "{detail}");
            assert!(detail.contains(wanted), "{detail}");
            assert!(!detail.contains(" at line "), "{detail}");
        }
        // A shape error with no float in the body is reported as it always was.
        let p = parse_json::<SyncOrder>(order("3980000", "\"1\"", "1").as_bytes()).unwrap_err();
        assert_eq!(p.extensions["field"], "items[0].quantity");
    }

    #[test]
    fn the_second_read_keeps_the_first_reads_checks() {
        // A repeated member is still refused, whole floats or not.
        let body =
            order("3980000.0", "1", "1").replacen("\"version\"", "\"version\":1,\"version\"", 1);
        let p = parse_json::<SyncOrder>(body.as_bytes()).unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.detail.unwrap().contains("duplicate field `version`"));
        // Trailing data after a body that needs the second read is still malformed.
        let body = format!("{} x", order("3980000.0", "1", "1"));
        let p = parse_json::<SyncOrder>(body.as_bytes()).unwrap_err();
        assert_eq!((p.status, p.code.as_ref()), (400, "malformed_json"));
        // Untyped members keep their floats.
        let v = parse_json::<serde_json::Value>(br#"{"a":3.0,"b":1e2}"#).unwrap();
        assert!(v["a"].is_f64() && v["b"].is_f64(), "{v}");
    }

    #[test]
    fn only_numbers_outside_strings_count_as_fractions() {
        assert!(has_fraction_or_exponent(br#"{"a":1.0}"#));
        assert!(has_fraction_or_exponent(br#"{"a":[1E3]}"#));
        assert!(has_fraction_or_exponent(br#"{"a":"\"", "b":2e-1}"#));
        assert!(!has_fraction_or_exponent(
            br#"{"a":"1.5e3","b":true,"c":false,"d":12}"#
        ));
        assert!(!has_fraction_or_exponent(br#"{"a\".":"x\\","e":1}"#));
    }

    #[test]
    fn syntax_errors_are_400() {
        let p = parse_json::<SyncOrder>(br#"{"externalOrderNo":"#).unwrap_err();
        assert_eq!(p.status, 400);
        assert_eq!(p.code, "malformed_json");
    }

    #[test]
    fn trailing_data_after_the_value_is_400() {
        for body in [
            &br#"{"a":1}garbage"#[..],
            br#"{"a":1}{"x":1}"#,
            br#"{"a":1} 1"#,
        ] {
            let p = parse_json::<serde_json::Value>(body).unwrap_err();
            assert_eq!(p.status, 400, "{}", String::from_utf8_lossy(body));
            assert_eq!(p.code, "malformed_json");
        }
        // Trailing whitespace is fine.
        assert!(parse_json::<serde_json::Value>(b"{\"a\":1} \n").is_ok());
    }

    /// A struct is never read from an array or a scalar: every request body is an object.
    #[tokio::test]
    async fn bodies_that_are_not_objects_are_refused() {
        for body in ["[null, null]", " [\"DOUYIN\"]", "1", "\"x\"", "null"] {
            let req = Request::builder()
                .method("PUT")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let Err(refused) =
                JsonBody::<l2c_core::api::lead_sources::UpdateLeadSource>::from_request(req, &())
                    .await
            else {
                panic!("{body} accepted");
            };
            let res = refused.into_response();
            assert_eq!(res.status(), 400, "{body}");
        }
        let req = Request::builder()
            .method("PUT")
            .header("content-type", "application/json")
            .body(axum::body::Body::from("[1,"))
            .unwrap();
        let Err(refused) = JsonBody::<serde_json::Value>::from_request(req, &()).await else {
            panic!("malformed JSON accepted");
        };
        let bytes = axum::body::to_bytes(refused.into_response().into_body(), 4096)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["code"], "malformed_json");
    }
}
