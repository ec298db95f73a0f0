use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tower::{ServiceBuilder, ServiceExt as _, service_fn};

use super::*;
use crate::api::events::{EventType, WebhookEvent};
use crate::clock::MockClock;

/// 2026-11-26T01:00:00Z.
const NOW: u64 = 1_795_654_800;

fn secret() -> WebhookSecret {
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwIPv1S6yHkZY="
        .parse()
        .unwrap()
}

fn other_secret() -> WebhookSecret {
    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".parse().unwrap()
}

/// A valid ORDER_CREATED body, laid out with odd whitespace so re-serialising would change it.
fn event_body(id: &str, created_at: &str) -> Vec<u8> {
    format!(
        r#"{{ "id":"{id}",  "type":"ORDER_CREATED","createdAt":"{created_at}",
  "data":{{"orderId":"ord_1","externalOrderNo":"ERP-2026-0001","status":"DEPOSIT_PAID",
  "statusLabel":"已下定金","paymentStatus":"DEPOSIT_PAID","paymentStatusLabel":"已付定金",
  "amounts":{{"total":1990000,"deposit":200000,"paid":200000,"currency":"CNY"}},
  "customerId":"cus_1","version":1}} }}"#
    )
    .into_bytes()
}

fn fresh_body(id: &str) -> Vec<u8> {
    event_body(id, "2026-11-26T09:00:00+08:00")
}

fn signed(secrets: &[&WebhookSecret], id: &str, ts: u64, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in sign_headers(secrets, id, EventType::OrderCreated, ts, body).unwrap() {
        headers.insert(name, value);
    }
    headers
}

fn legacy_only(secret: &WebhookSecret, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        X_L2C_SIGNATURE,
        HeaderValue::from_str(&sign_legacy(secret, body)).unwrap(),
    );
    headers
}

fn verifier(secret: WebhookSecret) -> Verifier {
    Verifier::new(secret).with_clock(MockClock::at_unix(NOW))
}

// ---- vectors -------------------------------------------------------------------------------

#[test]
fn standard_webhooks_reference_vector() {
    // PROTOCOLS.md H8 (the Standard Webhooks libraries' own test vector, 24-byte key).
    let secret: WebhookSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".parse().unwrap();
    assert_eq!(secret.sw_key().len(), 24);
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let sig = sign_standard(&secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body);
    assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
}

