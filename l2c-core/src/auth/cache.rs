//! A bounded cache of tokens that already passed verification.
//!
//! Keyed by the whole token string (no hash stands in for it, so two tokens never share an
//! entry), each entry remembers the time window in which the cold path would accept the token,
//! and a hit outside that window is refused exactly like the cold path refuses it. Only tokens
//! that verified are inserted, so an attacker cannot fill the cache with garbage.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

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

/// How many trailing bytes of each write the hasher looks at.
const HASHED_TAIL: usize = 32;

/// Hashes only the last 32 bytes of a token: its signature, which no two tokens share by chance.
///
/// Equality still compares the whole token, so this only picks the bucket; it keeps a cache hit
/// from running SipHash over a 400-byte token. The underlying SipHash keys are random per cache,
/// so colliding buckets cannot be precomputed.
#[derive(Debug, Clone)]
struct TailHash(RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher<<RandomState as BuildHasher>::Hasher>;

    fn build_hasher(&self) -> Self::Hasher {
        TailHasher(self.0.build_hasher())
    }
}

struct TailHasher<H>(H);

impl<H: Hasher> Hasher for TailHasher<H> {
    fn write(&mut self, bytes: &[u8]) {
        self.0
            .write(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

#[derive(Debug)]
pub(crate) struct VerifiedCache {
    map: DashMap<Box<[u8]>, Verified, TailHash>,
    capacity: usize,
}

impl VerifiedCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::with_hasher(TailHash(RandomState::new())),
            capacity,
        }
    }

    /// `None` on a miss; otherwise the same answer the cold path would give at `now`.
    pub(crate) fn get(
        &self,
        token: &[u8],
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

    pub(crate) fn insert(&self, token: &[u8], verified: Verified, now: u64) {
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
            let victims: Vec<Box<[u8]>> = self
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
