//! Run with: cargo run --example webhook_receiver
//!
//! An axum endpoint that verifies L2C webhook deliveries before handling them.
//!
//! - With `L2C_WEBHOOK_SECRET=whsec_…` (shown when the subscription was created) it serves
//!   `POST /webhooks/l2c` on `L2C_WEBHOOK_LISTEN` (default `127.0.0.1:3000`) until Ctrl-C.
//! - Without it, it demonstrates itself: generates a secret, serves on an ephemeral port, sends
//!   itself a correctly signed delivery, a tampered one and a replay, prints the answers
//!   (204, 401, 409) and exits.
//!
//! The verifier needs the raw body, so the handler takes `Bytes`, never `Json<…>`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use l2c_client::types::status::{OrderStatus, PaymentStatus};
use l2c_client::webhook::{
    EventData, EventType, OrderStatusChanged, Verifier, WebhookEvent, WebhookSecret,
};

async fn receive(
    State(verifier): State<Arc<Verifier>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match verifier.verify(&headers, &body) {
        Ok(event) => {
            match &event.payload {
                EventData::OrderCreated(o) => {
                    println!("{}: order {} created", event.id, o.external_order_no)
                }
                EventData::OrderStatusChanged(c) => println!(
                    "{}: order {} {} → {}",
                    event.id, c.external_order_no, c.from_status_label, c.to_status_label
                ),
                EventData::PaymentReceived(p) => println!(
                    "{}: order {} received {} fen",
                    event.id, p.external_order_no, p.amount
                ),
                EventData::Ping(p) => println!("{}: test event for {}", event.id, p.webhook_id),
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => {
            eprintln!("refused a delivery: {err} ({})", err.code());
            err.to_problem().into_response::<Body>()
        }
    }
}

fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/webhooks/l2c", post(receive))
        .with_state(Arc::new(verifier))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::var("L2C_WEBHOOK_SECRET") {
        Ok(secret) => serve(WebhookSecret::parse(secret.trim())?).await,
        Err(_) => demo().await,
    }
}

async fn serve(secret: WebhookSecret) -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("L2C_WEBHOOK_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "receiving webhooks at http://{}/webhooks/l2c",
        listener.local_addr()?
    );
    // Remember event ids for twice the timestamp tolerance: a replay is answered 409.
    let verifier = Verifier::new(secret).deduplicate(100_000);
    axum::serve(listener, app(verifier))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let secret = WebhookSecret::generate();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/l2c", listener.local_addr()?);
    let verifier = Verifier::new(secret.clone()).deduplicate(1_000);
    let server = tokio::spawn(async move { axum::serve(listener, app(verifier)).await });
    println!("demo receiver at {url} (set L2C_WEBHOOK_SECRET to receive real deliveries)");

    let changed_at = chrono::DateTime::parse_from_rfc3339("2026-11-26T09:30:00+08:00")?;
    let event = WebhookEvent::new(
        WebhookEvent::new_id(),
        changed_at,
        EventData::OrderStatusChanged(OrderStatusChanged::new(
            "ord_demo",
            "ERP-2026-0001",
            OrderStatus::ProductionPending,
            OrderStatus::Scheduling,
            PaymentStatus::FullyPaid,
            7,
            changed_at,
        )),
    );
    let body = serde_json::to_vec(&event)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let headers = l2c_core::webhook::sign_headers(
        &[&secret],
        &event.id,
        EventType::OrderStatusChanged,
        now,
        &body,
    )?;

    let http = reqwest::Client::builder().no_proxy().build()?;
    let send = |body: Vec<u8>| {
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        request.send()
    };

    let mut tampered = body.clone();
    if let Some(at) = tampered.iter().position(|b| *b == b'7') {
        tampered[at] = b'8';
    }
    let checks = [
        ("signed delivery", body.clone(), StatusCode::NO_CONTENT),
        ("tampered body", tampered, StatusCode::UNAUTHORIZED),
        ("replayed delivery", body, StatusCode::CONFLICT),
    ];
    for (what, body, expected) in checks {
        let status = send(body).await?.status();
        println!("{what}: {status}");
        if status != expected {
            return Err(format!("{what}: expected {expected}, got {status}").into());
        }
    }
    server.abort();
    Ok(())
}