#[test]
fn github_vector_for_the_body_only_hmac() {
    // PROTOCOLS.md H8: GitHub's documented X-Hub-Signature-256 example, the same construction
    // as X-L2C-Signature (hex HMAC-SHA256 of the body keyed with the secret's UTF-8 bytes).
    assert_eq!(
        legacy_hex_with_key(b"It's a Secret to Everybody", b"Hello, World!"),
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

#[test]
fn spec_node_snippet_vector() {
    // Computed with Node.js v20.20.2 running the spec's snippet (§5) on the secret string:
    //   node -e "const crypto=require('crypto');const secret='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwIPv1S6yHkZY=';const payloadRef='{\"id\":\"evt_01\",\"type\":\"ORDER_CREATED\",\"createdAt\":\"2026-11-26T09:30:00+08:00\",\"data\":{\"orderId\":\"ord_1\",\"amount\":1990000}}';console.log(crypto.createHmac('sha256', secret).update(payloadRef).digest('hex'))"
    // which printed the value below.
    let body = br#"{"id":"evt_01","type":"ORDER_CREATED","createdAt":"2026-11-26T09:30:00+08:00","data":{"orderId":"ord_1","amount":1990000}}"#;
    assert_eq!(
        sign_legacy(&secret(), body),
        "6df1b40840ff7b6e207366e02e39e04614a2ccdf49a3db831793c2be765e7805"
    );
}

fn legacy_hex_with_key(key: &[u8], body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn legacy_key_is_the_string_and_sw_key_the_decoded_bytes() {
    let s = secret();
    assert_eq!(s.legacy_key(), s.expose_secret().as_bytes());
    assert_eq!(s.sw_key().len(), 32);
    let body = b"{}";
    assert_eq!(
        sign_legacy(&s, body),
        legacy_hex_with_key(s.legacy_key(), body)
    );
    // The two schemes use different keys: neither signature can stand in for the other.
    assert_ne!(sign_legacy(&s, body), legacy_hex_with_key(s.sw_key(), body));
}

// ---- secrets -------------------------------------------------------------------------------

#[test]
fn secrets_parse_and_redact() {
    let generated = WebhookSecret::generate();
    assert_eq!(generated.expose_secret().len(), 6 + 44);
    assert_ne!(
        generated.expose_secret(),
        WebhookSecret::generate().expose_secret()
    );
    assert_eq!(format!("{generated:?}"), "WebhookSecret(whsec_<redacted>)");
    assert_eq!(
        "C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
            .parse::<WebhookSecret>()
            .unwrap_err(),
        SecretError::MissingPrefix
    );
    assert_eq!(
        "whsec_not base64!".parse::<WebhookSecret>().unwrap_err(),
        SecretError::NotBase64
    );
    assert_eq!(
        "whsec_AAAA".parse::<WebhookSecret>().unwrap_err(),
        SecretError::BadLength(3)
    );
}

// ---- signing -------------------------------------------------------------------------------

#[test]
fn headers_of_one_attempt() {
    let body = fresh_body("evt_1");
    let h = signed(&[&secret()], "evt_1", NOW, &body);
    assert_eq!(h["x-l2c-signature"], sign_legacy(&secret(), &body).as_str());
    assert_eq!(h["x-l2c-event"], "ORDER_CREATED");
    assert_eq!(h["x-l2c-delivery"], "evt_1");
    assert_eq!(h["x-l2c-timestamp"], NOW.to_string().as_str());
    assert_eq!(h["webhook-id"], "evt_1");
    assert_eq!(h["webhook-timestamp"], NOW.to_string().as_str());
    assert_eq!(
        h["webhook-signature"],
        sign_standard(&secret(), "evt_1", NOW, &body).as_str()
    );
}

#[test]
fn bad_event_ids_and_no_secret_are_refused() {
    for id in ["", "evt.1", "evt 1", "evt\n1", &"x".repeat(256)] {
        assert_eq!(
            sign_headers(&[&secret()], id, EventType::OrderCreated, NOW, b"{}").unwrap_err(),
            SignError::InvalidEventId,
            "{id:?}"
        );
    }
    assert_eq!(
        sign_headers(&[], "evt_1", EventType::OrderCreated, NOW, b"{}").unwrap_err(),
        SignError::NoSecret
    );
}

// ---- verification: Standard Webhooks -------------------------------------------------------

#[test]
fn valid_delivery_returns_the_typed_event() {
    let body = fresh_body("evt_1");
    let (event, scheme) = verifier(secret())
        .verify_scheme(&signed(&[&secret()], "evt_1", NOW, &body), &body)
        .unwrap();
    assert_eq!(scheme, Scheme::StandardWebhooks);
    assert_eq!(event.id, "evt_1");
    assert_eq!(event.event_type(), EventType::OrderCreated);
}

#[test]
fn rotation_both_secrets_sign_and_either_verifies() {
    let (new, old) = (secret(), other_secret());
    let body = fresh_body("evt_1");
    let headers = signed(&[&new, &old], "evt_1", NOW, &body);
    let sigs: Vec<&str> = headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(sigs.len(), 2);
    assert_eq!(sigs[0], sign_standard(&new, "evt_1", NOW, &body));
    assert_eq!(sigs[1], sign_standard(&old, "evt_1", NOW, &body));
    // A receiver still on the old secret, one already on the new, and one holding both.
    verifier(old.clone()).verify(&headers, &body).unwrap();
    verifier(new.clone()).verify(&headers, &body).unwrap();
    verifier(old.clone())
        .with_secret(new.clone())
        .verify(&headers, &body)
        .unwrap();

    // The legacy header carries the first secret's only; a receiver trying both accepts it.
    let legacy = legacy_only(&new, &body);
    assert_eq!(legacy["x-l2c-signature"], headers["x-l2c-signature"]);
    let both = verifier(old.clone()).with_secret(new).allow_legacy(true);
    both.verify(&legacy, &body).unwrap();
    assert_eq!(
        verifier(old)
            .allow_legacy(true)
            .verify(&legacy, &body)
            .unwrap_err(),
        VerifyError::SignatureMismatch
    );
}

#[test]
fn truncated_or_partial_signatures_fail() {
    let body = fresh_body("evt_1");
    let good = sign_standard(&secret(), "evt_1", NOW, &body);
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &good[3..]).unwrap();
    let sixteen = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw[..16]);
    for bad in [
        format!("v1,{sixteen}"),
        good[..good.len() - 4].to_owned(),
        "v1,".to_owned(),
        "v1".to_owned(),
    ] {
        let mut h = signed(&[&secret()], "evt_1", NOW, &body);
        h.insert("webhook-signature", HeaderValue::from_str(&bad).unwrap());
        let err = verifier(secret()).verify(&h, &body).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::SignatureMismatch | VerifyError::NoSupportedSignature
            ),
            "{bad}: {err:?}"
        );
    }

    let legacy = sign_legacy(&secret(), &body);
    let v = verifier(secret()).allow_legacy(true);
    for bad in [&legacy[..62], &legacy[..32], &legacy[..63], ""] {
        let mut h = HeaderMap::new();
        h.insert("x-l2c-signature", HeaderValue::from_str(bad).unwrap());
        assert!(v.verify(&h, &body).is_err(), "{bad:?}");
    }
}

