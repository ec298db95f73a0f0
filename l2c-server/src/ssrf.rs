//! SSRF guard for webhook destinations (PROTOCOLS.md H9, issue 8 item 5).
//!
//! A subscriber chooses the URL the server will POST to, so without a guard any partner could make
//! the server call its own loopback admin ports, the cloud metadata service (`169.254.169.254`) or
//! the company's internal network. The rules:
//!
//! - the scheme is `https` (plain `http` only with `--allow-private-webhooks`), there is a host,
//!   and there are no credentials in the URL;
//! - every address the host resolves to must be public: not loopback, private (RFC 1918),
//!   link-local, unique-local, unspecified, multicast, broadcast, CGNAT (100.64/10),
//!   documentation, benchmarking, reserved, or an IPv4-mapped/-compatible/NAT64 form of one;
//! - the check runs when the subscription is created ([`vet`]) **and** on every connection a
//!   delivery opens: the dispatcher's one HTTP client resolves names through a
//!   [`VettingResolver`] and connects to exactly the addresses it vetted, so a DNS answer that
//!   changes between the check and the connection (DNS rebinding) cannot slip in; IP literals,
//!   which no resolver sees, are checked by [`check_url`] before each attempt.
//!
//! With `--allow-private-webhooks` (local demos and tests) every address is accepted.
//!
//! ```
//! use std::net::IpAddr;
//! use l2c_server::ssrf::is_public;
//!
//! for private in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fd00::1", "100.64.0.1",
//!                 "::ffff:192.168.1.1", "0.0.0.0", "224.0.0.1", "192.0.2.7"] {
//!     assert!(!is_public(private.parse::<IpAddr>().unwrap()), "{private}");
//! }
//! assert!(is_public("93.184.215.14".parse().unwrap()));
//! assert!(is_public("2606:4700::1111".parse().unwrap()));
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// Longest destination URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// How long a host name may take to resolve.
pub const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SsrfError {
    /// Not a parseable absolute URL, or too long.
    #[error("not a valid absolute URL")]
    Invalid,
    /// The scheme is not `https` (or `http` in development mode).
    #[error("the URL must use https")]
    NotHttps,
    /// The URL carries a user name or password.
    #[error("the URL must not contain credentials")]
    Credentials,
    /// The URL has no host.
    #[error("the URL has no host")]
    NoHost,
    /// The host did not resolve.
    #[error("the host `{0}` does not resolve")]
    Unresolvable(String),
    /// The host resolves to (or is) an address that is not public.
    #[error("the host resolves to a non-public address ({0})")]
    NonPublic(IpAddr),
}

/// A `reqwest` DNS resolver that refuses a name when any address it resolves to is not public.
///
/// reqwest connects to exactly the addresses its resolver returns, so a client built with this
/// resolver, **no proxy and no redirects** ([`client_builder`] sets all three) opens connections
/// only to vetted addresses — whatever the DNS answers next time — and can still keep those
/// connections (and their TLS sessions) alive between requests. A refusal is the [`SsrfError`]
/// in the request error's source chain. IP literals never reach a resolver: check each URL with
/// [`check_url`] before sending. (A proxy would resolve the target itself, and a followed
/// redirect to an IP literal would skip both checks.)
#[derive(Debug, Clone, Copy)]
pub struct VettingResolver {
    allow_private: bool,
}

impl VettingResolver {
    /// A resolver that refuses non-public addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }
}

impl reqwest::dns::Resolve for VettingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            // Port 0: reqwest puts the URL's (or the scheme's) port on every address.
            let addrs = resolve_vetted(name.as_str(), 0, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A `reqwest` client builder that connects only to vetted addresses: [`VettingResolver`] as
/// its resolver, no proxy (a proxy would resolve the target itself) and no redirects (a
/// `Location` may point at an IP literal no resolver sees). Check each URL with [`check_url`]
/// before sending it.
///
/// One client's pool is shared by every request it sends: build one client per
/// `allow_private` setting, never reuse one across settings.
///
/// ```
/// use l2c_server::ssrf;
///
/// let client = ssrf::client_builder(false).build().unwrap();
/// let url = ssrf::check_url("https://hooks.example.com/l2c", false).unwrap();
/// let _request = client.post(url);
/// ```
pub fn client_builder(allow_private: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(VettingResolver::new(allow_private)))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
}

