//! Login, logout, the session check and the CSRF check of the console.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Form;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::layout;
use crate::admin::{Actor, accounts};
use crate::state::AppState;
use crate::store::accounts::Account;
use crate::store::audit::{Attempt, Lockout};

/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after login, however busy.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// Failed logins per account name: 5 within 15 minutes lock it for 15 minutes.
pub const LOCKOUT_ACCOUNT: Lockout = Lockout {
    max_failures: 5,
    window_ms: 15 * 60_000,
    lock_ms: 15 * 60_000,
};
/// Failed logins per client address: 20 within 15 minutes lock it for 15 minutes.
pub const LOCKOUT_ADDRESS: Lockout = Lockout {
    max_failures: 20,
    window_ms: 15 * 60_000,
    lock_ms: 15 * 60_000,
};
/// The session cookie.
pub const SESSION_COOKIE: &str = "l2c_console";
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "l2c_console_login";
/// The largest form body accepted.
const MAX_FORM: usize = 64 * 1024;

/// The signed-in account of a request, in its extensions.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// The account.
    pub account: Account,
    /// The session's CSRF token (for the forms of the page).
    pub csrf: String,
    /// The client address.
    pub address: Option<String>,
}

impl ConsoleSession {
    /// The audit actor of this session.
    pub fn actor(&self) -> Actor {
        Actor::console(&self.account.username, self.address.clone())
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The value of cookie `name`.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn secure(state: &AppState) -> bool {
    state.config.tls.is_some() || state.config.trust_proxy_tls
}

fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, clear: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if secure(state) {
        c.push_str("; Secure");
    }
    if clear {
        c.push_str("; Max-Age=0");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The client's address: the socket peer, or with `--trust-proxy-tls` the forwarded address
/// that the token endpoint's limit also counts.
pub fn address(
    state: &AppState,
    req_ext: &http::Extensions,
    headers: &HeaderMap,
) -> Option<String> {
    let peer = req_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let proxies: &[ipnet::IpNet] = if state.config.trust_proxy_tls {
        &state.config.trusted_proxies
    } else {
        &[]
    };
    crate::limits::peer::client_address(proxies, peer, headers).map(|ip| ip.to_string())
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded_pairs(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

/// Admits signed-in requests only: without a live session, a redirect to the login page. A
/// POST must carry the session's CSRF token in its `csrf` field (403 otherwise) before the
/// handler sees it. Puts the [`ConsoleSession`] in the request's extensions.
pub async fn require_session(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = cookie(req.headers(), SESSION_COOKIE).map(str::to_owned) else {
        return to_login();
    };
    let idle = i64::try_from(IDLE_TIMEOUT.as_millis()).unwrap_or(i64::MAX);
    let session = match state.db.accounts().session(&token_hash(&token), idle).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login(),
        Err(e) => return layout::internal(&e),
    };
    let address = address(&state, req.extensions(), req.headers());
    let (mut parts, body) = req.into_parts();
    let body = if parts.method == Method::GET || parts.method == Method::HEAD {
        body
    } else {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return layout::message_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "表单过大",
                "提交的内容过大。",
            );
        };
        let presented = form_field(&bytes, "csrf").unwrap_or_default();
        if !ct_eq(&presented, &session.csrf_token) {
            return layout::message_page(
                StatusCode::FORBIDDEN,
                "请求已被拒绝",
                "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。",
            );
        }
        Body::from(bytes)
    };
    parts.extensions.insert(ConsoleSession {
        account: session.account,
        csrf: session.csrf_token,
        address,
    });
    next.run(Request::from_parts(parts, body)).await
}

/// `GET /console/login`.
pub async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = cookie(&headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 43)
        .map_or_else(random_token, str::to_owned);
    login_form(&state, &token, StatusCode::OK, None)
}

fn login_form(state: &AppState, token: &str, status: StatusCode, error: Option<&str>) -> Response {
    let mut res = (status, layout::login(token, error)).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, token, "/console/login", false),
    );
    res
}

/// The login form.
#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

/// The one answer to an unknown user and a wrong password.
pub const BAD_CREDENTIALS: &str = "用户名或密码错误。";

