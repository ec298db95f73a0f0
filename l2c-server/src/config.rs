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
/// The default cap on concurrent report exports per client (`--export-concurrency`).
pub const DEFAULT_EXPORT_CONCURRENCY: u32 = 5;
/// The default interval at which per-client quotas are re-read from the database.
pub const DEFAULT_QUOTA_REFRESH: Duration = Duration::from_secs(30);
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
    /// `--log-format` is neither `text` nor `json`.
    #[error("unknown log format `{0}`: expected text or json")]
    UnknownLogFormat(String),
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
    /// The tokens' `iss`.
    pub issuer: String,
    /// The tokens' `aud`.
    pub audience: String,
    /// The default per-client quota (a client's own, from `client create --rate-limit`, wins).
    pub rate_limit: Quota,
    /// The quota of the token endpoint per peer address.
    pub token_rate_limit: Quota,
    /// How many report exports one client may run at once.
    pub export_concurrency: u32,
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
    /// Create a demo client (and print its credentials) when the database has no client.
    pub demo_client: bool,
    /// Route prefixes marked deprecated (`--deprecate`).
    pub deprecations: Vec<crate::deprecate::DeprecateRule>,
    /// Webhook delivery settings.
    pub webhooks: crate::dispatch::WebhookConfig,
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
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("rate_limit", &self.rate_limit)
            .field("token_rate_limit", &self.token_rate_limit)
            .field("export_concurrency", &self.export_concurrency)
            .field("quota_refresh", &self.quota_refresh)
            .field("tls", &self.tls)
            .field("trust_proxy_tls", &self.trust_proxy_tls)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("log_format", &self.log_format)
            .field("demo_client", &self.demo_client)
            .field("deprecations", &self.deprecations)
            .field("webhooks", &self.webhooks)
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
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            rate_limit: Quota::per_second(100),
            token_rate_limit: Quota::per_minute(60),
            export_concurrency: DEFAULT_EXPORT_CONCURRENCY,
            quota_refresh: DEFAULT_QUOTA_REFRESH,
            tls: None,
            trust_proxy_tls: false,
            // The constant parses: a unit test checks it.
            trusted_proxies: parse_trusted_proxies(DEFAULT_TRUSTED_PROXY).unwrap_or_default(),
            log_format: LogFormat::Text,
            demo_client: true,
            deprecations: Vec::new(),
            webhooks: crate::dispatch::WebhookConfig::default(),
        }
    }
}

impl Config {
    /// Checks the values that cannot be checked one flag at a time.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnsupportedDatabaseUrl`] for a database URL of another scheme,
    /// [`ConfigError::SecretWithEdDsa`] for an HS256 secret given with EdDSA,
    /// [`ConfigError::InvalidRedisUrl`], [`ConfigError::InvalidRedisPrefix`],
    /// [`ConfigError::ZeroConcurrency`].
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if crate::store::Backend::from_url(&self.database_url).is_none() {
            return Err(ConfigError::UnsupportedDatabaseUrl);
        }
        if self.jwt_algorithm == JwtAlgorithm::EdDsa && self.jwt_secret.is_some() {
            return Err(ConfigError::SecretWithEdDsa);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn default_trusted_proxies_are_loopback_and_log_format_is_text() {
        let nets = super::parse_trusted_proxies(super::DEFAULT_TRUSTED_PROXY).unwrap();
        assert_eq!(nets.len(), 2);
        assert_eq!(Config::default().trusted_proxies, nets);
        assert_eq!(
            super::DEFAULT_LOG_FORMAT
                .parse::<super::LogFormat>()
                .unwrap(),
            Config::default().log_format
        );
        assert!("xml".parse::<super::LogFormat>().is_err());
        assert_eq!(
            "JSON".parse::<super::LogFormat>().unwrap(),
            super::LogFormat::Json
        );
    }

    #[test]
    fn debug_hides_url_passwords() {
        let config = Config {
            database_url: "postgres://l2c:s3cret@db:5432/l2c?sslmode=require".to_owned(),
            redis_url: Some("redis://:hunter2@cache:6379/0".to_owned()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://l2c:<redacted>@db:5432/l2c?sslmode=require"));
        assert!(shown.contains("redis://:<redacted>@cache:6379/0"));
        assert_eq!(
            redact_url("sqlite://l2c.db?mode=rwc"),
            "sqlite://l2c.db?mode=rwc"
        );
        assert_eq!(redact_url("redis://cache@x"), "redis://cache@x");
    }

    use super::*;

    #[test]
    fn short_jwt_secret_is_refused_with_its_length() {
        let err = "x".repeat(31).parse::<JwtSecret>().unwrap_err();
        assert_eq!(err, ConfigError::JwtSecretTooShort { len: 31 });
        assert!(err.to_string().contains("at least 32 bytes"));
        // Bytes, not characters: 11 three-byte characters are 33 bytes.
        assert!("好".repeat(11).parse::<JwtSecret>().is_ok());
    }

    #[test]
    fn jwt_secret_debug_is_redacted() {
        let s: JwtSecret = "supersecretsupersecretsupersecret".parse().unwrap();
        assert!(!format!("{s:?}").contains("supersecret"));
    }

    #[test]
    fn redis_settings_are_checked() {
        let mut c = Config {
            redis_url: Some("redis://127.0.0.1:6379/0".into()),
            ..Config::default()
        };
        assert!(c.validate().is_ok());
        c.redis_url = Some("http://nope".into());
        assert_eq!(c.validate(), Err(ConfigError::InvalidRedisUrl));
        c.redis_url = None;
        for bad in ["", "a b", "l2c\n", &"x".repeat(65)] {
            c.redis_prefix = bad.to_owned();
            assert!(
                matches!(c.validate(), Err(ConfigError::InvalidRedisPrefix(_))),
                "{bad:?}"
            );
        }
        c.redis_prefix = "l2c:prod-eu.1".into();
        assert!(c.validate().is_ok());
        c.export_concurrency = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroConcurrency));
    }

    #[test]
    fn database_url_scheme_is_checked() {
        let mut c = Config::default();
        assert!(c.validate().is_ok());
        c.database_url = "mysql://x".into();
        assert_eq!(c.validate(), Err(ConfigError::UnsupportedDatabaseUrl));
    }
}
