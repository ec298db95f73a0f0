//! Property tests over everything the server parses from the network, through a real server on
//! each available database: token requests (JSON, form, Basic), page parameters, webhook URLs,
//! lead and order bodies. Whatever is sent, the answer is never a 5xx, and a refusal is a body
//! that names what was wrong: RFC 6749 `error` on the token endpoint, a problem (`code`,
//! `detail`) everywhere else.
//!
//! Shrunk failing cases are kept in `tests/proptest-regressions/properties.txt` and replayed
//! first.

#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;

use base64::Engine as _;
use l2c_core::Scopes;
use l2c_core::rate_limit::Quota;
use l2c_server::testing::{Backend, TestOptions, TestServer};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// How many cases each property runs per database.
const CASES: u32 = 160;

struct Target {
    backend: Backend,
    server: TestServer,
    client_id: String,
    token: String,
}

/// Runs `property` over `strategy` against a fresh server on every available database, then
/// stops the servers (dropping their databases) whether the property held or not.
fn check<S: Strategy>(
    name: &str,
    strategy: S,
    property: impl Fn(&Target, S::Value) -> Result<(), TestCaseError>,
) {
    let targets: Vec<Target> = RT.block_on(async {
        let mut targets = Vec::new();
        for backend in Backend::available() {
            let mut options = TestOptions::default();
            // Generous quotas: these tests are about parsing, not limits.
            options.config.rate_limit = "100000/s".parse::<Quota>().unwrap();
            options.config.token_rate_limit = "100000/s".parse::<Quota>().unwrap();
            let server = TestServer::start_with(backend, options).await;
            let client = server.create_client(Scopes::all()).await;
            let token = server.token(&client).await;
            targets.push(Target {
                backend,
                server,
                client_id: client.id.clone(),
                token,
            });
        }
        targets
    });
    let mut failure = None;
    for target in &targets {
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            source_file: Some(file!()),
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/proptest-regressions/properties.txt"
            )))),
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, |value| property(target, value)) {
            failure = Some(format!("{name} on {:?}: {e}", target.backend));
            break;
        }
    }
    RT.block_on(async {
        for target in targets {
            target.server.stop().await;
        }
    });
    if let Some(failure) = failure {
        panic!("{failure}");
    }
}

/// The runtime the servers of this file run on; each test blocks on it from its own thread.
static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

/// Sends a request and returns its status and JSON body (`Value::Null` when not JSON).
fn send(req: reqwest::RequestBuilder) -> (u16, Value, String) {
    RT.block_on(async {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = res.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            content_type,
        )
    })
}

/// A 4xx problem document naming what was wrong.
fn assert_problem(status: u16, body: &Value, content_type: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "a 5xx: {} {}", status, body);
    if status >= 400 {
        prop_assert_eq!(content_type, "application/problem+json", "{}", body);
        prop_assert!(
            body["code"].as_str().is_some_and(|c| !c.is_empty()),
            "no code: {}",
            body
        );
        prop_assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "no detail: {}",
            body
        );
        prop_assert_eq!(body["status"].as_u64(), Some(u64::from(status)));
    }
    Ok(())
}

/// Text a partner could send: mostly plausible, with control characters (NUL included), quotes,
/// non-BMP characters, RTL marks and very long runs mixed in.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "\\PC{0,24}",
        2 => "[a-zA-Z0-9_-]{1,40}",
        2 => prop::collection::vec(
            prop_oneof![Just('\u{0}'), Just('\n'), Just('\u{1b}'), Just('"'), Just('\u{202e}'), Just('😀'), any::<char>()],
            0..16
        ).prop_map(|v| v.into_iter().collect()),
        1 => "[a]{300,5000}",
    ]
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field that is usually well-formed and sometimes anything at all.
fn field(good: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => good.prop_map(Some),
        2 => json_value().prop_map(Some),
        1 => Just(None),
    ]
}

fn object(fields: Vec<(&'static str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect(),
    )
}

