//! The JWT bearer middleware as a client sees it: every case drives `JwtAuthLayer` (and
//! `RequireScopeLayer`) with `oneshot` in front of a mock handler and asserts the status, the
//! `WWW-Authenticate` challenge and, for refusals, the reason left in the response extensions.
//!
//! Attack tokens are crafted with `jsonwebtoken`, an implementation independent of ours, or by
//! hand where no library would produce them (`alg: none`, broken segments).
#![cfg(feature = "auth")]
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use l2c_core::auth::{
    AuthRejection, Ed25519Key, HmacKey, JwtAuthLayer, RequireScopeLayer, SigningKey, TokenError,
    TokenIssuer, TokenVerifier,
};
use l2c_core::clock::MockClock;
use l2c_core::{AuthenticatedClient, ClientId, RequestId, Scope, Scopes};
use serde_json::{Value, json};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

const ISS: &str = "https://l2c.example";
const AUD: &str = "l2c-api";
const NOW: u64 = 1_800_000_000;
const NO_ERROR: &str = r#"Bearer realm="l2c""#;
const INVALID_TOKEN: &str = r#"Bearer realm="l2c", error="invalid_token""#;
const INVALID_REQUEST: &str = r#"Bearer realm="l2c", error="invalid_request""#;

struct Fixture {
    clock: MockClock,
    hmac: HmacKey,
    ed: Ed25519Key,
    hs_issuer: TokenIssuer,
    ed_issuer: TokenIssuer,
    verifier: Arc<TokenVerifier>,
}

fn fixture() -> Fixture {
    fixture_with_cache(1000)
}

fn fixture_with_cache(capacity: usize) -> Fixture {
    let clock = MockClock::at_unix(NOW);
    let hmac = HmacKey::generate();
    let ed = Ed25519Key::generate("ed-2026").unwrap();
    let hs_issuer = TokenIssuer::new(ISS, AUD, SigningKey::Hmac(hmac.clone(), None))
        .with_clock(Arc::new(clock.clone()));
    let ed_issuer = TokenIssuer::new(ISS, AUD, SigningKey::Ed25519(ed.clone()))
        .with_clock(Arc::new(clock.clone()));
    let verifier = TokenVerifier::builder(ISS, AUD)
        .hmac_key(hmac.clone())
        .ed25519_public_key(ed.public_key())
        .cache_capacity(capacity)
        .with_clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    Fixture {
        clock,
        hmac,
        ed,
        hs_issuer,
        ed_issuer,
        verifier: Arc::new(verifier),
    }
}

/// The mock handler: echoes the authenticated client id.
async fn handler(req: Request<()>) -> Result<Response<Vec<u8>>, Infallible> {
    let id = req
        .extensions()
        .get::<AuthenticatedClient>()
        .map(|c| c.client_id.to_string())
        .unwrap_or_default();
    Ok(Response::new(id.into_bytes()))
}

async fn send(verifier: &Arc<TokenVerifier>, authorization: &[&str]) -> Response<Vec<u8>> {
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(verifier.clone()))
        .service(service_fn(handler));
    let mut req = Request::builder();
    for value in authorization {
        req = req.header("authorization", *value);
    }
    let mut req = req.body(()).unwrap();
    req.extensions_mut().insert(RequestId::new("req-42"));
    svc.oneshot(req).await.unwrap()
}

async fn bearer(verifier: &Arc<TokenVerifier>, token: &str) -> Response<Vec<u8>> {
    send(verifier, &[&format!("Bearer {token}")]).await
}

fn challenge(res: &Response<Vec<u8>>) -> &str {
    res.headers()["www-authenticate"].to_str().unwrap()
}

fn reason(res: &Response<Vec<u8>>) -> AuthRejection {
    // Every refusal is also marked as never executed, for an idempotency layer around auth.
    assert!(res.extensions().get::<l2c_core::NotExecuted>().is_some());
    *res.extensions().get::<AuthRejection>().unwrap()
}

fn body(res: &Response<Vec<u8>>) -> Value {
    serde_json::from_slice(res.body()).unwrap()
}

/// Asserts the uniform `invalid_token` answer and that it was refused for `why`.
#[track_caller]
fn assert_invalid_token(res: &Response<Vec<u8>>, why: TokenError) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(res), INVALID_TOKEN);
    assert_eq!(reason(res), AuthRejection::InvalidToken(why));
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body = body(res);
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["code"], "invalid_token");
    assert_eq!(body["status"], 401);
    assert_eq!(body["requestId"], "req-42");
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "erp-1", "client_id": "erp-1",
        "iat": NOW, "nbf": NOW, "exp": NOW + 7200, "jti": "j-1",
        "scope": "orders:read orders:write",
    })
}