#[test]
fn unknown_signature_versions_are_ignored() {
    let body = fresh_body("evt_1");
    let good = sign_standard(&secret(), "evt_1", NOW, &body);
    let mut h = signed(&[&secret()], "evt_1", NOW, &body);
    h.insert(
        "webhook-signature",
        HeaderValue::from_str(&format!("v2,AAAA v1a,BBBB {good}")).unwrap(),
    );
    verifier(secret()).verify(&h, &body).unwrap();

    // Only unknown versions: nothing to check, so refused.
    let mut only_unknown = h.clone();
    only_unknown.insert(
        "webhook-signature",
        HeaderValue::from_str(&good.replacen("v1,", "v2,", 1)).unwrap(),
    );
    assert_eq!(
        verifier(secret()).verify(&only_unknown, &body).unwrap_err(),
        VerifyError::NoSupportedSignature
    );
}

#[test]
fn tampered_body_fails_both_schemes() {
    let body = fresh_body("evt_1");
    let mut tampered = body.clone();
    let at = tampered.windows(7).position(|w| w == b"1990000").unwrap();
    tampered[at] = b'9';
    let h = signed(&[&secret()], "evt_1", NOW, &body);
    assert_eq!(
        verifier(secret()).verify(&h, &tampered).unwrap_err(),
        VerifyError::SignatureMismatch
    );
    assert_eq!(
        verifier(secret())
            .allow_legacy(true)
            .verify(&legacy_only(&secret(), &body), &tampered)
            .unwrap_err(),
        VerifyError::SignatureMismatch
    );
    // Re-signing the id or timestamp is not possible without the key either.
    let mut other_id = h.clone();
    other_id.insert("webhook-timestamp", HeaderValue::from(NOW + 1));
    assert_eq!(
        verifier(secret()).verify(&other_id, &body).unwrap_err(),
        VerifyError::SignatureMismatch
    );
}

#[test]
fn uppercase_hex_is_accepted() {
    let body = fresh_body("evt_1");
    let upper = sign_legacy(&secret(), &body).to_ascii_uppercase();
    let mut h = HeaderMap::new();
    h.insert("x-l2c-signature", HeaderValue::from_str(&upper).unwrap());
    verifier(secret())
        .allow_legacy(true)
        .verify(&h, &body)
        .unwrap();
}