fn lead_body() -> impl Strategy<Value = Value> {
    (
        field(
            prop::sample::select(vec![
                "DOUYIN",
                "XIAOHONGSHU",
                "WECOM",
                "OTHER",
                "douyin",
                "",
            ])
            .prop_map(Value::from),
        ),
        field(text().prop_map(Value::from)),
        field(text().prop_map(Value::from)),
        field(
            prop_oneof![
                "1[3-9][0-9]{9}",
                "\\+86 1[3-9][0-9] [0-9]{4} [0-9]{4}",
                "[0-9 +-]{0,20}",
                text(),
            ]
            .prop_map(Value::from),
        ),
        field(text().prop_map(Value::from)),
        field(prop::collection::vec((text(), text()), 0..4).prop_map(|v| {
            Value::Array(
                v.into_iter()
                    .map(|(label, value)| json!({"label": label, "value": value}))
                    .collect(),
            )
        })),
        field(
            prop_oneof![
                Just("2026-11-26T10:00:00+08:00".to_owned()),
                "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](Z|\\+08:00|)",
                text(),
            ]
            .prop_map(Value::from),
        ),
    )
        .prop_map(|(source, external, name, mobile, city, form, submitted)| {
            object(vec![
                ("source", source),
                ("externalLeadId", external),
                ("name", name),
                ("mobile", mobile),
                ("city", city),
                ("formFields", form),
                ("submittedAt", submitted),
            ])
        })
}

fn order_body() -> impl Strategy<Value = Value> {
    let status = prop::sample::select(vec![
        "DEPOSIT_PAID",
        "MEASURE_PENDING",
        "SCHEDULING",
        "COMPLETED",
        "CANCELLED",
        "NOPE",
    ]);
    let payment_status = prop::sample::select(vec![
        "UNPAID",
        "DEPOSIT_PAID",
        "PARTIALLY_PAID",
        "FULLY_PAID",
        "REFUNDED",
        "nope",
    ]);
    let amount = prop_oneof![0i64..10_000_000, any::<i64>()];
    (
        field("ERP-[A-Z0-9]{1,12}|\\PC{0,20}".prop_map(Value::from)),
        field(status.prop_map(Value::from)),
        field(payment_status.prop_map(Value::from)),
        field((amount.clone(), amount.clone(), amount.clone(), prop::sample::select(vec!["CNY", "USD", ""]))
            .prop_map(|(total, deposit, paid, currency)| json!({"total": total, "deposit": deposit, "paid": paid, "currency": currency}))),
        field(prop_oneof![0i64..1000, any::<i64>()].prop_map(Value::from)),
        field((text(), "1[3-9][0-9]{9}|\\PC{0,12}").prop_map(|(name, mobile)| json!({"name": name, "mobile": mobile}))),
        field(prop::collection::vec((
            prop::sample::select(vec!["DEPOSIT", "FINAL", "OTHER"]),
            prop::sample::select(vec!["WECHAT_PAY", "ALIPAY", "BANK_TRANSFER", "CASH"]),
            amount,
            "wx-[0-9]{1,8}|\\PC{0,12}",
        ), 0..3).prop_map(|v| Value::Array(v.into_iter().map(|(kind, method, amount, id)| json!({
            "kind": kind, "method": method, "amount": amount, "channelTransactionId": id,
            "paidAt": "2026-11-26T10:05:00+08:00"
        })).collect()))),
    )
        .prop_map(|(no, status, payment_status, amounts, version, customer, payments)| {
            object(vec![
                ("externalOrderNo", no),
                ("status", status),
                ("paymentStatus", payment_status),
                ("amounts", amounts),
                ("version", version),
                ("customer", customer),
                ("payments", payments),
            ])
        })
}

fn post_json(target: &Target, path: &str, body: &Value) -> (u16, Value, String) {
    let req = target
        .server
        .http()
        .post(target.server.url(path))
        .bearer_auth(&target.token)
        .header("x-request-id", uuid::Uuid::new_v4().to_string())
        .json(body);
    send(req)
}

