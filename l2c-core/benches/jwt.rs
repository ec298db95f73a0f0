//! JWT verification cost: l2c's verifier cold (cache off) and cached, beside plain
//! `jsonwebtoken::decode` with an equivalent `Validation`, for HS256 and EdDSA; plus the whole
//! `JwtAuthLayer` call on a cached token.
//!
//! Run with: `cargo bench -p l2c-core --bench jwt -- --warm-up-time 1 --measurement-time 3`

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use http::{Request, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use l2c_core::auth::{Ed25519Key, HmacKey, JwtAuthLayer, SigningKey, TokenIssuer, TokenVerifier};
use l2c_core::{ClientId, Scopes};
use serde::Deserialize;
use tower::{Layer, Service, service_fn};

const ISS: &str = "https://l2c.example";
const AUD: &str = "l2c-api";

/// What a typical jsonwebtoken middleware deserializes.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    scope: String,
    exp: u64,
}

fn verifier(key: &SigningKey, cache: usize) -> TokenVerifier {
    TokenVerifier::builder(ISS, AUD)
        .signing_key(key)
        .cache_capacity(cache)
        .build()
        .unwrap_or_else(|e| panic!("verifier: {e}"))
}

fn bench_alg(c: &mut Criterion, name: &str, key: SigningKey, jwt_key: DecodingKey, alg: Algorithm) {
    let token = TokenIssuer::new(ISS, AUD, key.clone())
        .issue(&ClientId::new("erp-1"), Scopes::all())
        .access_token;
    let cold = verifier(&key, 0);
    let cached = verifier(&key, 10_000);
    let mut validation = Validation::new(alg);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISS]);
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    assert!(cold.verify(&token).is_ok());
    assert!(cached.verify(&token).is_ok());
    assert!(jsonwebtoken::decode::<Claims>(&token, &jwt_key, &validation).is_ok());

    let mut group = c.benchmark_group(format!("jwt/{name}"));
    group.bench_function("l2c_cold", |b| b.iter(|| cold.verify(black_box(&token))));
    group.bench_function("l2c_cached", |b| {
        b.iter(|| cached.verify(black_box(&token)))
    });
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&token), &jwt_key, &validation))
    });
    group.finish();

    // The whole middleware on a cached token: header parsing, cache hit, extension insert.
    let layer = JwtAuthLayer::new(Arc::new(cached));
    let mut svc = layer.layer(service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Vec::<u8>::new()))
    }));
    let authorization = http::HeaderValue::from_str(&format!("Bearer {token}"))
        .unwrap_or_else(|e| panic!("header: {e}"));
    // The same request through the bare mock service, for the layer's own share.
    let mut bare = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Vec::<u8>::new()))
    });
    c.bench_function(&format!("layer/{name}_bare_baseline"), |b| {
        b.iter(|| {
            let mut req = Request::new(());
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, authorization.clone());
            bare.call(req).now_or_never()
        })
    });
    c.bench_function(&format!("layer/{name}_cached"), |b| {
        b.iter(|| {
            let mut req = Request::new(());
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, authorization.clone());
            svc.call(req).now_or_never()
        })
    });
}

fn jwt(c: &mut Criterion) {
    let hmac = HmacKey::generate();
    let hs_jwt_key = DecodingKey::from_secret(hmac.as_bytes());
    bench_alg(
        c,
        "hs256",
        SigningKey::Hmac(hmac, None),
        hs_jwt_key,
        Algorithm::HS256,
    );

    let ed = Ed25519Key::generate("bench").unwrap_or_else(|e| panic!("key: {e}"));
    let x = URL_SAFE_NO_PAD.encode(ed.public_key().to_bytes());
    let ed_jwt_key = DecodingKey::from_ed_components(&x).unwrap_or_else(|e| panic!("key: {e}"));
    bench_alg(
        c,
        "eddsa",
        SigningKey::Ed25519(ed),
        ed_jwt_key,
        Algorithm::EdDSA,
    );
}

criterion_group!(benches, jwt);
criterion_main!(benches);
