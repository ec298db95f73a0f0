//! `l2c-server keys`: the data key (generate, rotate online).

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
