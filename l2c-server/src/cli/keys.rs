//! `l2c-server keys`: the data key (generate, rotate online) and the token-signing keys
//! (rotate with a publish lead, list; see [`crate::usecases::signing_keys`]).

use super::*;

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
    /// Add a token-signing key, published (JWKS, every replica's verifier) at once and signing
    /// after the publish lead; the current key keeps verifying until its tokens have expired,
    /// then leaves the JWKS. Running servers switch by the clock, without a restart.
    Rotate {
        /// The database the servers share.
        #[arg(long, env = "L2C_DATABASE_URL", hide_env_values = true,
              default_value = crate::config::DEFAULT_DATABASE_URL)]
        database_url: String,
        /// The data key the stored keys are sealed with (when the servers run with one).
        #[arg(long, env = "L2C_DATA_KEY", hide_env_values = true)]
        data_key: Option<SecretArg>,
        /// How long after now the new key starts signing (at least 630s: the longest key
        /// refresh, 300 s, plus the JWKS max-age, 300 s, plus 30 s).
        #[arg(long, default_value = "15m", value_parser = crate::dispatch::parse_duration)]
        publish_lead: std::time::Duration,
        /// `HS256` or `EdDSA`; without it, the one algorithm stored.
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// List the token-signing keys: kid, algorithm, state (next / active / retiring /
    /// retired), created, activates, retires.
    List {
        /// The database the servers share.
        #[arg(long, env = "L2C_DATABASE_URL", hide_env_values = true,
              default_value = crate::config::DEFAULT_DATABASE_URL)]
        database_url: String,
        /// The data key the stored keys are sealed with (when the servers run with one).
        #[arg(long, env = "L2C_DATA_KEY", hide_env_values = true)]
        data_key: Option<SecretArg>,
    },
}

async fn signing_key_db(database_url: &str, data_key: Option<&SecretArg>) -> Result<Db, String> {
    let keys = crate::seal::DataKeys::from_settings(data_key.map(SecretArg::expose), None)
        .map_err(|e| e.to_string())?;
    Ok(Db::connect(database_url)
        .await
        .map_err(|e| e.to_string())?
        .with_data_keys(keys))
}

fn utc(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from(crate::store::from_unix_millis(ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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
        KeysCommand::Rotate {
            database_url,
            data_key,
            publish_lead,
            algorithm,
        } => {
            let db = signing_key_db(database_url, data_key.as_ref()).await?;
            let result =
                crate::usecases::signing_keys::rotate(&db, algorithm.as_deref(), *publish_lead)
                    .await;
            db.close().await;
            let rotated = result.map_err(|e| e.to_string())?;
            let key = &rotated.key;
            writeln!(
                out,
                "keys rotate: {} {} published now, signs from {}; the keys before it verify \
                 until {} (their last tokens' expiry)",
                key.algorithm,
                key.id,
                utc(key.activates_at),
                utc(rotated.previous_retire_at),
            )
            .map_err(|e| e.to_string())
        }
        KeysCommand::List {
            database_url,
            data_key,
        } => {
            let db = signing_key_db(database_url, data_key.as_ref()).await?;
            let result = crate::usecases::signing_keys::list(&db).await;
            db.close().await;
            let views = result.map_err(|e| e.to_string())?;
            let line = |cols: [&str; 6]| {
                format!(
                    "{:<30} {:<6} {:<9} {:<21} {:<21} {}",
                    cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]
                )
            };
            let mut text = line(["KID", "ALG", "STATE", "CREATED", "ACTIVATES", "RETIRES"]);
            for v in views {
                let created = utc(crate::store::unix_millis(v.key.created_at));
                let retires = v.key.retires_at.map(utc).unwrap_or_else(|| "-".into());
                text.push('\n');
                text.push_str(&line([
                    &v.key.id,
                    &v.key.algorithm,
                    v.state.as_str(),
                    &created,
                    &utc(v.key.activates_at),
                    &retires,
                ]));
            }
            writeln!(out, "{text}").map_err(|e| e.to_string())
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
