//! Server configuration: the validated values behind the command-line flags and `L2C_*` variables.
//!
//! [`Config::default`] is what `cargo run -p l2c-server` uses: listen on `127.0.0.1:8080`, an
//! SQLite file `l2c.db` in the working directory, in-memory limits, a signing key generated once
//! and kept in the database, and a demo client on first start.
//!
//! ```
//! use l2c_core::rate_limit::Quota;
//! use l2c_server::config::{Config, JwtSecret};
//!
//! let mut config = Config::default();
//! assert_eq!(config.rate_limit, Quota::per_second(100));
//! config.rate_limit = "6000/min".parse::<Quota>().unwrap();
//! assert_eq!(config.rate_limit.to_string(), "6000/min");
//!
//! // HS256 keys are at least 256 bits (RFC 7518 §3.2): a short secret is refused.
//! assert!("too-short".parse::<JwtSecret>().is_err());
//! assert!("0123456789abcdef0123456789abcdef".parse::<JwtSecret>().is_ok());
//! ```

mod connections;
pub mod request_logs;
pub mod webhooks;

pub use connections::ConnectionConfig;
pub use request_logs::RequestLogConfig;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use l2c_core::rate_limit::Quota;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default database: an SQLite file in the working directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://l2c.db?mode=rwc";
/// The default token issuer (`iss`).
pub const DEFAULT_ISSUER: &str = "l2c";
/// The default token audience (`aud`).
pub const DEFAULT_AUDIENCE: &str = "l2c-api";
/// The default prefix of every Redis key (`--redis-prefix`).
pub const DEFAULT_REDIS_PREFIX: &str = "l2c";
/// The default per-client quota (`--rate-limit`).
pub const DEFAULT_RATE_LIMIT: &str = "100/s";
/// The default quota of the token endpoint per peer address (`--token-rate-limit`).
pub const DEFAULT_TOKEN_RATE_LIMIT: &str = "60/min";
/// The default quota of each lead source's push URL (`--lead-source-rate-limit`).
pub const DEFAULT_LEAD_SOURCE_RATE_LIMIT: &str = "50/s;burst=200";
/// The default public base URL of push URLs (`--public-url`): none, the request's host is used.
pub const DEFAULT_PUBLIC_URL: Option<&str> = None;
/// The default cap on concurrent report exports per client (`--export-concurrency`).
pub const DEFAULT_EXPORT_CONCURRENCY: u32 = 5;
/// The default time a report export may go without its reader taking any of it before the
/// server cuts the connection (`--export-stall-timeout`).
pub const DEFAULT_EXPORT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The default time a request waits for a database connection before it is answered 503
/// `database_unavailable` (`--db-acquire-timeout`). While the database is down, this is how long
/// each request waits before that answer.
pub const DEFAULT_DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The default number of database connections report exports may hold at once, all clients
/// together (`--export-db-connections`).
pub const DEFAULT_EXPORT_DB_CONNECTIONS: u32 = 2;
/// The default interval at which per-client quotas are re-read from the database.
pub const DEFAULT_QUOTA_REFRESH: Duration = Duration::from_secs(30);
/// The default address of the metrics listener (`--metrics-listen`; `off` disables it).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// The default longest a client may take to send a whole request head (`--header-read-timeout`).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default longest a connection may stay open with no request in flight (`--idle-timeout`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The default longest a request body may take to arrive, counted from the end of its head
/// (`--body-timeout`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The default longest a client may take to complete the TLS handshake
/// (`--tls-handshake-timeout`).
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time in-flight requests get to finish on shutdown (`--drain-timeout`).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default most concurrent streams of one HTTP/2 connection
/// (`--http2-max-concurrent-streams`).
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// The default largest HTTP/2 header list in bytes (`--http2-max-header-list-size`).
pub const DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
/// The default interval of HTTP/2 keep-alive pings (`--http2-keep-alive-interval`).
pub const DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// The default time an HTTP/2 keep-alive ping may go unanswered before the connection is
/// closed (`--http2-keep-alive-timeout`).
pub const DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// The default log format (`--log-format`): human-readable lines.
pub const DEFAULT_LOG_FORMAT: &str = "text";
/// The default networks whose `X-Forwarded-For` / `Forwarded` headers are believed
/// (`--trusted-proxy`): loopback only.
pub const DEFAULT_TRUSTED_PROXY: &str = "127.0.0.0/8,::1/128";
/// The minimum length of `L2C_JWT_SECRET` in bytes (256 bits, RFC 7518 §3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A configuration value the server refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `L2C_JWT_SECRET` is shorter than 32 bytes.
    #[error(
        "the JWT secret must be at least {MIN_JWT_SECRET_BYTES} bytes (256 bits) of random data, got {len} bytes"
    )]
    JwtSecretTooShort {
        /// The length that was given.
        len: usize,
    },
    /// `--redis-url` is not a Redis URL.
    #[error("invalid Redis URL: expected redis://HOST[:PORT][/DB] or rediss://…")]
    InvalidRedisUrl,
    /// `--redis-prefix` is empty or holds characters other than `A-Za-z0-9-_.:`.
    #[error("invalid Redis prefix `{0}`: use 1-64 characters of A-Z, a-z, 0-9, '-', '_', '.', ':'")]
    InvalidRedisPrefix(String),
    /// `--export-concurrency` is 0.
    #[error("the export concurrency cap must be at least 1")]
    ZeroConcurrency,
    /// `--export-stall-timeout` is zero.
    #[error("the export stall timeout must be longer than zero")]
    ZeroStallTimeout,
    /// `--db-acquire-timeout` is zero.
    #[error("the database acquire timeout must be longer than zero")]
    ZeroAcquireTimeout,
    /// `--export-db-connections` is 0 or more than half the database pool, which would leave
    /// the API too few connections.
    #[error(
        "--export-db-connections must be between 1 and {max} (half the database pool of {pool}), got {got}"
    )]
    ExportDbConnections {
        /// The value given.
        got: u32,
        /// The largest value allowed for this database.
        max: u32,
        /// The size of the database pool.
        pool: u32,
    },
    /// Only one of `--tls-cert` / `--tls-key` was given.
    #[error("--tls-cert and --tls-key must be given together")]
    TlsIncomplete,
    /// The certificate or key file could not be used.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// `--jwt-algorithm` is neither `hs256` nor `eddsa`.
    #[error("unknown JWT algorithm `{0}`: expected hs256 or eddsa")]
    UnknownJwtAlgorithm(String),
    /// `L2C_JWT_SECRET` was given with `--jwt-algorithm eddsa`, which does not use it.
    #[error("L2C_JWT_SECRET is an HS256 secret; it cannot be used with --jwt-algorithm eddsa")]
    SecretWithEdDsa,
    /// The database URL is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database URL: expected sqlite://… or postgres://…")]
    UnsupportedDatabaseUrl,
    /// A connection limit (named by its flag) is zero, which would refuse every connection.
    #[error("--{0} must be greater than zero")]
    ZeroConnectionLimit(&'static str),
    /// `--public-url` is not an absolute `http(s)://host[:port][/path]` URL.
    #[error(
        "invalid public URL `{0}`: expected http(s)://HOST[:PORT][/PATH] without query or fragment"
    )]
    InvalidPublicUrl(String),
    /// `--log-format` is neither `text` nor `json`.
    #[error("unknown log format `{0}`: expected text or json")]
    UnknownLogFormat(String),
    /// `L2C_DATA_KEY` / `L2C_OLD_DATA_KEYS` are unusable.
    #[error(transparent)]
    DataKey(#[from] crate::seal::SealError),
    /// An entry of `--trusted-proxy` is not a CIDR network or an IP address.
    #[error("invalid trusted proxy `{0}`: expected a CIDR network (10.0.0.0/8) or an IP address")]
    InvalidTrustedProxy(String),
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines (the default); colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(ConfigError::UnknownLogFormat(s.to_owned())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Parses a comma-separated list of CIDR networks or bare addresses (`10.0.0.0/8,::1`).
///
/// ```
/// use l2c_server::config::parse_trusted_proxies;
///
/// let nets = parse_trusted_proxies("10.0.0.0/8, 192.0.2.7").unwrap();
/// assert!(nets[0].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
/// assert!(nets[1].contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap()));
/// assert!(parse_trusted_proxies("").unwrap().is_empty());
/// assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
/// ```
///
/// # Errors
///
/// [`ConfigError::InvalidTrustedProxy`] naming the first entry that is neither.
pub fn parse_trusted_proxies(s: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    s.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| ConfigError::InvalidTrustedProxy(entry.to_owned()))
        })
        .collect()
}

