//! Issue 13 ("the rest"), through real HTTP on every available backend: refusals are never
//! recorded by idempotency (so the corrected retry with the same key runs), the webhook
//! subscription cap holds under parallel creates, and a refusal by the per-client concurrency
//! cap is not recorded either.
#![allow(clippy::unwrap_used)] // test helpers

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use l2c_core::Scopes;
use l2c_server::ExtraRoutes;
use l2c_server::state::AppState;
use l2c_server::testing::{Backend, TestOptions, TestServer, random_redis_prefix, redis_url};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

fn lead(external_id: &str, mobile: &str) -> Value {
    json!({
        "source": "DOUYIN",
        "externalLeadId": external_id,
        "name": "张三丰",
        "mobile": mobile,
        "submittedAt": "2026-11-20T10:15:00+08:00"
    })
}

fn order(no: &str, version: i64) -> Value {
    json!({
        "externalOrderNo": no,
        "status": "DEPOSIT_PAID",
        "paymentStatus": "DEPOSIT_PAID",
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "customer": {"name": "李四", "mobile": "+86 139-1234-5678"},
        "version": version,
        "payments": [{"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 500_000,
                      "channelTransactionId": format!("wx-{no}-1"),
                      "paidAt": "2026-11-20T10:15:00+08:00"}]
    })
}

async fn post_keyed(
    server: &TestServer,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    server
        .http()
        .post(server.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// invalid → 422 → corrected with the same key → 201 → replayed byte for byte.
async fn invalid_then_corrected(
    server: &TestServer,
    token: &str,
    path: &str,
    invalid: &Value,
    corrected: &Value,
    field: &str,
) {
    let key = uuid::Uuid::new_v4().to_string();
    let res = post_keyed(server, token, path, &key, invalid).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    assert!(res.headers().get("idempotent-replayed").is_none());
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_field", "{problem}");
    assert_eq!(problem["field"], field, "{problem}");

    let res = post_keyed(server, token, path, &key, corrected).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{path}: the fix runs");
    assert!(res.headers().get("idempotent-replayed").is_none());
    let first_type = res.headers()["content-type"].clone();
    let first = res.bytes().await.unwrap();

    let res = post_keyed(server, token, path, &key, corrected).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{path}: replay");
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.headers()["content-type"], first_type);
    assert_eq!(
        res.bytes().await.unwrap(),
        first,
        "{path}: replay byte for byte"
    );

    // The invalid body with the key now bound to the corrected one is a different request.
    let res = post_keyed(server, token, path, &key, invalid).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_key_reused", "{problem}");
}

async fn validation_refusals_are_not_recorded_on(server: TestServer) {
    let client = server.create_client(Scopes::all()).await;
    let token = server.token(&client).await;
    invalid_then_corrected(
        &server,
        &token,
        "/api/mobile/leads/hook",
        &lead("fix-2", "12345"),
        &lead("fix-2", "13812345678"),
        "mobile",
    )
    .await;
    let mut bad = order("FIX-2", 1);
    bad["items"][0]["quantity"] = json!(0);
    invalid_then_corrected(
        &server,
        &token,
        "/api/mobile/orders/sync",
        &bad,
        &order("FIX-2", 1),
        "items[0].quantity",
    )
    .await;
    assert_eq!(server.db.leads().count().await.unwrap(), 1);
    server.stop().await;
}

#[tokio::test]
async fn field_refusals_are_not_recorded_so_the_fix_runs_with_the_same_key() {
    for backend in Backend::available() {
        validation_refusals_are_not_recorded_on(TestServer::start(backend).await).await;
    }
}

#[tokio::test]
async fn field_refusals_are_not_recorded_by_the_redis_store() {
    let Some(url) = redis_url("the Redis idempotency store") else {
        return;
    };
    for backend in Backend::available() {
        let options = TestOptions::redis(&url, &random_redis_prefix());
        validation_refusals_are_not_recorded_on(TestServer::start_with(backend, options).await)
            .await;
    }
}

#[tokio::test]
async fn a_business_conflict_is_still_recorded() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let a = server.create_client(Scopes::all()).await;
        let token = server.token(&a).await;
        let path = "/api/mobile/orders/sync";
        let res = post_keyed(&server, &token, path, "o-1", &order("DUP-1", 1)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        // A second order of the same client claiming the first one's payment: 409
        // payment_conflict, a business conflict with the stored state, recorded and replayed.
        let mut second = order("DUP-2", 1);
        second["payments"][0]["channelTransactionId"] = json!("wx-DUP-1-1");
        let res = post_keyed(&server, &token, path, "o-2", &second).await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let mut first: Value = res.json().await.unwrap();
        assert_eq!(first["code"], "payment_conflict");
        let res = post_keyed(&server, &token, path, "o-2", &second).await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        let replayed: Value = res.json().await.unwrap();
        // The request id is added outside the idempotency layer, per request.
        first.as_object_mut().unwrap().remove("requestId");
        assert_eq!(replayed, first);
        server.stop().await;
    }
}

