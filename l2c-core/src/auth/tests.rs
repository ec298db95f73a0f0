//! Unit tests of the auth module; the attack list lives in `l2c-core/tests/auth.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::MockClock;
use crate::identity::{ClientId, Scope, Scopes};

fn hs_pair(clock: &MockClock, capacity: usize) -> (TokenIssuer, TokenVerifier) {
    let key = HmacKey::new([7u8; 32]).unwrap();
    let issuer = TokenIssuer::new("iss", "aud", SigningKey::Hmac(key.clone(), None))
        .with_clock(Arc::new(clock.clone()));
    let verifier = TokenVerifier::builder("iss", "aud")
        .hmac_key(key)
        .cache_capacity(capacity)
        .with_clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    (issuer, verifier)
}

#[test]
fn cache_is_bounded() {
    let clock = MockClock::at_unix(1_800_000_000);
    let (issuer, verifier) = hs_pair(&clock, 8);
    for i in 0..100 {
        let token = issuer.issue(
            &ClientId::new(format!("c{i}")),
            Scopes::one(Scope::OrdersRead),
        );
        assert!(verifier.verify(&token.access_token).is_ok());
        let cache = verifier.cache_for_tests().unwrap();
        assert!(cache.len() <= 8, "cache grew to {}", cache.len());
    }
}

#[test]
fn verified_tokens_are_cached_and_failures_are_not() {
    let clock = MockClock::at_unix(1_800_000_000);
    let (issuer, verifier) = hs_pair(&clock, 100);
    let token = issuer
        .issue(&ClientId::new("c1"), Scopes::all())
        .access_token;
    let cache = verifier.cache_for_tests().unwrap();
    assert_eq!(cache.len(), 0);
    let cold = verifier.verify(&token).unwrap();
    assert_eq!(cache.len(), 1);
    assert_eq!(verifier.verify(&token).unwrap(), cold);
    assert_eq!(cache.len(), 1);
    assert!(verifier.verify(&format!("{token}x")).is_err());
    assert_eq!(cache.len(), 1);
    // An expired entry is dropped when it is refused.
    clock.advance(DEFAULT_TTL + MAX_LEEWAY);
    assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
    assert_eq!(cache.len(), 0);
}

#[test]
fn cache_capacity_zero_turns_it_off() {
    let clock = MockClock::at_unix(1_800_000_000);
    let (issuer, verifier) = hs_pair(&clock, 0);
    let token = issuer
        .issue(&ClientId::new("c1"), Scopes::all())
        .access_token;
    assert!(verifier.verify(&token).is_ok());
    assert!(verifier.cache_for_tests().is_none());
}

#[test]
fn issued_claims_come_from_one_clock_reading() {
    let clock = MockClock::at_unix(1_800_000_123);
    let key = HmacKey::generate();
    let issuer = TokenIssuer::new("iss", "aud", key.into())
        .ttl(Duration::from_millis(600_900))
        .with_clock(Arc::new(clock));
    let token = issuer.issue(&ClientId::new("c1"), Scopes::one(Scope::LeadsWrite));
    assert_eq!(token.expires_in, 600);
    assert_eq!(
        token.expires_at,
        std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_723)
    );
    let parts: Vec<&str> = token.access_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |s: &str| -> serde_json::Value {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let header = decode(parts[0]);
    assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "at+jwt"}));
    let claims = decode(parts[1]);
    assert_eq!(claims["iat"], 1_800_000_123u64);
    assert_eq!(claims["nbf"], 1_800_000_123u64);
    assert_eq!(claims["exp"], 1_800_000_723u64);
    assert_eq!(claims["scope"], "leads:write");
    assert_eq!(claims["jti"], token.jti.as_str());
    assert!(!format!("{token:?}").contains(&token.access_token));
    // Two tokens never share a jti.
    let other = issuer.issue(&ClientId::new("c1"), Scopes::one(Scope::LeadsWrite));
    assert_ne!(other.jti, token.jti);
}

#[test]
fn hmac_keys_need_256_bits_and_never_print() {
    assert_eq!(
        HmacKey::new([1u8; 31]).unwrap_err(),
        KeyError::HmacKeyTooShort(31)
    );
    let key = HmacKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
    assert_eq!(key.as_bytes(), b"0123456789abcdef0123456789abcdef");
    let printed = format!("{key:?} {:?}", SigningKey::from(key.clone()));
    assert!(!printed.contains("0123"), "{printed}");
    assert_ne!(
        HmacKey::generate().as_bytes(),
        HmacKey::generate().as_bytes()
    );
}