/// The HS256 secret from `L2C_JWT_SECRET`: its UTF-8 bytes, at least 32 of them.
///
/// `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for JwtSecret {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::JwtSecretTooShort { len: s.len() });
        }
        Ok(Self(s.as_bytes().to_vec()))
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtSecret(<{} bytes redacted>)", self.0.len())
    }
}

/// How access tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// HS256 with `L2C_JWT_SECRET` or a generated shared secret (the default). Nothing is
    /// published in the JWKS: verifying needs the secret.
    #[default]
    Hs256,
    /// EdDSA (Ed25519) with a key pair generated once and kept in the database; the public key is
    /// published at `/.well-known/jwks.json`, so other services verify tokens without a secret.
    EdDsa,
}

impl FromStr for JwtAlgorithm {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "hs256" => Ok(JwtAlgorithm::Hs256),
            "eddsa" | "ed25519" => Ok(JwtAlgorithm::EdDsa),
            _ => Err(ConfigError::UnknownJwtAlgorithm(s.to_owned())),
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::EdDsa => "EdDSA",
        })
    }
}

/// Certificate chain and private key files (PEM) for serving HTTPS directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Everything `l2c-server serve` needs.
///
/// `Debug` hides the password of `database_url` and `redis_url` (and the JWT secret), so a
/// logged configuration never leaks credentials.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Redis for the rate limits, the export concurrency cap and idempotency records, shared by
    /// replicas; in-memory state when `None`.
    pub redis_url: Option<String>,
    /// The prefix of every Redis key of this deployment (each layer adds its own below it).
    pub redis_prefix: String,
    /// How tokens are signed.
    pub jwt_algorithm: JwtAlgorithm,
    /// The HS256 signing secret; generated once and kept in the database when `None`.
    pub jwt_secret: Option<JwtSecret>,
    /// The data keys sealing personal data and secrets at rest (`L2C_DATA_KEY`,
    /// `L2C_OLD_DATA_KEYS`); plain text when none is set.
    pub data_keys: crate::seal::DataKeys,
    /// The tokens' `iss`.
    pub issuer: String,
    /// The tokens' `aud`.
    pub audience: String,
    /// The default per-client quota (a client's own, from `client create --rate-limit`, wins).
    pub rate_limit: Quota,
    /// The quota of the token endpoint per peer address.
    pub token_rate_limit: Quota,
    /// The quota of each lead source's push URL (`POST /api/hooks/leads/{token}`).
    pub lead_source_rate_limit: Quota,
    /// The base of the push URLs shown for lead sources (e.g. `https://l2c.example.com`); the
    /// request's own scheme and host when `None`.
    pub public_url: Option<String>,
    /// How many report exports one client may run at once.
    pub export_concurrency: u32,
    /// How long a response may wait with its reader taking none of it before the server cuts
    /// the connection (releasing the export's slot). Only report exports are large enough to
    /// fill the socket buffers, so in practice only a stalled export is ever cut.
    pub export_stall_timeout: Duration,
    /// How long a request waits for a database connection (all in use, or the database
    /// unreachable) before it is answered 503 `database_unavailable` with `Retry-After`.
    pub db_acquire_timeout: Duration,
    /// How many database connections report exports may hold at once, all clients together
    /// (each export takes one per batch of rows and gives it back before sending them); the
    /// rest of the pool stays for the API.
    pub export_db_connections: u32,
    /// How often per-client quotas and the disabled clients are re-read from the database (so a
    /// `client create` or `client disable` on any host takes effect everywhere).
    pub quota_refresh: Duration,
    /// Serve HTTPS with these files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// A TLS terminator sits in front: plain-HTTP token requests from non-loopback peers are
    /// accepted (RFC 6749 §3.2 requires TLS for the token endpoint).
    pub trust_proxy_tls: bool,
    /// The networks of the proxies in front (`--trusted-proxy`): with
    /// [`trust_proxy_tls`](Self::trust_proxy_tls), `X-Forwarded-For` / `Forwarded` are believed
    /// only from a direct peer in one of them, and the address a request is counted against is
    /// the right-most forwarded address outside them. Loopback by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How log lines are written (`--log-format`).
    pub log_format: LogFormat,
    /// Create a demo client (and print its credentials) when the database has no client and
    /// `listen` is a loopback address.
    pub demo_client: bool,
    /// Route prefixes marked deprecated (`--deprecate`).
    pub deprecations: Vec<crate::deprecate::DeprecateRule>,
    /// Webhook delivery settings.
    pub webhooks: webhooks::WebhookConfig,
    /// The request log's retention and batching.
    pub request_logs: RequestLogConfig,
    /// Timeouts and caps of the served connections.
    pub connections: ConnectionConfig,
    /// Where `GET /metrics` is served, apart from the public listener; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("jwt_algorithm", &self.jwt_algorithm)
            .field("jwt_secret", &self.jwt_secret)
            .field("data_keys", &self.data_keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("rate_limit", &self.rate_limit)
            .field("token_rate_limit", &self.token_rate_limit)
            .field("lead_source_rate_limit", &self.lead_source_rate_limit)
            .field("public_url", &self.public_url)
            .field("export_concurrency", &self.export_concurrency)
            .field("export_stall_timeout", &self.export_stall_timeout)
            .field("db_acquire_timeout", &self.db_acquire_timeout)
            .field("export_db_connections", &self.export_db_connections)
            .field("quota_refresh", &self.quota_refresh)
            .field("tls", &self.tls)
            .field("trust_proxy_tls", &self.trust_proxy_tls)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("log_format", &self.log_format)
            .field("demo_client", &self.demo_client)
            .field("deprecations", &self.deprecations)
            .field("webhooks", &self.webhooks)
            .field("request_logs", &self.request_logs)
            .field("connections", &self.connections)
            .field("metrics_listen", &self.metrics_listen)
            .finish()
    }
}