#[tokio::test]
async fn thirty_parallel_webhook_creates_from_a_client_holding_four_end_at_twenty() {
    for backend in Backend::available() {
        let mut options = TestOptions::default();
        options.config.webhooks.allow_private = true;
        let server = Arc::new(TestServer::start_with(backend, options).await);
        let client = server.create_client(Scopes::all()).await;
        let token = Arc::new(server.token(&client).await);
        let create = |n: usize| {
            let server = Arc::clone(&server);
            let token = Arc::clone(&token);
            async move {
                server
                    .http()
                    .post(server.url("/api/mobile/webhooks"))
                    .bearer_auth(token.as_str())
                    .header("idempotency-key", format!("wh-{n}"))
                    .json(&json!({"url": format!("https://127.0.0.1:9/hook/{n}"),
                                  "events": ["ORDER_CREATED"]}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        for n in 0..4 {
            assert_eq!(create(n).await, StatusCode::CREATED);
        }
        let statuses = futures_util::future::join_all((4..34).map(create)).await;
        let created = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!((created, refused), (16, 14), "{backend:?}: {statuses:?}");
        let list: Value = server
            .http()
            .get(server.url("/api/mobile/webhooks"))
            .bearer_auth(token.as_str())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let held = list["items"]
            .as_array()
            .or_else(|| list.as_array())
            .map(Vec::len);
        assert_eq!(held, Some(20), "{list}");

        // The refusal was not recorded: after a delete, the same key creates.
        let refused_key = statuses
            .iter()
            .position(|s| *s == StatusCode::CONFLICT)
            .unwrap()
            + 4;
        let first = list["items"]
            .as_array()
            .or_else(|| list.as_array())
            .unwrap()[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = server
            .http()
            .delete(server.url(&format!("/api/mobile/webhooks/{first}")))
            .bearer_auth(token.as_str())
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        assert_eq!(create(refused_key).await, StatusCode::CREATED);
        Arc::into_inner(server).unwrap().stop().await;
    }
}

/// A long-running POST route under the per-client concurrency cap (1 slot), idempotency around
/// it: the 429 is not recorded, and the retry with the same key after the slot frees runs.
#[tokio::test]
async fn a_429_from_the_concurrency_cap_is_not_recorded() {
    for backend in Backend::available() {
        let gate = Arc::new(Semaphore::new(0));
        let handler_gate = Arc::clone(&gate);
        let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel::<()>();
        let slow = Router::<AppState>::new().route(
            "/slow",
            post(move || {
                let gate = Arc::clone(&handler_gate);
                let _ = entered_tx.send(());
                async move {
                    // Bounded: the test always releases it well within this.
                    let _ = tokio::time::timeout(Duration::from_secs(30), gate.acquire()).await;
                    (StatusCode::CREATED, "done")
                }
            }),
        );
        let mut options = TestOptions::default();
        options.config.export_concurrency = 1;
        options.extra_routes = ExtraRoutes::new().long_running(slow);
        let server = Arc::new(TestServer::start_with(backend, options).await);
        let client = server.create_client(Scopes::all()).await;
        let token = Arc::new(server.token(&client).await);
        let send = |key: &'static str| {
            let server = Arc::clone(&server);
            let token = Arc::clone(&token);
            async move {
                server
                    .http()
                    .post(server.url("/api/mobile/slow"))
                    .bearer_auth(token.as_str())
                    .header("idempotency-key", key)
                    .json(&json!({"n": 1}))
                    .send()
                    .await
                    .unwrap()
            }
        };
        let holder = tokio::spawn(send("holder"));
        // The holder is in the handler, so it holds the only slot.
        tokio::time::timeout(Duration::from_secs(30), entered.recv())
            .await
            .unwrap()
            .unwrap();
        let refused = send("second").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().get("idempotent-replayed").is_none());
        gate.add_permits(2);
        let res = holder.await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.bytes().await.unwrap();
        // The slot is back (bounded wait for the body's permit to drop).
        let mut retried = None;
        for _ in 0..50 {
            let res = send("second").await;
            if res.status() != StatusCode::TOO_MANY_REQUESTS {
                retried = Some(res);
                break;
            }
            assert!(res.headers().get("idempotent-replayed").is_none());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let res = retried.expect("the retry runs once the slot is free");
        assert_eq!(res.status(), StatusCode::CREATED);
        assert!(res.headers().get("idempotent-replayed").is_none());
        Arc::into_inner(server).unwrap().stop().await;
    }
}

/// `--trust-proxy-tls`: rotating `X-Forwarded-For` from a direct peer outside `--trusted-proxy`
/// does not dodge the per-address token limit; from a trusted proxy, each forwarded client has
/// its own bucket.
#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let attempt = |server: &TestServer, n: usize| {
        server
            .http()
            .post(server.url("/api/oauth/token"))
            .header("x-forwarded-for", format!("198.51.100.{n}"))
            .header("x-forwarded-proto", "https")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "wrong"),
            ])
            .send()
    };
    for (trusted, dodges) in [("10.0.0.0/8", false), ("", false), ("127.0.0.0/8", true)] {
        let mut options = TestOptions::default();
        options.config.trust_proxy_tls = true;
        options.config.token_rate_limit = "3/min".parse().unwrap();
        options.config.trusted_proxies =
            l2c_server::config::parse_trusted_proxies(trusted).unwrap();
        let server = TestServer::start_with(Backend::Sqlite, options).await;
        let mut limited = 0;
        for n in 0..6 {
            let res = attempt(&server, n).await.unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            if status == StatusCode::TOO_MANY_REQUESTS && body["error"] == "slow_down" {
                // The per-address limit (the per-client-id failure limit allows 10).
                limited += 1;
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{trusted}: {body}");
            }
        }
        if dodges {
            assert_eq!(limited, 0, "trusted proxy {trusted}: one bucket per client");
        } else {
            assert_eq!(
                limited, 3,
                "untrusted peer ({trusted:?}): one bucket for the peer"
            );
        }
        server.stop().await;
    }
}

