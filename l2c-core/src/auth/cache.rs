//! A bounded cache of tokens that already passed verification.
//!
//! Keyed by the whole token string (no hash stands in for it, so two tokens never share an
//! entry), each entry remembers the time window in which the cold path would accept the token,
//! and a hit outside that window is refused exactly like the cold path refuses it. Only tokens
//! that verified are inserted, so an attacker cannot fill the cache with garbage.

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
const HASHED_TAIL: usize = 16;

/// Hashes only the last 16 bytes of a token — 16 base64url characters of its signature, 96 bits
/// no two tokens share by chance — with one keyed folded multiply.
///
/// Equality still compares the whole token, so this only picks the bucket. SipHash over the
/// token (what `RandomState` would run, twice per lookup with `DashMap`) cost about a third of a
/// cache hit. A weaker hash is safe here because only tokens that *verified* are ever inserted:
/// their signatures cannot be chosen without the signing key, so nobody can fill a bucket on
/// purpose, and the keys are random per cache besides.
#[derive(Debug, Clone, Copy)]
struct TailHash {
    k0: u64,
    k1: u64,
}

impl TailHash {
    fn random() -> Self {
        let (k0, k1): (u64, u64) = rand::random();
        // An odd `k1` keeps the multiply from collapsing when the data word equals it.
        Self { k0, k1: k1 | 1 }
    }
}

impl BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> Self::Hasher {
        TailHasher {
            keys: *self,
            state: self.k0,
        }
    }
}

/// The product of `a` and `b` as 128 bits, folded to 64 by xor.
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

struct TailHasher {
    keys: TailHash,
    state: u64,
}

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(HASHED_TAIL)..];
        let mut buf = [0u8; HASHED_TAIL];
        buf[HASHED_TAIL - tail.len()..].copy_from_slice(tail);
        let (lo, hi) = buf.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(hi.try_into().unwrap_or_default());
        self.state = fold(lo ^ self.state, hi ^ self.keys.k1);
    }

    fn write_usize(&mut self, n: usize) {
        // The length prefix of a slice: mixed in without another multiply.
        self.state = self.state.rotate_left(23) ^ n as u64;
    }

    fn finish(&self) -> u64 {
        fold(self.state, self.keys.k1 ^ self.keys.k0.rotate_left(32))
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
            map: DashMap::with_hasher(TailHash::random()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{ClientId, Scope, Scopes};

    fn verified(client: &str) -> Verified {
        Verified {
            client: AuthenticatedClient::new(ClientId::new(client), Scopes::one(Scope::OrdersRead)),
            valid_from: 0,
            valid_until: 100,
        }
    }

    #[test]
    fn tokens_with_the_same_tail_are_still_separate_entries() {
        // The hash reads only the tail; equality must still compare whole tokens.
        let cache = VerifiedCache::new(16);
        let tail = "x".repeat(40);
        let a = format!("aaaa.{tail}");
        let b = format!("bbbb.{tail}");
        cache.insert(a.as_bytes(), verified("cli_a"), 1);
        assert_eq!(
            cache.get(b.as_bytes(), 1),
            None,
            "a token that was never verified"
        );
        cache.insert(b.as_bytes(), verified("cli_b"), 1);
        let got = |t: &str| cache.get(t.as_bytes(), 1).unwrap().unwrap().client_id;
        assert_eq!(got(&a).as_str(), "cli_a");
        assert_eq!(got(&b).as_str(), "cli_b");
        // A token ending in a cached token's signature but longer is no hit either.
        assert_eq!(cache.get(format!("c{a}").as_bytes(), 1), None);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn hash_depends_on_the_tail_and_the_random_keys() {
        let h = TailHash::random();
        let hash = |h: &TailHash, s: &str| h.hash_one(s.as_bytes());
        assert_eq!(
            hash(&h, "head.payload.sig-AAAA"),
            hash(&h, "head.payload.sig-AAAA")
        );
        assert_ne!(
            hash(&h, "head.payload.sig-AAAA"),
            hash(&h, "head.payload.sig-AAAB")
        );
        // Short inputs (shorter than the tail window) hash too.
        assert_ne!(hash(&h, "a"), hash(&h, "b"));
        let other = TailHash::random();
        assert_ne!(
            hash(&h, "head.payload.sig"),
            hash(&other, "head.payload.sig")
        );
    }
}