#[test]
fn timestamps_outside_the_tolerance_fail() {
    let body = fresh_body("evt_1");
    let v = verifier(secret());
    for (ts, expected) in [
        (NOW - 300, Ok(())),
        (NOW + 300, Ok(())),
        (NOW - 301, Err(VerifyError::TimestampTooOld)),
        (NOW + 301, Err(VerifyError::TimestampTooNew)),
        (0, Err(VerifyError::TimestampTooOld)),
    ] {
        let h = signed(&[&secret()], "evt_1", ts, &body);
        assert_eq!(v.verify(&h, &body).map(|_| ()), expected, "ts {ts}");
    }
    let mut h = signed(&[&secret()], "evt_1", NOW, &body);
    h.insert("webhook-timestamp", HeaderValue::from_static("-5"));
    assert_eq!(
        v.verify(&h, &body).unwrap_err(),
        VerifyError::MalformedHeader("webhook-timestamp")
    );
}

#[test]
fn invalid_standard_headers_never_fall_back_to_the_legacy_header() {
    let body = fresh_body("evt_1");
    let v = verifier(secret()).allow_legacy(true);

    // Corrupted SW signature, valid legacy signature alongside.
    let mut h = signed(&[&secret()], "evt_1", NOW, &body);
    h.insert(
        "webhook-signature",
        HeaderValue::from_static("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="),
    );
    assert_eq!(h["x-l2c-signature"], sign_legacy(&secret(), &body).as_str());
    assert_eq!(
        v.verify(&h, &body).unwrap_err(),
        VerifyError::SignatureMismatch
    );

    // Stale SW timestamp, valid legacy signature alongside.
    let old = signed(&[&secret()], "evt_1", NOW - 3600, &body);
    assert_eq!(
        v.verify(&old, &body).unwrap_err(),
        VerifyError::TimestampTooOld
    );

    // Only part of the SW trio present.
    let mut partial = legacy_only(&secret(), &body);
    partial.insert("webhook-id", HeaderValue::from_static("evt_1"));
    assert_eq!(
        v.verify(&partial, &body).unwrap_err(),
        VerifyError::MissingHeader("webhook-timestamp")
    );
}

#[test]
fn legacy_only_requests_need_opt_in_and_a_fresh_created_at() {
    let body = fresh_body("evt_1");
    let h = legacy_only(&secret(), &body);
    assert_eq!(
        verifier(secret()).verify(&h, &body).unwrap_err(),
        VerifyError::LegacyNotAllowed
    );
    let (event, scheme) = verifier(secret())
        .allow_legacy(true)
        .verify_scheme(&h, &body)
        .unwrap();
    assert_eq!((event.id.as_str(), scheme), ("evt_1", Scheme::Legacy));

    // The body's createdAt stands in for the missing signed timestamp.
    let stale = event_body("evt_1", "2026-11-26T08:54:59+08:00");
    assert_eq!(
        verifier(secret())
            .allow_legacy(true)
            .verify(&legacy_only(&secret(), &stale), &stale)
            .unwrap_err(),
        VerifyError::TimestampTooOld
    );
    verifier(secret())
        .allow_legacy(true)
        .legacy_max_age(Duration::from_secs(3600))
        .verify(&legacy_only(&secret(), &stale), &stale)
        .unwrap();
    let future = event_body("evt_1", "2026-11-26T09:05:01+08:00");
    assert_eq!(
        verifier(secret())
            .allow_legacy(true)
            .verify(&legacy_only(&secret(), &future), &future)
            .unwrap_err(),
        VerifyError::TimestampTooNew
    );

    // An empty event id gives nothing to de-duplicate on.
    let no_id = event_body("", "2026-11-26T09:00:00+08:00");
    assert!(matches!(
        verifier(secret())
            .allow_legacy(true)
            .verify(&legacy_only(&secret(), &no_id), &no_id),
        Err(VerifyError::InvalidPayload(_))
    ));

    assert_eq!(
        verifier(secret())
            .verify(&HeaderMap::new(), &body)
            .unwrap_err(),
        VerifyError::MissingSignature
    );
}

