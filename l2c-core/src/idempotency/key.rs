//! Reading the idempotency key from the request headers.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

/// Why the key headers could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The named header's value is not 1–255 visible ASCII characters.
    Invalid(HeaderName),
    /// The key headers (or repeats of one) carry different values.
    Conflicting,
}

/// The longest accepted key, in characters (Stripe's limit).
pub(crate) const MAX_KEY_LEN: usize = 255;

/// The key from the first of `names` present; `Ok(None)` if none is.
///
/// Every present header (and every repeat of one) must parse to the same key.
pub(crate) fn read_key<'a>(
    headers: &'a HeaderMap,
    names: &[HeaderName],
) -> Result<Option<Cow<'a, str>>, KeyError> {
    let mut found: Option<Cow<'a, str>> = None;
    for name in names {
        for value in headers.get_all(name) {
            let key = parse_key(value.as_bytes()).ok_or_else(|| KeyError::Invalid(name.clone()))?;
            match &found {
                Some(existing) if *existing != key => return Err(KeyError::Conflicting),
                Some(_) => {}
                None => found = Some(key),
            }
        }
    }
    Ok(found)
}

/// Parses one header value: an RFC 8941 sf-string (`"abc"`, with `\"` and `\\` escapes) when it
/// starts with a double quote, the raw value otherwise; the key must then be 1–255 visible ASCII.
pub(crate) fn parse_key(raw: &[u8]) -> Option<Cow<'_, str>> {
    let raw = trim_ows(raw);
    let key: Cow<'_, [u8]> = match raw.split_first() {
        Some((b'"', rest)) => Cow::Owned(parse_sf_string(rest)?),
        _ => Cow::Borrowed(raw),
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return None;
    }
    match key {
        Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v).ok().map(Cow::Owned),
    }
}

/// The inside of an sf-string after its opening quote; the closing quote must end the value.
fn parse_sf_string(rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(rest.len());
    let mut bytes = rest.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(&c @ (b'"' | b'\\')) => out.push(c),
                _ => return None,
            },
            b'"' => return bytes.next().is_none().then_some(out),
            0x20..=0x7e => out.push(b),
            _ => return None,
        }
    }
    None
}

fn trim_ows(mut raw: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = raw {
        raw = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = raw {
        raw = rest;
    }
    raw
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn raw_and_quoted_forms_are_accepted() {
        assert_eq!(
            parse_key(b"KG5LxwFBepaKHyUD").as_deref(),
            Some("KG5LxwFBepaKHyUD")
        );
        assert_eq!(
            parse_key(b"\"8e03978e-40d5-43e8-bc93-6894a57f9324\"").as_deref(),
            Some("8e03978e-40d5-43e8-bc93-6894a57f9324")
        );
        assert_eq!(parse_key(br#""a\"b\\c""#).as_deref(), Some(r#"a"b\c"#));
        assert_eq!(parse_key(b"  abc ").as_deref(), Some("abc"));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(parse_key(b""), None);
        assert_eq!(parse_key(b"\"\""), None);
        assert_eq!(parse_key(b"a b"), None);
        assert_eq!(parse_key(b"\"a b\""), None);
        assert_eq!(parse_key(b"\"abc"), None);
        assert_eq!(parse_key(b"\"abc\"x"), None);
        assert_eq!(parse_key(br#""a\x""#), None);
        assert_eq!(parse_key("ключ".as_bytes()), None);
        assert_eq!(parse_key(&[b'a'; 256]), None);
        assert!(parse_key(&[b'a'; 255]).is_some());
    }

    #[test]
    fn several_headers_must_agree() {
        let names = [
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
        ];
        let mut h = HeaderMap::new();
        assert_eq!(read_key(&h, &names), Ok(None));
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        assert_eq!(read_key(&h, &names).unwrap().as_deref(), Some("abc"));
        h.insert("idempotency-key", HeaderValue::from_static("\"abc\""));
        assert_eq!(read_key(&h, &names).unwrap().as_deref(), Some("abc"));
        h.insert("idempotency-key", HeaderValue::from_static("abd"));
        assert_eq!(read_key(&h, &names), Err(KeyError::Conflicting));
        let mut h = HeaderMap::new();
        h.append("idempotency-key", HeaderValue::from_static("a"));
        h.append("idempotency-key", HeaderValue::from_static("b"));
        assert_eq!(read_key(&h, &names), Err(KeyError::Conflicting));
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("a b"));
        assert_eq!(
            read_key(&h, &names),
            Err(KeyError::Invalid(HeaderName::from_static("x-request-id")))
        );
    }
}
