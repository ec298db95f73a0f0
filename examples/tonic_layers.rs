//! Run with: cargo run --example tonic_layers
//!
//! The `l2c-core` layers in front of a **tonic** gRPC service, served by plain hyper (no axum, no
//! tonic transport): `GrpcRefusalLayer` outermost, then JWT bearer auth, a per-client rate limit
//! and the scope the service needs, around `tonic::server::Grpc` with a hand-written codec (no
//! protoc, no prost: the messages are UTF-8 text).
//!
//! A refusal of the layers reaches a gRPC client the way it understands: HTTP 200 with
//! `grpc-status` UNAUTHENTICATED (16), PERMISSION_DENIED (7) or RESOURCE_EXHAUSTED (8) and the
//! retry delay in `grpc-message` and `retry-after`; a plain HTTP request to the same stack keeps
//! its RFC 9457 problem. It starts on an ephemeral port, drives itself with a real tonic client
//! and with plain HTTP, asserts each answer, and exits.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf as _, BufMut as _, Bytes};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use l2c_core::auth::{
    HmacKey, JwtAuthLayer, RequireScopeLayer, SigningKey, TokenIssuer, TokenVerifier,
};
use l2c_core::grpc::GrpcRefusalLayer;
use l2c_core::rate_limit::{KeyedRateLimitLayer, Quota};
use l2c_core::{AuthenticatedClient, ClientId, Scope, Scopes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, service_fn};

const ISSUER: &str = "https://platform.example";
const AUDIENCE: &str = "l2c";
/// The gRPC method served.
const METHOD: &str = "/l2c.v1.Orders/Status";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// gRPC messages as UTF-8 text: a codec needs no generated code.
#[derive(Debug, Clone, Copy, Default)]
struct TextCodec;

impl Codec for TextCodec {
    type Encode = String;
    type Decode = String;
    type Encoder = TextCodec;
    type Decoder = TextCodec;

    fn encoder(&mut self) -> Self::Encoder {
        TextCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        TextCodec
    }
}

impl Encoder for TextCodec {
    type Item = String;
    type Error = Status;

    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for TextCodec {
    type Item = String;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Status::invalid_argument("the message is not UTF-8"))
    }
}

/// The unary gRPC method: the status of an order, for the authenticated client.
#[derive(Debug, Clone, Copy)]
struct OrderStatus;

impl tonic::server::UnaryService<String> for OrderStatus {
    type Response = String;
    type Future = std::future::Ready<Result<tonic::Response<String>, Status>>;

    fn call(&mut self, req: tonic::Request<String>) -> Self::Future {
        let client = req
            .extensions()
            .get::<AuthenticatedClient>()
            .map(|c| c.client_id.to_string())
            .unwrap_or_default();
        let order = req.into_inner();
        std::future::ready(Ok(tonic::Response::new(format!(
            "{order}: SCHEDULING (for {client})"
        ))))
    }
}

/// A response body the layers can build refusals from (`From<Bytes>`, `Default`) and hyper can
/// send, whatever body the service below produced.
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

impl Default for AnyBody {
    fn default() -> Self {
        Self::from(Bytes::new())
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

/// The application: the tonic method behind the l2c-core stack.
fn stack(
    verifier: Arc<TokenVerifier>,
) -> BoxCloneService<Request<Incoming>, Response<AnyBody>, Infallible> {
    let grpc = service_fn(|req: Request<Incoming>| async move {
        let res = if req.uri().path() == METHOD {
            let mut grpc = tonic::server::Grpc::new(TextCodec);
            grpc.unary(OrderStatus, req).await
        } else {
            Status::unimplemented(format!("no method {}", req.uri().path())).into_http()
        };
        Ok::<_, Infallible>(res.map(AnyBody::new))
    });
    // Outermost first: refusals in gRPC form for gRPC requests, auth (a 401 costs no quota),
    // the quota (three calls a minute, so the example reaches it), the scope.
    ServiceBuilder::new()
        .layer(BoxCloneService::layer())
        .layer(GrpcRefusalLayer::new())
        .layer(JwtAuthLayer::new(verifier))
        .layer(KeyedRateLimitLayer::new(Quota::per_minute(3)))
        .layer(RequireScopeLayer::one(Scope::OrdersRead))
        .service(grpc)
}

/// Serves `listener` with hyper (HTTP/1.1 and HTTP/2) until the task is dropped.
async fn serve(listener: tokio::net::TcpListener, verifier: Arc<TokenVerifier>) {
    let app = stack(verifier);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app))
                .await;
        });
    }
}

/// One unary call with a real tonic client over an HTTP/2 connection.
async fn call(
    grpc: &mut tonic::client::Grpc<
        HttpClient<hyper_util::client::legacy::connect::HttpConnector, tonic::body::Body>,
    >,
    token: Option<&str>,
    order: &str,
) -> Result<String, Status> {
    let mut req = tonic::Request::new(order.to_owned());
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("bad token"))?;
        req.metadata_mut().insert("authorization", value);
    }
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let res = grpc
        .unary(req, http::uri::PathAndQuery::from_static(METHOD), TextCodec)
        .await?;
    Ok(res.into_inner())
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
    let no_scope = issuer
        .issue(
            &ClientId::new("hub-demo"),
            Scopes::from_iter([Scope::LeadsWrite]),
        )
        .access_token;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(serve(listener, verifier));

    let http2 = HttpClient::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<tonic::body::Body>();
    let mut grpc = tonic::client::Grpc::with_origin(http2, format!("http://{addr}").parse()?);

    // 1. No token: UNAUTHENTICATED, from the auth layer.
    let status = call(&mut grpc, None, "ord_1")
        .await
        .expect_err("a call without a token must be refused");
    println!(
        "without a token: {:?} {:?}",
        status.code(),
        status.message()
    );
    assert_eq!(status.code(), Code::Unauthenticated);

    // 2. A token without `orders:read`: PERMISSION_DENIED, from the scope layer.
    let status = call(&mut grpc, Some(&no_scope), "ord_1")
        .await
        .expect_err("a call without the scope must be refused");
    println!(
        "without the scope: {:?} {:?}",
        status.code(),
        status.message()
    );
    assert_eq!(status.code(), Code::PermissionDenied);

    // 3. Within the quota the service answers; over it, RESOURCE_EXHAUSTED with the delay.
    for _ in 0..3 {
        let answer = call(&mut grpc, Some(&token), "ord_1").await?;
        println!("answer: {answer}");
        assert!(answer.contains("erp-demo"), "{answer}");
    }
    let status = call(&mut grpc, Some(&token), "ord_1")
        .await
        .expect_err("the fourth call in a minute must be refused");
    println!("over the quota: {:?} {:?}", status.code(), status.message());
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("retry after"),
        "{}",
        status.message()
    );
    assert!(status.metadata().get("retry-after").is_some());

    // 4. Plain HTTP to the same stack keeps its RFC 9457 problem.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let res = http
        .post(format!("http://{addr}{METHOD}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await?;
    println!(
        "plain HTTP without a token: {} {:?}",
        res.status(),
        res.headers()["content-type"]
    );
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    server.abort();
    println!("tonic_layers: ok");
    Ok(())
}
