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
    let _ = Duration::ZERO;
}
