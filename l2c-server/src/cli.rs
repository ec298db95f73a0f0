//! The command line: `l2c-server [serve]`, `l2c-server client create|list|disable|enable|grant`,
//! `l2c-server keys generate-data-key|rotate-data-key`.
//!
//! Every flag can also be set through its `L2C_*` environment variable.
//!
//! | flag | variable | default |
//! |---|---|---|
//! | `--listen` | `L2C_LISTEN` | `127.0.0.1:8080` |
//! | `--database-url` | `L2C_DATABASE_URL` | `sqlite://l2c.db?mode=rwc` |
//! | `--redis-url` | `L2C_REDIS_URL` | none (in-memory limits and idempotency records) |
//! | `--redis-prefix` | `L2C_REDIS_PREFIX` | `l2c` |
//! | `--jwt-algorithm` | `L2C_JWT_ALGORITHM` | `hs256` (or `eddsa`: Ed25519, public key in the JWKS) |
//! | `--jwt-secret` | `L2C_JWT_SECRET` | none (key generated once, kept in the database) |
//! | `--data-key` | `L2C_DATA_KEY` | none (personal data and secrets stored in plain text, with a warning; see [`crate::seal`]) |
//! | `--old-data-keys` | `L2C_OLD_DATA_KEYS` (comma-separated) | none (keys still read during a rotation) |
//! | `--issuer` | `L2C_ISSUER` | `l2c` |
//! | `--audience` | `L2C_AUDIENCE` | `l2c-api` |
//! | `--rate-limit` | `L2C_RATE_LIMIT` | `100/s` (per client; `client create --rate-limit` overrides) |
//! | `--token-rate-limit` | `L2C_TOKEN_RATE_LIMIT` | `60/min` (token endpoint, per peer address) |
//! | `--lead-source-rate-limit` | `L2C_LEAD_SOURCE_RATE_LIMIT` | `50/s;burst=200` (per lead source push URL) |
//! | `--public-url` | `L2C_PUBLIC_URL` | none (push URLs use the request's scheme and host) |
//! | `--export-concurrency` | `L2C_EXPORT_CONCURRENCY` | `5` (report exports in flight per client) |
//! | `--export-stall-timeout` | `L2C_EXPORT_STALL_TIMEOUT` | `30s` (an export whose reader takes nothing this long is cut) |
//! | `--db-acquire-timeout` | `L2C_DB_ACQUIRE_TIMEOUT` | `5s` (a request waiting this long for a database connection is answered 503 `database_unavailable`) |
//! | `--export-db-connections` | `L2C_EXPORT_DB_CONNECTIONS` | `2` (database connections all exports together may hold; at most half the pool) |
//! | `--quota-refresh-secs` | `L2C_QUOTA_REFRESH_SECS` | `30` |
//! | `--tls-cert`, `--tls-key` | `L2C_TLS_CERT`, `L2C_TLS_KEY` | none (plain HTTP) |
//! | `--trust-proxy-tls` | `L2C_TRUST_PROXY_TLS` | off |
//! | `--trusted-proxy` | `L2C_TRUSTED_PROXY` (comma-separated CIDRs) | `127.0.0.0/8,::1/128` (`X-Forwarded-For` / `Forwarded` believed only from these peers, with `--trust-proxy-tls`) |
//! | `--log-format` | `L2C_LOG_FORMAT` | `text` (or `json`: one JSON object per line) |
//! | `--no-demo-client` | `L2C_NO_DEMO_CLIENT` | off |
//! | `--deprecate PREFIX=DEPRECATED,SUNSET[,SUCCESSOR]` | `L2C_DEPRECATE` (`;`-separated) | none |
//! | `--metrics-listen` | `L2C_METRICS_LISTEN` | `127.0.0.1:9464` (`off`: no metrics listener) |
//! | `--header-read-timeout` | `L2C_HEADER_READ_TIMEOUT` | `10s` (whole request head) |
//! | `--idle-timeout` | `L2C_IDLE_TIMEOUT` | `60s` (no request in flight, or a response not read) |
//! | `--body-timeout` | `L2C_BODY_TIMEOUT` | `30s` (whole request body, then 408) |
//! | `--max-connections` | `L2C_MAX_CONNECTIONS` | `RLIMIT_NOFILE` soft limit minus a reserve |
//! | `--tls-handshake-timeout` | `L2C_TLS_HANDSHAKE_TIMEOUT` | `10s` |
//! | `--http2-max-concurrent-streams` | `L2C_HTTP2_MAX_CONCURRENT_STREAMS` | `100` |
//! | `--http2-max-header-list-size` | `L2C_HTTP2_MAX_HEADER_LIST_SIZE` | `16384` (bytes) |
//! | `--http2-keep-alive-interval` | `L2C_HTTP2_KEEP_ALIVE_INTERVAL` | `30s` (`off`: no pings) |
//! | `--http2-keep-alive-timeout` | `L2C_HTTP2_KEEP_ALIVE_TIMEOUT` | `20s` |
//! | `--drain-timeout` | `L2C_DRAIN_TIMEOUT` | `30s` (in-flight requests on shutdown) |
//!
//! ```
//! use clap::Parser;
//! use l2c_server::cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["l2c-server", "--listen", "0.0.0.0:9000"]).unwrap();
//! let config = cli.serve_args().unwrap().to_config().unwrap();
//! assert_eq!(config.listen.port(), 9000);
//! assert_eq!(config.export_stall_timeout, l2c_server::config::DEFAULT_EXPORT_STALL_TIMEOUT);
//!
//! let exports = ["l2c-server", "--export-stall-timeout", "2s", "--export-db-connections", "4"];
//! let config = Cli::try_parse_from(exports).unwrap().serve_args().unwrap().to_config().unwrap();
//! assert_eq!(config.export_stall_timeout, std::time::Duration::from_secs(2));
//! assert_eq!(config.export_db_connections, 4);
//! // More than half of SQLite's pool of 8 would leave the API too few connections.
//! let greedy = ["l2c-server", "--export-db-connections", "5"];
//! assert!(Cli::try_parse_from(greedy).unwrap().serve_args().unwrap().to_config().is_err());
//!
//! let cli = Cli::try_parse_from(["l2c-server", "client", "create", "--name", "erp", "--json"]).unwrap();
//! assert!(matches!(cli.command, Some(Command::Client { .. })));
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use l2c_core::Scopes;
use l2c_core::identity::UnknownScope;

