//! `l2c-server [serve]`: the flags and variables behind [`Config`].

use super::*;

/// An address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrOrOff(pub Option<SocketAddr>);

impl std::str::FromStr for AddrOrOff {
    type Err = std::net::AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("off") {
            Ok(Self(None))
        } else {
            s.trim().parse().map(|a| Self(Some(a)))
        }
    }
}

/// A duration such as `30s`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationOrOff(pub Option<std::time::Duration>);

impl std::str::FromStr for DurationOrOff {
    type Err = crate::dispatch::ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("off") {
            Ok(Self(None))
        } else {
            crate::dispatch::parse_duration(s).map(|d| Self(Some(d)))
        }
    }
}

/// A secret given on the command line: validated later, so clap never echoes it in an error,
/// and redacted in `Debug`.
#[derive(Clone)]
pub struct SecretArg(String);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl SecretArg {
    /// The secret as given.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(<redacted>)")
    }
}

/// The flags of `l2c-server serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "L2C_LISTEN", default_value = crate::config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// `sqlite://FILE?mode=rwc` or `postgres://USER@HOST/DB`.
    #[arg(long, env = "L2C_DATABASE_URL", hide_env_values = true,
          default_value = crate::config::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Redis for rate limits, the export cap and idempotency, shared by replicas (in memory when
    /// unset).
    #[arg(long, env = "L2C_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key of this deployment (replicas of one deployment share it).
    #[arg(long, env = "L2C_REDIS_PREFIX", default_value = crate::config::DEFAULT_REDIS_PREFIX)]
    pub redis_prefix: String,
    /// Token signature: `hs256` (shared secret) or `eddsa` (Ed25519, public key in the JWKS).
    #[arg(long, env = "L2C_JWT_ALGORITHM", default_value = "hs256")]
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256 signing secret (UTF-8, at least 32 bytes). Unset: generated once, kept in the database.
    #[arg(long, env = "L2C_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretArg>,
    /// Seal personal data and secrets at rest under this key: base64 of 32 random bytes
    /// (`l2c-server keys generate-data-key`). Unset: stored in plain text (with a warning).
    #[arg(long, env = "L2C_DATA_KEY", hide_env_values = true)]
    pub data_key: Option<SecretArg>,
    /// Old data keys still read during a rotation, comma-separated (see `keys rotate-data-key`).
    #[arg(long, env = "L2C_OLD_DATA_KEYS", hide_env_values = true)]
    pub old_data_keys: Option<SecretArg>,
    /// The tokens' issuer (`iss`).
    #[arg(long, env = "L2C_ISSUER", default_value = crate::config::DEFAULT_ISSUER)]
    pub issuer: String,
    /// The tokens' audience (`aud`).
    #[arg(long, env = "L2C_AUDIENCE", default_value = crate::config::DEFAULT_AUDIENCE)]
    pub audience: String,
    /// Default per-client quota, such as `100/s`, `6000/min` or `100/s;burst=200`.
    #[arg(long, env = "L2C_RATE_LIMIT", default_value = crate::config::DEFAULT_RATE_LIMIT)]
    pub rate_limit: Quota,
    /// Quota of the token endpoint per peer address (the forwarded one with --trust-proxy-tls).
    #[arg(long, env = "L2C_TOKEN_RATE_LIMIT", default_value = crate::config::DEFAULT_TOKEN_RATE_LIMIT)]
    pub token_rate_limit: Quota,
    /// Quota of each lead source's push URL (`POST /api/hooks/leads/{token}`).
    #[arg(long, env = "L2C_LEAD_SOURCE_RATE_LIMIT", default_value = crate::config::DEFAULT_LEAD_SOURCE_RATE_LIMIT)]
    pub lead_source_rate_limit: Quota,
    /// Public base URL of this server, used in the lead sources' push URLs (e.g.
    /// `https://l2c.example.com`); the request's scheme and host when unset.
    #[arg(long, env = "L2C_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How many report exports one client may run at once.
    #[arg(long, env = "L2C_EXPORT_CONCURRENCY", default_value_t = crate::config::DEFAULT_EXPORT_CONCURRENCY)]
    pub export_concurrency: u32,
    /// Cut a report export whose reader takes none of it for this long (e.g. `30s`), freeing
    /// its slot.
    #[arg(long, env = "L2C_EXPORT_STALL_TIMEOUT", default_value = "30s", value_parser = crate::dispatch::parse_duration)]
    pub export_stall_timeout: std::time::Duration,
    /// Answer 503 `database_unavailable` (with `Retry-After`) to a request that waited this long
    /// for a database connection (e.g. `5s`): all in use, or the database unreachable.
    #[arg(long, env = "L2C_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = crate::dispatch::parse_duration)]
    pub db_acquire_timeout: std::time::Duration,
    /// Database connections that report exports may hold at once, all clients together (at
    /// most half the pool: 4 on SQLite, 8 on PostgreSQL); the rest stays for the API.
    #[arg(long, env = "L2C_EXPORT_DB_CONNECTIONS", default_value_t = crate::config::DEFAULT_EXPORT_DB_CONNECTIONS)]
    pub export_db_connections: u32,
    /// Seconds between two reloads of the per-client quotas and the token-signing keys from the
    /// database (1 to 300: a rotated signing key activates at least 630 s after it is added, so
    /// every replica verifies it, and every JWKS cache lists it, before any replica signs
    /// with it).
    #[arg(long, env = "L2C_QUOTA_REFRESH_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub quota_refresh_secs: u64,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "L2C_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (with --tls-cert).
    #[arg(long, env = "L2C_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A TLS terminator sits in front: accept plain-HTTP token requests from other hosts.
    #[arg(long, env = "L2C_TRUST_PROXY_TLS")]
    pub trust_proxy_tls: bool,
    /// Networks of the proxies in front, comma-separated CIDRs: with --trust-proxy-tls,
    /// `X-Forwarded-For` / `Forwarded` are believed only from a direct peer in one of them, and
    /// the right-most forwarded address outside them is the one counted by the token limit.
    #[arg(long, env = "L2C_TRUSTED_PROXY", default_value = crate::config::DEFAULT_TRUSTED_PROXY)]
    pub trusted_proxy: String,
    /// `text` (human-readable, the default) or `json` (one object per line, for log shippers).
    #[arg(long, env = "L2C_LOG_FORMAT", default_value = crate::config::DEFAULT_LOG_FORMAT)]
    pub log_format: LogFormat,
    /// Mark a route prefix deprecated: `PREFIX=DEPRECATED,SUNSET[,SUCCESSOR]`, dates
    /// `YYYY-MM-DD` or RFC 3339, the sunset at least six months later (repeatable; the variable
    /// takes several separated by `;`).
    #[arg(
        long = "deprecate",
        env = "L2C_DEPRECATE",
        value_delimiter = ';',
        value_name = "PREFIX=DEPRECATED,SUNSET[,SUCCESSOR]"
    )]
    pub deprecate: Vec<crate::deprecate::DeprecateRule>,
    /// Do not create the demo client on an empty database (it is only ever created when
    /// listening on a loopback address).
    #[arg(long, env = "L2C_NO_DEMO_CLIENT")]
    pub no_demo_client: bool,
    /// Accept plain-http and private/loopback webhook destinations (local development only).
    #[arg(long, env = "L2C_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// Delays between webhook delivery attempts, e.g. `1s,2s,4s`.
    #[arg(long, env = "L2C_WEBHOOK_RETRY_SCHEDULE", default_value = crate::dispatch::DEFAULT_RETRY_SCHEDULE)]
    pub webhook_retry_schedule: crate::dispatch::RetrySchedule,
    /// Timeout of one webhook delivery attempt.
    #[arg(long, env = "L2C_WEBHOOK_TIMEOUT", default_value = "15s", value_parser = crate::dispatch::parse_duration)]
    pub webhook_timeout: std::time::Duration,
    /// How long the previous webhook secret keeps signing after a rotation.
    #[arg(long, env = "L2C_WEBHOOK_ROTATION_WINDOW", default_value = "24h", value_parser = crate::dispatch::parse_duration)]
    pub webhook_rotation_window: std::time::Duration,
    /// How long finished webhook deliveries and their events are kept (`off`: forever); pending
    /// deliveries are never removed.
    #[arg(long, env = "L2C_WEBHOOK_RETENTION", default_value = crate::dispatch::DEFAULT_RETENTION)]
    pub webhook_retention: crate::dispatch::Retention,
    /// How long the request log (the console's 请求日志) keeps each request (`off`: forever).
    #[arg(long, env = "L2C_REQUEST_LOG_RETENTION", default_value = crate::config::request_logs::DEFAULT_REQUEST_LOG_RETENTION)]
    pub request_log_retention: crate::dispatch::Retention,
    /// Address of the listener serving `GET /metrics` (kept off the public listener), or `off`.
    #[arg(long, env = "L2C_METRICS_LISTEN", default_value = crate::config::DEFAULT_METRICS_LISTEN)]
    pub metrics_listen: AddrOrOff,
    /// Longest time to receive a whole request head, counted from accept (or from the first byte
    /// of the next request on a kept-alive connection); trickling bytes do not extend it.
    #[arg(long, env = "L2C_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = crate::dispatch::parse_duration)]
    pub header_read_timeout: std::time::Duration,
    /// How long a connection may stay open with no request in flight, or with a response the
    /// client has stopped reading.
    #[arg(long, env = "L2C_IDLE_TIMEOUT", default_value = "60s", value_parser = crate::dispatch::parse_duration)]
    pub idle_timeout: std::time::Duration,
    /// Longest time to receive a whole request body after its head; then 408.
    #[arg(long, env = "L2C_BODY_TIMEOUT", default_value = "30s", value_parser = crate::dispatch::parse_duration)]
    pub body_timeout: std::time::Duration,
    /// Most open connections (TLS handshakes included); further ones are closed at once. Default:
    /// the RLIMIT_NOFILE soft limit minus a reserve for the database, Redis and webhooks.
    #[arg(long, env = "L2C_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Longest time a client may take to complete the TLS handshake.
    #[arg(long, env = "L2C_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = crate::dispatch::parse_duration)]
    pub tls_handshake_timeout: std::time::Duration,
    /// Most concurrent streams of one HTTP/2 connection.
    #[arg(long, env = "L2C_HTTP2_MAX_CONCURRENT_STREAMS",
          default_value_t = crate::config::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_concurrent_streams: u32,
    /// Largest HTTP/2 header list, in bytes.
    #[arg(long, env = "L2C_HTTP2_MAX_HEADER_LIST_SIZE",
          default_value_t = crate::config::DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_header_list_size: u32,
    /// Interval of HTTP/2 keep-alive pings, or `off`.
    #[arg(long, env = "L2C_HTTP2_KEEP_ALIVE_INTERVAL", default_value = "30s")]
    pub http2_keep_alive_interval: DurationOrOff,
    /// How long an HTTP/2 keep-alive ping may go unanswered before the connection is closed.
    #[arg(long, env = "L2C_HTTP2_KEEP_ALIVE_TIMEOUT", default_value = "20s", value_parser = crate::dispatch::parse_duration)]
    pub http2_keep_alive_timeout: std::time::Duration,
    /// On shutdown, how long in-flight requests get to finish before the remaining connections
    /// are closed.
    #[arg(long, env = "L2C_DRAIN_TIMEOUT", default_value = "30s", value_parser = crate::dispatch::parse_duration)]
    pub drain_timeout: std::time::Duration,
}

