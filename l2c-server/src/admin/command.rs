//! `l2c-server admin create|list|disable|enable|reset-password`: the console's accounts.

use std::io::{BufRead, Write};

use clap::Subcommand;

use super::Actor;
use super::accounts::{self, AccountError};
use crate::store::Db;
use crate::store::accounts::Role;

/// `l2c-server admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a console account. The password is read from stdin with `--password-stdin`, or
    /// generated and printed once.
    Create {
        /// The login name.
        #[arg(long)]
        username: String,
        /// `operator` (every app, the audit log) or `developer` (one app, `--client`).
        #[arg(long)]
        role: Role,
        /// A developer's app.
        #[arg(long)]
        client: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts (never their passwords).
    List,
    /// Stop an account from signing in and end its sessions.
    Disable {
        /// The login name.
        username: String,
    },
    /// Let a disabled account sign in again.
    Enable {
        /// The login name.
        username: String,
    },
    /// Set a new password (from stdin with `--password-stdin`, or generated and printed once)
    /// and end the account's sessions.
    ResetPassword {
        /// The login name.
        username: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Why an `admin` subcommand failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The action was refused or the database failed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Reading stdin or writing the output failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

fn password(from_stdin: bool, input: &mut impl BufRead) -> Result<(String, bool), std::io::Error> {
    if from_stdin {
        let mut line = String::new();
        input.read_line(&mut line)?;
        Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
    } else {
        Ok((accounts::generate_password(), true))
    }
}

/// Runs an `admin` subcommand on the database at `database_url`, reading a password from
/// `input` and writing to `out`.
///
/// # Errors
///
/// [`AdminError`].
pub async fn run_admin_command(
    database_url: &str,
    action: &AdminCommand,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), AdminError> {
    let db = Db::connect(database_url).await?;
    let result = admin_command(&db, action, input, out).await;
    db.close().await;
    result
}

async fn admin_command(
    db: &Db,
    action: &AdminCommand,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), AdminError> {
    let actor = Actor::cli();
    match action {
        AdminCommand::Create {
            username,
            role,
            client,
            password_stdin,
        } => {
            let (pw, generated) = password(*password_stdin, input)?;
            let account =
                accounts::create(db, &actor, username, &pw, *role, client.as_deref()).await?;
            writeln!(
                out,
                "account {} created ({})",
                account.username,
                account.role.as_str().to_ascii_lowercase()
            )?;
            if generated {
                writeln!(out, "password: {pw}")?;
                writeln!(out, "(shown only this once; sign in at /console/login)")?;
            }
        }
        AdminCommand::List => {
            writeln!(
                out,
                "{:<24} {:<10} {:<9} CLIENT",
                "USERNAME", "ROLE", "DISABLED"
            )?;
            for a in db.accounts().list().await? {
                writeln!(
                    out,
                    "{:<24} {:<10} {:<9} {}",
                    a.username,
                    a.role.as_str().to_ascii_lowercase(),
                    if a.disabled { "yes" } else { "no" },
                    a.client_id.as_ref().map_or("-", |c| c.as_str())
                )?;
            }
        }
        AdminCommand::Disable { username } | AdminCommand::Enable { username } => {
            let disable = matches!(action, AdminCommand::Disable { .. });
            accounts::set_disabled(db, &actor, username, disable).await?;
            writeln!(
                out,
                "account {username} {}",
                if disable { "disabled" } else { "enabled" }
            )?;
        }
        AdminCommand::ResetPassword {
            username,
            password_stdin,
        } => {
            let (pw, generated) = password(*password_stdin, input)?;
            accounts::reset_password(db, &actor, username, &pw).await?;
            writeln!(out, "account {username}: password reset, sessions ended")?;
            if generated {
                writeln!(out, "password: {pw}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
