//! Cost of the idempotency layer: the replay of a stored 1 KiB response, the first (executing)
//! request, and a GET passing through compared with calling the inner service directly.
//!
//! Run with: `cargo bench -p l2c-core --bench idempotency`
//!
//! Every future here completes on its first poll (in-memory store, ready handler), so they are
//! polled once with a no-op waker: the numbers are the layer's own CPU cost, without an executor.
#![allow(clippy::unwrap_used)] // benchmark set-up, like test code

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use l2c_core::AuthenticatedClient;
use l2c_core::Scopes;
use l2c_core::idempotency::IdempotencyLayer;
use tower::{Layer, Service, service_fn};

type Req = Request<Full<Bytes>>;
type Res = Response<Full<Bytes>>;

fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("benchmark future was not ready on its first poll"),
    }
}

fn request(method: Method, key: Option<&str>, body: &'static [u8]) -> Req {
    let mut builder = Request::builder()
        .method(method)
        .uri("/api/mobile/leads/hook");
    if let Some(key) = key {
        builder = builder.header("x-request-id", key);
    }
    let mut req = builder.body(Full::new(Bytes::from_static(body))).unwrap();
    req.extensions_mut()
        .insert(AuthenticatedClient::new("client-a", Scopes::all()));
    req
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();

    let kib: Bytes = Bytes::from(vec![b'x'; 1024]);
    let handler = service_fn(move |_req: Req| {
        let body = kib.clone();
        async move {
            Ok::<Res, Infallible>(
                Response::builder()
                    .status(StatusCode::CREATED)
                    .header("content-type", "application/json")
                    .header("location", "/api/mobile/leads/1")
                    .body(Full::new(body))
                    .unwrap(),
            )
        }
    });
    let body: &'static [u8] =
        br#"{"source":"DOUYIN","externalLeadId":"dy-1","mobile":"13812345678","name":"Zhang"}"#;

    // The cheapest possible inner service, so any cost the layer adds to a GET would show.
    let trivial = service_fn(|_req: Req| {
        std::future::ready(Ok::<Res, Infallible>(Response::new(Full::default())))
    });
    let mut group = c.benchmark_group("get_pass_through");
    let mut direct = trivial;
    group.bench_function("inner_service_directly", |b| {
        b.iter_batched(
            || request(Method::GET, Some("k"), b""),
            |req| black_box(ready(direct.call(req))),
            BatchSize::SmallInput,
        )
    });
    let mut layered = IdempotencyLayer::new().layer(trivial);
    group.bench_function("through_idempotency_layer", |b| {
        b.iter_batched(
            || request(Method::GET, Some("k"), b""),
            |req| black_box(ready(layered.call(req))),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("post");
    let mut svc = IdempotencyLayer::new().layer(handler.clone());
    let first = ready(svc.call(request(Method::POST, Some("stored-key"), body))).unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    group.bench_function("replay_stored_1KiB_response", |b| {
        b.iter_batched(
            || request(Method::POST, Some("stored-key"), body),
            |req| {
                let res = ready(svc.call(req)).unwrap();
                debug_assert!(res.headers().contains_key("idempotent-replayed"));
                black_box(res)
            },
            BatchSize::SmallInput,
        )
    });
    let counter = AtomicU64::new(0);
    let mut fresh = IdempotencyLayer::new().layer(handler);
    group.bench_function("first_request_1KiB_response", |b| {
        b.iter_batched(
            || {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let mut req = request(Method::POST, None, body);
                req.headers_mut()
                    .insert("x-request-id", n.to_string().parse().unwrap());
                req
            },
            |req| black_box(ready(fresh.call(req))),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
