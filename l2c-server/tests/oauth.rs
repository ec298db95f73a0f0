//! `POST /api/oauth/token` over real HTTP, on SQLite and (when `L2C_TEST_DATABASE_URL` is set)
//! PostgreSQL: the happy paths and every error of PROTOCOLS.md A1–A13 and A15.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::Request;
use http_body_util::BodyExt;
use l2c_core::{Scope, Scopes};
use l2c_server::config::Config;
use l2c_server::routes::oauth::request::basic_authorization;
use l2c_server::store::Db;
use l2c_server::testing::{Backend, TestClient, TestDb, TestServer};
use l2c_server::{AppState, app};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A secret with the characters that break naive Basic handling.
const PLUS_SLASH_SECRET: &str = "a+b/c=d%e f+/+/0123456789abcdefghijklmnopqrstuvwxyz";

fn token_request(s: &TestServer) -> RequestBuilder {
    s.http().post(s.url("/api/oauth/token"))
}

/// Asserts the headers every token endpoint response carries (A13).
fn assert_no_store(res: &Response) {
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
}

/// Asserts an RFC 6749 §5.2 error and returns its body.
async fn expect_error(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "expected {status} {code}");
    assert_no_store(&res);
    assert_eq!(res.headers()["content-type"], "application/json");
    if status == 401 {
        assert_eq!(res.headers()["www-authenticate"], "Basic realm=\"l2c\"");
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    if let Some(d) = body["error_description"].as_str() {
        assert!(!d.contains('"') && !d.contains('\\'), "A10: {d}");
    }
    body
}