#[test]
fn lead_bodies_never_5xx_and_refusals_name_the_problem() {
    check("lead bodies", lead_body(), |target, body| {
        let (status, res, content_type) = post_json(target, "/api/mobile/leads/hook", &body);
        assert_problem(status, &res, &content_type)?;
        prop_assert!(
            matches!(status, 200 | 201 | 400 | 413 | 422),
            "{} {}",
            status,
            res
        );
        Ok(())
    });
}

#[test]
fn order_bodies_never_5xx_and_refusals_name_the_problem() {
    check("order bodies", order_body(), |target, body| {
        let (status, res, content_type) = post_json(target, "/api/mobile/orders/sync", &body);
        assert_problem(status, &res, &content_type)?;
        prop_assert!(
            matches!(status, 200 | 201 | 400 | 409 | 413 | 422),
            "{} {}",
            status,
            res
        );
        Ok(())
    });
}

#[test]
fn raw_bodies_never_5xx() {
    let strategy = (
        prop::collection::vec(any::<u8>(), 0..256),
        prop::sample::select(vec![
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
        ]),
        prop::sample::select(vec![
            "/api/mobile/leads/hook",
            "/api/mobile/orders/sync",
            "/api/mobile/webhooks",
        ]),
    );
    check(
        "raw bodies",
        strategy,
        |target, (bytes, content_type, path)| {
            let mut req = target
                .server
                .http()
                .post(target.server.url(path))
                .bearer_auth(&target.token)
                .header("x-request-id", uuid::Uuid::new_v4().to_string())
                .body(bytes);
            if !content_type.is_empty() {
                req = req.header("content-type", content_type);
            }
            let (status, res, ct) = send(req);
            assert_problem(status, &res, &ct)?;
            prop_assert!(status >= 400, "garbage accepted: {} {}", status, res);
            Ok(())
        },
    );
}

#[test]
fn page_parameters_are_200_or_a_400_naming_the_parameter() {
    let param = prop_oneof![
        (0i64..200).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        text(),
        Just(String::new()),
    ];
    check(
        "page parameters",
        (param.clone(), param),
        |target, (page, page_size)| {
            let req = target
                .server
                .http()
                .get(target.server.url("/api/mobile/showroom/items"))
                .bearer_auth(&target.token)
                .query(&[("page", page.as_str()), ("pageSize", page_size.as_str())]);
            let (status, res, ct) = send(req);
            assert_problem(status, &res, &ct)?;
            let page_ok = page
                .parse::<u64>()
                .is_ok_and(|p| (1..=1_000_000).contains(&p));
            let size_ok = page_size
                .parse::<u64>()
                .is_ok_and(|s| (1..=100).contains(&s));
            if page_ok && size_ok {
                prop_assert_eq!(status, 200, "{}", res);
            } else {
                prop_assert_eq!(status, 400, "{}", res);
                let detail = res["detail"].as_str().unwrap_or("");
                prop_assert!(
                    detail.contains("page") || detail.contains("pageSize"),
                    "the detail names no parameter: {}",
                    detail
                );
            }
            Ok(())
        },
    );
}