impl ServeArgs {
    /// The validated configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an unsupported database URL or half a TLS configuration.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => return Err(ConfigError::TlsIncomplete),
        };
        let config = Config {
            listen: self.listen,
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
            redis_prefix: self.redis_prefix.clone(),
            jwt_algorithm: self.jwt_algorithm,
            jwt_secret: self
                .jwt_secret
                .as_ref()
                .map(|s| s.0.parse::<JwtSecret>())
                .transpose()?,
            data_keys: crate::seal::DataKeys::from_settings(
                self.data_key.as_ref().map(SecretArg::expose),
                self.old_data_keys.as_ref().map(SecretArg::expose),
            )?,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            rate_limit: self.rate_limit,
            token_rate_limit: self.token_rate_limit,
            lead_source_rate_limit: self.lead_source_rate_limit,
            public_url: self
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            export_concurrency: self.export_concurrency,
            export_stall_timeout: self.export_stall_timeout,
            db_acquire_timeout: self.db_acquire_timeout,
            export_db_connections: self.export_db_connections,
            quota_refresh: std::time::Duration::from_secs(self.quota_refresh_secs),
            tls,
            trust_proxy_tls: self.trust_proxy_tls,
            trusted_proxies: parse_trusted_proxies(&self.trusted_proxy)?,
            log_format: self.log_format,
            demo_client: !self.no_demo_client,
            deprecations: self.deprecate.clone(),
            webhooks: crate::dispatch::WebhookConfig {
                allow_private: self.allow_private_webhooks,
                retry_schedule: self.webhook_retry_schedule.clone(),
                attempt_timeout: self.webhook_timeout,
                rotation_window: self.webhook_rotation_window,
                retention: self.webhook_retention,
                ..crate::dispatch::WebhookConfig::default()
            },
            request_logs: crate::config::RequestLogConfig {
                retention: self.request_log_retention,
                ..crate::config::RequestLogConfig::default()
            },
            connections: crate::config::ConnectionConfig {
                header_read_timeout: self.header_read_timeout,
                idle_timeout: self.idle_timeout,
                body_timeout: self.body_timeout,
                max_connections: self
                    .max_connections
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                tls_handshake_timeout: self.tls_handshake_timeout,
                http2_max_concurrent_streams: self.http2_max_concurrent_streams,
                http2_max_header_list_size: self.http2_max_header_list_size,
                http2_keep_alive_interval: self.http2_keep_alive_interval.0,
                http2_keep_alive_timeout: self.http2_keep_alive_timeout,
                drain_timeout: self.drain_timeout,
            },
            metrics_listen: self.metrics_listen.0,
        };
        config.validate()?;
        Ok(config)
    }
}