/// Asserts a successful token response (A11, A12) and that the token opens the API.
async fn expect_token(s: &TestServer, res: Response, scopes: Scopes) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    assert_no_store(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], json!(7200), "a JSON number");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], scopes.to_string());
    assert!(body.get("refresh_token").is_none(), "A12");
    let token = body["access_token"].as_str().unwrap().to_owned();
    // The token is accepted by the protected API (404: authenticated, no such route).
    let res = s
        .http()
        .get(s.url("/api/mobile/no-such-route"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    token
}

async fn with_each_backend<F, Fut>(f: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = TestServer>,
{
    for backend in Backend::available() {
        eprintln!("backend: {backend:?}");
        let server = TestServer::start(backend).await;
        f(server).await.stop().await;
    }
}

#[tokio::test]
async fn json_form_and_basic_all_issue_tokens() {
    with_each_backend(|s| async move {
        let c = s.create_client_with_secret(Scopes::all(), PLUS_SLASH_SECRET).await;

        // JSON, as the L2C spec shows.
        let res = token_request(&s)
            .json(&json!({"grant_type": "client_credentials", "client_id": c.id, "client_secret": c.secret}))
            .send()
            .await
            .unwrap();
        expect_token(&s, res, Scopes::all()).await;

        // application/x-www-form-urlencoded (A3); reqwest percent-encodes `+` and `/`.
        let res = token_request(&s)
            .form(&[("grant_type", "client_credentials"), ("client_id", &c.id), ("client_secret", &c.secret)])
            .send()
            .await
            .unwrap();
        expect_token(&s, res, Scopes::all()).await;

        // HTTP Basic with the credentials form-urlencoded first (A4).
        let res = token_request(&s)
            .header("authorization", basic_authorization(&c.id, &c.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        expect_token(&s, res, Scopes::all()).await;
        s
    })
    .await;
}

#[tokio::test]
async fn scope_narrows_the_token_and_unknown_parameters_are_ignored() {
    with_each_backend(|s| async move {
        let c = s.create_client(Scopes::all()).await;
        let narrow = Scopes::one(Scope::OrdersRead).with(Scope::LeadsWrite);
        let res = token_request(&s)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", &c.secret),
                ("scope", "orders:read leads:write"),
                ("audience", "ignored"),
            ])
            .send()
            .await
            .unwrap();
        expect_token(&s, res, narrow).await;
        s
    })
    .await;
}

fn json_creds(c: &TestClient) -> Value {
    json!({"grant_type": "client_credentials", "client_id": c.id, "client_secret": c.secret})
}

#[tokio::test]
async fn every_request_error_has_its_rfc_6749_code() {
    with_each_backend(|s| async move {
        let c = s.create_client(Scopes::one(Scope::OrdersRead)).await;
        let url = s.url("/api/oauth/token");

        // A1: only POST.
        let res = s.http().get(&url).send().await.unwrap();
        assert_eq!(res.headers()["allow"], "POST");
        expect_error(res, 405, "invalid_request").await;

        // A5: credentials never in the URL.
        let res = s
            .http()
            .post(format!("{url}?client_secret={}", c.secret))
            .json(&json!({"grant_type": "client_credentials", "client_id": c.id}))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "invalid_request").await;

        // Conflict 1: other content types.
        let res = token_request(&s)
            .header("content-type", "text/plain")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        expect_error(res, 415, "invalid_request").await;

        // A8: malformed body.
        let res = token_request(&s)
            .header("content-type", "application/json")
            .body("{\"grant_type\":")
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "invalid_request").await;

        // A7: repeated form parameter, repeated JSON member.
        let res = token_request(&s)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&grant_type=client_credentials&client_id={}&client_secret={}",
                c.id, c.secret
            ))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "invalid_request").await;
        let res = token_request(&s)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"grant_type":"client_credentials","client_id":"{}","client_id":"{}","client_secret":"{}"}}"#,
                c.id, c.id, c.secret
            ))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "invalid_request").await;

        // A8: grant_type absent / empty vs unsupported.
        let res = token_request(&s)
            .json(&json!({"client_id": c.id, "client_secret": c.secret}))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "invalid_request").await;
        let res = token_request(&s)
            .json(&json!({"grant_type": "", "client_id": c.id, "client_secret": c.secret}))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "invalid_request").await;
        let res = token_request(&s)
            .json(&json!({"grant_type": "password", "client_id": c.id, "client_secret": c.secret}))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "unsupported_grant_type").await;

        // A6: two authentication methods.
        let res = token_request(&s)
            .header("authorization", basic_authorization(&c.id, &c.secret))
            .json(&json_creds(&c))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "invalid_request").await;

        // A8/A9: no client authentication, wrong secret (body and Basic), unknown client,
        // and an empty secret, which counts as a missing one (A7).
        let res = token_request(&s)
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap();
        expect_error(res, 401, "invalid_client").await;
        let res = token_request(&s)
            .json(&json!({"grant_type": "client_credentials", "client_id": c.id, "client_secret": "wrong"}))
            .send()
            .await
            .unwrap();
        expect_error(res, 401, "invalid_client").await;
        let res = token_request(&s)
            .header("authorization", basic_authorization(&c.id, "wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        expect_error(res, 401, "invalid_client").await;
        let res = token_request(&s)
            .json(&json!({"grant_type": "client_credentials", "client_id": "l2c_nobody", "client_secret": c.secret}))
            .send()
            .await
            .unwrap();
        expect_error(res, 401, "invalid_client").await;
        let res = token_request(&s)
            .form(&[("grant_type", "client_credentials"), ("client_id", &c.id), ("client_secret", "")])
            .send()
            .await
            .unwrap();
        expect_error(res, 401, "invalid_client").await;

        // A8: invalid_scope for an unknown scope and for one the client does not hold.
        for scope in ["admin", "orders:write"] {
            let res = token_request(&s)
                .json(&json!({"grant_type": "client_credentials", "client_id": c.id, "client_secret": c.secret, "scope": scope}))
                .send()
                .await
                .unwrap();
            expect_error(res, 400, "invalid_scope").await;
        }

        // A8: a disabled client is authenticated but not allowed the grant.
        assert!(s.db.clients().set_disabled(&c.id, true).await.unwrap());
        let res = token_request(&s).json(&json_creds(&c)).send().await.unwrap();
        expect_error(res, 400, "unauthorized_client").await;
        s
    })
    .await;
}

