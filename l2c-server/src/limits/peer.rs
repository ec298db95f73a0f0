//! The client's address behind trusted proxies, which the per-address limits key on: the
//! token endpoint's rate limit ([`crate::limits`]) and the lead push hooks.

use std::net::IpAddr;

use http::header;

/// The address token requests are counted against (see [`crate::limits`]).
///
/// The socket peer, unless it is a proxy in `trusted_proxies` (empty unless
/// `--trust-proxy-tls`; `--trusted-proxy` networks, loopback by default): then the forwarded
/// chain (`Forwarded: for=…`, or else `X-Forwarded-For`) is read from the right — each trusted
/// proxy appends the address it received the request from — and the first address outside the
/// trusted networks is the client. Entries left of it are whatever the client sent and are never
/// believed, so rotating them changes nothing. An unreadable entry (`unknown`, an obfuscated
/// identifier, garbage) stops the walk at the last trusted hop.
pub fn client_address(
    trusted_proxies: &[ipnet::IpNet],
    socket_peer: Option<IpAddr>,
    headers: &http::HeaderMap,
) -> Option<IpAddr> {
    let trusted = |ip: &IpAddr| {
        let ip = canonical(*ip);
        trusted_proxies.iter().any(|net| net.contains(&ip))
    };
    let peer = socket_peer?;
    if !trusted(&peer) {
        return Some(peer);
    }
    let mut nearest = peer;
    for entry in forwarded_chain(headers).iter().rev() {
        match entry {
            Some(ip) if trusted(ip) => nearest = *ip,
            Some(ip) => return Some(*ip),
            None => return Some(nearest),
        }
    }
    Some(nearest)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The forwarded addresses, left (client side) to right (nearest proxy): `Forwarded` (RFC 7239)
/// `for=` values when that header is present, else `X-Forwarded-For`. `None` for an entry that
/// is not an IP address.
fn forwarded_chain(headers: &http::HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<_> = headers.get_all(header::FORWARDED).iter().collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_node(value))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(parse_node)
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `2001:db8::1` → the address.
fn parse_node(value: &str) -> Option<IpAddr> {
    let value = value.trim().trim_matches('"');
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = value.strip_prefix('[') {
        return rest
            .split_once(']')
            .and_then(|(ip, _)| ip.parse::<IpAddr>().ok())
            .map(canonical);
    }
    value
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| canonical(a.ip()))
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn failed_attempts_count_against_the_forwarded_address_only_from_a_trusted_proxy() {
        let socket = Some("10.0.0.1".parse().unwrap());
        let proxies = crate::config::parse_trusted_proxies("10.0.0.0/8").unwrap();
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 2.2.2.2"),
            ("x-forwarded-for", "3.3.3.3"),
        ]);
        // No trusted proxy (no --trust-proxy-tls): the socket peer.
        assert_eq!(client_address(&[], socket, &h), socket);
        assert_eq!(
            client_address(&proxies, socket, &h),
            Some("3.3.3.3".parse().unwrap())
        );
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2")]);
        assert_eq!(
            client_address(&proxies, socket, &h),
            Some("2.2.2.2".parse().unwrap())
        );
        let h = headers(&[("x-forwarded-for", "garbage")]);
        assert_eq!(client_address(&proxies, socket, &h), socket);
        // A direct peer outside the trusted networks: its header is ignored.
        let direct = Some("203.0.113.9".parse().unwrap());
        let h = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(client_address(&proxies, direct, &h), direct);
        // The right-most untrusted address: a second proxy hop in the chain is skipped, what the
        // client put on the left is not believed.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_address(&proxies, socket, &h),
            Some("198.51.100.7".parse().unwrap())
        );
        // An unreadable entry stops at the last trusted hop.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, unknown, 10.0.0.2")]);
        assert_eq!(
            client_address(&proxies, socket, &h),
            Some("10.0.0.2".parse().unwrap())
        );
        // RFC 7239 `Forwarded` wins over `X-Forwarded-For`; ports, quotes and IPv6 brackets.
        let h = headers(&[
            (
                "forwarded",
                r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(
            client_address(&proxies, socket, &h),
            Some("2001:db8::7".parse().unwrap())
        );
        let h = headers(&[("forwarded", "for=198.51.100.8:1234;by=10.0.0.1")]);
        assert_eq!(
            client_address(&proxies, socket, &h),
            Some("198.51.100.8".parse().unwrap())
        );
        // An IPv4-mapped loopback peer counts as loopback.
        let loopback =
            crate::config::parse_trusted_proxies(crate::config::DEFAULT_TRUSTED_PROXY).unwrap();
        let mapped = Some("::ffff:127.0.0.1".parse().unwrap());
        let h = headers(&[("x-forwarded-for", "198.51.100.9")]);
        assert_eq!(
            client_address(&loopback, mapped, &h),
            Some("198.51.100.9".parse().unwrap())
        );
    }
}