fn at_header(alg: Algorithm, kid: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".into());
    header.kid = kid.map(str::to_owned);
    header
}

/// An HS256 token signed by `jsonwebtoken` with `secret`.
fn hs256(secret: &[u8], header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// An EdDSA token signed by `jsonwebtoken` with `key`.
fn eddsa(key: &Ed25519Key, header: &Header, claims: &Value) -> String {
    let der = key.to_pkcs8_der();
    jsonwebtoken::encode(header, claims, &EncodingKey::from_ed_der(&der)).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

// ---- happy paths -------------------------------------------------------------------------

#[tokio::test]
async fn issued_hs256_and_eddsa_tokens_authenticate_the_client() {
    let f = fixture();
    for issuer in [&f.hs_issuer, &f.ed_issuer] {
        let token = issuer.issue(&ClientId::new("erp-1"), Scopes::all());
        let res = bearer(&f.verifier, &token.access_token).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), b"erp-1");
        assert!(res.headers().get("www-authenticate").is_none());
    }
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    let f = fixture();
    let token = f
        .hs_issuer
        .issue(&ClientId::new("erp-1"), Scopes::all())
        .access_token;
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let res = send(&f.verifier, &[&format!("{scheme} {token}")]).await;
        assert_eq!(res.status(), StatusCode::OK, "{scheme}");
        assert_eq!(res.body(), b"erp-1");
    }
}

#[tokio::test]
async fn tokens_signed_by_jsonwebtoken_are_accepted() {
    // Interop: an independent implementation signing the same claims is accepted.
    let f = fixture();
    let hs = hs256(
        f.hmac.as_bytes(),
        &at_header(Algorithm::HS256, None),
        &claims(),
    );
    let ed = eddsa(
        &f.ed,
        &at_header(Algorithm::EdDSA, Some("ed-2026")),
        &claims(),
    );
    for token in [hs, ed] {
        let res = bearer(&f.verifier, &token).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), b"erp-1");
    }
}

#[tokio::test]
async fn our_tokens_verify_with_jsonwebtoken() {
    let f = fixture();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISS]);
    validation.validate_exp = false; // our clock is mocked; jsonwebtoken reads the real one
    validation.required_spec_claims.clear();
    let token = f
        .ed_issuer
        .issue(&ClientId::new("erp-1"), Scopes::one(Scope::OrdersRead));
    let x = URL_SAFE_NO_PAD.encode(f.ed.public_key().to_bytes());
    let key = jsonwebtoken::DecodingKey::from_ed_components(&x).unwrap();
    let data = jsonwebtoken::decode::<Value>(&token.access_token, &key, &validation).unwrap();
    assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(data.header.kid.as_deref(), Some("ed-2026"));
    let c = data.claims;
    assert_eq!(c["sub"], "erp-1");
    assert_eq!(c["client_id"], "erp-1");
    assert_eq!(c["scope"], "orders:read");
    assert_eq!(c["iat"], NOW);
    assert_eq!(c["nbf"], NOW);
    assert_eq!(c["exp"], NOW + 7200);
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
}

#[tokio::test]
async fn audience_may_be_an_array() {
    let f = fixture();
    let mut c = claims();
    c["aud"] = json!(["other", AUD]);
    let token = hs256(f.hmac.as_bytes(), &at_header(Algorithm::HS256, None), &c);
    assert_eq!(bearer(&f.verifier, &token).await.status(), StatusCode::OK);
    c["aud"] = json!(["other", "another"]);
    let token = hs256(f.hmac.as_bytes(), &at_header(Algorithm::HS256, None), &c);
    assert_invalid_token(
        &bearer(&f.verifier, &token).await,
        TokenError::InvalidAudience,
    );
}

#[tokio::test]
async fn application_at_jwt_typ_is_accepted() {
    let f = fixture();
    let mut header = at_header(Algorithm::HS256, None);
    header.typ = Some("application/at+jwt".into());
    let token = hs256(f.hmac.as_bytes(), &header, &claims());
    assert_eq!(bearer(&f.verifier, &token).await.status(), StatusCode::OK);
}

// ---- missing and malformed credentials ---------------------------------------------------

