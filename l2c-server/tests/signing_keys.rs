//! Token-signing key rotation (`l2c-server keys rotate`) on a running server, on a test clock:
//! the new key is in the JWKS (and the verifier) before any token carries it, tokens carry it
//! from its activation without a restart, a token of the old key verifies until it expires, and
//! then the old key leaves the JWKS. SQLite always, PostgreSQL when `L2C_TEST_DATABASE_URL` is
//! set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use l2c_core::Scopes;
use l2c_core::clock::MockClock;
use l2c_server::config::JwtAlgorithm;
use l2c_server::store::keys::KeyState;
use l2c_server::testing::{Backend, TestOptions, TestServer};
use l2c_server::usecases::signing_keys::{self, DEFAULT_PUBLISH_LEAD, KeyRotationError};
use serde_json::Value;

/// The `kid` in a token's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn jwks_kids(server: &TestServer) -> Vec<String> {
    let jwks: Value = server
        .http()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The status of an authenticated read with `token`.
async fn status_with(server: &TestServer, token: &str) -> u16 {
    server
        .http()
        .get(server.url("/api/mobile/webhooks"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits (at most 5 s of real time) until the server's periodic key refresh has run `check`
/// true.
async fn until_refreshed(server: &TestServer, what: &str, check: impl Fn(&[String]) -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if check(&jwks_kids(server).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the refresh never showed {what}");
}

async fn states(server: &TestServer) -> Vec<(String, KeyState)> {
    signing_keys::list(&server.db)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.key.id.clone(), v.state))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_published_before_it_signs_and_the_old_one_retires_after_its_tokens() {
    for backend in Backend::available() {
        let clock = MockClock::at_unix(1_790_000_000);
        let mut options = TestOptions::default();
        options.config.jwt_algorithm = JwtAlgorithm::EdDsa;
        // The cadence at which replicas re-read the keys (with the quotas).
        options.config.quota_refresh = Duration::from_millis(50);
        options.clock = Some(Arc::new(clock.clone()));
        let server = TestServer::start_with(backend, options).await;
        let client = server.create_client(Scopes::all()).await;
        let old_token = server.token(&client).await;
        let old = kid(&old_token);
        assert_eq!(old, "l2c-ed25519-1");
        assert_eq!(jwks_kids(&server).await, vec![old.clone()]);

        // Refusals: too short a lead (the JWKS max-age is 300 s), an unknown algorithm.
        let short = signing_keys::rotate(&server.db, None, Duration::from_secs(60)).await;
        assert!(
            matches!(short, Err(KeyRotationError::LeadTooShort)),
            "{short:?}"
        );
        let unknown = signing_keys::rotate(&server.db, Some("RS256"), DEFAULT_PUBLISH_LEAD).await;
        assert!(matches!(
            unknown,
            Err(KeyRotationError::UnknownAlgorithm(_))
        ));

        let rotated = signing_keys::rotate(&server.db, None, DEFAULT_PUBLISH_LEAD)
            .await
            .unwrap();
        let new = rotated.key.id.clone();
        assert!(new.starts_with("l2c-ed25519-") && new != old, "{new}");
        assert_eq!(rotated.key.algorithm, "EdDSA");
        // A second rotation while the first waits is refused.
        let again = signing_keys::rotate(&server.db, None, DEFAULT_PUBLISH_LEAD).await;
        assert!(
            matches!(&again, Err(KeyRotationError::Pending(k)) if *k == new),
            "{again:?}"
        );
        assert_eq!(
            states(&server).await,
            vec![
                (old.clone(), KeyState::Active),
                (new.clone(), KeyState::Next)
            ]
        );

        // Published before it signs: the JWKS lists it while tokens still carry the old kid.
        until_refreshed(&server, "the new kid", |kids| kids.contains(&new)).await;
        assert_eq!(jwks_kids(&server).await, vec![old.clone(), new.clone()]);
        assert_eq!(kid(&server.token(&client).await), old);
        clock.advance(DEFAULT_PUBLISH_LEAD - Duration::from_secs(1));
        assert_eq!(kid(&server.token(&client).await), old, "not a second early");

        // At activation tokens carry the new kid: by the clock, no restart, no refresh needed.
        clock.advance(Duration::from_secs(1));
        let new_token = server.token(&client).await;
        assert_eq!(kid(&new_token), new);
        assert_eq!(status_with(&server, &new_token).await, 200);
        assert_eq!(
            states(&server).await,
            vec![
                (old.clone(), KeyState::Retiring),
                (new.clone(), KeyState::Active)
            ]
        );

        // The old key's token verifies until it expires (2 h after it was issued, + 60 s
        // leeway), and the old key stays published meanwhile.
        clock.advance(Duration::from_secs(
            7200 - DEFAULT_PUBLISH_LEAD.as_secs() - 1,
        ));
        assert_eq!(status_with(&server, &old_token).await, 200);
        assert!(jwks_kids(&server).await.contains(&old));
        clock.advance(Duration::from_secs(62));
        assert_eq!(status_with(&server, &old_token).await, 401, "expired");

        // Retired once every token it signed has expired: out of the JWKS on every replica's
        // next refresh.
        clock.set_unix(u64::try_from(rotated.previous_retire_at / 1000).unwrap() + 1);
        until_refreshed(&server, "the old kid gone", |kids| !kids.contains(&old)).await;
        assert_eq!(jwks_kids(&server).await, vec![new.clone()]);
        assert_eq!(
            states(&server).await,
            vec![
                (old.clone(), KeyState::Retired),
                (new.clone(), KeyState::Active)
            ]
        );
        let fresh = server.token(&client).await;
        assert_eq!(kid(&fresh), new);
        assert_eq!(status_with(&server, &fresh).await, 200);

        // A restart reads the same keys (the retired one is not loaded again).
        let test_db = server.shutdown().await;
        let mut options = TestOptions::default();
        options.config.jwt_algorithm = JwtAlgorithm::EdDsa;
        options.clock = Some(Arc::new(clock.clone()));
        let server = TestServer::start_on(test_db, options).await;
        assert_eq!(jwks_kids(&server).await, vec![new.clone()]);
        assert_eq!(status_with(&server, &fresh).await, 200);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_keys_rotate_the_same_way_without_being_published() {
    for backend in Backend::available() {
        let clock = MockClock::at_unix(1_790_000_000);
        let mut options = TestOptions::default();
        options.config.quota_refresh = Duration::from_millis(50);
        options.clock = Some(Arc::new(clock.clone()));
        let server = TestServer::start_with(backend, options).await;
        let client = server.create_client(Scopes::all()).await;
        let old_token = server.token(&client).await;
        assert_eq!(kid(&old_token), "l2c-hs256-1");
        let rotated = signing_keys::rotate(&server.db, Some("hs256"), DEFAULT_PUBLISH_LEAD)
            .await
            .unwrap();
        assert!(rotated.key.id.starts_with("l2c-hs256-"));
        // Give the refresh time to load the key, then activate it.
        let start = Instant::now();
        while !server
            .state
            .tokens
            .verifier()
            .key_ids()
            .contains(&Some(rotated.key.id.clone()))
        {
            assert!(start.elapsed() < Duration::from_secs(5), "never refreshed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            jwks_kids(&server).await.is_empty(),
            "secret keys are never listed"
        );
        clock.advance(DEFAULT_PUBLISH_LEAD);
        let new_token = server.token(&client).await;
        assert_eq!(kid(&new_token), rotated.key.id);
        assert_eq!(status_with(&server, &new_token).await, 200);
        assert_eq!(status_with(&server, &old_token).await, 200);
        server.stop().await;
    }
}

/// Runs `l2c-server <args>` in-process (a `keys` command); its output.
async fn keys_cli(args: &[&str]) -> Result<String, String> {
    use clap::Parser as _;
    let cli = l2c_server::cli::Cli::try_parse_from(
        std::iter::once("l2c-server").chain(args.iter().copied()),
    )
    .map_err(|e| e.to_string())?;
    let Some(l2c_server::cli::Command::Keys { action }) = &cli.command else {
        panic!("not a keys command");
    };
    let mut out = Vec::new();
    l2c_server::cli::run_keys_command(action, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn keys_rotate_and_list_on_the_command_line() {
    for backend in Backend::available() {
        let test_db = l2c_server::testing::TestDb::create(backend).await;
        let url = test_db.url.clone();
        let refused = keys_cli(&["keys", "rotate", "--database-url", &url]).await;
        assert!(refused.unwrap_err().contains("start the server once"));
        // A server's first start generates the HS256 key.
        let db = l2c_server::store::Db::connect(&url).await.unwrap();
        db.keys().hs256_or_generate().await.unwrap();
        db.close().await;

        let short = keys_cli(&[
            "keys",
            "rotate",
            "--database-url",
            &url,
            "--publish-lead",
            "1m",
        ])
        .await;
        assert!(short.unwrap_err().contains("at least 630s"));
        let out = keys_cli(&["keys", "rotate", "--database-url", &url])
            .await
            .unwrap();
        assert!(out.starts_with("keys rotate: HS256 l2c-hs256-"), "{out}");
        assert!(out.contains("signs from"), "{out}");
        let pending = keys_cli(&["keys", "rotate", "--database-url", &url]).await;
        assert!(pending.unwrap_err().contains("already waits to activate"));

        let list = keys_cli(&["keys", "list", "--database-url", &url])
            .await
            .unwrap();
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), 3, "{list}");
        assert!(lines[0].starts_with("KID"));
        assert!(
            lines[1].starts_with("l2c-hs256-1 ") && lines[1].contains(" active "),
            "{list}"
        );
        assert!(lines[2].contains(" next "), "{list}");
        assert!(!list.contains("material"), "no key material is printed");
        test_db.cleanup().await;
    }
}
