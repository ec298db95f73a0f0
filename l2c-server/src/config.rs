//! Server configuration: the validated values behind the command-line flags and `L2C_*` variables.
//!
//! [`Config::default`] is what `cargo run -p l2c-server` uses: listen on `127.0.0.1:8080`, an
//! SQLite file `l2c.db` in the working directory, in-memory limits, a signing key generated once
//! and kept in the database, and a demo client on first start.
//!
//! ```
//! use l2c_server::config::{Config, JwtSecret, RateSpec};
//!
//! let mut config = Config::default();
//! config.rate_limit = "6000/min".parse::<RateSpec>().unwrap();
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

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default database: an SQLite file in the working directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://l2c.db?mode=rwc";
/// The default token issuer (`iss`).
pub const DEFAULT_ISSUER: &str = "l2c";
/// The default token audience (`aud`).
pub const DEFAULT_AUDIENCE: &str = "l2c-api";
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
    /// A rate such as `100/s` could not be parsed.
    #[error("invalid rate `{0}`: expected COUNT/UNIT such as 100/s, 6000/min or 10000/h")]
    InvalidRate(String),
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
}

/// A request rate: `count` requests per `period`, written `100/s`, `6000/min`, `10000/h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateSpec {
    count: u32,
    period: Duration,
    unit: RateUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RateUnit {
    Second,
    Minute,
    Hour,
}

impl RateSpec {
    /// `count` requests per second.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRate`] when `count` is 0.
    pub fn per_second(count: u32) -> Result<Self, ConfigError> {
        if count == 0 {
            return Err(ConfigError::InvalidRate(format!("{count}/s")));
        }
        Ok(Self {
            count,
            period: Duration::from_secs(1),
            unit: RateUnit::Second,
        })
    }

    /// The number of requests allowed per [`period`](Self::period) (also the burst).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The window the count applies to.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The sustained rate in requests per second.
    pub fn per_second_f64(&self) -> f64 {
        f64::from(self.count) / self.period.as_secs_f64()
    }
}

impl Default for RateSpec {
    fn default() -> Self {
        Self {
            count: 100,
            period: Duration::from_secs(1),
            unit: RateUnit::Second,
        }
    }
}

impl FromStr for RateSpec {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ConfigError::InvalidRate(s.to_owned());
        let (count, unit) = s.trim().split_once('/').ok_or_else(invalid)?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        if count == 0 {
            return Err(invalid());
        }
        let (unit, secs) = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => (RateUnit::Second, 1),
            "m" | "min" | "minute" => (RateUnit::Minute, 60),
            "h" | "hour" => (RateUnit::Hour, 3600),
            _ => return Err(invalid()),
        };
        Ok(Self {
            count,
            period: Duration::from_secs(secs),
            unit,
        })
    }
}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            RateUnit::Second => "s",
            RateUnit::Minute => "min",
            RateUnit::Hour => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
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
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Redis for shared rate-limit and idempotency state; in-memory state when `None`.
    pub redis_url: Option<String>,
    /// How tokens are signed.
    pub jwt_algorithm: JwtAlgorithm,
    /// The HS256 signing secret; generated once and kept in the database when `None`.
    pub jwt_secret: Option<JwtSecret>,
    /// The tokens' `iss`.
    pub issuer: String,
    /// The tokens' `aud`.
    pub audience: String,
    /// The default per-client quota.
    pub rate_limit: RateSpec,
    /// Serve HTTPS with these files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// A TLS terminator sits in front: plain-HTTP token requests from non-loopback peers are
    /// accepted (RFC 6749 §3.2 requires TLS for the token endpoint).
    pub trust_proxy_tls: bool,
    /// Create a demo client (and print its credentials) when the database has no client.
    pub demo_client: bool,
    /// Route prefixes marked deprecated (`--deprecate`).
    pub deprecations: Vec<crate::deprecate::DeprecateRule>,
    /// Webhook delivery settings.
    pub webhooks: crate::dispatch::WebhookConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            redis_url: None,
            jwt_algorithm: JwtAlgorithm::Hs256,
            jwt_secret: None,
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            rate_limit: RateSpec::default(),
            tls: None,
            trust_proxy_tls: false,
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
    /// [`ConfigError::SecretWithEdDsa`] for an HS256 secret given with EdDSA.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
    fn rates_parse_and_print() {
        let r: RateSpec = "100/s".parse().unwrap();
        assert_eq!((r.count(), r.period()), (100, Duration::from_secs(1)));
        let r: RateSpec = "6000/min".parse().unwrap();
        assert_eq!(r.period(), Duration::from_secs(60));
        assert_eq!(r.to_string(), "6000/min");
        assert!((r.per_second_f64() - 100.0).abs() < f64::EPSILON);
        for bad in ["", "100", "0/s", "-1/s", "10/fortnight", "x/s"] {
            assert!(bad.parse::<RateSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn database_url_scheme_is_checked() {
        let mut c = Config::default();
        assert!(c.validate().is_ok());
        c.database_url = "mysql://x".into();
        assert_eq!(c.validate(), Err(ConfigError::UnsupportedDatabaseUrl));
    }
}