#[tokio::test]
async fn missing_credentials_get_a_challenge_without_error() {
    let f = fixture();
    let res = send(&f.verifier, &[]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&res), NO_ERROR);
    assert_eq!(reason(&res), AuthRejection::MissingCredentials);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = body(&res);
    assert!(body.get("error").is_none());
    assert_eq!(body["status"], 401);
    assert_eq!(body["requestId"], "req-42");
}

#[tokio::test]
async fn other_schemes_get_a_challenge_without_error() {
    let f = fixture();
    for value in ["Basic ZXJwLTE6c2VjcmV0", "Token abc", "Bearerx abc", ""] {
        let res = send(&f.verifier, &[value]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{value:?}");
        assert_eq!(challenge(&res), NO_ERROR, "{value:?}");
        assert_eq!(reason(&res), AuthRejection::UnsupportedScheme, "{value:?}");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let f = fixture();
    let token = f
        .hs_issuer
        .issue(&ClientId::new("erp-1"), Scopes::all())
        .access_token;
    let bearer = format!("Bearer {token}");
    let res = send(&f.verifier, &[&bearer, &bearer]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(challenge(&res), INVALID_REQUEST);
    assert_eq!(reason(&res), AuthRejection::InvalidRequest);
    let body = body(&res);
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["status"], 400);
}

#[tokio::test]
async fn bearer_without_a_token_is_an_invalid_request() {
    let f = fixture();
    for value in ["Bearer", "Bearer ", "bearer    "] {
        let res = send(&f.verifier, &[value]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{value:?}");
        assert_eq!(challenge(&res), INVALID_REQUEST, "{value:?}");
    }
}

#[tokio::test]
async fn a_credential_outside_b64token_syntax_is_an_invalid_token() {
    let f = fixture();
    for value in [
        "Bearer a,b",
        "Bearer =abc",
        "Bearer a=b",
        r#"Bearer {"payload":"x"}"#,
    ] {
        let res = send(&f.verifier, &[value]).await;
        assert_invalid_token(&res, TokenError::Malformed);
    }
}

// ---- the JWT attack list -------------------------------------------------------------------

#[tokio::test]
async fn alg_none_is_refused_in_any_case() {
    let f = fixture();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "at+jwt"});
        let unsigned = format!("{}.{}", b64(&header), b64(&claims()));
        for token in [format!("{unsigned}."), format!("{unsigned}.c2ln")] {
            let res = bearer(&f.verifier, &token).await;
            let expected = if token.ends_with('.') {
                TokenError::Malformed // empty signature segment
            } else {
                TokenError::UnsupportedAlgorithm
            };
            assert_invalid_token(&res, expected);
        }
    }
}

#[tokio::test]
async fn other_algorithms_are_refused() {
    let f = fixture();
    // HS384 with the right secret: the algorithm is pinned per key.
    let token = hs256(
        f.hmac.as_bytes(),
        &at_header(Algorithm::HS384, None),
        &claims(),
    );
    assert_invalid_token(
        &bearer(&f.verifier, &token).await,
        TokenError::UnsupportedAlgorithm,
    );
    // `alg` is compared case-sensitively.
    let header = json!({"alg": "hs256", "typ": "at+jwt"});
    let token = format!("{}.{}.c2ln", b64(&header), b64(&claims()));
    assert_invalid_token(
        &bearer(&f.verifier, &token).await,
        TokenError::UnsupportedAlgorithm,
    );
}

#[tokio::test]
async fn hs256_signed_with_the_ed25519_public_key_is_refused() {
    let f = fixture();
    let public = f.ed.public_key().to_bytes();
    let x = URL_SAFE_NO_PAD.encode(public);
    // The classic key confusion: the public key (raw, or as the JWK `x` string) as HMAC secret,
    // with and without the Ed25519 key's kid.
    for secret in [public.as_slice(), x.as_bytes()] {
        for kid in [Some("ed-2026"), None] {
            let token = hs256(secret, &at_header(Algorithm::HS256, kid), &claims());
            let expected = match kid {
                Some(_) => TokenError::UnknownKey, // no HS256 key has that kid
                None => TokenError::BadSignature,  // the HS256 key is the real secret
            };
            assert_invalid_token(&bearer(&f.verifier, &token).await, expected);
        }
    }
    // A verifier holding only the Ed25519 key has no HS256 key to select at all.
    let ed_only = Arc::new(
        TokenVerifier::builder(ISS, AUD)
            .ed25519_public_key(f.ed.public_key())
            .with_clock(Arc::new(f.clock.clone()))
            .build()
            .unwrap(),
    );
    let token = hs256(
        &public,
        &at_header(Algorithm::HS256, Some("ed-2026")),
        &claims(),
    );
    assert_invalid_token(&bearer(&ed_only, &token).await, TokenError::UnknownKey);
}