use l2c_core::rate_limit::Quota;

use crate::config::{
    Config, ConfigError, JwtAlgorithm, JwtSecret, LogFormat, TlsFiles, parse_trusted_proxies,
};
use crate::store::{Db, NewClient};

/// `l2c-server`: the L2C open platform reference server.
#[derive(Debug, Parser)]
#[command(
    name = "l2c-server",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The serve flags, if the command is `serve` (given or implied).
    pub fn serve_args(&self) -> Option<&ServeArgs> {
        match &self.command {
            None => Some(&self.serve),
            Some(Command::Serve(args)) => Some(args),
            Some(Command::Client { .. } | Command::Keys { .. }) => None,
        }
    }
}

/// The subcommands.
// Parsed once per process: boxing the serve flags would only make matching on them clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve(Box<ServeArgs>),
    /// Manage client applications.
    Client {
        /// The database to use.
        #[arg(long, env = "L2C_DATABASE_URL", hide_env_values = true,
              default_value = crate::config::DEFAULT_DATABASE_URL, global = true)]
        database_url: String,
        /// The client operation.
        #[command(subcommand)]
        action: ClientCommand,
    },
    /// Manage the data key that seals personal data and secrets at rest.
    Keys {
        /// The key operation.
        #[command(subcommand)]
        action: KeysCommand,
    },
}