#[test]
fn ed25519_keys_round_trip_through_pkcs8_and_check_kid() {
    let key = Ed25519Key::generate("2026-01_a.b").unwrap();
    let back = Ed25519Key::from_pkcs8_der("2026-01_a.b", &key.to_pkcs8_der()).unwrap();
    assert_eq!(back.public_key(), key.public_key());
    assert_eq!(back.kid(), "2026-01_a.b");
    assert!(!format!("{key:?}").contains(&format!("{:?}", key.to_pkcs8_der())));
    for kid in ["", "has space", "a/b", "\"q\"", &"k".repeat(65)] {
        assert_eq!(
            Ed25519Key::generate(kid).unwrap_err(),
            KeyError::InvalidKid,
            "{kid:?}"
        );
    }
    assert_eq!(
        Ed25519Key::from_pkcs8_der("k", b"not der").unwrap_err(),
        KeyError::InvalidPkcs8
    );
    assert_eq!(
        Ed25519PublicKey::from_bytes("k", &[0u8; 31]).unwrap_err(),
        KeyError::InvalidPublicKey
    );
    // The identity point is a weak (small-order) key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        Ed25519PublicKey::from_bytes("k", &identity).unwrap_err(),
        KeyError::InvalidPublicKey
    );
}

#[test]
fn jwks_publishes_only_ed25519_public_keys() {
    let ed = Ed25519Key::generate("k1").unwrap();
    let hmac = HmacKey::generate();
    let verifier = TokenVerifier::builder("iss", "aud")
        .hmac_key(hmac)
        .ed25519_public_key(ed.public_key())
        .build()
        .unwrap();
    let json = serde_json::to_value(verifier.jwks()).unwrap();
    let keys = json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], "k1");
    assert!(jwk.get("d").is_none() && jwk.get("k").is_none());
    assert_eq!(jwk.as_object().unwrap().len(), 6);
}

#[test]
fn jwks_reader_skips_unusable_members() {
    let ed = Ed25519Key::generate("k1").unwrap();
    let good = serde_json::to_value(ed.public_jwk()).unwrap();
    let doc = serde_json::json!({
        "keys": [
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"},
            {"kty": "OKP", "crv": "X25519", "x": good["x"], "kid": "x"},
            {"kty": "OKP", "crv": "Ed25519", "x": "!!", "kid": "bad"},
            {"kty": "OKP", "crv": "Ed25519", "x": good["x"], "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": good["x"]},
            42,
            good,
        ],
        "unknown": true,
    });
    let jwks = Jwks::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(jwks.ed25519_keys(), vec![ed.public_key()]);
    assert!(Jwks::from_json(b"[]").is_err());
}

#[test]
fn builder_refuses_bad_configurations() {
    let hmac = HmacKey::generate();
    let ed = Ed25519Key::generate("k1").unwrap();
    let err = |b: TokenVerifierBuilder| b.build().unwrap_err();
    assert_eq!(err(TokenVerifier::builder("i", "a")), ConfigError::NoKeys);
    assert_eq!(
        err(TokenVerifier::builder("", "a").hmac_key(hmac.clone())),
        ConfigError::EmptyIssuerOrAudience
    );
    assert_eq!(
        err(TokenVerifier::builder("i", "a")
            .hmac_key(hmac.clone())
            .leeway(Duration::from_secs(61))),
        ConfigError::LeewayTooLarge
    );
    assert!(matches!(
        err(TokenVerifier::builder("i", "a")
            .ed25519_public_key(ed.public_key())
            .ed25519_public_key(ed.public_key())),
        ConfigError::DuplicateKey { alg: "EdDSA", .. }
    ));
    assert_eq!(
        err(TokenVerifier::builder("i", "a").hmac_key_with_kid("bad kid", hmac.clone())),
        ConfigError::Key(KeyError::InvalidKid)
    );
    // The same kid under two algorithms is fine: the header's alg picks one.
    assert!(
        TokenVerifier::builder("i", "a")
            .hmac_key_with_kid("k1", hmac)
            .ed25519_public_key(ed.public_key())
            .build()
            .is_ok()
    );
}

