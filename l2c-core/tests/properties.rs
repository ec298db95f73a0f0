//! Property tests over what l2c-core parses from the network: bearer tokens, webhook signature
//! headers, `Retry-After`, idempotency keys and quota specs. Whatever the bytes, nothing panics,
//! a refusal is the documented answer, and what is valid round-trips.
//!
//! Shrunk failing cases are kept in `tests/proptest-regressions/properties.txt` and replayed
//! first on every run.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use l2c_core::auth::{HmacKey, JwtAuthLayer, SigningKey, TokenIssuer, TokenVerifier};
use l2c_core::clock::MockClock;
use l2c_core::idempotency::IdempotencyLayer;
use l2c_core::rate_limit::Quota;
use l2c_core::webhook::{Verifier, WebhookSecret};
use l2c_core::{ClientId, Scopes, retry_after};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tower::{Layer, ServiceExt, service_fn};

/// Bytes a header value may hold (visible ASCII, SP, HTAB, obs-text): what a peer can send.
fn header_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => 0x21u8..0x7f,
            1 => Just(b' '),
            1 => Just(b'\t'),
            1 => 0x80u8..=0xff,
        ],
        0..max,
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

const NOW: u64 = 1_800_000_000;

fn verifier_pair() -> (TokenIssuer, Arc<TokenVerifier>) {
    let clock = MockClock::at_unix(NOW);
    let key = HmacKey::new([7u8; 32]).expect("key");
    let issuer = TokenIssuer::new("iss", "aud", SigningKey::Hmac(key.clone(), None))
        .with_clock(Arc::new(clock.clone()));
    let verifier = TokenVerifier::builder("iss", "aud")
        .hmac_key(key)
        .with_clock(Arc::new(clock))
        .build()
        .expect("verifier");
    (issuer, Arc::new(verifier))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/proptest-regressions/properties.txt"
        )))),
        ..ProptestConfig::default()
    })]

    /// Any bearer credentials: never the handler, never a panic; `Bearer` without a token is
    /// 400 `invalid_request`, anything else 401 `invalid_token` (RFC 6750 §3.1), each with its
    /// challenge.
    #[test]
    fn any_bearer_credentials_are_refused_with_a_challenge(raw in header_bytes(200)) {
        let (_, verifier) = verifier_pair();
        let svc = JwtAuthLayer::new(verifier).layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Bytes::new()))
        }));
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(&raw);
        let Ok(value) = HeaderValue::from_bytes(&value) else { return Ok(()) };
        let req = Request::builder().header("authorization", value).body(()).expect("request");
        let res = runtime().block_on(svc.oneshot(req)).expect("infallible");
        let challenge = res.headers()["www-authenticate"].to_str().expect("ascii");
        if raw.trim_ascii().is_empty() {
            prop_assert_eq!(res.status(), StatusCode::BAD_REQUEST);
            prop_assert_eq!(challenge, "Bearer realm=\"l2c\", error=\"invalid_request\"");
        } else {
            prop_assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            prop_assert_eq!(challenge, "Bearer realm=\"l2c\", error=\"invalid_token\"");
        }
    }

    /// A real token with any one byte changed is refused (or, if the change is in base64
    /// padding bits, means the same token).
    #[test]
    fn a_token_with_one_byte_changed_is_refused(position in any::<prop::sample::Index>(), byte in 0x21u8..0x7f) {
        let (issuer, verifier) = verifier_pair();
        let token = issuer.issue(&ClientId::new("c1"), Scopes::all()).access_token;
        let mut forged = token.clone().into_bytes();
        let i = position.index(forged.len());
        prop_assume!(forged[i] != byte);
        forged[i] = byte;
        let forged = String::from_utf8(forged).expect("ascii");
        if let Ok(client) = verifier.verify(&forged) {
            // Only the unused low bits of the last base64 character of a segment can change
            // without changing the decoded bytes; whatever verifies is the same client.
            prop_assert_eq!(client.client_id.as_str(), "c1");
        }
    }

    /// Any signature headers and body: an error from the verifier, never a panic, never Ok.
    #[test]
    fn forged_webhook_headers_never_verify(
        id in header_bytes(80),
        timestamp in prop_oneof![header_bytes(24), (0u64..4_000_000_000).prop_map(|t| t.to_string().into_bytes())],
        signature in header_bytes(200),
        legacy in header_bytes(90),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let secret = WebhookSecret::generate();
        let verifier = Verifier::new(secret).allow_legacy(true);
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("webhook-id", &id),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &signature),
            ("x-l2c-signature", &legacy),
        ] {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.insert(name, value);
            }
        }
        prop_assert!(verifier.verify(&headers, &body).is_err());
    }

    /// `Retry-After`: any bytes parse or not without panicking; digits are seconds.
    #[test]
    fn retry_after_never_panics(raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = retry_after::parse(&raw, UNIX_EPOCH + Duration::from_secs(NOW));
    }

    #[test]
    fn retry_after_seconds_and_dates_round_trip(secs in 0u64..10_000_000, ahead in 0u64..100_000_000) {
        let now = UNIX_EPOCH + Duration::from_secs(NOW);
        prop_assert_eq!(
            retry_after::parse(secs.to_string().as_bytes(), now),
            Some(Duration::from_secs(secs))
        );
        let at = chrono::DateTime::from_timestamp(i64::try_from(NOW + ahead).expect("fits"), 0).expect("date");
        let imf = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        prop_assert_eq!(retry_after::parse(imf.as_bytes(), now), Some(Duration::from_secs(ahead)));
    }

    /// Quota specs: any text parses or is refused; what parses prints back to itself.
    #[test]
    fn quota_specs_round_trip(spec in "[0-9]{0,12}(/(s|sec|second|m|min|minute|h|hour|day|x|))?(;burst=[0-9]{0,12})?|\\PC{0,30}") {
        if let Ok(quota) = spec.parse::<Quota>() {
            prop_assert!(quota.count() > 0);
            let printed = quota.to_string();
            prop_assert_eq!(printed.parse::<Quota>().expect("reparse"), quota);
        }
    }

    /// Idempotency keys: 1-255 visible ASCII reach the handler; anything else is a 400
    /// problem that never reaches it.
    #[test]
    fn idempotency_keys_are_visible_ascii_of_1_to_255(raw in header_bytes(300)) {
        let Ok(value) = HeaderValue::from_bytes(&raw) else { return Ok(()) };
        let trimmed = raw.trim_ascii();
        // A leading quote is the RFC 8941 sf-string form, covered by the unit tests.
        prop_assume!(trimmed.first() != Some(&b'"'));
        let svc = IdempotencyLayer::new().layer(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ran"))))
        }));
        let mut req = Request::builder()
            .method("POST")
            .uri("/leads")
            .header("x-request-id", value)
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        req.extensions_mut().insert(l2c_core::AuthenticatedClient {
            client_id: ClientId::new("c1"),
            scopes: Scopes::all(),
        });
        let res = runtime().block_on(svc.oneshot(req)).expect("infallible");
        let valid = !trimmed.is_empty()
            && trimmed.len() <= 255
            && trimmed.iter().all(|b| (0x21..0x7f).contains(b));
        if valid {
            prop_assert_eq!(res.status(), StatusCode::OK);
        } else {
            prop_assert_eq!(res.status(), StatusCode::BAD_REQUEST);
            prop_assert_eq!(&res.headers()["content-type"], "application/problem+json");
        }
    }
}