#[tokio::test]
async fn expired_token_is_refused_after_exp_plus_leeway() {
    let f = fixture_with_cache(0);
    let token = f
        .ed_issuer
        .issue(&ClientId::new("erp-1"), Scopes::all())
        .access_token;
    f.clock.advance(Duration::from_secs(7200 + 59));
    assert_eq!(bearer(&f.verifier, &token).await.status(), StatusCode::OK);
    f.clock.advance(Duration::from_secs(1));
    assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::Expired);
}

#[tokio::test]
async fn nbf_in_the_future_is_refused() {
    let f = fixture();
    let mut c = claims();
    c["nbf"] = json!(NOW + 61);
    let token = hs256(f.hmac.as_bytes(), &at_header(Algorithm::HS256, None), &c);
    assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::NotYetValid);
    // Within the leeway it is accepted.
    c["nbf"] = json!(NOW + 60);
    let token = hs256(f.hmac.as_bytes(), &at_header(Algorithm::HS256, None), &c);
    assert_eq!(bearer(&f.verifier, &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn iat_in_the_future_and_overlong_lifetimes_are_refused() {
    let f = fixture();
    let mut c = claims();
    c["iat"] = json!(NOW + 61);
    c["nbf"] = json!(NOW);
    c["exp"] = json!(NOW + 3600);
    let token = hs256(f.hmac.as_bytes(), &at_header(Algorithm::HS256, None), &c);
    assert_invalid_token(
        &bearer(&f.verifier, &token).await,
        TokenError::IssuedInFuture,
    );

    let mut c = claims();
    c["exp"] = json!(NOW + 7200 + 61);
    let token = hs256(f.hmac.as_bytes(), &at_header(Algorithm::HS256, None), &c);
    assert_invalid_token(
        &bearer(&f.verifier, &token).await,
        TokenError::LifetimeTooLong,
    );
}

#[tokio::test]
async fn wrong_audience_and_issuer_are_refused() {
    let f = fixture();
    let header = at_header(Algorithm::HS256, None);
    let mut c = claims();
    c["aud"] = json!("another-api");
    let token = hs256(f.hmac.as_bytes(), &header, &c);
    assert_invalid_token(
        &bearer(&f.verifier, &token).await,
        TokenError::InvalidAudience,
    );

    let mut c = claims();
    c["iss"] = json!("https://evil.example");
    let token = hs256(f.hmac.as_bytes(), &header, &c);
    assert_invalid_token(
        &bearer(&f.verifier, &token).await,
        TokenError::InvalidIssuer,
    );
}

#[tokio::test]
async fn missing_required_claims_are_refused() {
    let f = fixture();
    for claim in ["iss", "aud", "sub", "exp", "iat", "jti"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(claim);
        let token = hs256(f.hmac.as_bytes(), &at_header(Algorithm::HS256, None), &c);
        assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::Malformed);
    }
    // A client_id that differs from sub.
    let mut c = claims();
    c["client_id"] = json!("someone-else");
    let token = hs256(f.hmac.as_bytes(), &at_header(Algorithm::HS256, None), &c);
    assert_invalid_token(
        &bearer(&f.verifier, &token).await,
        TokenError::InvalidClaims,
    );
}

#[tokio::test]
async fn wrong_or_missing_typ_is_refused() {
    let f = fixture();
    for typ in [Some("JWT"), Some("at+jwt2"), Some("id_token+jwt"), None] {
        let mut header = at_header(Algorithm::HS256, None);
        header.typ = typ.map(str::to_owned);
        let token = hs256(f.hmac.as_bytes(), &header, &claims());
        assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::InvalidType);
    }
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let f = fixture();
    for issuer in [&f.hs_issuer, &f.ed_issuer] {
        let token = issuer.issue(&ClientId::new("erp-1"), Scopes::one(Scope::OrdersRead));
        let parts: Vec<&str> = token.access_token.split('.').collect();
        let mut c: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        c["scope"] = json!(Scopes::all().to_string());
        let forged = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
        assert_invalid_token(
            &bearer(&f.verifier, &forged).await,
            TokenError::BadSignature,
        );
    }
}