/// Every address `host` resolves to (with `port`), if all of them may be used.
async fn resolve_vetted(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, SsrfError> {
    let unresolvable = || SsrfError::Unresolvable(host.to_owned());
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| unresolvable())?
            .map_err(|_| unresolvable())?
            .collect();
    if addrs.is_empty() {
        return Err(unresolvable());
    }
    vet_addrs(&addrs, allow_private)?;
    Ok(addrs)
}

fn vet_addrs(addrs: &[SocketAddr], allow_private: bool) -> Result<(), SsrfError> {
    if !allow_private {
        if let Some(bad) = addrs.iter().map(SocketAddr::ip).find(|ip| !is_public(*ip)) {
            return Err(SsrfError::NonPublic(bad));
        }
    }
    Ok(())
}

/// The IP address of a URL whose host is a literal (`https://10.0.0.1/`, `https://[::1]/`).
/// (The URL parser has already normalised other IPv4 spellings, `0x7f000001`, `127.1`, to
/// dotted decimal.)
fn literal_ip(url: &Url) -> Option<IpAddr> {
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Checks what can be checked without DNS: the syntax ([`parse_url`]) and, when the host is an
/// IP literal, the address. A host name is left to a [`VettingResolver`] at connection time.
///
/// # Errors
///
/// The [`SsrfError`] naming the first rule broken.
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, SsrfError> {
    let parsed = parse_url(url, allow_private)?;
    if let Some(ip) = literal_ip(&parsed) {
        let port = parsed.port_or_known_default().ok_or(SsrfError::Invalid)?;
        vet_addrs(&[SocketAddr::new(ip, port)], allow_private)?;
    }
    Ok(parsed)
}

/// Checks the syntax of `url`: absolute, `https` (or `http` when `allow_private`), a host, no
/// credentials, at most [`MAX_URL_LEN`] bytes.
///
/// # Errors
///
/// The [`SsrfError`] naming the first rule broken.
pub fn parse_url(url: &str, allow_private: bool) -> Result<Url, SsrfError> {
    if url.len() > MAX_URL_LEN {
        return Err(SsrfError::Invalid);
    }
    let parsed = Url::parse(url).map_err(|_| SsrfError::Invalid)?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(SsrfError::NotHttps),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(SsrfError::Credentials);
    }
    if parsed.host().is_none() {
        return Err(SsrfError::NoHost);
    }
    Ok(parsed)
}

/// [`check_url`], then resolves a host name and vets every address it resolves to (unless
/// `allow_private`): the check of a subscription's URL when it is created.
///
/// # Errors
///
/// [`SsrfError`] for a bad URL, a host that does not resolve, or any non-public address.
pub async fn vet(url: &str, allow_private: bool) -> Result<Url, SsrfError> {
    let parsed = check_url(url, allow_private)?;
    if literal_ip(&parsed).is_none() {
        let host = parsed.host_str().ok_or(SsrfError::NoHost)?;
        let port = parsed.port_or_known_default().ok_or(SsrfError::Invalid)?;
        resolve_vetted(host, port, allow_private).await?;
    }
    Ok(parsed)
}

/// The refusal of a [`VettingResolver`] inside a request error, if that is why it failed.
pub fn refusal(error: &reqwest::Error) -> Option<&SsrfError> {
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(refused) = inner.downcast_ref::<SsrfError>() {
            return Some(refused);
        }
        source = inner.source();
    }
    None
}