#[test]
fn replayed_event_ids_are_refused_with_dedup_on() {
    let clock = MockClock::at_unix(NOW);
    let v = Verifier::new(secret())
        .with_clock(clock.clone())
        .allow_legacy(true)
        .deduplicate(100);
    let body = fresh_body("evt_1");
    let h = signed(&[&secret()], "evt_1", NOW, &body);
    v.verify(&h, &body).unwrap();
    assert_eq!(
        v.verify(&h, &body).unwrap_err(),
        VerifyError::Duplicate { settled: true }
    );
    // A retry of the same event with a new timestamp is still the same event.
    clock.advance(Duration::from_secs(60));
    let retry = signed(&[&secret()], "evt_1", NOW + 60, &body);
    assert!(matches!(
        v.verify(&retry, &body),
        Err(VerifyError::Duplicate { .. })
    ));
    // Legacy-only delivery of the same event id is caught too.
    assert!(matches!(
        v.verify(&legacy_only(&secret(), &body), &body),
        Err(VerifyError::Duplicate { .. })
    ));
    // Without dedup the verifier alone accepts it again (within the window).
    let plain = verifier(secret());
    plain.verify(&h, &body).unwrap();
    plain.verify(&h, &body).unwrap();
    // An unsigned request does not take up an id.
    let v2 = verifier(secret()).deduplicate(100);
    let mut forged = h.clone();
    forged.insert(
        "webhook-signature",
        HeaderValue::from_static("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="),
    );
    assert!(v2.verify(&forged, &body).is_err());
    v2.verify(&h, &body).unwrap();
}

#[test]
fn body_cap_and_id_mismatch() {
    let body = fresh_body("evt_1");
    let h = signed(&[&secret()], "evt_1", NOW, &body);
    assert_eq!(
        verifier(secret())
            .max_body_bytes(100)
            .verify(&h, &body)
            .unwrap_err(),
        VerifyError::BodyTooLarge { limit: 100 }
    );
    let h2 = signed(&[&secret()], "evt_2", NOW, &body);
    assert_eq!(
        verifier(secret()).verify(&h2, &body).unwrap_err(),
        VerifyError::IdMismatch
    );
    let junk = b"not json";
    let h3 = signed(&[&secret()], "evt_1", NOW, junk);
    let err = verifier(secret()).verify(&h3, junk).unwrap_err();
    assert!(matches!(err, VerifyError::InvalidPayload(_)));
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn repeated_signature_headers_are_malformed() {
    let body = fresh_body("evt_1");
    let mut h = signed(&[&secret()], "evt_1", NOW, &body);
    let sig = h["webhook-signature"].clone();
    h.append("webhook-signature", sig);
    assert_eq!(
        verifier(secret()).verify(&h, &body).unwrap_err(),
        VerifyError::MalformedHeader("webhook-signature")
    );
}

#[test]
fn errors_map_to_problems() {
    let p = VerifyError::SignatureMismatch.to_problem();
    assert_eq!(p.status, 401);
    assert_eq!(p.code, "invalid_signature");
    assert_eq!(
        VerifyError::BodyTooLarge { limit: 1 }.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        VerifyError::MissingHeader("webhook-id").status(),
        StatusCode::BAD_REQUEST
    );
}

// ---- the layer -----------------------------------------------------------------------------

type Req = Request<Full<Bytes>>;

fn request(headers: HeaderMap, body: Vec<u8>) -> Req {
    let mut req = Request::post("/webhooks/l2c")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    *req.headers_mut() = headers;
    req
}

/// An inner service that echoes the body it got and records the event id and call count.
fn echo(
    calls: Arc<AtomicUsize>,
    status: StatusCode,
) -> impl tower::Service<Req, Response = Response<Full<Bytes>>, Error = Infallible, Future = impl Send>
+ Clone {
    service_fn(move |req: Req| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let event = req.extensions().get::<WebhookEvent>().cloned().unwrap();
            assert!(req.extensions().get::<Scheme>().is_some());
            let bytes = req.into_body().collect().await.unwrap().to_bytes();
            let mut res = Response::new(Full::new(bytes));
            *res.status_mut() = status;
            res.headers_mut()
                .insert("x-event-id", HeaderValue::from_str(&event.id).unwrap());
            Ok::<_, Infallible>(res)
        }
    })
}

