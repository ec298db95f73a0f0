//! Unit tests of the limits collector.

#![allow(clippy::unwrap_used)]

use prometheus_client::registry::Registry;

use super::*;

fn render(limits: &Limits) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(limits.metrics_collector()));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    out
}

/// Every limiter has its three decision series and its fail-open series from the first
/// scrape (zeros included), and the values are the layers' own counts.
#[tokio::test]
async fn the_collector_reads_each_layers_own_decisions() {
    use tower::{Layer as _, ServiceExt as _};

    let config = Config {
        rate_limit: "1/min".parse().unwrap(),
        ..Config::default()
    };
    let limits = Limits::new(&config).unwrap();
    let text = render(&limits);
    for limiter in ["api", "token", "lead_source", "export_concurrency"] {
        for outcome in ["allowed", "rejected", "unavailable"] {
            let series = format!(
                "l2c_limit_decisions_total{{limiter=\"{limiter}\",outcome=\"{outcome}\"}} 0"
            );
            assert!(text.contains(&series), "{series} missing in {text}");
        }
        let series = format!("l2c_rate_limit_fail_open_total{{limiter=\"{limiter}\"}} 0");
        assert!(text.contains(&series), "{series} missing in {text}");
    }

    let svc = limits
        .rate_limit
        .layer(tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::empty()))
        }));
    for _ in 0..2 {
        let req = http::Request::builder()
            .extension(AuthenticatedClient::new("acme", l2c_core::Scopes::all()))
            .body(())
            .unwrap();
        svc.clone().oneshot(req).await.unwrap();
    }
    let text = render(&limits);
    assert!(text.contains(r#"l2c_limit_decisions_total{limiter="api",outcome="allowed"} 1"#));
    assert!(text.contains(r#"l2c_limit_decisions_total{limiter="api",outcome="rejected"} 1"#));
    assert!(text.contains(r#"l2c_limit_decisions_total{limiter="token",outcome="allowed"} 0"#));
}