#[tokio::test]
async fn truncated_and_wrongly_segmented_tokens_are_refused() {
    let f = fixture();
    let token = f
        .ed_issuer
        .issue(&ClientId::new("erp-1"), Scopes::all())
        .access_token;
    let parts: Vec<&str> = token.split('.').collect();
    let cases = [
        (
            token[..token.len() - 4].to_owned(),
            TokenError::BadSignature,
        ), // signature cut short
        (
            token[..token.len() - 1].to_owned(),
            TokenError::BadSignature,
        ), // 85 chars: not base64url of 64 bytes
        (format!("{}.{}", parts[0], parts[1]), TokenError::Malformed), // 2 segments
        (format!("{token}.{}", parts[2]), TokenError::Malformed),      // 4 segments
        (format!("{token}.a.b"), TokenError::Malformed),               // 5 segments (JWE shape)
        (parts[0].to_owned(), TokenError::Malformed),                  // 1 segment
        (format!("{}..{}", parts[0], parts[2]), TokenError::Malformed), // empty payload
    ];
    for (token, why) in cases {
        assert_invalid_token(&bearer(&f.verifier, &token).await, why);
    }
}

#[tokio::test]
async fn a_16_kib_token_is_refused_before_decoding() {
    let f = fixture();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "pad": "x".repeat(16 * 1024)});
    let token = format!("{}.{}.c2ln", b64(&header), b64(&claims()));
    assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::TooLarge);
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let f = fixture();
    let stranger = Ed25519Key::generate("ed-unknown").unwrap();
    let token = eddsa(
        &stranger,
        &at_header(Algorithm::EdDSA, Some("ed-unknown")),
        &claims(),
    );
    assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::UnknownKey);
    // A stranger's key under a known kid fails the one signature check it gets.
    let token = eddsa(
        &stranger,
        &at_header(Algorithm::EdDSA, Some("ed-2026")),
        &claims(),
    );
    assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::BadSignature);
    // EdDSA without a kid selects no key.
    let token = eddsa(&f.ed, &at_header(Algorithm::EdDSA, None), &claims());
    assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::UnknownKey);
}

#[tokio::test]
async fn crit_header_is_refused() {
    let f = fixture();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "crit": ["exp"]});
    let signing_input = format!("{}.{}", b64(&header), b64(&claims()));
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(f.hmac.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    let token = format!("{signing_input}.{signature}");
    assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::Malformed);
}

#[tokio::test]
async fn refusal_bodies_do_not_say_which_check_failed() {
    let f = fixture_with_cache(0);
    let token = f
        .hs_issuer
        .issue(&ClientId::new("erp-1"), Scopes::all())
        .access_token;
    let bad_signature = format!("{}AAAA", &token[..token.len() - 4]);
    let a = bearer(&f.verifier, &bad_signature).await;
    f.clock.advance(Duration::from_secs(8000));
    let b = bearer(&f.verifier, &token).await;
    assert_eq!(
        reason(&a),
        AuthRejection::InvalidToken(TokenError::BadSignature)
    );
    assert_eq!(reason(&b), AuthRejection::InvalidToken(TokenError::Expired));
    assert_eq!(a.body(), b.body());
    assert_eq!(challenge(&a), challenge(&b));
}

// ---- rotation --------------------------------------------------------------------------------

#[tokio::test]
async fn several_ed25519_keys_are_accepted_during_a_rotation() {
    let clock = MockClock::at_unix(NOW);
    let old = Ed25519Key::generate("2026-01").unwrap();
    let new = Ed25519Key::generate("2026-02").unwrap();
    let verifier = Arc::new(
        TokenVerifier::builder(ISS, AUD)
            .ed25519_public_keys([old.public_key(), new.public_key()])
            .with_clock(Arc::new(clock.clone()))
            .build()
            .unwrap(),
    );
    for key in [&old, &new] {
        let issuer = TokenIssuer::new(ISS, AUD, SigningKey::Ed25519(key.clone()))
            .with_clock(Arc::new(clock.clone()));
        let token = issuer
            .issue(&ClientId::new("erp-1"), Scopes::all())
            .access_token;
        assert_eq!(bearer(&verifier, &token).await.status(), StatusCode::OK);
    }
    let jwks = serde_json::to_value(verifier.jwks()).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["2026-01", "2026-02"]);
}

// ---- the verified-token cache ----------------------------------------------------------------

