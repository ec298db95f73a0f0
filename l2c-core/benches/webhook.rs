//! Webhook signing throughput beside raw `hmac` + `sha2` (issue 7 target: ≥ 0.95× raw).
//!
//! Run with: `cargo bench -p l2c-core --bench webhook`
//!
//! sha2 0.10 picks its x86 SHA-NI backend at run time (cpufeatures: `sha`, `sse2`, `ssse3`,
//! `sse4.1`) unless the `force-soft` feature is on, which nothing in this workspace enables;
//! the first line printed says whether this CPU has it.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use l2c_core::api::events::EventType;
use l2c_core::webhook::{WebhookSecret, sign_headers, sign_legacy, sign_standard};
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwIPv1S6yHkZY=";

fn raw_hex(key: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn raw_tag(key: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn signing(c: &mut Criterion) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    println!(
        "x86 SHA extensions (SHA-NI) available: {}",
        std::arch::is_x86_feature_detected!("sha")
    );
    let Ok(secret) = SECRET.parse::<WebhookSecret>() else {
        return;
    };
    let mut group = c.benchmark_group("webhook_sign");
    for size in [1024usize, 16 * 1024] {
        let body: Vec<u8> = (0..size).map(|i| b"{\"a\":1234567890}"[i % 16]).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("raw_hmac_sha2_tag", size),
            &body,
            |b, body| b.iter(|| raw_tag(black_box(secret.legacy_key()), black_box(body))),
        );
        group.bench_with_input(
            BenchmarkId::new("raw_hmac_sha2_hex", size),
            &body,
            |b, body| b.iter(|| raw_hex(black_box(secret.legacy_key()), black_box(body))),
        );
        group.bench_with_input(BenchmarkId::new("sign_legacy", size), &body, |b, body| {
            b.iter(|| sign_legacy(black_box(&secret), black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("sign_standard", size), &body, |b, body| {
            b.iter(|| sign_standard(black_box(&secret), "evt_1", 1_795_654_800, black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("sign_headers", size), &body, |b, body| {
            b.iter(|| {
                sign_headers(
                    &[black_box(&secret)],
                    "evt_1",
                    EventType::OrderCreated,
                    1_795_654_800,
                    black_box(body),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