async fn get_status(server: &TestServer, token: &str, path: &str) -> StatusCode {
    server
        .http()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn delete_client_row(server: &TestServer, id: &str) {
    sqlx::query("DELETE FROM clients WHERE id = $1")
        .bind(id)
        .execute(server.db.pool())
        .await
        .unwrap();
}

/// A deleted client's tokens are refused like a disabled one's: at the next reload for a client
/// the server knew, at once for one it had not seen yet. A client created after the last reload
/// is not refused.
#[tokio::test]
async fn a_deleted_clients_tokens_are_refused() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let path = "/api/mobile/webhooks";

        // Created after start-up (after the first load): accepted on its first request.
        let known = server.create_client(Scopes::all()).await;
        let token = server.token(&known).await;
        assert_eq!(get_status(&server, &token, path).await, StatusCode::OK);
        delete_client_row(&server, &known.id).await;
        // What the periodic refresh does (every --quota-refresh-secs).
        server.state.limits.load_quotas(&server.db).await.unwrap();
        assert_eq!(
            get_status(&server, &token, path).await,
            StatusCode::UNAUTHORIZED,
            "{backend:?}: deleted, after the reload"
        );

        // Never seen by this server: deleted before its first API request.
        let unseen = server.create_client(Scopes::all()).await;
        let token = server.token(&unseen).await;
        delete_client_row(&server, &unseen.id).await;
        for _ in 0..2 {
            assert_eq!(
                get_status(&server, &token, path).await,
                StatusCode::UNAUTHORIZED,
                "{backend:?}: deleted, never seen"
            );
        }
        // Another live client is unaffected, before and after a reload.
        let other = server.create_client(Scopes::all()).await;
        let token = server.token(&other).await;
        assert_eq!(get_status(&server, &token, path).await, StatusCode::OK);
        server.state.limits.load_quotas(&server.db).await.unwrap();
        assert_eq!(get_status(&server, &token, path).await, StatusCode::OK);
        server.stop().await;
    }
}

/// A client created with its own `--rate-limit` while the server runs is held to it from its
/// first token, not after the next reload.
#[tokio::test]
async fn a_new_clients_own_quota_applies_from_its_first_token() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let client = server
            .create_client_with_quota(Scopes::all(), l2c_core::rate_limit::Quota::per_minute(10))
            .await;
        let token = server.token(&client).await;
        let mut passed = 0;
        let mut limited = 0;
        for _ in 0..40 {
            match get_status(&server, &token, "/api/mobile/webhooks").await {
                StatusCode::OK => passed += 1,
                StatusCode::TOO_MANY_REQUESTS => limited += 1,
                other => panic!("{backend:?}: {other}"),
            }
        }
        assert_eq!((passed, limited), (10, 30), "{backend:?}");
        server.stop().await;
    }
}
