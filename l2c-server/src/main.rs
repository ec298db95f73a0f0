//! `l2c-server`: see `l2c-server --help` and the crate docs of `l2c_server`.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use l2c_server::cli::{Cli, Command, run_client_command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Client {
            database_url,
            action,
        }) => run_client_command(database_url, action, &mut std::io::stdout().lock())
            .await
            .map_err(|e| e.to_string()),
        _ => match cli.serve_args().map(|a| a.to_config()) {
            Some(Ok(config)) => l2c_server::serve(config).await.map_err(|e| e.to_string()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("no command".to_owned()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("l2c-server: {e}");
            ExitCode::FAILURE
        }
    }
}
