//! `IdempotencyLayer` drops into axum as is: `Router::layer` and `route_layer` with axum's `Body`
//! on both sides (the layer keeps the request body type and rebuilds bodies `From<Bytes>`).
#![allow(clippy::unwrap_used)] // test helpers

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use l2c_core::idempotency::IdempotencyLayer;
use l2c_core::{AuthenticatedClient, Scopes};
use tower::ServiceExt;

async fn create(State(calls): State<Arc<AtomicUsize>>, body: String) -> (StatusCode, String) {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    (
        StatusCode::CREATED,
        format!("{{\"leadId\":{n},\"len\":{}}}", body.len()),
    )
}

async fn read(State(calls): State<Arc<AtomicUsize>>) -> String {
    calls.fetch_add(1, Ordering::SeqCst).to_string()
}

fn request(method: &str, key: &str) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri("/api/mobile/leads/hook")
        .header("x-request-id", key)
        .body(Body::from("{\"name\":\"x\"}"))
        .unwrap();
    req.extensions_mut()
        .insert(AuthenticatedClient::new("client-a", Scopes::all()));
    req
}

#[tokio::test]
async fn router_layer_and_route_layer_replay_with_axum_bodies() {
    let calls = Arc::new(AtomicUsize::new(0));
    let routes = || Router::new().route("/api/mobile/leads/hook", post(create).get(read));
    let apps = [
        routes()
            .layer(IdempotencyLayer::new())
            .with_state(calls.clone()),
        routes()
            .route_layer(IdempotencyLayer::new())
            .with_state(calls.clone()),
    ];
    for app in apps {
        calls.store(0, Ordering::SeqCst);
        let first = app.clone().oneshot(request("POST", "k1")).await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        let first_body = to_bytes(first.into_body(), 1 << 20).await.unwrap();
        let retry = app.clone().oneshot(request("POST", "k1")).await.unwrap();
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(
            to_bytes(retry.into_body(), 1 << 20).await.unwrap(),
            first_body
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // GET with a key passes through every time.
        for _ in 0..2 {
            let res = app.clone().oneshot(request("GET", "k1")).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert!(res.headers().get("idempotent-replayed").is_none());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
