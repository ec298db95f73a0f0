use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use tower::{ServiceBuilder, ServiceExt as _, service_fn};

use super::*;
use crate::clock::MockClock;
use crate::request_id::RequestId;

fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap()
}

fn config(clock: &MockClock) -> Deprecation {
    Deprecation::new(utc(2026, 12, 1, 0, 0, 0), utc(2027, 6, 2, 0, 0, 0))
        .unwrap()
        .policy_link("https://developer.example.com/deprecations/v1")
        .unwrap()
        .successor("/api/v2/showroom/items")
        .unwrap()
        .with_clock(clock.clone())
}

type Svc = tower::util::BoxCloneService<Request<()>, Response<Full<Bytes>>, Infallible>;

fn app(clock: &MockClock, calls: Arc<AtomicUsize>) -> Svc {
    let svc = ServiceBuilder::new()
        .layer(DeprecationLayer::new(config(clock)))
        .service(service_fn(move |_req: Request<()>| {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let mut res = Response::new(Full::new(Bytes::from_static(b"[1,2,3]")));
                res.headers_mut().insert(
                    header::LINK,
                    HeaderValue::from_static("</api/v1/showroom/items?page=2>; rel=\"next\""),
                );
                Ok::<_, Infallible>(res)
            }
        }));
    tower::util::BoxCloneService::new(svc)
}

#[test]
fn the_six_month_window_is_exact() {
    // Calendar rule wins: 1 March → 1 September is 184 days.
    assert_eq!(
        Deprecation::minimum_sunset(utc(2026, 3, 1, 0, 0, 0)).unwrap(),
        utc(2026, 9, 1, 0, 0, 0)
    );
    // 183-day floor wins: 1 January → 1 July is only 181 days.
    assert_eq!(
        Deprecation::minimum_sunset(utc(2026, 1, 1, 12, 0, 0)).unwrap(),
        utc(2026, 7, 3, 12, 0, 0)
    );
    // 31 August has no 31 February; the calendar gives 28 February, the floor 2 March.
    assert_eq!(
        Deprecation::minimum_sunset(utc(2026, 8, 31, 0, 0, 0)).unwrap(),
        utc(2027, 3, 2, 0, 0, 0)
    );

    // 1 December → 1 June is six calendar months but only 182 days: refused; 2 June is the
    // earliest sunset.
    let dep = utc(2026, 12, 1, 0, 0, 0);
    assert!(Deprecation::new(dep, utc(2027, 6, 2, 0, 0, 0)).is_ok());
    let err = Deprecation::new(dep, utc(2027, 6, 1, 0, 0, 0)).unwrap_err();
    assert_eq!(
        err,
        ConfigError::SunsetTooEarly {
            deprecated: dep,
            sunset: utc(2027, 6, 1, 0, 0, 0),
            minimum: utc(2027, 6, 2, 0, 0, 0),
        }
    );
    assert!(Deprecation::new(dep, utc(2027, 6, 1, 23, 59, 59)).is_err());
    // Sunset before deprecation, and equal to it.
    assert!(Deprecation::new(dep, utc(2026, 11, 1, 0, 0, 0)).is_err());
    assert!(Deprecation::new(dep, dep).is_err());
}

#[test]
fn bad_links_are_refused() {
    let d = || Deprecation::new(utc(2026, 12, 1, 0, 0, 0), utc(2027, 6, 2, 0, 0, 0)).unwrap();
    for bad in ["", "has space", "<x>", "a\"b", "/v2\r\nX-Evil: 1"] {
        assert_eq!(
            d().successor(bad).unwrap_err(),
            ConfigError::InvalidLink {
                rel: "successor-version"
            },
            "{bad:?}"
        );
        assert!(d().policy_link(bad).is_err());
    }
}

#[tokio::test]
async fn headers_are_added_and_behaviour_is_unchanged_before_sunset() {
    let clock = MockClock::at_unix(1_790_000_000); // before the deprecation date: announced ahead
    let calls = Arc::new(AtomicUsize::new(0));
    let res = app(&clock, Arc::clone(&calls))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Deprecation is a Structured Field Date (RFC 9651 §3.3.7), checked with an SF parser.
    let value = res.headers()["deprecation"].to_str().unwrap().to_owned();
    let item: sfv::Item = sfv::Parser::new(&value).parse_item().unwrap();
    match item.bare_item {
        sfv::BareItem::Date(date) => {
            assert_eq!(
                i64::from(date.unix_seconds()),
                utc(2026, 12, 1, 0, 0, 0).timestamp()
            );
        }
        other => panic!("Deprecation is not an SF Date: {other:?}"),
    }
    assert!(item.params.is_empty());

    // Sunset is an IMF-fixdate in GMT.
    let sunset = res.headers()["sunset"].to_str().unwrap();
    assert_eq!(sunset, "Wed, 02 Jun 2027 00:00:00 GMT");
    assert_eq!(
        DateTime::parse_from_rfc2822(sunset).unwrap(),
        utc(2027, 6, 2, 0, 0, 0)
    );

    // The handler's own Link survives; ours are appended.
    let links: Vec<&str> = res
        .headers()
        .get_all(header::LINK)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        links,
        [
            "</api/v1/showroom/items?page=2>; rel=\"next\"",
            "<https://developer.example.com/deprecations/v1>; rel=\"deprecation\"; type=\"text/html\"",
            "</api/v2/showroom/items>; rel=\"successor-version\"",
        ]
    );
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes().as_ref(),
        b"[1,2,3]"
    );

    // One second before the sunset, still served.
    clock.set_unix(utc(2027, 6, 2, 0, 0, 0).timestamp() as u64 - 1);
    let res = app(&clock, Arc::clone(&calls))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn gone_after_sunset_with_the_successor() {
    let clock = MockClock::at_unix(utc(2027, 6, 2, 0, 0, 0).timestamp() as u64);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut req = Request::new(());
    req.extensions_mut().insert(RequestId::new("req-9"));
    let res = app(&clock, Arc::clone(&calls)).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.headers()["sunset"], "Wed, 02 Jun 2027 00:00:00 GMT");
    assert!(
        res.headers()
            .get_all(header::LINK)
            .iter()
            .any(|v| v == "</api/v2/showroom/items>; rel=\"successor-version\"")
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 410);
    assert_eq!(problem["code"], "api_version_sunset");
    assert_eq!(problem["successor"], "/api/v2/showroom/items");
    assert_eq!(problem["requestId"], "req-9");
}