async fn body_of(res: Response<Full<Bytes>>) -> Bytes {
    res.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn layer_passes_the_raw_body_unchanged_with_the_event_in_extensions() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = ServiceBuilder::new()
        .layer(VerifyWebhookLayer::new(verifier(secret())))
        .service(echo(Arc::clone(&calls), StatusCode::OK));
    let raw = fresh_body("evt_1");
    let res = svc
        .oneshot(request(
            signed(&[&secret()], "evt_1", NOW, &raw),
            raw.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-event-id"], "evt_1");
    assert_eq!(body_of(res).await.as_ref(), raw.as_slice());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn layer_rejects_with_problem_json_without_calling_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = VerifyWebhookLayer::new(verifier(secret()).max_body_bytes(4096));
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(echo(Arc::clone(&calls), StatusCode::OK));
    let raw = fresh_body("evt_1");

    // Wrong secret → 401.
    let res = svc
        .clone()
        .oneshot(request(
            signed(&[&other_secret()], "evt_1", NOW, &raw),
            raw.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(
        res.extensions().get::<VerifyError>(),
        Some(&VerifyError::SignatureMismatch)
    );
    let problem: serde_json::Value = serde_json::from_slice(&body_of(res).await).unwrap();
    assert_eq!(problem["code"], "invalid_signature");

    // Legacy-only, not allowed → 401.
    let res = svc
        .clone()
        .oneshot(request(legacy_only(&secret(), &raw), raw.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Partial SW headers → 400.
    let mut partial = HeaderMap::new();
    partial.insert("webhook-id", HeaderValue::from_static("evt_1"));
    let res = svc
        .clone()
        .oneshot(request(partial, raw.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Declared oversize → 413 before reading; undeclared oversize → 413 while reading.
    let big = vec![b' '; 5000];
    let mut h = signed(&[&secret()], "evt_1", NOW, &big);
    h.insert("content-length", HeaderValue::from(5000u32));
    let res = svc
        .clone()
        .oneshot(request(h.clone(), big.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    h.remove("content-length");
    let res = svc.clone().oneshot(request(h, big)).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn layer_dedup_acknowledges_handled_ids_and_retries_failed_ones() {
    let raw = fresh_body("evt_1");
    let headers = signed(&[&secret()], "evt_1", NOW, &raw);

    // Handler succeeded: the repeat is acknowledged with 200 and not handled again.
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = ServiceBuilder::new()
        .layer(VerifyWebhookLayer::new(verifier(secret()).deduplicate(100)))
        .service(echo(Arc::clone(&calls), StatusCode::OK));
    let first = svc
        .clone()
        .oneshot(request(headers.clone(), raw.clone()))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let again = svc
        .clone()
        .oneshot(request(headers.clone(), raw.clone()))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.headers().get("x-event-id").is_none());
    assert_eq!(body_of(again).await.as_ref(), br#"{"duplicate":true}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Handler failed: the id is forgotten, so the sender's retry is handled again.
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = ServiceBuilder::new()
        .layer(VerifyWebhookLayer::new(verifier(secret()).deduplicate(100)))
        .service(echo(Arc::clone(&calls), StatusCode::INTERNAL_SERVER_ERROR));
    for _ in 0..2 {
        let res = svc
            .clone()
            .oneshot(request(headers.clone(), raw.clone()))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn layer_dedup_answers_409_while_the_first_delivery_is_in_flight() {
    let raw = fresh_body("evt_1");
    let headers = signed(&[&secret()], "evt_1", NOW, &raw);
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let wait = Arc::new(tokio::sync::Mutex::new(Some(wait)));
    let inner = service_fn(move |_req: Req| {
        let wait = Arc::clone(&wait);
        async move {
            if let Some(rx) = wait.lock().await.take() {
                let _ = rx.await;
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }
    });
    let svc = ServiceBuilder::new()
        .layer(VerifyWebhookLayer::new(verifier(secret()).deduplicate(100)))
        .service(inner);
    let first = tokio::spawn(svc.clone().oneshot(request(headers.clone(), raw.clone())));
    // Let the first request reach the (blocked) handler.
    tokio::task::yield_now().await;
    for _ in 0..10 {
        if first.is_finished() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let second = svc
        .clone()
        .oneshot(request(headers.clone(), raw.clone()))
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::CONFLICT);
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
}
