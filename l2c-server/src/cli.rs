//! The command line: `l2c-server [serve]`, `l2c-server client create|list|disable|enable|grant`.
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
//! | `--issuer` | `L2C_ISSUER` | `l2c` |
//! | `--audience` | `L2C_AUDIENCE` | `l2c-api` |
//! | `--rate-limit` | `L2C_RATE_LIMIT` | `100/s` (per client; `client create --rate-limit` overrides) |
//! | `--token-rate-limit` | `L2C_TOKEN_RATE_LIMIT` | `60/min` (token endpoint, per peer address) |
//! | `--export-concurrency` | `L2C_EXPORT_CONCURRENCY` | `5` (report exports in flight per client) |
//! | `--quota-refresh-secs` | `L2C_QUOTA_REFRESH_SECS` | `30` |
//! | `--tls-cert`, `--tls-key` | `L2C_TLS_CERT`, `L2C_TLS_KEY` | none (plain HTTP) |
//! | `--trust-proxy-tls` | `L2C_TRUST_PROXY_TLS` | off |
//! | `--trusted-proxy` | `L2C_TRUSTED_PROXY` (comma-separated CIDRs) | `127.0.0.0/8,::1/128` (`X-Forwarded-For` / `Forwarded` believed only from these peers, with `--trust-proxy-tls`) |
//! | `--log-format` | `L2C_LOG_FORMAT` | `text` (or `json`: one JSON object per line) |
//! | `--no-demo-client` | `L2C_NO_DEMO_CLIENT` | off |
//! | `--deprecate PREFIX=DEPRECATED,SUNSET[,SUCCESSOR]` | `L2C_DEPRECATE` (`;`-separated) | none |
//!
//! ```
//! use clap::Parser;
//! use l2c_server::cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["l2c-server", "--listen", "0.0.0.0:9000"]).unwrap();
//! let config = cli.serve_args().unwrap().to_config().unwrap();
//! assert_eq!(config.listen.port(), 9000);
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
            Some(Command::Client { .. }) => None,
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
        #[arg(long, env = "L2C_DATABASE_URL", default_value = crate::config::DEFAULT_DATABASE_URL, global = true)]
        database_url: String,
        /// The client operation.
        #[command(subcommand)]
        action: ClientCommand,
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
    #[arg(long, env = "L2C_DATABASE_URL", default_value = crate::config::DEFAULT_DATABASE_URL)]
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
    /// How many report exports one client may run at once.
    #[arg(long, env = "L2C_EXPORT_CONCURRENCY", default_value_t = crate::config::DEFAULT_EXPORT_CONCURRENCY)]
    pub export_concurrency: u32,
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
    /// Do not create the demo client on an empty database.
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
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            rate_limit: self.rate_limit,
            token_rate_limit: self.token_rate_limit,
            export_concurrency: self.export_concurrency,
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
    use super::*;

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