/// Whether `ip` is a globally routable unicast address a webhook may be sent to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240) // reserved 240.0.0.0/4
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let seg = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation 2001:db8::/32
        || (seg[0] == 0x2001 && seg[1] < 0x0200) // IETF protocol assignments 2001::/23
        || seg[0] == 0x0100 && seg[1..4] == [0, 0, 0] // discard-only 100::/64
        || (seg[0] & 0xe000) != 0x2000) // outside global unicast 2000::/3
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let tail = || {
        Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        )
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_unspecified() && !ip.is_loopback() {
        return Some(tail());
    }
    if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return Some(tail());
    }
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.251",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_public(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_public(ip), "{ip} must pass");
        }
    }

    #[test]
    fn url_rules() {
        assert_eq!(
            parse_url("http://example.com/", false),
            Err(SsrfError::NotHttps)
        );
        assert!(parse_url("http://example.com/", true).is_ok());
        assert_eq!(
            parse_url("ftp://example.com/", true),
            Err(SsrfError::NotHttps)
        );
        assert_eq!(
            parse_url("https://u:p@example.com/", false),
            Err(SsrfError::Credentials)
        );
        assert_eq!(parse_url("not a url", false), Err(SsrfError::Invalid));
        assert_eq!(
            parse_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN)), false),
            Err(SsrfError::Invalid)
        );
    }

    #[tokio::test]
    async fn literals_and_localhost_are_refused_and_allowed_in_dev_mode() {
        for url in [
            "https://127.0.0.1/",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]:8443/",
            "https://localhost/",
            // Alternative IPv4 spellings are normalised by the URL parser before the check.
            "https://0x7f000001/",
            "https://2130706433/",
            "https://017700000001/",
            "https://127.1/",
            "https://[::ffff:7f00:1]/",
        ] {
            assert!(
                matches!(vet(url, false).await, Err(SsrfError::NonPublic(_))),
                "{url}"
            );
        }
        let url = vet("http://127.0.0.1:9/x", true).await.unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/x");
        assert!(vet("https://localhost:9/x", true).await.is_ok());
        // What the name resolves to, in development mode: loopback, with the URL's port.
        let addrs = resolve_vetted("localhost", 9, true).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
        assert!(matches!(
            resolve_vetted("localhost", 9, false).await,
            Err(SsrfError::NonPublic(ip)) if ip.is_loopback()
        ));
    }

    /// A tiny HTTP/1.1 server on loopback answering `204` to every request, counting the
    /// connections it accepted.
    async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = sock.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let reply = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                        if sock.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn client(allow_private: bool) -> reqwest::Client {
        client_builder(allow_private).build().unwrap()
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses_before_connecting() {
        let (addr, accepted) = counting_server().await;
        // Tried: `localhost` (loopback) with the rules on: refused at resolution, nothing sent.
        let url = format!("http://localhost:{}/hook", addr.port());
        let error = client(false).post(&url).send().await.unwrap_err();
        assert!(
            matches!(refusal(&error), Some(SsrfError::NonPublic(ip)) if ip.is_loopback()),
            "{error:?}"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            0,
            "a connection was opened"
        );
        // In development mode the same name connects.
        let res = client(true).post(&url).send().await.unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn one_client_keeps_its_connection_between_requests() {
        let (addr, accepted) = counting_server().await;
        let client = client(true);
        let url = format!("http://localhost:{}/hook", addr.port());
        for _ in 0..3 {
            let res = client.post(&url).body("{}").send().await.unwrap();
            assert_eq!(res.status(), 204);
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "each request opened a connection"
        );
    }

    #[tokio::test]
    async fn the_client_builder_follows_no_redirect() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        // Tried: a receiver answering 302 to a private IP literal, which no resolver would see.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let mut requests = 0;
            while let Ok(Ok((mut sock, _))) =
                tokio::time::timeout(std::time::Duration::from_millis(500), listener.accept()).await
            {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                requests += 1;
                let reply = format!(
                    "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port}/inner\r\n\
                     content-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            }
            requests
        });
        let res = client(true)
            .post(format!("http://localhost:{port}/hook"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302);
        assert_eq!(server.await.unwrap(), 1, "the redirect was followed");
    }

    #[test]
    fn check_url_vets_literals_and_leaves_names_to_the_resolver() {
        for url in [
            "https://127.0.0.1/",
            "https://[::1]:8443/",
            "https://0x7f000001/",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert!(
                matches!(check_url(url, false), Err(SsrfError::NonPublic(_))),
                "{url}"
            );
        }
        assert_eq!(
            check_url("http://93.184.215.14/", false),
            Err(SsrfError::NotHttps)
        );
        assert!(check_url("https://93.184.215.14/hook", false).is_ok());
        // A name is not resolved here (the resolver vets it on connect).
        assert!(check_url("https://localhost/hook", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/hook", true).is_ok());
    }
}
