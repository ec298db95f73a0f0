//! A bounded cache of tokens that already passed verification.
//!
//! Keyed by the whole token string (no hash stands in for it, so two tokens never share an
//! entry), each entry remembers the time window in which the cold path would accept the token,
//! and a hit outside that window is refused exactly like the cold path refuses it. Only tokens
//! that verified are inserted, so an attacker cannot fill the cache with garbage.

use dashmap::DashMap;

use super::verifier::TokenError;
use crate::identity::AuthenticatedClient;

/// What the verifier learnt about a token.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) client: AuthenticatedClient,
    /// The first second (inclusive) at which the token is accepted, leeway applied.
    pub(crate) valid_from: u64,
    /// The first second at which the token is refused as expired, leeway applied.
    pub(crate) valid_until: u64,
}

impl Verified {
    pub(crate) fn check(&self, now: u64) -> Result<(), TokenError> {
        if now >= self.valid_until {
            Err(TokenError::Expired)
        } else if now < self.valid_from {
            Err(TokenError::NotYetValid)
        } else {
            Ok(())
        }
    }
}

#[derive(Debug)]
pub(crate) struct VerifiedCache {
    map: DashMap<Box<str>, Verified>,
    capacity: usize,
}

impl VerifiedCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::new(),
            capacity,
        }
    }

    /// `None` on a miss; otherwise the same answer the cold path would give at `now`.
    pub(crate) fn get(
        &self,
        token: &str,
        now: u64,
    ) -> Option<Result<AuthenticatedClient, TokenError>> {
        let outcome = {
            let entry = self.map.get(token)?;
            entry.check(now).map(|()| entry.client.clone())
        };
        if outcome == Err(TokenError::Expired) {
            // The read guard is gone, so this cannot deadlock on the shard lock.
            self.map.remove(token);
        }
        Some(outcome)
    }

    pub(crate) fn insert(&self, token: &str, verified: Verified, now: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.map.len() >= self.capacity {
            self.evict(now);
        }
        self.map.insert(token.into(), verified);
    }

    /// Drops expired entries; if that frees too little, drops arbitrary entries down to 3/4 of
    /// the capacity (a dropped token is simply verified again on its next use).
    fn evict(&self, now: u64) {
        self.map.retain(|_, v| v.valid_until > now);
        let target = self.capacity - self.capacity / 4;
        let len = self.map.len();
        if len >= target {
            let victims: Vec<Box<str>> = self
                .map
                .iter()
                .take(len + 1 - target)
                .map(|e| e.key().clone())
                .collect();
            for key in victims {
                self.map.remove(&key);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