/// `scheme://user:password@host/…` → `scheme://user:<redacted>@host/…`; other URLs unchanged.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') {
                ":<redacted>"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            redis_url: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            jwt_algorithm: JwtAlgorithm::Hs256,
            jwt_secret: None,
            data_keys: crate::seal::DataKeys::plain(),
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            rate_limit: Quota::per_second(100),
            token_rate_limit: Quota::per_minute(60),
            lead_source_rate_limit: Quota::per_second(50).burst(200),
            public_url: DEFAULT_PUBLIC_URL.map(str::to_owned),
            export_concurrency: DEFAULT_EXPORT_CONCURRENCY,
            export_stall_timeout: DEFAULT_EXPORT_STALL_TIMEOUT,
            db_acquire_timeout: DEFAULT_DB_ACQUIRE_TIMEOUT,
            export_db_connections: DEFAULT_EXPORT_DB_CONNECTIONS,
            quota_refresh: DEFAULT_QUOTA_REFRESH,
            tls: None,
            trust_proxy_tls: false,
            // The constant parses: a unit test checks it.
            trusted_proxies: parse_trusted_proxies(DEFAULT_TRUSTED_PROXY).unwrap_or_default(),
            log_format: LogFormat::Text,
            demo_client: true,
            deprecations: Vec::new(),
            webhooks: webhooks::WebhookConfig::default(),
            request_logs: RequestLogConfig::default(),
            connections: ConnectionConfig::default(),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
        }
    }
}