#[tokio::test]
async fn failed_authentications_are_limited_per_client_id_but_never_lock_out_the_right_secret() {
    with_each_backend(|s| async move {
        let c = s.create_client(Scopes::all()).await;
        let other = s.create_client(Scopes::all()).await;
        for _ in 0..10 {
            let res = token_request(&s)
                .json(&json!({"grant_type": "client_credentials", "client_id": c.id, "client_secret": "guess"}))
                .send()
                .await
                .unwrap();
            expect_error(res, 401, "invalid_client").await;
        }
        // Locked: a wrong secret is now refused with 429 until the bucket refills …
        let res = token_request(&s)
            .json(&json!({"grant_type": "client_credentials", "client_id": c.id, "client_secret": "guess"}))
            .send()
            .await
            .unwrap();
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1);
        expect_error(res, 429, "slow_down").await;
        // … and so is a request without a secret …
        let res = token_request(&s)
            .json(&json!({"grant_type": "client_credentials", "client_id": c.id}))
            .send()
            .await
            .unwrap();
        expect_error(res, 429, "slow_down").await;
        // … but the right secret still gets its token: client ids are not secret, so anyone
        // could otherwise keep a partner locked out.
        let res = token_request(&s).json(&json_creds(&c)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        // Still locked for guesses after that success.
        let res = token_request(&s)
            .json(&json!({"grant_type": "client_credentials", "client_id": c.id, "client_secret": "guess2"}))
            .send()
            .await
            .unwrap();
        expect_error(res, 429, "slow_down").await;
        // Unknown client ids are throttled the same way (no enumeration through 401 vs 429).
        for _ in 0..10 {
            let res = token_request(&s)
                .json(&json!({"grant_type": "client_credentials", "client_id": "l2c_nobody", "client_secret": "x"}))
                .send()
                .await
                .unwrap();
            expect_error(res, 401, "invalid_client").await;
        }
        let res = token_request(&s)
            .json(&json!({"grant_type": "client_credentials", "client_id": "l2c_nobody", "client_secret": "x"}))
            .send()
            .await
            .unwrap();
        expect_error(res, 429, "slow_down").await;
        // Another client from the same address is not affected.
        let res = token_request(&s).json(&json_creds(&other)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        s
    })
    .await;
}

/// Every token request (failed or not) counts against the peer address (`--token-rate-limit`);
/// the 429 keeps the RFC 6749 shape and carries `Retry-After` and the `RateLimit` headers.
#[tokio::test]
async fn token_requests_are_limited_per_peer_address() {
    for backend in Backend::available() {
        let mut options = l2c_server::testing::TestOptions::default();
        options.config.token_rate_limit = "5/min".parse().unwrap();
        let s = TestServer::start_with(backend, options).await;
        let c = s.create_client(Scopes::all()).await;
        for i in 0..4 {
            let res = token_request(&s)
                .json(&json!({"grant_type": "client_credentials", "client_id": format!("l2c_guess{i}"), "client_secret": "x"}))
                .send()
                .await
                .unwrap();
            expect_error(res, 401, "invalid_client").await;
        }
        let res = token_request(&s)
            .json(&json_creds(&c))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the fifth request is within the quota");
        assert_eq!(res.headers()["ratelimit-policy"], "\"default\";q=5;w=60");
        let res = token_request(&s)
            .json(&json_creds(&c))
            .send()
            .await
            .unwrap();
        let retry: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=12).contains(&retry), "{retry}");
        assert_eq!(
            res.headers()["ratelimit"].to_str().unwrap(),
            format!("\"default\";r=0;t={retry}")
        );
        expect_error(res, 429, "slow_down").await;
        s.stop().await;
    }
}

/// A2: without TLS, only loopback peers may use the token endpoint, unless the operator says a
/// TLS terminator sits in front — and then only requests that come through it (from a
/// `--trusted-proxy` peer): a peer reaching the port directly never had TLS.
#[tokio::test]
async fn plain_http_from_other_hosts_requires_a_declared_tls_terminator() {
    let test_db = TestDb::create(Backend::Sqlite).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    let remote: SocketAddr = "10.1.2.3:40000".parse().unwrap();
    let call = |config: Config, forwarded: Option<&'static str>| {
        let db = db.clone();
        async move {
            let router = app(AppState::new(config, db).await.unwrap());
            let mut req = Request::post("/api/oauth/token")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
                .unwrap();
            if let Some(proto) = forwarded {
                req.headers_mut()
                    .insert("x-forwarded-proto", proto.parse().unwrap());
            }
            req.extensions_mut().insert(ConnectInfo(remote));
            let res = router.oneshot(req).await.unwrap();
            let status = res.status().as_u16();
            assert_eq!(res.headers()["cache-control"], "no-store");
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&body).unwrap();
            (status, body["error"].as_str().unwrap().to_owned())
        }
    };
    let plain = Config::default();
    let (status, error) = call(plain.clone(), None).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));

    let mut proxied = Config::default();
    proxied.trust_proxy_tls = true;
    // The peer is not the declared terminator (default --trusted-proxy: loopback): refused.
    let (status, error) = call(proxied.clone(), Some("https")).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    proxied.trusted_proxies = l2c_server::config::parse_trusted_proxies("10.0.0.0/8").unwrap();
    // Past the transport check: the request itself lacks credentials.
    assert_eq!(call(proxied.clone(), None).await.0, 401);
    assert_eq!(call(proxied.clone(), Some("https")).await.0, 401);
    assert_eq!(call(proxied, Some("http")).await.0, 400);

    db.close().await;
    test_db.cleanup().await;
}
