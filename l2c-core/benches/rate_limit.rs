//! The in-memory limiter check beside governor's keyed limiter, in the same run.
//!
//! Run with: `cargo bench -p l2c-core --bench rate_limit -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::num::NonZeroU32;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::{DefaultKeyedRateLimiter, RateLimiter};
use l2c_core::rate_limit::{GcraParams, MemoryStore, Quota};

const MANY: usize = 100_000;

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("client-{i:08}")).collect()
}

/// (ours, governor's) quotas: one that always allows, one that rejects after the first request.
fn quotas(allowed: bool) -> (Quota, governor::Quota) {
    if allowed {
        (
            Quota::per_second(u32::MAX),
            governor::Quota::per_second(NonZeroU32::MAX),
        )
    } else {
        (
            Quota::per_hour(1),
            governor::Quota::per_hour(NonZeroU32::MIN),
        )
    }
}

fn bench(c: &mut Criterion) {
    for (n, label) in [(1, "1 key"), (MANY, "100k keys")] {
        let keys = keys(n);
        for allowed in [true, false] {
            let outcome = if allowed { "allowed" } else { "rejected" };
            let (ours, theirs) = quotas(allowed);
            let mut group = c.benchmark_group(format!("check/{label}/{outcome}"));

            let store = MemoryStore::new();
            let params = GcraParams::of(&ours);
            for k in &keys {
                store.check_key(k, params);
            }
            if n == MANY && !allowed {
                eprintln!(
                    "l2c MemoryStore: {} keys, {} table bytes, {} bytes per key",
                    store.len(),
                    store.table_bytes(),
                    store.table_bytes() / store.len().max(1)
                );
            }
            let mut i = 0;
            group.bench_function("l2c", |b| {
                b.iter(|| {
                    i = (i + 1) % n;
                    black_box(store.check_key(black_box(&keys[i]), params))
                })
            });

            let governor: DefaultKeyedRateLimiter<String> = RateLimiter::keyed(theirs);
            for k in &keys {
                let _ = governor.check_key(k);
            }
            let mut i = 0;
            group.bench_function("governor", |b| {
                b.iter(|| {
                    i = (i + 1) % n;
                    black_box(governor.check_key(black_box(&keys[i])).is_ok())
                })
            });
            group.finish();
        }
    }
}

/// The whole layer: an allowed request served by a trivial handler versus a rejected one (the
/// 429 path must cost no more than serving).
fn layer(c: &mut Criterion) {
    use bytes::Bytes;
    use futures_util::FutureExt;
    use http::{Request, Response};
    use http_body_util::Full;
    use l2c_core::rate_limit::KeyedRateLimitLayer;
    use l2c_core::{AuthenticatedClient, Scopes};
    use tower::{Layer, Service, service_fn};

    let client = AuthenticatedClient::new("acme", Scopes::all());
    let mut group = c.benchmark_group("layer");
    for (label, quota) in [
        ("served", Quota::per_second(u32::MAX)),
        // 100/s from one client sending millions per second: all but 100 a second rejected.
        ("rejected", Quota::per_second(100)),
    ] {
        let mut svc =
            KeyedRateLimitLayer::new(quota).layer(service_fn(|_req: Request<()>| async {
                // `Full<Bytes>` takes the prebuilt 429 body without a copy, as axum's `Body` does.
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"{\"ok\":true}",
                ))))
            }));
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut req = Request::new(());
                req.extensions_mut().insert(client.clone());
                let res = svc.call(req).now_or_never();
                black_box(res.map(|r| r.map(|r| r.status())))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, layer);
criterion_main!(benches);
