//! Personal data and secrets sealed at rest (issue 15 item 3), end to end: a server with
//! `L2C_DATA_KEY` stores no mobile, name, raw payload, webhook or channel secret or signing key
//! in plain text — checked by reading the SQLite file's bytes (and its WAL) directly, and on
//! PostgreSQL every table's rows as JSON text — while the API answers exactly as before.
//! Also: sealing a plain database in place, rotating keys online with the binary's
//! `keys rotate-data-key`, refusing unknown or missing keys, tampered values, and the warning
//! of a server started without a key. SQLite always, PostgreSQL when `L2C_TEST_DATABASE_URL`
//! is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sealing;

use l2c_server::seal::{self, DataKeys};
use l2c_server::store::Db;
use l2c_server::testing::{Backend, TestDb, TestServer};
use l2c_server::usecases::data_keys;
use sealing::*;
use sqlx::Row;

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_the_database_holds_no_personal_data_and_the_api_answers_as_before() {
    for backend in Backend::available() {
        let hooks = receiver().await;
        let k = keys(&key(), &[]);
        let server = TestServer::start_with(backend, options(&k)).await;
        let world = populate(&server, &hooks).await;
        assert_masked(&answers(&server, &world).await);
        dedupe_holds(&server, &world, "dy-2").await;
        webhook_signs(&server, &world, &hooks, 2).await;
        let before = answers(&server, &world).await;
        let sealed_row = column_values(
            &server.db,
            "SELECT mobile_e164 || ' | ' || name || ' | ' || mobile_index FROM customers LIMIT 1",
        )
        .await;
        eprintln!("a sealed customers row ({backend:?}): {}", sealed_row[0]);
        let test_db = server.shutdown().await;

        // Restart on the same database with the same key: same answers, tokens and webhooks
        // still signed with the stored (sealed) keys and secrets.
        let server = TestServer::start_on(test_db.clone(), options(&k)).await;
        assert_eq!(answers(&server, &world).await, before);
        webhook_signs(&server, &world, &hooks, 3).await;
        let bytes = dump(&test_db, &server.db).await;
        assert!(find(&bytes, "l2cenc:v1:"), "sealed values are in the dump");
        assert_eq!(
            plain_found(&bytes, &world),
            Vec::<String>::new(),
            "{backend:?}"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_database_is_sealed_in_place_on_the_first_start_with_a_key() {
    for backend in Backend::available() {
        let hooks = receiver().await;
        let server = TestServer::start_with(backend, options(&DataKeys::plain())).await;
        let world = populate(&server, &hooks).await;
        let before = answers(&server, &world).await;
        let test_db = server.shutdown().await;
        {
            let db = Db::connect(&test_db.url).await.unwrap();
            let bytes = dump(&test_db, &db).await;
            // The check below can fail: without a key every needle is there.
            assert_eq!(plain_found(&bytes, &world).len(), 10, "{backend:?}");
            db.close().await;
        }

        let k = keys(&key(), &[]);
        let server = TestServer::start_on(test_db.clone(), options(&k)).await;
        assert_eq!(
            answers(&server, &world).await,
            before,
            "same answers once sealed"
        );
        dedupe_holds(&server, &world, "dy-2").await;
        webhook_signs(&server, &world, &hooks, 2).await;
        let indexes = column_values(&server.db, "SELECT mobile_index FROM customers").await;
        assert!(indexes.iter().all(|i| i.starts_with("bi1:")), "{indexes:?}");
        // Idempotent: a second pass finds nothing left to seal.
        let again = data_keys::prepare(&server.db).await.unwrap();
        assert_eq!((again.sealed, again.indexed), (0, 0));
        let test_db = server.shutdown().await;
        // Read the file once no server holds it (SQLite: VACUUM ran after sealing, so the
        // plain values' old pages are gone too).
        let db = Db::connect(&test_db.url).await.unwrap();
        let bytes = dump(&test_db, &db).await;
        assert!(find(&bytes, "l2cenc:v1:"), "the sealed database was read");
        assert_eq!(
            plain_found(&bytes, &world),
            Vec::<String>::new(),
            "{backend:?}"
        );
        db.close().await;
        test_db.cleanup().await;
    }
}

/// Runs the binary with `args` and the data-key variables given (the others removed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_reseals_everything_online_under_the_new_key() {
    for backend in Backend::available() {
        let hooks = receiver().await;
        let (ka, kb) = (key(), key());
        let a = keys(&ka, &[]);
        let kid_a = a.current_kid().unwrap().to_string();
        let server = TestServer::start_with(backend, options(&a)).await;
        let world = populate(&server, &hooks).await;
        let before = answers(&server, &world).await;
        let test_db = server.shutdown().await;

        // B alone cannot read what A sealed: the server refuses to start.
        let db = Db::connect(&test_db.url)
            .await
            .unwrap()
            .with_data_keys(keys(&kb, &[]));
        let err = data_keys::prepare(&db).await.unwrap_err().to_string();
        assert!(
            err.contains(&kid_a) && err.contains("not configured"),
            "{err}"
        );
        db.close().await;

        // B with A as an old key: everything reads, new values go under B.
        let b_and_a = keys(&kb, &[&ka]);
        let server = TestServer::start_on(test_db.clone(), options(&b_and_a)).await;
        assert_eq!(answers(&server, &world).await, before);
        dedupe_holds(&server, &world, "dy-2").await;
        let before = answers(&server, &world).await;
        // Online: the server keeps running while the binary re-seals.
        let out = binary(
            &["keys", "rotate-data-key"],
            &[
                ("L2C_DATABASE_URL", &test_db.url),
                ("L2C_DATA_KEY", &kb),
                ("L2C_OLD_DATA_KEYS", &ka),
            ],
        )
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("values re-sealed"), "{stdout}");
        assert!(
            !stdout.contains(&kb) && !stdout.contains(&ka),
            "keys never printed"
        );
        assert_eq!(
            answers(&server, &world).await,
            before,
            "readable during the rotation"
        );
        let test_db = server.shutdown().await;

        // B alone now: everything readable, nothing left under A.
        let b = keys(&kb, &[]);
        let server = TestServer::start_on(test_db.clone(), options(&b)).await;
        assert_eq!(answers(&server, &world).await, before);
        dedupe_holds(&server, &world, "dy-3").await;
        webhook_signs(&server, &world, &hooks, 2).await;
        for c in seal::COLUMNS {
            let left = column_values(
                &server.db,
                &format!(
                    "SELECT {col} FROM {table} WHERE {col} LIKE '%{kid_a}%'",
                    col = c.column,
                    table = c.table
                ),
            )
            .await;
            assert!(left.is_empty(), "{}.{} still under A", c.table, c.column);
        }
        let left = column_values(
            &server.db,
            &format!("SELECT mobile_index FROM customers WHERE mobile_index LIKE '%{kid_a}%'"),
        )
        .await;
        assert!(left.is_empty(), "blind indexes still under A: {left:?}");
        let test_db = server.shutdown().await;
        // On disk too (SQLite: the rotation compacted the file).
        let db = Db::connect(&test_db.url).await.unwrap();
        let bytes = dump(&test_db, &db).await;
        assert!(find(&bytes, "l2cenc:v1:"), "the sealed database was read");
        assert!(!find(&bytes, &kid_a), "{backend:?}");
        db.close().await;
        test_db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_moved_value_is_a_clear_500_never_wrong_data() {
    for backend in Backend::available() {
        let hooks = receiver().await;
        let k = keys(&key(), &[]);
        let server = TestServer::start_with(backend, options(&k)).await;
        let world = populate(&server, &hooks).await;
        let t = token(&server, &world.client_id, &world.client_secret).await;
        let lead_path = format!("/api/mobile/leads/{}", world.lead_id);
        // Tried: the name of the 小红书 lead copied over this lead's name (a valid envelope under
        // the right key, bound to another row).
        sqlx::query("UPDATE leads SET name = (SELECT name FROM leads WHERE id = $1) WHERE id = $2")
            .bind(&world.xhs_lead_id)
            .bind(&world.lead_id)
            .execute(server.db.pool())
            .await
            .unwrap();
        let (status, body) = call(&server, &t, reqwest::Method::GET, &lead_path, None).await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["code"], "internal_error", "{body}");
        assert!(
            !body.to_string().contains("段"),
            "never the other row's data: {body}"
        );
        // Tried: one character of a customer's sealed mobile changed.
        let stored: String = sqlx::query("SELECT mobile_e164 FROM customers WHERE id = $1")
            .bind(&world.customer_id)
            .fetch_one(server.db.pool())
            .await
            .unwrap()
            .get(0);
        let i = stored.len() - 6;
        let flipped = if &stored[i..=i] == "A" { "B" } else { "A" };
        let tampered = format!("{}{flipped}{}", &stored[..i], &stored[i + 1..]);
        sqlx::query("UPDATE customers SET mobile_e164 = $1 WHERE id = $2")
            .bind(&tampered)
            .bind(&world.customer_id)
            .execute(server.db.pool())
            .await
            .unwrap();
        let (status, body) = call(
            &server,
            &t,
            reqwest::Method::GET,
            &format!("/api/mobile/customers/{}", world.customer_id),
            None,
        )
        .await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["code"], "internal_error");
        // Tried: garbage where an envelope should be.
        sqlx::query("UPDATE leads SET form_fields = 'l2cenc:v1:zz:!!' WHERE id = $1")
            .bind(&world.xhs_lead_id)
            .execute(server.db.pool())
            .await
            .unwrap();
        let (status, _) = call(
            &server,
            &t,
            reqwest::Method::GET,
            &format!("/api/mobile/leads/{}", world.xhs_lead_id),
            None,
        )
        .await;
        assert_eq!(status, 500);
        // The server still serves everything else.
        let (status, _) = call(
            &server,
            &t,
            reqwest::Method::GET,
            "/api/mobile/webhooks",
            None,
        )
        .await;
        assert_eq!(status, 200);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_warns_once_without_a_key_and_refuses_wrong_or_malformed_keys() {
    let test_db = TestDb::create(Backend::Sqlite).await;
    let url = test_db.url.clone();
    // Without a key: starts, warns exactly once. `--listen 127.0.0.1:0` then a SIGTERM-free
    // stop: the demo client is off and the process is killed once it listens.
    let stderr = serve_until_listening(&url, &[]).await;
    let warnings = stderr.matches("stored in plain text").count();
    assert_eq!(warnings, 1, "{stderr}");
    assert!(
        stderr.contains("L2C_DATA_KEY") && stderr.contains("generate-data-key"),
        "{stderr}"
    );

    // `keys generate-data-key` prints a usable key.
    let out = binary(&["keys", "generate-data-key"], &[]).await;
    assert!(out.status.success());
    let ka = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(DataKeys::new(&ka, &[]).is_ok(), "{ka}");

    // With the key: seals in place, no warning.
    let stderr = serve_until_listening(&url, &[("L2C_DATA_KEY", &ka)]).await;
    assert!(!stderr.contains("plain text"), "{stderr}");
    assert!(stderr.contains("sealed at rest"), "{stderr}");

    // Another key, no key at all, a malformed key: refused at startup with a clear message.
    let kb = key();
    for (env, expected) in [
        (vec![("L2C_DATA_KEY", kb.as_str())], "not configured"),
        (vec![], "L2C_DATA_KEY is not set"),
        (
            vec![("L2C_DATA_KEY", "c2hvcnQ=")],
            "base64 of exactly 32 random bytes",
        ),
        (
            vec![("L2C_OLD_DATA_KEYS", ka.as_str())],
            "L2C_OLD_DATA_KEYS needs L2C_DATA_KEY",
        ),
    ] {
        let out = binary(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &url,
                "--no-demo-client",
                "--metrics-listen",
                "off",
            ],
            &env,
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(
            !stderr.contains(&ka) && !stderr.contains(&kb),
            "keys never printed"
        );
    }
    // `--help` never shows a key's value.
    let out = binary(&["serve", "--help"], &[("L2C_DATA_KEY", &ka)]).await;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("L2C_DATA_KEY") && !help.contains(&ka),
        "{help}"
    );
    test_db.cleanup().await;
}
