//! The command line: `l2c-server [serve]`, `l2c-server client
//! create|list|disable|enable|update|roll-secret|grant`, `l2c-server admin …` (console accounts,
//! see [`crate::admin::command`]), `l2c-server keys generate-data-key|rotate-data-key`.
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

mod client;
mod keys;
mod serve;

pub use client::{ClientCommand, QuotaOrDefault, run_client_command};
pub use keys::{KeysCommand, run_keys_command};
pub use serve::{AddrOrOff, DurationOrOff, SecretArg, ServeArgs};

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
            Some(Command::Client { .. } | Command::Admin { .. } | Command::Keys { .. }) => None,
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
    /// Manage the developer console's accounts.
    Admin {
        /// The database to use.
        #[arg(long, env = "L2C_DATABASE_URL", hide_env_values = true,
              default_value = crate::config::DEFAULT_DATABASE_URL, global = true)]
        database_url: String,
        /// The account operation.
        #[command(subcommand)]
        action: crate::admin::command::AdminCommand,
    },
    /// Manage the data key that seals personal data and secrets at rest.
    Keys {
        /// The key operation.
        #[command(subcommand)]
        action: KeysCommand,
    },
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
    /// An app action was refused.
    #[error(transparent)]
    Client(#[from] crate::admin::clients::ClientError),
    /// `client update` named nothing to change.
    #[error("nothing to change: pass --scopes and/or --rate-limit")]
    NothingToUpdate,
    /// A showroom item id that does not exist (nothing was granted).
    #[error("no showroom item with id `{0}`")]
    NoSuchShowroomItem(String),
    /// `client grant` named nothing to grant.
    #[error("nothing to grant: pass --showroom-items and/or --all-customers")]
    NothingToGrant,
}

fn parse_scopes(s: &str) -> Result<Scopes, UnknownScope> {
    s.parse()
}

#[cfg(test)]
mod tests;
