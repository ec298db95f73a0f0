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

#[test]
fn the_key_refresh_stays_below_the_signing_key_publish_lead() {
    assert!(Cli::try_parse_from(["l2c-server", "--quota-refresh-secs", "300"]).is_ok());
    let err = Cli::try_parse_from(["l2c-server", "--quota-refresh-secs", "301"]).unwrap_err();
    assert!(err.to_string().contains("301"), "{err}");
    assert!(
        crate::usecases::signing_keys::MIN_PUBLISH_LEAD > std::time::Duration::from_secs(300),
        "a replica must re-read keys before a new one signs"
    );
}
