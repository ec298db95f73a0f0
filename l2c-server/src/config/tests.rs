use super::*;

#[test]
fn default_trusted_proxies_are_loopback_and_log_format_is_text() {
    let nets = super::parse_trusted_proxies(super::DEFAULT_TRUSTED_PROXY).unwrap();
    assert_eq!(nets.len(), 2);
    assert_eq!(Config::default().trusted_proxies, nets);
    assert_eq!(
        super::DEFAULT_LOG_FORMAT
            .parse::<super::LogFormat>()
            .unwrap(),
        Config::default().log_format
    );
    assert!("xml".parse::<super::LogFormat>().is_err());
    assert_eq!(
        "JSON".parse::<super::LogFormat>().unwrap(),
        super::LogFormat::Json
    );
}

#[test]
fn debug_hides_url_passwords() {
    let config = Config {
        database_url: "postgres://l2c:s3cret@db:5432/l2c?sslmode=require".to_owned(),
        redis_url: Some("redis://:hunter2@cache:6379/0".to_owned()),
        ..Config::default()
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("postgres://l2c:<redacted>@db:5432/l2c?sslmode=require"));
    assert!(shown.contains("redis://:<redacted>@cache:6379/0"));
    assert_eq!(
        redact_url("sqlite://l2c.db?mode=rwc"),
        "sqlite://l2c.db?mode=rwc"
    );
    assert_eq!(redact_url("redis://cache@x"), "redis://cache@x");
}

#[test]
fn short_jwt_secret_is_refused_with_its_length() {
    let err = "x".repeat(31).parse::<JwtSecret>().unwrap_err();
    assert_eq!(err, ConfigError::JwtSecretTooShort { len: 31 });
    assert!(err.to_string().contains("at least 32 bytes"));
    // Bytes, not characters: 11 three-byte characters are 33 bytes.
    assert!("好".repeat(11).parse::<JwtSecret>().is_ok());
}

#[test]
fn jwt_secret_debug_is_redacted() {
    let s: JwtSecret = "supersecretsupersecretsupersecret".parse().unwrap();
    assert!(!format!("{s:?}").contains("supersecret"));
}

#[test]
fn redis_settings_are_checked() {
    let mut c = Config {
        redis_url: Some("redis://127.0.0.1:6379/0".into()),
        ..Config::default()
    };
    assert!(c.validate().is_ok());
    c.redis_url = Some("http://nope".into());
    assert_eq!(c.validate(), Err(ConfigError::InvalidRedisUrl));
    c.redis_url = None;
    for bad in ["", "a b", "l2c\n", &"x".repeat(65)] {
        c.redis_prefix = bad.to_owned();
        assert!(
            matches!(c.validate(), Err(ConfigError::InvalidRedisPrefix(_))),
            "{bad:?}"
        );
    }
    c.redis_prefix = "l2c:prod-eu.1".into();
    assert!(c.validate().is_ok());
    c.export_concurrency = 0;
    assert_eq!(c.validate(), Err(ConfigError::ZeroConcurrency));
}

#[test]
fn zero_connection_limits_are_refused_by_flag_name() {
    let mut c = Config::default();
    assert_eq!(
        c.metrics_listen.map(|a| a.to_string()).as_deref(),
        Some(DEFAULT_METRICS_LISTEN)
    );
    c.connections.header_read_timeout = Duration::ZERO;
    let err = c.validate().unwrap_err();
    assert_eq!(err, ConfigError::ZeroConnectionLimit("header-read-timeout"));
    assert_eq!(
        err.to_string(),
        "--header-read-timeout must be greater than zero"
    );
    c.connections = ConnectionConfig {
        max_connections: Some(0),
        ..ConnectionConfig::default()
    };
    assert_eq!(
        c.validate(),
        Err(ConfigError::ZeroConnectionLimit("max-connections"))
    );
    c.connections = ConnectionConfig {
        http2_keep_alive_interval: Some(Duration::ZERO),
        ..ConnectionConfig::default()
    };
    assert_eq!(
        c.validate(),
        Err(ConfigError::ZeroConnectionLimit(
            "http2-keep-alive-interval"
        ))
    );
    c.connections = ConnectionConfig {
        http2_keep_alive_interval: None,
        drain_timeout: Duration::ZERO,
        ..ConnectionConfig::default()
    };
    assert!(c.validate().is_ok());
}

#[test]
fn public_url_is_checked() {
    let mut c = Config::default();
    for good in [
        "https://l2c.example.com",
        "https://l2c.example.com/base",
        "http://127.0.0.1:8080",
    ] {
        c.public_url = Some(good.into());
        assert!(c.validate().is_ok(), "{good}");
    }
    for bad in [
        "l2c.example.com",
        "ftp://x",
        "https://",
        "https://u:p@x",
        "https://x/?a=1",
        "https://x:99999",
        "https://x y",
    ] {
        c.public_url = Some(bad.into());
        assert_eq!(
            c.validate(),
            Err(ConfigError::InvalidPublicUrl(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn database_url_scheme_is_checked() {
    let mut c = Config::default();
    assert!(c.validate().is_ok());
    c.database_url = "mysql://x".into();
    assert_eq!(c.validate(), Err(ConfigError::UnsupportedDatabaseUrl));
}

#[test]
fn export_settings_are_checked() {
    let mut c = Config::default();
    assert_eq!(c.export_db_connections, 2);
    assert_eq!(c.export_stall_timeout, Duration::from_secs(30));
    c.export_stall_timeout = Duration::ZERO;
    assert_eq!(c.validate(), Err(ConfigError::ZeroStallTimeout));
    c.export_stall_timeout = Duration::from_millis(1);
    assert!(c.validate().is_ok());
    assert_eq!(c.db_acquire_timeout, Duration::from_secs(5));
    c.db_acquire_timeout = Duration::ZERO;
    assert_eq!(c.validate(), Err(ConfigError::ZeroAcquireTimeout));
    c.db_acquire_timeout = Duration::from_millis(1);
    assert!(c.validate().is_ok());
    // At most half the pool: 4 of SQLite's 8, 8 of PostgreSQL's 16.
    for (url, max) in [("sqlite://x.db", 4), ("postgres://db/l2c", 8)] {
        c.database_url = url.into();
        c.export_db_connections = max;
        assert!(c.validate().is_ok(), "{url}");
        for bad in [0, max + 1] {
            c.export_db_connections = bad;
            let err = c.validate().unwrap_err();
            assert_eq!(
                err,
                ConfigError::ExportDbConnections {
                    got: bad,
                    max,
                    pool: max * 2
                }
            );
            assert!(err.to_string().contains(&format!("between 1 and {max}")));
        }
    }
}