/// `l2c-server client …`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client and print its id and secret (the secret is shown only this once).
    Create {
        /// A human-readable name.
        #[arg(long)]
        name: String,
        /// Comma- or space-separated scopes (default: every scope).
        #[arg(long, value_parser = parse_scopes)]
        scopes: Option<Scopes>,
        /// The client's own quota, such as `100/s`, `6000/min` or `100/s;burst=200` (default:
        /// the server's `--rate-limit`). Running servers pick it up within `--quota-refresh-secs`.
        #[arg(long)]
        rate_limit: Option<Quota>,
        /// Let the client read every customer, not only those linked to its leads and orders.
        #[arg(long)]
        all_customers: bool,
        /// Print `{"client_id":…,"client_secret":…}`.
        #[arg(long)]
        json: bool,
    },
    /// List the clients (never their secrets).
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Stop a client from obtaining tokens; running servers also refuse its issued tokens within
    /// `--quota-refresh-secs`.
    Disable {
        /// The client id.
        id: String,
    },
    /// Let a disabled client obtain tokens again.
    Enable {
        /// The client id.
        id: String,
    },
    /// Grant a client what partners cannot grant themselves: AUTHORIZED showroom items and
    /// reading every customer. `--revoke` withdraws the named grants.
    Grant {
        /// The client id.
        id: String,
        /// Showroom item ids, comma-separated or repeated (e.g. `itm_0006,itm_0030`).
        #[arg(long = "showroom-items", value_delimiter = ',')]
        showroom_items: Vec<String>,
        /// Let the client read every customer, not only those linked to its leads and orders.
        #[arg(long)]
        all_customers: bool,
        /// Withdraw the named grants instead of adding them.
        #[arg(long)]
        revoke: bool,
    },
}

/// `l2c-server keys …`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum KeysCommand {
    /// Print a fresh data key for `L2C_DATA_KEY` (base64 of 32 random bytes).
    GenerateDataKey,
    /// Re-seal every value and recompute every blind index under `L2C_DATA_KEY`, in batches,
    /// while servers keep running with the new key and the old ones in `L2C_OLD_DATA_KEYS`.
    /// Afterwards restart them with `L2C_DATA_KEY` alone.
    RotateDataKey {
        /// The database to re-seal.
        #[arg(long, env = "L2C_DATABASE_URL", hide_env_values = true,
              default_value = crate::config::DEFAULT_DATABASE_URL)]
        database_url: String,
        /// The new data key.
        #[arg(long, env = "L2C_DATA_KEY", hide_env_values = true)]
        data_key: SecretArg,
        /// The old data keys, comma-separated.
        #[arg(long, env = "L2C_OLD_DATA_KEYS", hide_env_values = true)]
        old_data_keys: Option<SecretArg>,
    },
}

/// Runs a `keys` subcommand, writing its result to `out` (see [`crate::seal`]).
///
/// # Errors
///
/// A message for an unusable key, a value under an unknown key or a database failure.
pub async fn run_keys_command(
    action: &KeysCommand,
    out: &mut impl std::io::Write,
) -> Result<(), String> {
    match action {
        KeysCommand::GenerateDataKey => {
            writeln!(out, "{}", crate::seal::DataKeys::generate_key()).map_err(|e| e.to_string())
        }
        KeysCommand::RotateDataKey {
            database_url,
            data_key,
            old_data_keys,
        } => {
            let keys = crate::seal::DataKeys::from_settings(
                Some(data_key.expose()),
                old_data_keys.as_ref().map(SecretArg::expose),
            )
            .map_err(|e| e.to_string())?;
            let db = Db::connect(database_url)
                .await
                .map_err(|e| e.to_string())?
                .with_data_keys(keys);
            let result = crate::usecases::data_keys::rotate(&db).await;
            db.close().await;
            let progress = result.map_err(|e| e.to_string())?;
            let kid = db
                .data_keys()
                .current_kid()
                .map(ToString::to_string)
                .unwrap_or_default();
            writeln!(
                out,
                "rotate-data-key: {} values re-sealed and {} blind indexes recomputed under key {kid}{}; \
                 restart the servers without L2C_OLD_DATA_KEYS",
                progress.sealed,
                progress.indexed,
                if progress.vacuumed {
                    ", SQLite file compacted"
                } else {
                    ""
                },
            )
            .map_err(|e| e.to_string())
        }
    }
}

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

fn parse_scopes(s: &str) -> Result<Scopes, UnknownScope> {
    s.parse()
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
    /// Seconds between two reloads of the per-client quotas from the database (at least 1).
    #[arg(long, env = "L2C_QUOTA_REFRESH_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
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

/// Errors of the `client` subcommands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// No client has that id.
    #[error("no client with id `{0}`")]
    NoSuchClient(String),
    /// Writing the output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
    /// A showroom item id that does not exist (nothing was granted).
    #[error("no showroom item with id `{0}`")]
    NoSuchShowroomItem(String),
    /// `client grant` named nothing to grant.
    #[error("nothing to grant: pass --showroom-items and/or --all-customers")]
    NothingToGrant,
}