#[test]
fn webhook_urls_are_201_or_a_4xx_naming_the_problem() {
    let host = prop_oneof![
        Just("127.0.0.1".to_owned()),
        Just("10.0.0.1".to_owned()),
        Just("169.254.169.254".to_owned()),
        Just("[::1]".to_owned()),
        Just("[::ffff:127.0.0.1]".to_owned()),
        Just("0x7f.1".to_owned()),
        Just("2130706433".to_owned()),
        Just("017700000001".to_owned()),
        Just("localhost".to_owned()),
        Just("8.8.8.8".to_owned()),
        Just("[2001:4860:4860::8888]".to_owned()),
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
    ];
    let url = prop_oneof![
        4 => (prop::sample::select(vec!["https", "http", "ftp", "javascript", "HTTPS"]), host, "(:[0-9]{1,6})?", "(/\\PC{0,20})?")
            .prop_map(|(scheme, host, port, path)| format!("{scheme}://{host}{port}{path}")),
        1 => text(),
    ];
    let events = prop_oneof![
        Just(json!(["ORDER_CREATED"])),
        Just(json!([])),
        Just(json!(["NOPE"])),
        json_value(),
    ];
    check("webhook urls", (url, events), |target, (url, events)| {
        let body = json!({"url": url, "events": events});
        let (status, res, ct) = post_json(target, "/api/mobile/webhooks", &body);
        assert_problem(status, &res, &ct)?;
        if status == 201 {
            // Only public https destinations are accepted by default; keep under the cap.
            prop_assert!(url.to_ascii_lowercase().starts_with("https://"), "{}", url);
            let id = res["id"].as_str().unwrap().to_owned();
            let req = target
                .server
                .http()
                .delete(target.server.url(&format!("/api/mobile/webhooks/{id}")))
                .bearer_auth(&target.token);
            let (deleted, _, _) = send(req);
            prop_assert!(deleted == 204 || deleted == 200, "delete: {}", deleted);
        } else {
            prop_assert!(matches!(status, 400 | 413 | 422), "{} {}", status, res);
        }
        Ok(())
    });
}

/// The token endpoint answers every request with RFC 6749's error shape (or a token).
#[test]
fn token_requests_never_5xx_and_keep_the_rfc6749_shape() {
    let form_pairs = prop::collection::vec(
        (
            prop::sample::select(vec![
                "grant_type",
                "client_id",
                "client_secret",
                "scope",
                "x",
            ])
            .prop_map(str::to_owned),
            text(),
        ),
        0..5,
    );
    let request = prop_oneof![
        // JSON with any of the fields, any values.
        (
            field(
                prop::sample::select(vec!["client_credentials", "password", ""])
                    .prop_map(Value::from)
            ),
            field(text().prop_map(Value::from)),
            field(text().prop_map(Value::from)),
            field(text().prop_map(Value::from))
        )
            .prop_map(|(grant, id, secret, scope)| (
                0u8,
                object(vec![
                    ("grant_type", grant),
                    ("client_id", id),
                    ("client_secret", secret),
                    ("scope", scope),
                ])
                .to_string()
                .into_bytes(),
                String::new()
            )),
        // A form.
        form_pairs.prop_map(|pairs| (
            1u8,
            serde_urlencoded::to_string(&pairs)
                .unwrap_or_default()
                .into_bytes(),
            String::new()
        )),
        // HTTP Basic with any user and password.
        (text(), text()).prop_map(|(id, secret)| (
            2u8,
            b"grant_type=client_credentials".to_vec(),
            format!("{id}:{secret}")
        )),
        // Garbage.
        prop::collection::vec(any::<u8>(), 0..128).prop_map(|b| (3u8, b, String::new())),
    ];
    check("token requests", request, |target, (kind, body, basic)| {
        let mut req = target
            .server
            .http()
            .post(target.server.url("/api/oauth/token"))
            .body(body);
        req = match kind {
            0 | 3 => req.header("content-type", "application/json"),
            _ => req.header("content-type", "application/x-www-form-urlencoded"),
        };
        if kind == 2 {
            let credentials = base64::engine::general_purpose::STANDARD.encode(basic.as_bytes());
            req = req.header("authorization", format!("Basic {credentials}"));
        }
        let (status, res, _) = send(req);
        prop_assert!(status < 500, "a 5xx: {} {}", status, res);
        if status == 200 {
            prop_assert!(res["access_token"].is_string(), "{}", res);
        } else {
            let error = res["error"].as_str().unwrap_or("");
            prop_assert!(
                matches!(
                    error,
                    "invalid_request"
                        | "invalid_client"
                        | "invalid_grant"
                        | "unauthorized_client"
                        | "unsupported_grant_type"
                        | "invalid_scope"
                ),
                "not an RFC 6749 error: {} {}",
                status,
                res
            );
        }
        // Never this client's secret echoed or another's id revealed.
        prop_assert!(!res.to_string().contains(&target.client_id) || status == 200);
        Ok(())
    });
}