#[tokio::test]
async fn a_cached_token_still_expires_at_exp() {
    let f = fixture();
    for issuer in [&f.hs_issuer, &f.ed_issuer] {
        f.clock.set_unix(NOW);
        let token = issuer
            .issue(&ClientId::new("erp-1"), Scopes::all())
            .access_token;
        assert_eq!(bearer(&f.verifier, &token).await.status(), StatusCode::OK); // cold, cached
        f.clock.advance(Duration::from_secs(7200 + 59));
        assert_eq!(bearer(&f.verifier, &token).await.status(), StatusCode::OK); // cache hit
        f.clock.advance(Duration::from_secs(1));
        assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::Expired);
        // ...and stays refused.
        assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::Expired);
    }
}

#[tokio::test]
async fn a_tampered_variant_of_a_cached_token_is_still_refused() {
    let f = fixture();
    let token = f
        .ed_issuer
        .issue(&ClientId::new("erp-1"), Scopes::one(Scope::OrdersRead));
    let token = token.access_token;
    assert_eq!(bearer(&f.verifier, &token).await.status(), StatusCode::OK);
    let parts: Vec<&str> = token.split('.').collect();
    let mut c: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    c["sub"] = json!("erp-2");
    c["client_id"] = json!("erp-2");
    let forged = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    assert_invalid_token(
        &bearer(&f.verifier, &forged).await,
        TokenError::BadSignature,
    );
    // A prefix or an extension of the cached token is a different token, too.
    assert_invalid_token(
        &bearer(&f.verifier, &token[..token.len() - 4]).await,
        TokenError::BadSignature,
    );
    assert_invalid_token(
        &bearer(&f.verifier, &format!("{token}AAAA")).await,
        TokenError::BadSignature,
    );
    // The original still works.
    assert_eq!(bearer(&f.verifier, &token).await.body(), b"erp-1");
}

#[tokio::test]
async fn a_cached_token_is_refused_if_the_clock_moves_back_before_nbf() {
    let f = fixture();
    let token = f
        .hs_issuer
        .issue(&ClientId::new("erp-1"), Scopes::all())
        .access_token;
    assert_eq!(bearer(&f.verifier, &token).await.status(), StatusCode::OK);
    f.clock.set_unix(NOW - 61);
    assert_invalid_token(&bearer(&f.verifier, &token).await, TokenError::NotYetValid);
}

// ---- scopes --------------------------------------------------------------------------------

async fn scoped(f: &Fixture, required: Scopes, token: Option<&str>) -> Response<Vec<u8>> {
    let mut svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(f.verifier.clone()))
        .layer(RequireScopeLayer::new(required))
        .service(service_fn(handler));
    let mut req = Request::builder();
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let mut req = req.body(()).unwrap();
    req.extensions_mut().insert(RequestId::new("req-42"));
    svc.ready().await.unwrap().call(req).await.unwrap()
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope() {
    let f = fixture();
    let token = f
        .hs_issuer
        .issue(&ClientId::new("erp-1"), Scopes::one(Scope::OrdersRead));
    let required = Scopes::one(Scope::OrdersRead).with(Scope::OrdersWrite);
    let res = scoped(&f, required, Some(&token.access_token)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&res),
        r#"Bearer realm="l2c", error="insufficient_scope", scope="orders:read orders:write""#
    );
    assert_eq!(
        reason(&res),
        AuthRejection::InsufficientScope {
            required,
            granted: Scopes::one(Scope::OrdersRead)
        }
    );
    let body = body(&res);
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["scope"], "orders:read orders:write");
    assert_eq!(body["status"], 403);
    assert_eq!(body["requestId"], "req-42");

    let res = scoped(
        &f,
        Scopes::one(Scope::OrdersRead),
        Some(&token.access_token),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Without a token the auth layer answers first.
    let res = scoped(&f, Scopes::one(Scope::OrdersRead), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&res), NO_ERROR);
}

#[tokio::test]
async fn scope_check_without_an_auth_layer_is_401() {
    let svc = ServiceBuilder::new()
        .layer(RequireScopeLayer::one(Scope::OrdersRead).realm("partners"))
        .service(service_fn(handler));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&res), r#"Bearer realm="partners""#);
    assert_eq!(reason(&res), AuthRejection::NotAuthenticated);
}

#[tokio::test]
async fn realm_is_configurable_and_sanitized() {
    let f = fixture();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(f.verifier.clone()).realm("ev\"il\\ realm"))
        .service(service_fn(handler));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    assert_eq!(challenge(&res), r#"Bearer realm="evil realm""#);
}
