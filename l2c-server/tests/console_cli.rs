//! The console's actions from the command line (`l2c-server admin …`, `client update`,
//! `client roll-secret`) and the quota change of the console reaching the rate limiter at the
//! next quota reload.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod console_support;

use console_support::{Browser, account, token_status};
use l2c_core::Scopes;
use l2c_server::store::accounts::Role;
use l2c_server::testing::{Backend, TestServer};

#[tokio::test]
async fn a_quota_changed_in_the_console_applies_at_the_next_reload() {
    let server = TestServer::start(Backend::Sqlite).await;
    let app = server.create_client(Scopes::all()).await;
    account(&server.db, "ops", Role::Operator, None).await;
    let mut b = Browser::new(&server);
    b.login("ops").await;
    let csrf = b.csrf().await;
    let res = b
        .post(
            &format!("/console/apps/{}/update", app.id),
            &[
                ("csrf", &csrf),
                ("scopes", "orders:read"),
                ("scopes", "customers:read"),
                ("rate_limit", "2/min"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("/console/apps/{}?ok=updated", app.id)
    );
    let page = b
        .get(&format!("/console/apps/{}?ok=updated", app.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("已保存") && page.contains("2/min"));
    // A bad quota is refused in words and changes nothing.
    let res = b
        .post(
            &format!("/console/apps/{}/update", app.id),
            &[
                ("csrf", &csrf),
                ("scopes", "orders:read"),
                ("rate_limit", "lots"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("配额格式不正确"));

    // What every replica's periodic reload does.
    server.state.limits.load_quotas(&server.db).await.unwrap();
    let token = server.token(&app).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = server
            .http()
            .get(server.url("/api/mobile/orders?page=1&pageSize=1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );
    // The new scopes are in new tokens: no orders:write any more.
    let c = server.db.clients().get(&app.id).await.unwrap().unwrap();
    assert_eq!(c.scopes.to_string(), "customers:read orders:read");
    server.stop().await;
}

#[tokio::test]
async fn the_cli_creates_accounts_and_updates_and_rolls_clients() {
    let server = TestServer::start(Backend::Sqlite).await;
    let url = server.test_db.url.clone();
    let app = server.create_client(Scopes::all()).await;
    let run_admin = |args: &'static [&'static str], stdin: &'static str| {
        let url = url.clone();
        async move {
            let cli = <l2c_server::cli::Cli as clap::Parser>::try_parse_from(
                std::iter::once("l2c-server").chain(args.iter().copied()),
            )
            .unwrap();
            let Some(l2c_server::cli::Command::Admin { action, .. }) = cli.command else {
                panic!("not an admin command")
            };
            let mut out = Vec::new();
            let r = l2c_server::admin::command::run_admin_command(
                &url,
                &action,
                &mut stdin.as_bytes(),
                &mut out,
            )
            .await;
            (
                r.map_err(|e| e.to_string()),
                String::from_utf8(out).unwrap(),
            )
        }
    };
    let (r, out) = run_admin(
        &[
            "admin",
            "create",
            "--username",
            "ops",
            "--role",
            "operator",
            "--password-stdin",
        ],
        "correct-horse-battery\n",
    )
    .await;
    r.unwrap();
    assert!(out.contains("account ops created"));
    assert!(!out.contains("password:"));
    let (r, out) = run_admin(
        &["admin", "create", "--username", "gen", "--role", "operator"],
        "",
    )
    .await;
    r.unwrap();
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_owned();
    assert_eq!(generated.len(), 24);
    let (r, _) = run_admin(
        &[
            "admin",
            "create",
            "--username",
            "ops",
            "--role",
            "operator",
            "--password-stdin",
        ],
        "another-long-password\n",
    )
    .await;
    assert!(r.unwrap_err().contains("exists"));
    let (r, _) = run_admin(
        &[
            "admin",
            "create",
            "--username",
            "weak",
            "--role",
            "operator",
            "--password-stdin",
        ],
        "short\n",
    )
    .await;
    assert!(r.unwrap_err().contains("12"));
    let (r, _) = run_admin(
        &["admin", "create", "--username", "d", "--role", "developer"],
        "",
    )
    .await;
    assert!(r.unwrap_err().contains("--client"));
    let (_, out) = run_admin(&["admin", "list"], "").await;
    assert!(out.contains("ops") && out.contains("gen"));

    let mut b = Browser::new(&server);
    b.login("ops").await;
    let (r, _) = run_admin(
        &["admin", "reset-password", "ops", "--password-stdin"],
        "a-brand-new-password\n",
    )
    .await;
    r.unwrap();
    assert_eq!(
        b.get("/console/apps").await.status(),
        303,
        "reset ends the sessions"
    );
    assert_eq!(
        b.try_login("ops", "a-brand-new-password").await.status(),
        303
    );

    let client_cmd = |args: Vec<String>| {
        let url = url.clone();
        async move {
            let cli = <l2c_server::cli::Cli as clap::Parser>::try_parse_from(
                std::iter::once("l2c-server".to_owned()).chain(args),
            )
            .unwrap();
            let Some(l2c_server::cli::Command::Client { action, .. }) = cli.command else {
                panic!("not a client command")
            };
            let mut out = Vec::new();
            let r = l2c_server::cli::run_client_command(&url, &action, &mut out).await;
            (
                r.map_err(|e| e.to_string()),
                String::from_utf8(out).unwrap(),
            )
        }
    };
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let (r, out) = client_cmd(args(&format!(
        "client update {} --rate-limit 5/s --scopes orders:read",
        app.id
    )))
    .await;
    r.unwrap();
    assert!(out.contains("5/s"), "{out}");
    let c = server.db.clients().get(&app.id).await.unwrap().unwrap();
    assert_eq!(c.scopes.to_string(), "orders:read");
    assert_eq!(c.rate_limit.unwrap().to_string(), "5/s");
    let (r, _) = client_cmd(args(&format!(
        "client update {} --rate-limit default",
        app.id
    )))
    .await;
    r.unwrap();
    assert!(
        server
            .db
            .clients()
            .get(&app.id)
            .await
            .unwrap()
            .unwrap()
            .rate_limit
            .is_none()
    );
    let (r, _) = client_cmd(args(&format!("client update {}", app.id))).await;
    assert!(r.unwrap_err().contains("nothing to change"));

    let (r, out) = client_cmd(args(&format!(
        "client roll-secret {} --overlap 0s --json",
        app.id
    )))
    .await;
    r.unwrap();
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let secret = v["client_secret"].as_str().unwrap();
    assert_eq!(token_status(&server, &app.id, secret).await, 200);
    assert_eq!(
        token_status(&server, &app.id, &app.secret).await,
        401,
        "overlap 0s"
    );
    let (r, _) = client_cmd(args(&format!(
        "client roll-secret {} --overlap 200h",
        app.id
    )))
    .await;
    assert!(r.unwrap_err().contains("7 days"));
    let (r, _) = client_cmd(args("client roll-secret l2c_nope")).await;
    assert!(r.unwrap_err().contains("no client"));

    // The CLI's actions are in the audit log too.
    let log = server.db.audit().list(100, 0).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "client.roll_secret" && e.username == "cli")
    );
    assert!(log.iter().any(|e| e.action == "account.reset_password"));
    server.stop().await;
}
