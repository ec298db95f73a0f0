//! Helpers of the console tests: a cookie-keeping HTTP client that signs in through the login
//! form and reads the CSRF token from the pages.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use l2c_server::admin::{Actor, accounts};
use l2c_server::store::Db;
use l2c_server::store::accounts::Role;
use l2c_server::testing::TestServer;

/// A password good enough for the rules.
pub const PASSWORD: &str = "correct-horse-battery";

/// Creates an account through the same use case as `l2c-server admin create`.
pub async fn account(db: &Db, username: &str, role: Role, client: Option<&str>) {
    accounts::create(db, &Actor::cli(), username, PASSWORD, role, client)
        .await
        .expect("create account");
}

/// A browser-like client: keeps cookies by name, never follows redirects.
#[derive(Debug, Clone)]
pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

/// `value` of `name="csrf" value="…"` in a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl Browser {
    pub fn new(server: &TestServer) -> Self {
        Self {
            base: server.base_url.clone(),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&res);
        res
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body = serde_urlencoded::to_string(form).unwrap();
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(&res);
        res
    }

    /// Opens the login page and posts the form; the answer to the post.
    pub async fn try_login(&mut self, username: &str, password: &str) -> reqwest::Response {
        let page = self.get("/console/login").await.text().await.unwrap();
        let token = csrf_of(&page).expect("login form token");
        self.post(
            "/console/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &token),
            ],
        )
        .await
    }

    /// Signs in (panics unless redirected to the apps).
    pub async fn login(&mut self, username: &str) {
        let res = self.try_login(username, PASSWORD).await;
        assert_eq!(res.status(), 303, "login of {username}");
        assert_eq!(res.headers()["location"], "/console/apps");
    }

    /// The CSRF token of the signed-in session (read from a page).
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/console/apps").await.text().await.unwrap();
        csrf_of(&page).expect("csrf field on the apps page")
    }
}

/// Exchanges client credentials for a token: the status.
pub async fn token_status(server: &TestServer, id: &str, secret: &str) -> u16 {
    server
        .http()
        .post(server.url("/api/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The text of `<code … id="ID">VALUE</code>` (a secret shown once).
pub fn shown_secret(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('<')? + start;
    Some(html[start..end].to_owned())
}

/// An order sync body (a deposit paid, with its payment).
pub fn order(no: &str) -> serde_json::Value {
    serde_json::json!({
        "externalOrderNo": no,
        "status": "DEPOSIT_PAID",
        "paymentStatus": "DEPOSIT_PAID",
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "customer": {"name": "李四", "mobile": "+86 139-1234-5678"},
        "version": 1,
        "payments": [{"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 500_000,
                      "channelTransactionId": format!("wx-{no}-1"),
                      "paidAt": "2026-11-20T10:15:00+08:00"}]
    })
}