#[test]
fn hmac_kid_must_match_the_header() {
    let clock = MockClock::at_unix(1_800_000_000);
    let key = HmacKey::generate();
    let with_kid = TokenIssuer::new(
        "iss",
        "aud",
        SigningKey::Hmac(key.clone(), Some("h1".into())),
    )
    .with_clock(Arc::new(clock.clone()));
    let without = TokenIssuer::new("iss", "aud", SigningKey::Hmac(key.clone(), None))
        .with_clock(Arc::new(clock.clone()));
    let verifier = TokenVerifier::builder("iss", "aud")
        .signing_key(with_kid.key())
        .with_clock(Arc::new(clock))
        .build()
        .unwrap();
    let c = ClientId::new("c1");
    assert!(
        verifier
            .verify(&with_kid.issue(&c, Scopes::all()).access_token)
            .is_ok()
    );
    assert_eq!(
        verifier.verify(&without.issue(&c, Scopes::all()).access_token),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn unknown_scope_names_grant_nothing() {
    use base64::Engine as _;
    use hmac::Mac as _;
    let clock = MockClock::at_unix(1_800_000_000);
    let (_, verifier) = hs_pair(&clock, 0);
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    };
    let input = format!(
        "{}.{}",
        b64(serde_json::json!({"alg": "HS256", "typ": "at+jwt"})),
        b64(serde_json::json!({
            "iss": "iss", "aud": "aud", "sub": "c1", "iat": 1_800_000_000u64,
            "exp": 1_800_000_100u64, "jti": "j", "scope": "orders:read admin:all",
        }))
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[7u8; 32]).unwrap();
    mac.update(input.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let client = verifier.verify(&format!("{input}.{sig}")).unwrap();
    assert_eq!(client.scopes, Scopes::one(Scope::OrdersRead));
}

#[cfg(feature = "api")]
#[test]
fn issued_token_converts_to_the_oauth_response() {
    let issuer = TokenIssuer::new("iss", "aud", HmacKey::generate().into());
    let token = issuer.issue(&ClientId::new("c1"), Scopes::one(Scope::OrdersRead));
    let access_token = token.access_token.clone();
    let response = crate::api::oauth::TokenResponse::from(token);
    assert_eq!(response.access_token, access_token);
    assert_eq!(response.expires_in, 7200);
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.scope.as_deref(), Some("orders:read"));
}

#[test]
fn ed25519_signatures_with_a_small_order_r_are_refused_before_jsonwebtoken() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let clock = MockClock::at_unix(1_800_000_000);
    let key = Ed25519Key::generate("k1").unwrap();
    let issuer = TokenIssuer::new("iss", "aud", SigningKey::Ed25519(key.clone()))
        .with_clock(Arc::new(clock.clone()));
    let verifier = TokenVerifier::builder("iss", "aud")
        .ed25519_public_key(key.public_key())
        .cache_capacity(0)
        .with_clock(Arc::new(clock))
        .build()
        .unwrap();
    let token = issuer
        .issue(&ClientId::new("c1"), Scopes::all())
        .access_token;
    assert!(verifier.verify(&token).is_ok());

    let (input, signature_b64) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
    assert!(verifier::check_strict_ed25519_r(signature_b64).is_ok());
    // Every point of the eight-torsion subgroup as R, the real S kept: what `verify_strict`
    // refuses and the plain check would only refuse through the equation.
    for point in curve25519_dalek::constants::EIGHT_TORSION {
        let mut forged = signature.clone();
        forged[..32].copy_from_slice(point.compress().as_bytes());
        let forged_b64 = URL_SAFE_NO_PAD.encode(&forged);
        assert_eq!(
            verifier::check_strict_ed25519_r(&forged_b64),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verifier.verify(&format!("{input}.{forged_b64}")),
            Err(TokenError::BadSignature)
        );
    }
    // A short signature never reaches the curve.
    assert_eq!(
        verifier::check_strict_ed25519_r(&signature_b64[..40]),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn adopted_keys_replace_the_verifiers_keys_and_its_jwks() {
    let clock = MockClock::at_unix(1_800_000_000);
    let old = Ed25519Key::generate("k1").unwrap();
    let new = Ed25519Key::generate("k2").unwrap();
    let build = |keys: &[&Ed25519Key]| {
        keys.iter()
            .fold(TokenVerifier::builder("iss", "aud"), |b, k| {
                b.ed25519_public_key(k.public_key())
            })
            .with_clock(Arc::new(clock.clone()))
            .cache_capacity(0)
            .build()
            .unwrap()
    };
    let issue = |key: &Ed25519Key| {
        TokenIssuer::new("iss", "aud", SigningKey::Ed25519(key.clone()))
            .with_clock(Arc::new(clock.clone()))
            .issue(&ClientId::new("c1"), Scopes::all())
            .access_token
    };
    let verifier = build(&[&old]);
    assert_eq!(verifier.verify(&issue(&new)), Err(TokenError::UnknownKey));
    verifier.adopt_keys(&build(&[&old, &new]));
    assert!(verifier.verify(&issue(&new)).is_ok());
    assert!(verifier.verify(&issue(&old)).is_ok());
    assert_eq!(verifier.jwks().keys.len(), 2);
    verifier.adopt_keys(&build(&[&new]));
    assert_eq!(verifier.verify(&issue(&old)), Err(TokenError::UnknownKey));
    assert_eq!(verifier.key_ids(), vec![Some("k2".to_owned())]);
}
