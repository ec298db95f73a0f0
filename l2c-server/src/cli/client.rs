//! `l2c-server client`: create, list, disable, enable, update, roll-secret, grant.

use super::*;

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
    /// Change a client's scopes and/or its own quota; running servers apply the quota within
    /// `--quota-refresh-secs`, new tokens carry the new scopes.
    Update {
        /// The client id.
        id: String,
        /// Comma- or space-separated scopes.
        #[arg(long, value_parser = parse_scopes)]
        scopes: Option<Scopes>,
        /// The client's own quota such as `100/s`, or `default` for the server's `--rate-limit`.
        #[arg(long)]
        rate_limit: Option<QuotaOrDefault>,
    },
    /// Replace a client's secret and print the new one (shown only this once); the old secret
    /// keeps working for the overlap.
    RollSecret {
        /// The client id.
        id: String,
        /// How long the old secret keeps working (e.g. `24h`, `30m`, `0s`; at most `168h`).
        #[arg(long, default_value = "24h", value_parser = crate::dispatch::parse_duration)]
        overlap: std::time::Duration,
        /// Print `{"client_id":…,"client_secret":…,"previous_secret_expires_at":…}`.
        #[arg(long)]
        json: bool,
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

/// A quota, or `default` (the server's `--rate-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaOrDefault(pub Option<Quota>);

impl std::str::FromStr for QuotaOrDefault {
    type Err = <Quota as std::str::FromStr>::Err;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("default") {
            Ok(Self(None))
        } else {
            s.parse().map(|q| Self(Some(q)))
        }
    }
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
        ClientCommand::Update {
            id,
            scopes,
            rate_limit,
        } => {
            if scopes.is_none() && rate_limit.is_none() {
                return Err(CliError::NothingToUpdate);
            }
            let actor = crate::admin::Actor::cli();
            let c = crate::admin::clients::update(db, &actor, id, *scopes, rate_limit.map(|r| r.0))
                .await?;
            writeln!(
                out,
                "client {id}: scopes {}, rate limit {}",
                c.scopes,
                c.rate_limit
                    .map_or_else(|| "default".to_owned(), |r| r.to_string())
            )?;
        }
        ClientCommand::RollSecret { id, overlap, json } => {
            let actor = crate::admin::Actor::cli();
            let (secret, until) =
                crate::admin::clients::roll_secret(db, &actor, id, *overlap).await?;
            if *json {
                let v = serde_json::json!({
                    "client_id": id,
                    "client_secret": secret.expose(),
                    "previous_secret_expires_at": rfc3339(until),
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "client_id:     {id}")?;
                writeln!(out, "client_secret: {}", secret.expose())?;
                writeln!(out, "the previous secret works until {}", rfc3339(until))?;
                writeln!(out, "(the secret is shown only this once; store it now)")?;
            }
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
