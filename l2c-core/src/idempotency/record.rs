//! Keys, fingerprints, lease tokens and the stored response.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use sha2::{Digest, Sha256};

/// The scope a request without an [`AuthenticatedClient`](crate::AuthenticatedClient) is recorded
/// under: every unauthenticated caller shares it.
pub const ANONYMOUS_SCOPE: &str = "anonymous";

/// The store key of one idempotency record: SHA-256 over (client id, method, path, key), each
/// length-prefixed, so records of different clients, methods or routes never collide and the
/// store never sees raw client input.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordKey([u8; 32]);

impl RecordKey {
    /// The key of `idempotency_key` sent by `client` (`None`: [`ANONYMOUS_SCOPE`]) on
    /// `method path`.
    pub fn new(client: Option<&str>, method: &Method, path: &str, idempotency_key: &str) -> Self {
        let mut hasher = Sha256::new();
        match client {
            Some(id) => {
                hasher.update([1u8]);
                update_prefixed(&mut hasher, id.as_bytes());
            }
            None => {
                hasher.update([0u8]);
                update_prefixed(&mut hasher, ANONYMOUS_SCOPE.as_bytes());
            }
        }
        update_prefixed(&mut hasher, method.as_str().as_bytes());
        update_prefixed(&mut hasher, path.as_bytes());
        update_prefixed(&mut hasher, idempotency_key.as_bytes());
        Self(hasher.finalize().into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest in lower-case hex (used in Redis key names).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordKey({})", self.to_hex())
    }
}

/// SHA-256 over the request's method, path (with query) and raw body: what makes two requests
/// under one key "the same request".
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a request.
    pub fn new(method: &Method, path_and_query: &str, body: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        update_prefixed(&mut hasher, method.as_str().as_bytes());
        update_prefixed(&mut hasher, path_and_query.as_bytes());
        hasher.update(body);
        Self(hasher.finalize().into())
    }

    /// Wraps a raw digest (for stores reading one back).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", hex::encode(self.0))
    }
}

/// The random token naming one in-flight lease; only its holder can complete or release the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken([u8; 16]);

impl LeaseToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// Wraps raw bytes (for stores reading one back).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeaseToken(..)")
    }
}

fn update_prefixed(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// A completed response as stored and replayed: the request fingerprint, the status, the
/// allow-listed headers and the body bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredResponse {
    fingerprint: Fingerprint,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Version byte of [`StoredResponse::to_bytes`].
const FORMAT_V1: u8 = 1;

impl StoredResponse {
    /// A stored response.
    pub fn new(
        fingerprint: Fingerprint,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    ) -> Self {
        Self {
            fingerprint,
            status,
            headers,
            body,
        }
    }

    /// The fingerprint of the request that produced it.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stored (allow-listed) headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// About how many bytes the record occupies (for store bounds).
    pub fn size_hint(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 8)
            .sum();
        64 + headers + self.body.len()
    }

    /// A compact binary encoding, for stores that keep bytes (Redis).
    ///
    /// Layout: version `1`, fingerprint (32), status (u16 BE), header count (u16 BE), then per
    /// header name length (u16 BE), name, value length (u32 BE), value; then the body to the end.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.size_hint());
        out.put_u8(FORMAT_V1);
        out.put_slice(&self.fingerprint.0);
        out.put_u16(self.status.as_u16());
        // Header names are short and values far below 4 GiB; anything that does not fit the
        // length fields (impossible through `http`) is left out rather than corrupting the record.
        let fits = |(name, value): &(&HeaderName, &HeaderValue)| {
            u16::try_from(name.as_str().len()).is_ok() && u32::try_from(value.len()).is_ok()
        };
        let count = self
            .headers
            .iter()
            .filter(fits)
            .count()
            .min(usize::from(u16::MAX));
        out.put_u16(u16::try_from(count).unwrap_or(u16::MAX));
        for (name, value) in self.headers.iter().filter(fits).take(count) {
            out.put_u16(u16::try_from(name.as_str().len()).unwrap_or(0));
            out.put_slice(name.as_str().as_bytes());
            out.put_u32(u32::try_from(value.len()).unwrap_or(0));
            out.put_slice(value.as_bytes());
        }
        out.put_slice(&self.body);
        out.freeze()
    }

    /// Decodes [`to_bytes`](Self::to_bytes); `None` if the bytes are not a valid record.
    pub fn from_bytes(mut bytes: Bytes) -> Option<Self> {
        if bytes.remaining() < 1 + 32 + 2 + 2 || bytes.get_u8() != FORMAT_V1 {
            return None;
        }
        let mut fingerprint = [0u8; 32];
        bytes.copy_to_slice(&mut fingerprint);
        let status = StatusCode::from_u16(bytes.get_u16()).ok()?;
        let count = bytes.get_u16();
        let mut headers = HeaderMap::with_capacity(usize::from(count));
        for _ in 0..count {
            if bytes.remaining() < 2 {
                return None;
            }
            let len = usize::from(bytes.get_u16());
            if bytes.remaining() < len + 4 {
                return None;
            }
            let name = HeaderName::from_bytes(&bytes.split_to(len)).ok()?;
            let len = usize::try_from(bytes.get_u32()).ok()?;
            if bytes.remaining() < len {
                return None;
            }
            let value = HeaderValue::from_maybe_shared(bytes.split_to(len)).ok()?;
            headers.append(name, value);
        }
        Some(Self {
            fingerprint: Fingerprint(fingerprint),
            status,
            headers,
            body: bytes,
        })
    }
}

impl fmt::Debug for StoredResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredResponse")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_response_round_trips_through_bytes() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("link", HeaderValue::from_static("</a>; rel=\"x\""));
        headers.append("link", HeaderValue::from_static("</b>; rel=\"y\""));
        let fp = Fingerprint::new(&Method::POST, "/a?b=1", b"{}");
        let rec = StoredResponse::new(
            fp,
            StatusCode::CREATED,
            headers,
            Bytes::from_static(b"{\"id\":1}"),
        );
        let back = StoredResponse::from_bytes(rec.to_bytes()).unwrap();
        assert_eq!(back, rec);
        assert!(StoredResponse::from_bytes(Bytes::from_static(b"\x02garbage")).is_none());
        let truncated = rec.to_bytes().slice(..40);
        assert!(StoredResponse::from_bytes(truncated).is_none());
    }

    #[test]
    fn record_keys_separate_clients_methods_paths_and_keys() {
        let base = RecordKey::new(Some("a"), &Method::POST, "/x", "k");
        assert_ne!(base, RecordKey::new(Some("b"), &Method::POST, "/x", "k"));
        assert_ne!(base, RecordKey::new(None, &Method::POST, "/x", "k"));
        assert_ne!(
            base,
            RecordKey::new(Some("anonymous"), &Method::POST, "/x", "k")
        );
        assert_ne!(base, RecordKey::new(Some("a"), &Method::PUT, "/x", "k"));
        assert_ne!(base, RecordKey::new(Some("a"), &Method::POST, "/y", "k"));
        assert_ne!(base, RecordKey::new(Some("a"), &Method::POST, "/x", "k2"));
        // Length prefixes: moving a byte from one part to the next changes the key.
        assert_ne!(
            RecordKey::new(Some("a"), &Method::POST, "/xk", ""),
            RecordKey::new(Some("a"), &Method::POST, "/x", "k")
        );
        assert_eq!(base, RecordKey::new(Some("a"), &Method::POST, "/x", "k"));
    }
}
