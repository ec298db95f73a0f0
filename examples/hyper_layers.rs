//! Run with: cargo run --example hyper_layers
//!
//! The `l2c-core` layers served by plain hyper (hyper-util's connection builder, no axum):
//! request ids, JWT bearer auth with scopes, a per-client rate limit, idempotent writes and a
//! per-client concurrency cap, around a `tower::service_fn` that routes by hand.
//!
//! Idempotency replays a stored body, so it wants a request body it can rebuild from bytes: the
//! edge buffers hyper's streaming `Incoming` body (capped at 1 MiB) into `Full<Bytes>` before the
//! stack, which is what any server without axum's `Body` does.
//!
//! It starts on an ephemeral port, drives itself with plain HTTP to show each layer at work
//! (401 without a token, one handler run for a retried write, 429 over the quota), and exits.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use l2c_core::auth::{
    HmacKey, JwtAuthLayer, RequireScopeLayer, SigningKey, TokenIssuer, TokenVerifier,
};
use l2c_core::concurrency::ConcurrencyCapLayer;
use l2c_core::idempotency::IdempotencyLayer;
use l2c_core::rate_limit::{KeyedRateLimitLayer, Quota};
use l2c_core::{AuthenticatedClient, ClientId, RequestIdLayer, Scope, Scopes};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt as _, service_fn};

const ISSUER: &str = "https://platform.example";
const AUDIENCE: &str = "l2c";
/// The largest request body the edge buffers.
const MAX_BODY: usize = 1024 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body the layers can build their refusals from (`From<Bytes>`) and hyper can send,
/// whatever body a layer below wrapped it in. (With axum, `axum::body::Body` is this type.)
struct AnyBody(UnsyncBoxBody<Bytes, BoxError>);

impl AnyBody {
    fn new<B>(body: B) -> Self
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self(body.map_err(Into::into).boxed_unsync())
    }
}

impl From<Bytes> for AnyBody {
    fn from(bytes: Bytes) -> Self {
        Self::new(Full::new(bytes))
    }
}

impl hyper::body::Body for AnyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// The application: a hand-written router behind the l2c-core stack.
fn stack(
    verifier: Arc<TokenVerifier>,
    runs: Arc<AtomicU64>,
) -> BoxCloneService<Request<Full<Bytes>>, Response<AnyBody>, Infallible> {
    let handler = service_fn(move |req: Request<Full<Bytes>>| {
        let runs = Arc::clone(&runs);
        async move {
            let client = req
                .extensions()
                .get::<AuthenticatedClient>()
                .map(|c| c.client_id.to_string())
                .unwrap_or_default();
            let (status, body) = match (req.method(), req.uri().path()) {
                (&Method::POST, "/orders") => {
                    let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                    (
                        StatusCode::CREATED,
                        format!(r#"{{"orderId":"ord_{n}","client":"{client}"}}"#),
                    )
                }
                (&Method::GET, "/reports/export") => (
                    StatusCode::OK,
                    "orderId,status\r\nord_1,SCHEDULING\r\n".to_owned(),
                ),
                _ => (StatusCode::NOT_FOUND, String::new()),
            };
            let mut res = Response::new(AnyBody::from(Bytes::from(body)));
            *res.status_mut() = status;
            Ok::<_, Infallible>(res)
        }
    });
    // Outermost first: request id, auth (a 401 costs no quota), the quota, the concurrency cap
    // (its permit rides in the response body, re-boxed into `AnyBody` for the layers above),
    // the scope the routes need, idempotency.
    ServiceBuilder::new()
        .layer(BoxCloneService::layer())
        .layer(RequestIdLayer::new())
        .layer(JwtAuthLayer::new(verifier))
        .layer(KeyedRateLimitLayer::new(Quota::per_minute(10)))
        .map_response(|res: Response<_>| res.map(AnyBody::new))
        .layer(ConcurrencyCapLayer::new(5))
        .layer(RequireScopeLayer::one(Scope::OrdersWrite))
        .layer(IdempotencyLayer::new())
        .service(handler)
}

/// Serves `listener` with hyper until the task is dropped.
async fn serve(
    listener: tokio::net::TcpListener,
    verifier: Arc<TokenVerifier>,
    runs: Arc<AtomicU64>,
) {
    let app = stack(verifier, runs);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        // The edge: buffer hyper's streaming body (bounded) into `Full<Bytes>` for the stack.
        let edge = service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = match Limited::new(body, MAX_BODY).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(_) => {
                        let mut res = Response::new(AnyBody::from(Bytes::new()));
                        *res.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                        return Ok::<_, Infallible>(res);
                    }
                };
                app.oneshot(Request::from_parts(parts, Full::new(bytes)))
                    .await
            }
        });
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(edge))
                .await;
        });
    }
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
    let runs = Arc::new(AtomicU64::new(0));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(serve(listener, verifier, Arc::clone(&runs)));
    let http = reqwest::Client::builder().no_proxy().build()?;

    // 1. No token: 401 with the RFC 6750 challenge, from the auth layer.
    let res = http
        .post(format!("{base}/orders"))
        .body("{}")
        .send()
        .await?;
    println!(
        "without a token: {} {:?}",
        res.status(),
        res.headers()["www-authenticate"]
    );
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // 2. A write retried with the same X-Request-Id runs once and is replayed.
    let mut bodies = Vec::new();
    for attempt in 1..=2 {
        let res = http
            .post(format!("{base}/orders"))
            .bearer_auth(&token)
            .header("x-request-id", "hyper-order-1")
            .body(r#"{"externalOrderNo":"ERP-1"}"#)
            .send()
            .await?;
        let replayed = res.headers().get("idempotent-replayed").is_some();
        let status = res.status();
        let body = res.text().await?;
        println!("attempt {attempt}: {status} replayed={replayed} {body}");
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(replayed, attempt == 2);
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");

    // 3. Over the quota (10/min, two used): 429 with Retry-After, from the rate limit.
    let mut limited = None;
    for i in 0..12 {
        let res = http
            .post(format!("{base}/orders"))
            .bearer_auth(&token)
            .header("x-request-id", format!("hyper-order-burst-{i}"))
            .body("{}")
            .send()
            .await?;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(res.headers()["retry-after"].to_str()?.to_owned());
            break;
        }
    }
    let retry_after = limited.ok_or("the quota never answered 429")?;
    println!("over the quota: 429, Retry-After: {retry_after}");

    server.abort();
    println!("done: the l2c-core stack served by hyper, no axum");
    Ok(())
}
