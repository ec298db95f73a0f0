//! `l2c-server`: see `l2c-server --help` and the crate docs of `l2c_server`.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use l2c_server::cli::{Cli, Command, run_client_command};
use l2c_server::config::LogFormat;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.serve_args().map_or(LogFormat::Text, |a| a.log_format);
    let subscriber = l2c_server::observe::log_subscriber(
        format,
        std::io::stderr().is_terminal(),
        std::io::stderr,
    );
    if let Err(e) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("l2c-server: cannot install the logger: {e}");
        return ExitCode::FAILURE;
    }

    let result = match &cli.command {
        Some(Command::Client {
            database_url,
            action,
        }) => run_client_command(database_url, action, &mut std::io::stdout().lock())
            .await
            .map_err(|e| e.to_string()),
        Some(Command::Keys { action }) => {
            l2c_server::cli::run_keys_command(action, &mut std::io::stdout().lock()).await
        }
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
