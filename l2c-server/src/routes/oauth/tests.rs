//! Unit tests of token-request parsing (the HTTP-level tests are in `l2c-server/tests/oauth.rs`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use l2c_core::api::oauth::OAuthErrorCode;

use super::request::{basic_authorization, parse};

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("content-type", "application/json");

fn code(
    r: Result<super::request::TokenRequest, super::request::Rejection>,
) -> (StatusCode, OAuthErrorCode) {
    let r = r.unwrap_err();
    (r.status, r.error.error)
}

#[test]
fn form_body_credentials() {
    let r = parse(
        &headers(&[FORM]),
        None,
        b"grant_type=client_credentials&client_id=a&client_secret=s%2Bx&scope=orders%3Aread",
    )
    .unwrap();
    let c = r.credentials.unwrap();
    assert_eq!(
        (c.client_id.as_str(), c.client_secret.as_deref()),
        ("a", Some("s+x"))
    );
    assert!(!c.via_basic);
    assert_eq!(r.params.grant_type.as_deref(), Some("client_credentials"));
    assert_eq!(r.params.scope.as_deref(), Some("orders:read"));
}

#[test]
fn content_type_parameters_and_case_are_tolerated() {
    let h = headers(&[("content-type", "Application/JSON; charset=UTF-8")]);
    assert!(parse(&h, None, br#"{"grant_type":"client_credentials"}"#).is_ok());
    let h = headers(&[("content-type", "application/json; charset=latin1")]);
    assert_eq!(
        code(parse(&h, None, b"{}")).0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[test]
fn basic_credentials_are_form_decoded() {
    let h = headers(&[
        FORM,
        ("authorization", &basic_authorization("id 1", "a+b/c%")),
    ]);
    let c = parse(&h, None, b"grant_type=client_credentials")
        .unwrap()
        .credentials
        .unwrap();
    assert_eq!(c.client_id, "id 1");
    assert_eq!(c.client_secret.as_deref(), Some("a+b/c%"));
    assert!(c.via_basic);
    // The encoding on the wire is the RFC's: `+` → %2B, `/` → %2F.
    let raw = basic_authorization("id", "a+b/c");
    let decoded = STANDARD.decode(raw.trim_start_matches("Basic ")).unwrap();
    assert_eq!(decoded, b"id:a%2Bb%2Fc");
}

#[test]
fn basic_scheme_is_case_insensitive_and_secret_may_be_missing() {
    let v = format!("bAsIc {}", STANDARD.encode("id:"));
    let c = parse(&headers(&[("authorization", &v)]), None, b"")
        .unwrap()
        .credentials
        .unwrap();
    assert_eq!(c.client_id, "id");
    assert_eq!(c.client_secret, None);
}

#[test]
fn malformed_basic_is_invalid_client() {
    for v in [
        "Basic !!!",
        "Basic",
        &format!("Basic {}", STANDARD.encode("no-colon")),
        "Bearer abc",
    ] {
        assert_eq!(
            code(parse(&headers(&[("authorization", v)]), None, b"")),
            (StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient),
            "{v}"
        );
    }
}

#[test]
fn empty_values_count_as_absent() {
    let r = parse(
        &headers(&[FORM]),
        None,
        b"grant_type=client_credentials&client_id=a&client_secret=",
    )
    .unwrap();
    assert_eq!(r.credentials.unwrap().client_secret, None);
    let r = parse(
        &headers(&[JSON]),
        None,
        br#"{"grant_type":"","client_id":"a","scope":null}"#,
    )
    .unwrap();
    assert_eq!(r.params.grant_type, None);
    assert_eq!(r.params.scope, None);
}

#[test]
fn repeated_parameters_are_invalid_request() {
    let bad = [
        (
            FORM,
            &b"grant_type=client_credentials&grant_type=client_credentials"[..],
        ),
        (FORM, &b"client_id=a&client_id="[..]),
        (
            JSON,
            &br#"{"grant_type":"client_credentials","grant_type":"client_credentials"}"#[..],
        ),
        (JSON, &br#"{"client_id":"a","client_id":"b"}"#[..]),
    ];
    for (ct, body) in bad {
        assert_eq!(
            code(parse(&headers(&[ct]), None, body)),
            (StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn unknown_parameters_are_ignored() {
    let r = parse(
        &headers(&[FORM]),
        None,
        b"grant_type=client_credentials&audience=x&audience=y",
    )
    .unwrap();
    assert_eq!(r.params.grant_type.as_deref(), Some("client_credentials"));
    let r = parse(
        &headers(&[JSON]),
        None,
        br#"{"grant_type":"client_credentials","extra":{"a":[1]}}"#,
    )
    .unwrap();
    assert_eq!(r.params.grant_type.as_deref(), Some("client_credentials"));
}

#[test]
fn malformed_bodies_are_invalid_request() {
    for body in [
        &b"{"[..],
        b"[]",
        b"\"x\"",
        br#"{"grant_type":7}"#,
        br#"{"a":1} trailing"#,
    ] {
        assert_eq!(
            code(parse(&headers(&[JSON]), None, body)),
            (StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(
        code(parse(&headers(&[FORM]), None, b"grant_type=\xff")).1,
        OAuthErrorCode::InvalidRequest
    );
}

#[test]
fn other_content_types_are_415() {
    for ct in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/xml",
    ] {
        assert_eq!(
            code(parse(&headers(&[("content-type", ct)]), None, b"x")),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                OAuthErrorCode::InvalidRequest
            )
        );
    }
    // No content type and a body: 415 too; no content type and no body: just no parameters.
    assert_eq!(
        code(parse(&HeaderMap::new(), None, b"grant_type=x")).0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert!(parse(&HeaderMap::new(), None, b"").is_ok());
}

#[test]
fn two_authentication_methods_are_invalid_request() {
    let h = headers(&[FORM, ("authorization", &basic_authorization("a", "s"))]);
    for body in [
        &b"grant_type=client_credentials&client_secret=s"[..],
        b"grant_type=client_credentials&client_id=a",
    ] {
        assert_eq!(
            code(parse(&h, None, body)),
            (StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest)
        );
    }
}

#[test]
fn repeated_authorization_header_is_invalid_request() {
    let b = basic_authorization("a", "s");
    let h = headers(&[("authorization", &b), ("authorization", &b)]);
    assert_eq!(
        code(parse(&h, None, b"")),
        (StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest)
    );
}

#[test]
fn credentials_in_the_query_are_refused() {
    for q in ["client_secret=s", "client_id=a", "x=1&client_secret="] {
        assert_eq!(
            code(parse(
                &headers(&[FORM]),
                Some(q),
                b"grant_type=client_credentials"
            )),
            (StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            "{q}"
        );
    }
    // Other query parameters are ignored.
    assert!(
        parse(
            &headers(&[FORM]),
            Some("trace=1"),
            b"grant_type=client_credentials"
        )
        .is_ok()
    );
}

#[test]
fn secret_without_id_is_invalid_request() {
    assert_eq!(
        code(parse(&headers(&[JSON]), None, br#"{"client_secret":"s"}"#)).1,
        OAuthErrorCode::InvalidRequest
    );
}

#[test]
fn description_never_contains_quote_or_backslash() {
    let r = parse(
        &headers(&[JSON]),
        None,
        br#"{"grant_type":"a","grant_type":"b"}"#,
    )
    .unwrap_err();
    let d = r.error.error_description.unwrap();
    assert!(!d.contains('"') && !d.contains('\\'), "{d}");
    let _ = header::CONTENT_TYPE;
}