impl Config {
    /// The proxies whose `X-Forwarded-For` / `Forwarded` headers are believed: the
    /// `--trusted-proxy` networks with `--trust-proxy-tls`, none without it.
    pub fn forwarding_proxies(&self) -> &[ipnet::IpNet] {
        if self.trust_proxy_tls {
            &self.trusted_proxies
        } else {
            &[]
        }
    }

    /// Checks the values that cannot be checked one flag at a time.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnsupportedDatabaseUrl`] for a database URL of another scheme,
    /// [`ConfigError::SecretWithEdDsa`] for an HS256 secret given with EdDSA,
    /// [`ConfigError::InvalidRedisUrl`], [`ConfigError::InvalidRedisPrefix`],
    /// [`ConfigError::ZeroConcurrency`], [`ConfigError::ZeroConnectionLimit`],
    /// [`ConfigError::ZeroStallTimeout`], [`ConfigError::ZeroAcquireTimeout`],
    /// [`ConfigError::ExportDbConnections`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.connections.validate()?;
        if let Some(url) = &self.redis_url
            && redis::Client::open(url.as_str()).is_err()
        {
            return Err(ConfigError::InvalidRedisUrl);
        }
        let prefix_ok = !self.redis_prefix.is_empty()
            && self.redis_prefix.len() <= 64
            && self
                .redis_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !prefix_ok {
            return Err(ConfigError::InvalidRedisPrefix(self.redis_prefix.clone()));
        }
        if self.export_concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        if self.export_stall_timeout.is_zero() {
            return Err(ConfigError::ZeroStallTimeout);
        }
        if self.db_acquire_timeout.is_zero() {
            return Err(ConfigError::ZeroAcquireTimeout);
        }
        let Some(backend) = crate::store::Backend::from_url(&self.database_url) else {
            return Err(ConfigError::UnsupportedDatabaseUrl);
        };
        let pool = backend.pool_size();
        let max = pool / 2;
        if !(1..=max).contains(&self.export_db_connections) {
            return Err(ConfigError::ExportDbConnections {
                got: self.export_db_connections,
                max,
                pool,
            });
        }
        if self.jwt_algorithm == JwtAlgorithm::EdDsa && self.jwt_secret.is_some() {
            return Err(ConfigError::SecretWithEdDsa);
        }
        if let Some(url) = &self.public_url
            && !valid_public_url(url)
        {
            return Err(ConfigError::InvalidPublicUrl(url.clone()));
        }
        Ok(())
    }
}

/// Whether `url` is `http(s)://host[:port][/path]`: no user info, query or fragment, and only
/// characters allowed in a URL.
fn valid_public_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && !authority.contains('@')
        && !rest.contains(['?', '#'])
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/:[]%".contains(&b))
        && authority.rsplit_once(':').is_none_or(|(host, port)| {
            !host.is_empty() && (host.ends_with(']') || port.parse::<u16>().is_ok())
        })
}

#[cfg(test)]
mod tests;