/// `POST /console/login`.
pub async fn login(State(state): State<AppState>, req: Request) -> Response {
    let address = address(&state, req.extensions(), req.headers());
    let headers = req.headers().clone();
    let parsed =
        <Form<LoginForm> as axum::extract::FromRequest<AppState>>::from_request(req, &state).await;
    let Ok(Form(form)) = parsed else {
        return layout::message_page(StatusCode::BAD_REQUEST, "请求无效", "请填写用户名和密码。");
    };
    let expected = cookie(&headers, LOGIN_COOKIE)
        .unwrap_or_default()
        .to_owned();
    if expected.is_empty() || !ct_eq(&form.csrf, &expected) {
        return layout::message_page(
            StatusCode::FORBIDDEN,
            "请求已被拒绝",
            "登录表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。",
        );
    }
    match try_login(&state, &form, address.as_deref()).await {
        Ok(Ok(cookie_value)) => {
            let mut res = Redirect::to("/console/apps").into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &cookie_value, "/console", false),
            );
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&state, LOGIN_COOKIE, "", "/console/login", true),
            );
            res
        }
        Ok(Err((status, message))) => login_form(&state, &expected, status, Some(message)),
        Err(e) => layout::internal(&e),
    }
}

type LoginOutcome = Result<String, (StatusCode, &'static str)>;

async fn try_login(
    state: &AppState,
    form: &LoginForm,
    address: Option<&str>,
) -> Result<LoginOutcome, crate::store::StoreError> {
    const LOCKED: &str = "登录失败次数过多，请 15 分钟后再试。";
    let audit = state.db.audit();
    let user_key = format!("user:{}", form.username.trim().to_lowercase());
    let addr_key = format!("addr:{}", address.unwrap_or("unknown"));
    // Both counters take the attempt before the password is checked: a burst of concurrent
    // guesses cannot outrun the lock. The address first: a locked address touches no
    // account's counter (else it could go on locking every account it names, unchecked).
    let Attempt::Allowed(n_addr) = audit.reserve_attempt(&addr_key, LOCKOUT_ADDRESS).await? else {
        return Ok(Err((StatusCode::TOO_MANY_REQUESTS, LOCKED)));
    };
    let Attempt::Allowed(n_user) = audit.reserve_attempt(&user_key, LOCKOUT_ACCOUNT).await? else {
        // The address's attempt is not given back: refused attempts count.
        return Ok(Err((StatusCode::TOO_MANY_REQUESTS, LOCKED)));
    };
    let found = if form.password.len() > accounts::MAX_PASSWORD_LEN {
        None
    } else {
        state
            .db
            .accounts()
            .credentials(form.username.trim())
            .await?
    };
    let ok = match &found {
        Some((account, hash)) => {
            accounts::verify_password(&form.password, hash).await && !account.disabled
        }
        None => {
            // The same work as for a real account.
            let _ = accounts::verify_password(&form.password, accounts::DUMMY_HASH).await;
            false
        }
    };
    let Some((account, _)) = found.filter(|_| ok) else {
        let a = audit
            .attempt_failed(&user_key, LOCKOUT_ACCOUNT, n_user)
            .await?;
        let b = audit
            .attempt_failed(&addr_key, LOCKOUT_ADDRESS, n_addr)
            .await?;
        if a.is_some() || b.is_some() {
            return Ok(Err((StatusCode::TOO_MANY_REQUESTS, LOCKED)));
        }
        return Ok(Err((StatusCode::UNAUTHORIZED, BAD_CREDENTIALS)));
    };
    audit.clear_failures(&user_key).await?;
    audit.attempt_succeeded(&addr_key).await?;
    let token = random_token();
    let absolute = i64::try_from(ABSOLUTE_TIMEOUT.as_millis()).unwrap_or(i64::MAX / 4);
    state
        .db
        .accounts()
        .start_session(
            &account,
            &token_hash(&token),
            &random_token(),
            state.db.now_millis().saturating_add(absolute),
            address,
        )
        .await?;
    Actor::console(&account.username, address.map(str::to_owned))
        .audit(
            &state.db,
            "login",
            account.client_id.as_ref().map(|c| c.as_str()),
            None,
        )
        .await?;
    Ok(Ok(token))
}

/// `POST /console/logout`: ends the session.
pub async fn logout(
    State(state): State<AppState>,
    axum::Extension(session): axum::Extension<ConsoleSession>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.db.accounts().end_session(&token_hash(token)).await {
            return layout::internal(&e);
        }
    }
    if let Err(e) = session.actor().audit(&state.db, "logout", None, None).await {
        return layout::internal(&e);
    }
    let mut res = Redirect::to("/console/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", "/console", true),
    );
    res
}
