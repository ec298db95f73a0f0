//! Through real HTTP: requests the handler never ran (extractor rejections) are not recorded by
//! the idempotency layer, so the corrected retry with the same key runs; answers that show a
//! webhook secret are recorded without it.
#![allow(clippy::unwrap_used)] // test helpers

use l2c_core::Scopes;
use l2c_server::testing::{Backend, TestOptions, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn lead(external_id: &str) -> Value {
    json!({
        "source": "DOUYIN",
        "externalLeadId": external_id,
        "name": "张三丰",
        "mobile": "13812345678",
        "submittedAt": "2026-11-20T10:15:00+08:00"
    })
}

async fn post_raw(
    server: &TestServer,
    token: &str,
    path: &str,
    key: &str,
    content_type: &str,
    body: String,
) -> reqwest::Response {
    server
        .http()
        .post(server.url(path))
        .bearer_auth(token)
        .header("x-request-id", key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn refused_bodies_are_not_replayed_after_the_client_fixes_them() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let client = server.create_client(Scopes::all()).await;
        let token = server.token(&client).await;
        let path = "/api/mobile/leads/hook";

        // 415, then the same body with the right header and the same key: it runs.
        let key = uuid::Uuid::new_v4().to_string();
        let body = lead("dy-415").to_string();
        let res = post_raw(&server, &token, path, &key, "text/plain", body.clone()).await;
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let res = post_raw(
            &server,
            &token,
            path,
            &key,
            "application/json",
            body.clone(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert!(res.headers().get("idempotent-replayed").is_none());
        let created: Value = res.json().await.unwrap();
        // …and that success is what a further retry replays.
        let res = post_raw(&server, &token, path, &key, "application/json", body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        let replayed: Value = res.json().await.unwrap();
        assert_eq!(replayed["leadId"], created["leadId"]);

        // Malformed JSON (truncated, or trailing data after the value), then valid: it runs.
        let valid = lead("dy-400").to_string();
        for (i, broken) in [
            valid[..valid.len() - 3].to_owned(),
            format!("{valid}garbage"),
            format!("{valid}{{\"x\":1}}"),
        ]
        .into_iter()
        .enumerate()
        {
            let key = uuid::Uuid::new_v4().to_string();
            let res = post_raw(&server, &token, path, &key, "application/json", broken).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "case {i}");
            let problem: Value = res.json().await.unwrap();
            assert_eq!(problem["code"], "malformed_json", "case {i}");
            let res = post_raw(
                &server,
                &token,
                path,
                &key,
                "application/json",
                valid.clone(),
            )
            .await;
            let status = res.status();
            assert!(
                res.headers().get("idempotent-replayed").is_none(),
                "case {i}"
            );
            // The first valid send creates the lead; later ones find it (200 duplicate).
            let expected = if i == 0 {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            assert_eq!(status, expected, "case {i}");
            let body: Value = res.json().await.unwrap();
            let raw = server
                .db
                .leads()
                .raw_payload(&body["leadId"].as_str().unwrap().into())
                .await
                .unwrap()
                .unwrap();
            assert!(!raw.contains("garbage"), "{raw}");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn webhook_secrets_are_not_cached_nor_replayed() {
    for backend in Backend::available() {
        let mut options = TestOptions::default();
        options.config.webhooks.allow_private = true;
        let server = TestServer::start_with(backend, options).await;
        let client = server.create_client(Scopes::all()).await;
        let token = server.token(&client).await;
        let key = uuid::Uuid::new_v4().to_string();
        let body =
            json!({"url": "https://127.0.0.1:9/hook", "events": ["ORDER_CREATED"]}).to_string();
        let path = "/api/mobile/webhooks";

        let res = post_raw(
            &server,
            &token,
            path,
            &key,
            "application/json",
            body.clone(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let first: Value = res.json().await.unwrap();
        assert!(first["secret"].as_str().unwrap().starts_with("whsec_"));

        let res = post_raw(&server, &token, path, &key, "application/json", body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let replay: Value = res.json().await.unwrap();
        assert_eq!(replay["id"], first["id"]);
        assert_eq!(replay["url"], first["url"]);
        assert!(replay.get("secret").is_none(), "{replay}");

        let list: Value = server
            .http()
            .get(server.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

        // Rotation: the new secret once, then the replay without it.
        let id = first["id"].as_str().unwrap();
        let rotate = format!("/api/mobile/webhooks/{id}/rotate-secret");
        let key = uuid::Uuid::new_v4().to_string();
        let res = post_raw(
            &server,
            &token,
            &rotate,
            &key,
            "application/json",
            String::new(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let rotated: Value = res.json().await.unwrap();
        let secret = rotated["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_"));
        assert_ne!(rotated["secret"], first["secret"]);
        let res = post_raw(
            &server,
            &token,
            &rotate,
            &key,
            "application/json",
            String::new(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        let replay: Value = res.json().await.unwrap();
        assert_eq!(replay["id"], rotated["id"]);
        assert!(replay.get("secret").is_none(), "{replay}");
        server.stop().await;
    }
}
