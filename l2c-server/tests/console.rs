//! The developer console's security rules over real HTTP, on SQLite and (with
//! `L2C_TEST_DATABASE_URL`) PostgreSQL: CSRF, session expiry and logout, app isolation between
//! developer accounts, login lockout, cookie flags, the security headers of every page, the
//! single answer to bad credentials, and the client-secret roll's overlap.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod console_support;

use std::sync::Arc;
use std::time::Duration;

use console_support::{Browser, PASSWORD, account, shown_secret, token_status};
use l2c_core::Scopes;
use l2c_core::clock::MockClock;
use l2c_server::console::CSP;
use l2c_server::store::accounts::Role;
use l2c_server::testing::{Backend, TestOptions, TestServer};

const START: u64 = 1_780_000_000;

async fn server(backend: Backend) -> (TestServer, MockClock) {
    let clock = MockClock::at_unix(START);
    let options = TestOptions {
        clock: Some(Arc::new(clock.clone())),
        ..TestOptions::default()
    };
    (TestServer::start_with(backend, options).await, clock)
}

#[tokio::test]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing() {
    for backend in Backend::available() {
        let (server, _) = server(backend).await;
        account(&server.db, "ops", Role::Operator, None).await;
        let mut b = Browser::new(&server);
        b.login("ops").await;
        let csrf = b.csrf().await;

        let no_token = b
            .post(
                "/console/apps",
                &[("name", "erp"), ("scopes", "orders:write")],
            )
            .await;
        assert_eq!(no_token.status(), 403);
        assert!(no_token.text().await.unwrap().contains("CSRF"));
        let wrong = b
            .post(
                "/console/apps",
                &[
                    ("name", "erp"),
                    ("scopes", "orders:write"),
                    ("csrf", "x".repeat(43).as_str()),
                ],
            )
            .await;
        assert_eq!(wrong.status(), 403);
        assert_eq!(server.db.clients().count().await.unwrap(), 0, "{backend:?}");
        // Logout is state-changing too.
        assert_eq!(b.post("/console/logout", &[]).await.status(), 403);

        let ok = b
            .post(
                "/console/apps",
                &[("name", "erp"), ("scopes", "orders:write"), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(ok.status(), 201);
        assert_eq!(server.db.clients().count().await.unwrap(), 1);

        // The login form is protected too (double-submit cookie).
        let mut stranger = Browser::new(&server);
        let res = stranger
            .post(
                "/console/login",
                &[("username", "ops"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(res.status(), 403);
        assert!(!stranger.cookies.contains_key("l2c_console"));
        server.stop().await;
    }
}

#[tokio::test]
async fn an_idle_expired_or_logged_out_session_redirects_to_login() {
    for backend in Backend::available() {
        let (server, clock) = server(backend).await;
        account(&server.db, "ops", Role::Operator, None).await;
        let mut b = Browser::new(&server);

        // Not signed in at all.
        let res = b.get("/console/apps").await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/console/login");

        // Idle expiry: 30 minutes without a request.
        b.login("ops").await;
        assert_eq!(b.get("/console/apps").await.status(), 200);
        clock.advance(Duration::from_secs(29 * 60));
        assert_eq!(
            b.get("/console/apps").await.status(),
            200,
            "still within the idle timeout"
        );
        clock.advance(Duration::from_secs(31 * 60));
        let res = b.get("/console/apps").await;
        assert_eq!(res.status(), 303, "{backend:?}");
        assert_eq!(res.headers()["location"], "/console/login");

        // Absolute expiry: 12 hours, however busy.
        b.login("ops").await;
        for _ in 0..35 {
            clock.advance(Duration::from_secs(20 * 60));
            assert_eq!(b.get("/console/apps").await.status(), 200);
        }
        clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(b.get("/console/apps").await.status(), 303, "past 12 hours");

        // Logout: the old cookie no longer works, even replayed.
        b.login("ops").await;
        let stolen = b.cookies.clone();
        let csrf = b.csrf().await;
        let res = b.post("/console/logout", &[("csrf", &csrf)]).await;
        assert_eq!(res.status(), 303);
        assert!(!b.cookies.contains_key("l2c_console"));
        b.cookies = stolen;
        assert_eq!(b.get("/console/apps").await.status(), 303);

        // Disabling the account ends its sessions at once.
        b.login("ops").await;
        l2c_server::admin::accounts::set_disabled(
            &server.db,
            &l2c_server::admin::Actor::cli(),
            "ops",
            true,
        )
        .await
        .unwrap();
        assert_eq!(b.get("/console/apps").await.status(), 303);
        assert_eq!(b.try_login("ops", PASSWORD).await.status(), 401);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_developer_sees_and_changes_only_its_own_app() {
    for backend in Backend::available() {
        let (server, _) = server(backend).await;
        let mine = server.create_client(Scopes::all()).await;
        let theirs = server.create_client(Scopes::all()).await;
        account(&server.db, "dev", Role::Developer, Some(&mine.id)).await;
        let mut b = Browser::new(&server);
        b.login("dev").await;
        let csrf = b.csrf().await;

        let list = b.get("/console/apps").await.text().await.unwrap();
        assert!(list.contains(&mine.id));
        assert!(!list.contains(&theirs.id), "another app is listed");
        assert_eq!(
            b.get(&format!("/console/apps/{}", mine.id)).await.status(),
            200
        );

        for path in ["", "/webhooks", "/lead-sources"] {
            let res = b.get(&format!("/console/apps/{}{path}", theirs.id)).await;
            assert_eq!(res.status(), 404, "GET {path}");
        }
        for path in [
            "/roll-secret",
            "/disable",
            "/update",
            "/webhooks",
            "/lead-sources",
        ] {
            let res = b
                .post(
                    &format!("/console/apps/{}{path}", theirs.id),
                    &[
                        ("csrf", &csrf),
                        ("url", "https://example.com/"),
                        ("events", "ORDER_CREATED"),
                        ("name", "x"),
                    ],
                )
                .await;
            assert_eq!(res.status(), 404, "POST {path} on {backend:?}");
        }
        // Nothing happened to the other app.
        assert_eq!(token_status(&server, &theirs.id, &theirs.secret).await, 200);
        assert!(
            server
                .db
                .webhooks()
                .list(&l2c_core::ClientId::new(theirs.id.as_str()))
                .await
                .unwrap()
                .is_empty()
        );
        // A developer cannot create apps, change its own quota, or read the audit log.
        let res = b
            .post(
                "/console/apps",
                &[("csrf", &csrf), ("name", "x"), ("scopes", "orders:read")],
            )
            .await;
        assert_eq!(res.status(), 403);
        let res = b
            .post(
                &format!("/console/apps/{}/update", mine.id),
                &[("csrf", &csrf), ("scopes", "orders:read")],
            )
            .await;
        assert_eq!(res.status(), 403);
        assert_eq!(b.get("/console/audit").await.status(), 404);
        // But it may roll its own secret.
        let res = b
            .post(
                &format!("/console/apps/{}/roll-secret", mine.id),
                &[("csrf", &csrf), ("overlap_hours", "0")],
            )
            .await;
        assert_eq!(res.status(), 200);
        let secret = shown_secret(&res.text().await.unwrap(), "client-secret").unwrap();
        assert_eq!(token_status(&server, &mine.id, &secret).await, 200);
        assert_eq!(token_status(&server, &mine.id, &mine.secret).await, 401);
        server.stop().await;
    }
}

#[tokio::test]
async fn login_locks_out_after_repeated_failures_and_answers_bad_credentials_alike() {
    for backend in Backend::available() {
        let (server, clock) = server(backend).await;
        account(&server.db, "ops", Role::Operator, None).await;
        let mut b = Browser::new(&server);

        // Unknown user and wrong password: same status, same page.
        let unknown = b.try_login("nobody", PASSWORD).await;
        assert_eq!(unknown.status(), 401);
        let unknown = unknown.text().await.unwrap();
        let wrong = b.try_login("ops", "wrong-password-123").await;
        assert_eq!(wrong.status(), 401);
        let wrong = wrong.text().await.unwrap();
        assert!(unknown.contains("用户名或密码错误"));
        let strip = |s: &str| s.replace(&console_support::csrf_of(s).unwrap(), "");
        assert_eq!(strip(&unknown), strip(&wrong));

        // 5 failures on one name lock it, even for the right password.
        for _ in 0..3 {
            assert_eq!(b.try_login("ops", "wrong-password-123").await.status(), 401);
        }
        assert_eq!(b.try_login("ops", "wrong-password-123").await.status(), 429);
        let locked = b.try_login("ops", PASSWORD).await;
        assert_eq!(locked.status(), 429, "{backend:?}");
        assert!(locked.text().await.unwrap().contains("15 分钟"));
        assert!(!b.cookies.contains_key("l2c_console"));
        clock.advance(Duration::from_secs(16 * 60));
        b.login("ops").await;

        // 20 failures from one address lock it for every name.
        account(&server.db, "ops2", Role::Operator, None).await;
        let mut c = Browser::new(&server);
        for i in 0..20 {
            let res = c
                .try_login(&format!("guess{i}"), "wrong-password-123")
                .await;
            assert!(matches!(res.status().as_u16(), 401 | 429));
        }
        assert_eq!(c.try_login("ops2", PASSWORD).await.status(), 429);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_login_failures_lock_exactly_at_the_limit() {
    use l2c_server::store::audit::Lockout;
    let policy = Lockout {
        max_failures: 12,
        window_ms: 15 * 60 * 1000,
        lock_ms: 15 * 60 * 1000,
    };
    for backend in Backend::available() {
        let (server, _) = server(backend).await;
        // Twelve wrong passwords at once against a limit of twelve: a read-then-write count
        // loses some of them and ends below the limit; counted in one statement, the twelfth
        // locks the key, exactly once.
        let db = server.db.clone();
        let attempts: Vec<_> = (0..12)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move { db.audit().record_failure("user:ops", policy).await })
            })
            .collect();
        let mut locks = 0;
        for attempt in attempts {
            if attempt.await.unwrap().unwrap().is_some() {
                locks += 1;
            }
        }
        assert_eq!(locks, 1, "{backend:?}: twelve failures, {locks} locks");
        assert!(
            db.audit().locked_until("user:ops").await.unwrap().is_some(),
            "{backend:?}"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_guesses_is_answered_wrong_password_at_most_four_times_and_locks() {
    for backend in Backend::available() {
        let (server, _) = server(backend).await;
        account(&server.db, "ops", Role::Operator, None).await;
        // Thirty wrong passwords at once for one account (limit 5): at most four are answered
        // "wrong password", the rest are refused, and the right password is refused after.
        // (That at most five are *checked* is `login_attempts_are_counted_before_the_password_
        // is_checked`; the answers alone cannot tell a checked refusal from an unchecked one.)
        let guesses: Vec<_> = (0..30)
            .map(|_| Browser::new(&server))
            .map(|mut b| {
                tokio::spawn(async move { b.try_login("ops", "wrong-password-123").await.status() })
            })
            .collect();
        let mut statuses = Vec::new();
        for g in guesses {
            statuses.push(g.await.unwrap().as_u16());
        }
        let checked = statuses.iter().filter(|s| **s == 401).count();
        assert!(
            checked <= 4,
            "{backend:?}: {checked} guesses checked: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            30 - checked,
            "{statuses:?}"
        );
        let mut b = Browser::new(&server);
        assert_eq!(
            b.try_login("ops", PASSWORD).await.status(),
            429,
            "{backend:?}"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_attempts_are_counted_before_the_password_is_checked() {
    use l2c_server::store::audit::{Attempt, Lockout};
    let policy = Lockout {
        max_failures: 5,
        window_ms: 15 * 60 * 1000,
        lock_ms: 15 * 60 * 1000,
    };
    for backend in Backend::available() {
        let (server, _) = server(backend).await;
        // Thirty attempts at once against a limit of five: checking the lock first and counting
        // the failure after the (slow) password check let every one of a burst through to the
        // check. Reserved in one statement each, exactly five may check; the rest are refused.
        let db = server.db.clone();
        let attempts: Vec<_> = (0..30)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move { db.audit().reserve_attempt("user:ops", policy).await })
            })
            .collect();
        let mut allowed = Vec::new();
        for attempt in attempts {
            if let Attempt::Allowed(n) = attempt.await.unwrap().unwrap() {
                allowed.push(n);
            }
        }
        allowed.sort_unstable();
        assert_eq!(allowed, [1, 2, 3, 4, 5], "{backend:?}");
        assert!(db.audit().locked_until("user:ops").await.unwrap().is_some());
        // A success gives its attempt back: four failures and a success leave room for five.
        let key = "addr:192.0.2.7";
        for _ in 0..4 {
            let Attempt::Allowed(n) = db.audit().reserve_attempt(key, policy).await.unwrap() else {
                panic!("locked too early");
            };
            db.audit().attempt_failed(key, policy, n).await.unwrap();
        }
        db.audit().reserve_attempt(key, policy).await.unwrap();
        db.audit().attempt_succeeded(key).await.unwrap();
        assert_eq!(
            db.audit().reserve_attempt(key, policy).await.unwrap(),
            Attempt::Allowed(5),
            "{backend:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_session_cookie_has_the_flags() {
    let (server, _) = server(Backend::Sqlite).await;
    account(&server.db, "ops", Role::Operator, None).await;
    let mut b = Browser::new(&server);
    let page = b.get("/console/login").await.text().await.unwrap();
    let token = console_support::csrf_of(&page).unwrap();
    let res = b
        .post(
            "/console/login",
            &[
                ("username", "ops"),
                ("password", PASSWORD),
                ("csrf", &token),
            ],
        )
        .await;
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("l2c_console="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(flag), "{session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    // The token is random and only its hash is stored.
    let token = session
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("l2c_console=");
    assert!(token.len() >= 43);
    server.stop().await;

    // Behind a TLS terminator: Secure.
    let mut options = TestOptions::default();
    options.config.trust_proxy_tls = true;
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    account(&server.db, "ops", Role::Operator, None).await;
    let mut b = Browser::new(&server);
    let res = b.get("/console/login").await;
    let login_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(login_cookie.contains("Secure"), "{login_cookie}");
    let page = res.text().await.unwrap();
    let token = console_support::csrf_of(&page).unwrap();
    let res = b
        .post(
            "/console/login",
            &[
                ("username", "ops"),
                ("password", PASSWORD),
                ("csrf", &token),
            ],
        )
        .await;
    let session = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(session.contains("Secure"), "{session}");
    server.stop().await;
}

#[tokio::test]
async fn every_console_page_carries_the_security_headers_and_no_inline_script() {
    let (server, _) = server(Backend::Sqlite).await;
    account(&server.db, "ops", Role::Operator, None).await;
    let app = server.create_client(Scopes::all()).await;
    let mut b = Browser::new(&server);
    let login = b.get("/console/login").await;
    let mut pages = vec![("/console/login".to_owned(), login)];
    b.login("ops").await;
    let csrf = b.csrf().await;
    // A webhook to have its page (private destinations are refused: insert through the store).
    let sub = server
        .db
        .webhooks()
        .create(
            &l2c_core::ClientId::new(app.id.as_str()),
            "https://example.com/h",
            &[l2c_core::api::events::EventType::OrderCreated],
            "whsec_x",
            0,
            20,
        )
        .await
        .unwrap()
        .unwrap();
    for path in [
        "/console/apps".to_owned(),
        format!("/console/apps/{}", app.id),
        format!("/console/apps/{}/webhooks", app.id),
        format!("/console/apps/{}/webhooks/{}", app.id, sub.id),
        format!(
            "/console/apps/{}/webhooks/{}?status=FAILED&event=ORDER_CREATED&page=2",
            app.id, sub.id
        ),
        format!("/console/apps/{}/lead-sources", app.id),
        "/console/audit".to_owned(),
        "/console/apps/nope".to_owned(),
        "/console/static/console.css".to_owned(),
        "/console/static/console.js".to_owned(),
    ] {
        let res = b.get(&path).await;
        pages.push((path, res));
    }
    let res = b
        .post(
            &format!("/console/apps/{}/roll-secret", app.id),
            &[("csrf", &csrf)],
        )
        .await;
    pages.push(("POST roll-secret".into(), res));
    let res = b.post("/console/apps", &[("name", "x")]).await;
    pages.push(("POST without csrf".into(), res));
    for (path, res) in pages {
        let h = res.headers().clone();
        assert_eq!(h["content-security-policy"], CSP, "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let html = h["content-type"].to_str().unwrap().starts_with("text/html");
        if html {
            assert_eq!(h["cache-control"], "no-store", "{path}");
            let body = res.text().await.unwrap();
            assert!(!body.contains("<script>"), "inline script on {path}");
            assert!(!body.contains(" style="), "inline style on {path}");
            assert!(!body.contains("<style"), "inline style on {path}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_rolled_secret_keeps_working_for_the_overlap_only() {
    for backend in Backend::available() {
        let (server, clock) = server(backend).await;
        account(&server.db, "ops", Role::Operator, None).await;
        let mut b = Browser::new(&server);
        b.login("ops").await;
        let csrf = b.csrf().await;
        let res = b
            .post(
                "/console/apps",
                &[
                    ("name", "erp"),
                    ("scopes", "orders:read"),
                    ("scopes", "orders:write"),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(res.status(), 201);
        let page = res.text().await.unwrap();
        let old = shown_secret(&page, "client-secret").unwrap();
        let id = server.db.clients().list().await.unwrap()[0].id.to_string();
        assert!(page.contains(&id));
        assert_eq!(token_status(&server, &id, &old).await, 200);

        let res = b
            .post(
                &format!("/console/apps/{id}/roll-secret"),
                &[("csrf", &csrf), ("overlap_hours", "1")],
            )
            .await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        let new = shown_secret(&page, "client-secret").unwrap();
        assert_ne!(new, old);
        assert!(
            page.contains("上一个密钥有效至"),
            "the overlap end is shown"
        );
        assert_eq!(
            token_status(&server, &id, &old).await,
            200,
            "old during the overlap"
        );
        assert_eq!(token_status(&server, &id, &new).await, 200);
        clock.advance(Duration::from_secs(3601));
        assert_eq!(
            token_status(&server, &id, &old).await,
            401,
            "old after the overlap on {backend:?}"
        );
        assert_eq!(token_status(&server, &id, &new).await, 200);

        // The audit log saw it all, with who and from where (the hour idled the session out).
        b.login("ops").await;
        let audit = b.get("/console/audit").await.text().await.unwrap();
        for action in ["login", "client.create", "client.roll_secret"] {
            assert!(audit.contains(action), "{action}");
        }
        assert!(audit.contains("127.0.0.1"));
        server.stop().await;
    }
}

#[tokio::test]
async fn a_refused_webhook_url_is_explained_in_words() {
    let (server, _) = server(Backend::Sqlite).await;
    let app = server.create_client(Scopes::all()).await;
    account(&server.db, "dev", Role::Developer, Some(&app.id)).await;
    let mut b = Browser::new(&server);
    b.login("dev").await;
    let csrf = b.csrf().await;
    let path = format!("/console/apps/{}/webhooks", app.id);
    for (url, words) in [
        ("https://127.0.0.1/hook", "内网或保留地址"),
        ("http://example.com/hook", "必须使用 https"),
        ("not a url", "URL 无效"),
    ] {
        let res = b
            .post(
                &path,
                &[("csrf", &csrf), ("url", url), ("events", "ORDER_CREATED")],
            )
            .await;
        assert_eq!(res.status(), 422, "{url}");
        let page = res.text().await.unwrap();
        assert!(page.contains(words), "{url}: {page}");
    }
    let res = b
        .post(&path, &[("csrf", &csrf), ("url", "https://example.com/")])
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("至少选择一个事件类型"));
    assert!(
        server
            .db
            .webhooks()
            .list(&l2c_core::ClientId::new(app.id.as_str()))
            .await
            .unwrap()
            .is_empty()
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_user_takes_about_as_long_as_a_wrong_password() {
    let (server, _) = server(Backend::Sqlite).await;
    account(&server.db, "ops", Role::Operator, None).await;
    let mut b = Browser::new(&server);
    let mut timed = async |user: &str| {
        let start = std::time::Instant::now();
        assert_eq!(b.try_login(user, "wrong-password-123").await.status(), 401);
        start.elapsed()
    };
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..3 {
        wrong.push(timed("ops").await);
        unknown.push(timed(&format!("nobody{i}")).await);
    }
    eprintln!("timing: wrong {wrong:?} unknown {unknown:?}");
    wrong.sort();
    unknown.sort();
    // Both pay for an argon2id verification: without the dummy hash every unknown-user answer
    // would be tens of times faster than any wrong-password answer. The bounds only fail when
    // *all* answers of one kind are 8x faster than the fastest of the other, so a loaded
    // machine (one slow answer) cannot fail them.
    assert!(
        unknown[2] * 8 >= wrong[0],
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
    assert!(
        wrong[2] * 8 >= unknown[0],
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
    server.stop().await;
}
