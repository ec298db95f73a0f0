//! Run with: cargo run --example embed_layers
//!
//! A platform team's own axum server using only `l2c-core`'s layers — no `l2c-server`:
//! request ids, JWT bearer auth with scopes, a per-client rate limit, idempotent writes and a
//! per-client concurrency cap on a long-running route.
//!
//! It starts on an ephemeral port, drives itself with plain HTTP to show each layer at work
//! (401 without a token, one handler run for a retried write, 429 over the quota) and exits.
//! Set `L2C_EMBED_LISTEN=127.0.0.1:8090` to keep serving instead (a demo token is printed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::http::{Response, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Router};
use l2c_core::auth::{
    HmacKey, JwtAuthLayer, RequireScopeLayer, SigningKey, TokenIssuer, TokenVerifier,
};
use l2c_core::concurrency::ConcurrencyCapLayer;
use l2c_core::idempotency::IdempotencyLayer;
use l2c_core::rate_limit::{KeyedRateLimitLayer, Quota};
use l2c_core::{AuthenticatedClient, ClientId, RequestIdLayer, Scope, Scopes};
use tower::ServiceBuilder;

const ISSUER: &str = "https://platform.example";
const AUDIENCE: &str = "l2c";

/// How many times the write handler really ran.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

async fn create_order(
    State(counter): State<Counter>,
    Extension(client): Extension<AuthenticatedClient>,
    body: String,
) -> (StatusCode, String) {
    let n = counter.0.fetch_add(1, Ordering::SeqCst) + 1;
    let reply = format!(
        r#"{{"orderId":"ord_{n}","client":"{}","bytes":{}}}"#,
        client.client_id,
        body.len()
    );
    (StatusCode::CREATED, reply)
}

async fn export() -> Response<Body> {
    Response::new(Body::from("orderId,status\r\nord_1,SCHEDULING\r\n"))
}

fn app(verifier: Arc<TokenVerifier>, counter: Counter) -> Router {
    let orders = Router::new()
        .route("/orders", post(create_order))
        .layer(
            ServiceBuilder::new()
                .layer(RequireScopeLayer::one(Scope::OrdersWrite))
                .layer(IdempotencyLayer::new()),
        )
        .with_state(counter);
    let reports = Router::new().route(
        "/reports/export",
        get(export).layer(
            // The cap wraps the response body (the slot is held while it streams), so it sits
            // outside the layers that build plain-bytes rejections.
            ServiceBuilder::new()
                .layer(ConcurrencyCapLayer::new(5))
                .layer(RequireScopeLayer::one(Scope::ReportsExport)),
        ),
    );
    // Outermost first: request id, then auth (so 401s cost no quota), then the quota.
    Router::new().merge(orders).merge(reports).layer(
        ServiceBuilder::new()
            .layer(RequestIdLayer::new())
            .layer(JwtAuthLayer::new(verifier))
            .layer(KeyedRateLimitLayer::new(Quota::per_minute(10))),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = HmacKey::generate();
    let issuer = TokenIssuer::new(ISSUER, AUDIENCE, SigningKey::Hmac(key.clone(), None));
    let verifier = Arc::new(
        TokenVerifier::builder(ISSUER, AUDIENCE)
            .hmac_key(key)
            .build()?,
    );
    let token = issuer
        .issue(&ClientId::new("erp-demo"), Scopes::all())
        .access_token;
    let counter = Counter::default();

    if let Ok(listen) = std::env::var("L2C_EMBED_LISTEN") {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!(
            "serving on http://{}; demo token:\n{token}",
            listener.local_addr()?
        );
        axum::serve(listener, app(verifier, counter))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        return Ok(());
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(axum::serve(listener, app(verifier, counter.clone())).into_future());
    let http = reqwest::Client::builder().no_proxy().build()?;

    // 1. No token.
    let res = http
        .post(format!("{base}/orders"))
        .body("{}")
        .send()
        .await?;
    println!("without a token: {}", res.status());
    check(res.status() == StatusCode::UNAUTHORIZED, "expected 401")?;

    // 2. The same write twice with one key: the handler runs once, the retry is replayed.
    let write = || {
        http.post(format!("{base}/orders"))
            .bearer_auth(&token)
            .header("x-request-id", "erp-order-42")
            .header("content-type", "application/json")
            .body(r#"{"externalOrderNo":"ERP-42"}"#)
            .send()
    };
    let first = write().await?;
    let first_status = first.status();
    let first_body = first.text().await?;
    let retry = write().await?;
    let replayed = retry.headers().get("idempotent-replayed").cloned();
    let retry_body = retry.text().await?;
    println!("write: {first_status} {first_body}; retry: replayed={replayed:?} {retry_body}");
    check(first_status == StatusCode::CREATED, "expected 201")?;
    check(retry_body == first_body, "expected the stored response")?;
    check(
        counter.0.load(Ordering::SeqCst) == 1,
        "the handler ran twice",
    )?;

    // 3. The quota (10 per minute, two used): the rest of the burst passes, then 429.
    let mut limited = None;
    for i in 0..20 {
        let res = http
            .get(format!("{base}/reports/export"))
            .bearer_auth(&token)
            .send()
            .await?;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, res.headers().get("retry-after").cloned()));
            break;
        }
        res.bytes().await?;
    }
    println!("rate limited after {limited:?} more requests");
    check(limited.is_some(), "expected a 429")?;

    server.abort();
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), Box<dyn std::error::Error>> {
    if ok { Ok(()) } else { Err(what.into()) }
}