/// Runs a `client` subcommand, writing to `out`.
///
/// # Errors
///
/// [`CliError`] on a database failure or an unknown client id.
pub async fn run_client_command(
    database_url: &str,
    action: &ClientCommand,
    out: &mut impl std::io::Write,
) -> Result<(), CliError> {
    let db = Db::connect(database_url).await?;
    let result = client_command(&db, action, out).await;
    db.close().await;
    result
}

async fn client_command(
    db: &Db,
    action: &ClientCommand,
    out: &mut impl std::io::Write,
) -> Result<(), CliError> {
    match action {
        ClientCommand::Create {
            name,
            scopes,
            rate_limit,
            all_customers,
            json,
        } => {
            let mut new = NewClient::new(name.clone(), scopes.unwrap_or(Scopes::all()))
                .all_customers(*all_customers);
            if let Some(rate) = rate_limit {
                new = new.rate_limit(*rate);
            }
            let (client, secret) = db.clients().create(&new).await?;
            if *json {
                let v = serde_json::json!({
                    "client_id": client.id.as_str(),
                    "client_secret": secret.expose(),
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "client_id:     {}", client.id)?;
                writeln!(out, "client_secret: {}", secret.expose())?;
                writeln!(out, "scopes:        {}", client.scopes)?;
                writeln!(out, "(the secret is shown only this once; store it now)")?;
            }
        }
        ClientCommand::List { json } => {
            let clients = db.clients().list().await?;
            if *json {
                let v: Vec<_> = clients
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "client_id": c.id.as_str(),
                            "name": c.name,
                            "scopes": c.scopes.to_string(),
                            "rate_limit": c.rate_limit.map(|r| r.to_string()),
                            "all_customers": c.all_customers,
                            "disabled": c.disabled,
                            "created_at": rfc3339(c.created_at),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(v))?;
            } else {
                writeln!(
                    out,
                    "{:<28} {:<20} {:<9} {:<10} {:<25} SCOPES",
                    "CLIENT_ID", "NAME", "DISABLED", "RATE", "CREATED"
                )?;
                for c in clients {
                    writeln!(
                        out,
                        "{:<28} {:<20} {:<9} {:<10} {:<25} {}",
                        c.id,
                        c.name,
                        if c.disabled { "yes" } else { "no" },
                        c.rate_limit
                            .map_or_else(|| "default".to_owned(), |r| r.to_string()),
                        rfc3339(c.created_at),
                        c.scopes
                    )?;
                }
            }
        }
        ClientCommand::Disable { id } | ClientCommand::Enable { id } => {
            let disable = matches!(action, ClientCommand::Disable { .. });
            if !db.clients().set_disabled(id, disable).await? {
                return Err(CliError::NoSuchClient(id.clone()));
            }
            writeln!(
                out,
                "client {id} {}",
                if disable { "disabled" } else { "enabled" }
            )?;
        }
        ClientCommand::Grant {
            id,
            showroom_items,
            all_customers,
            revoke,
        } => grant(db, id, showroom_items, *all_customers, *revoke, out).await?,
    }
    out.flush()?;
    Ok(())
}

async fn grant(
    db: &Db,
    id: &str,
    items: &[String],
    all_customers: bool,
    revoke: bool,
    out: &mut impl std::io::Write,
) -> Result<(), CliError> {
    let items: Vec<String> = items
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() && !all_customers {
        return Err(CliError::NothingToGrant);
    }
    if db.clients().get(id).await?.is_none() {
        return Err(CliError::NoSuchClient(id.to_owned()));
    }
    let client = l2c_core::ClientId::new(id);
    if !items.is_empty() {
        let verb = if revoke {
            let n = db.showroom().revoke(&client, &items).await?;
            format!("revoked {n} showroom grant(s)")
        } else {
            let n = db
                .showroom()
                .grant(&client, &items)
                .await
                .map_err(|e| match e {
                    crate::store::showroom::GrantError::UnknownItem(item) => {
                        CliError::NoSuchShowroomItem(item)
                    }
                    crate::store::showroom::GrantError::Store(e) => CliError::Store(e),
                })?;
            format!("granted {n} new showroom item(s)")
        };
        writeln!(out, "client {id}: {verb}")?;
    }
    if all_customers {
        db.customers().grant_all(&client, !revoke).await?;
        let what = if revoke { "may no longer" } else { "may now" };
        writeln!(out, "client {id}: {what} read every customer")?;
    }
    Ok(())
}

fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::ConnectionConfig;

    fn config(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(std::iter::once("l2c-server").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.serve_args()
            .unwrap()
            .to_config()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn connection_flag_defaults_are_the_config_defaults() {
        // `try_parse_from` also reads the variables: one set for these flags would change a
        // default (the test variables, L2C_TEST_*, are not among them).
        let flags = [
            "METRICS_LISTEN",
            "HEADER_READ_TIMEOUT",
            "IDLE_TIMEOUT",
            "BODY_TIMEOUT",
            "MAX_CONNECTIONS",
            "TLS_HANDSHAKE_TIMEOUT",
            "HTTP2_MAX_CONCURRENT_STREAMS",
            "HTTP2_MAX_HEADER_LIST_SIZE",
            "HTTP2_KEEP_ALIVE_INTERVAL",
            "HTTP2_KEEP_ALIVE_TIMEOUT",
            "DRAIN_TIMEOUT",
        ];
        if let Some(set) = flags
            .iter()
            .find(|f| std::env::var_os(format!("L2C_{f}")).is_some())
        {
            eprintln!("skipping: L2C_{set} is set");
            return;
        }
        let c = config(&[]).unwrap();
        assert_eq!(c.connections, ConnectionConfig::default());
        assert_eq!(c.metrics_listen, Config::default().metrics_listen);
    }

    #[test]
    fn connection_flags_are_parsed_and_checked() {
        let c = config(&[
            "--metrics-listen",
            "off",
            "--header-read-timeout",
            "2s",
            "--idle-timeout",
            "500ms",
            "--body-timeout",
            "1m",
            "--max-connections",
            "64",
            "--http2-keep-alive-interval",
            "off",
            "--drain-timeout",
            "0s",
        ])
        .unwrap();
        assert_eq!(c.metrics_listen, None);
        assert_eq!(
            c.connections.header_read_timeout,
            std::time::Duration::from_secs(2)
        );
        assert_eq!(
            c.connections.idle_timeout,
            std::time::Duration::from_millis(500)
        );
        assert_eq!(
            c.connections.body_timeout,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(c.connections.max_connections, Some(64));
        assert_eq!(c.connections.http2_keep_alive_interval, None);
        assert!(c.connections.drain_timeout.is_zero());
        let c = config(&["--metrics-listen", "0.0.0.0:9100"]).unwrap();
        assert_eq!(c.metrics_listen.unwrap().port(), 9100);

        for bad in [
            &["--max-connections", "0"][..],
            &["--header-read-timeout", "0s"],
            &["--header-read-timeout", "10"],
            &["--http2-max-concurrent-streams", "0"],
            &["--metrics-listen", "nowhere"],
        ] {
            assert!(config(bad).is_err(), "{bad:?}");
        }
        assert!(
            config(&["--body-timeout", "0s"])
                .unwrap_err()
                .contains("--body-timeout must be greater than zero")
        );
    }

    #[test]
    fn log_format_and_trusted_proxies_parse_and_are_validated() {
        let cli = Cli::try_parse_from(["l2c-server"]).unwrap();
        let config = cli.serve_args().unwrap().to_config().unwrap();
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.trusted_proxies, Config::default().trusted_proxies);

        let cli = Cli::try_parse_from([
            "l2c-server",
            "--log-format",
            "json",
            "--trusted-proxy",
            "10.0.0.0/8, 192.0.2.7",
        ])
        .unwrap();
        let config = cli.serve_args().unwrap().to_config().unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.trusted_proxies,
            parse_trusted_proxies("10.0.0.0/8,192.0.2.7/32").unwrap()
        );
        // No proxy trusted at all.
        let cli = Cli::try_parse_from(["l2c-server", "--trusted-proxy", ""]).unwrap();
        assert!(
            cli.serve_args()
                .unwrap()
                .to_config()
                .unwrap()
                .trusted_proxies
                .is_empty()
        );

        assert!(Cli::try_parse_from(["l2c-server", "--log-format", "xml"]).is_err());
        let cli = Cli::try_parse_from(["l2c-server", "--trusted-proxy", "10.0.0.0/40"]).unwrap();
        assert!(matches!(
            cli.serve_args().unwrap().to_config(),
            Err(ConfigError::InvalidTrustedProxy(entry)) if entry == "10.0.0.0/40"
        ));
    }
}
