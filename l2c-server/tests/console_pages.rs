//! The console's webhook and lead-source pages over HTTP: every action on the app's own
//! objects, and none through another app's path (404), with the delivery list's paging and
//! filters.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod console_support;

use console_support::{Browser, account, order, shown_secret};
use l2c_core::api::events::EventType;
use l2c_core::{ClientId, Scopes};
use l2c_server::store::accounts::Role;
use l2c_server::store::outbox::DeliveryFilter;
use l2c_server::testing::{Backend, TestOptions, TestServer};

#[tokio::test]
async fn webhook_and_lead_source_actions_stay_within_the_app() {
    for backend in Backend::available() {
        let mut options = TestOptions::default();
        options.config.webhooks.allow_private = true;
        options.config.webhooks.dispatcher = false;
        let server = TestServer::start_with(backend, options).await;
        let mine = server.create_client(Scopes::all()).await;
        let theirs = server.create_client(Scopes::all()).await;
        let their_sub = server
            .db
            .webhooks()
            .create(
                &ClientId::new(theirs.id.as_str()),
                "https://example.com/theirs",
                &[EventType::OrderCreated],
                "whsec_theirs",
                0,
                20,
            )
            .await
            .unwrap()
            .unwrap();
        account(&server.db, "dev", Role::Developer, Some(&mine.id)).await;
        let mut b = Browser::new(&server);
        b.login("dev").await;
        let csrf = b.csrf().await;
        let base = format!("/console/apps/{}/webhooks", mine.id);

        // Add: the secret is shown once, the list shows the URL.
        let res = b
            .post(
                &base,
                &[
                    ("csrf", &csrf),
                    ("url", "http://127.0.0.1:9/hook"),
                    ("events", "ORDER_CREATED"),
                ],
            )
            .await;
        assert_eq!(res.status(), 201);
        let secret = shown_secret(&res.text().await.unwrap(), "webhook-secret").unwrap();
        assert!(secret.starts_with("whsec_"));
        let me = ClientId::new(mine.id.as_str());
        let sub = server.db.webhooks().list(&me).await.unwrap()[0].clone();
        let list = b.get(&base).await.text().await.unwrap();
        assert!(list.contains("http://127.0.0.1:9/hook"));
        assert!(!list.contains(&secret), "the secret is shown only once");

        // Another app's subscription through my app's path: 404 for every action.
        for action in [
            "",
            "/update",
            "/disable",
            "/enable",
            "/rotate",
            "/promote",
            "/delete",
            "/deliveries/dlv_x/resend",
            "/test",
            "/recover",
        ] {
            let path = format!("{base}/{}{action}", their_sub.id);
            let status = if action.is_empty() {
                b.get(&path).await.status()
            } else {
                b.post(
                    &path,
                    &[
                        ("csrf", &csrf),
                        ("url", "https://example.com/x"),
                        ("events", "ORDER_CREATED"),
                        ("since", "2026-12-06T09:30"),
                    ],
                )
                .await
                .status()
            };
            assert_eq!(status, 404, "{action} on {backend:?}");
        }
        let theirs_now = server
            .db
            .webhooks()
            .get(&ClientId::new(theirs.id.as_str()), &their_sub.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(theirs_now, their_sub, "untouched");

        // Edit URL and events.
        let here = format!("{base}/{}", sub.id);
        let res = b
            .post(
                &format!("{here}/update"),
                &[
                    ("csrf", &csrf),
                    ("url", "http://127.0.0.1:9/v2"),
                    ("events", "PAYMENT_RECEIVED"),
                    ("events", "ORDER_CREATED"),
                ],
            )
            .await;
        assert_eq!(res.status(), 303);
        let s = server
            .db
            .webhooks()
            .get(&me, &sub.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.url, "http://127.0.0.1:9/v2");
        assert_eq!(
            s.events,
            [EventType::OrderCreated, EventType::PaymentReceived]
        );
        // A refused edit changes nothing.
        let res = b
            .post(
                &format!("{here}/update"),
                &[
                    ("csrf", &csrf),
                    ("url", "ftp://x"),
                    ("events", "ORDER_CREATED"),
                ],
            )
            .await;
        assert_eq!(res.status(), 422);
        assert_eq!(
            server
                .db
                .webhooks()
                .get(&me, &sub.id)
                .await
                .unwrap()
                .unwrap()
                .url,
            "http://127.0.0.1:9/v2"
        );

        // Disable: no deliveries are queued for it; enable again.
        assert_eq!(
            b.post(&format!("{here}/disable"), &[("csrf", &csrf)])
                .await
                .status(),
            303
        );
        assert!(
            !server
                .db
                .webhooks()
                .get(&me, &sub.id)
                .await
                .unwrap()
                .unwrap()
                .enabled
        );
        assert!(b.get(&here).await.text().await.unwrap().contains("已停用"));
        assert_eq!(
            b.post(&format!("{here}/enable"), &[("csrf", &csrf)])
                .await
                .status(),
            303
        );
        assert!(
            server
                .db
                .webhooks()
                .get(&me, &sub.id)
                .await
                .unwrap()
                .unwrap()
                .enabled
        );

        // Disabled by the server after a receiver's 410: the reason shows, re-enabling clears it.
        sqlx::query("UPDATE webhook_subscriptions SET enabled = 0, disabled_reason = 'receiver answered 410 Gone' WHERE id = $1")
            .bind(&sub.id)
            .execute(server.db.pool())
            .await
            .unwrap();
        let page = b.get(&here).await.text().await.unwrap();
        assert!(page.contains("服务器已自动停用") && page.contains("410 Gone"));
        assert_eq!(
            b.post(&format!("{here}/enable"), &[("csrf", &csrf)])
                .await
                .status(),
            303
        );
        let page = b.get(&here).await.text().await.unwrap();
        assert!(!page.contains("服务器已自动停用"));
        assert!(
            server
                .db
                .webhooks()
                .get(&me, &sub.id)
                .await
                .unwrap()
                .unwrap()
                .enabled
        );

        // Rotate with a chosen overlap: a new secret, shown once, staged — X-L2C-Signature
        // keeps the old one until 启用新密钥.
        let bad = b
            .post(
                &format!("{here}/rotate"),
                &[("csrf", &csrf), ("overlap_hours", "169")],
            )
            .await;
        assert_eq!(bad.status(), 422);
        let res = b
            .post(
                &format!("{here}/rotate"),
                &[("csrf", &csrf), ("overlap_hours", "1")],
            )
            .await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        let rotated = shown_secret(&page, "webhook-secret").unwrap();
        assert_ne!(rotated, secret);
        assert!(page.contains("密钥轮换中"), "the stage is shown");
        assert!(page.contains("启用新密钥"));
        let s = server
            .db
            .webhooks()
            .get(&me, &sub.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.secret, rotated);
        assert_eq!(s.previous_secret.as_deref(), Some(secret.as_str()));
        let now = server.db.now_millis();
        let until = s.previous_secret_expires_at.unwrap();
        assert!((until - now - 3_600_000).abs() < 60_000, "the 1 h overlap");
        assert_eq!(
            s.signing_secrets(now),
            vec![secret.as_str(), rotated.as_str()]
        );

        // 启用新密钥: CSRF-protected, then the new secret signs X-L2C-Signature; twice → 409.
        let promote = format!("{here}/promote");
        assert_eq!(b.post(&promote, &[]).await.status(), 403);
        let unpromoted = server
            .db
            .webhooks()
            .get(&me, &sub.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            unpromoted.secret_promoted_at, None,
            "nothing changed without CSRF"
        );
        let res = b.post(&promote, &[("csrf", &csrf)]).await;
        assert_eq!(res.status(), 303);
        let page = b.get(res.headers()["location"].to_str().unwrap()).await;
        let page = page.text().await.unwrap();
        assert!(page.contains("新密钥已启用"), "{page}");
        let s = server
            .db
            .webhooks()
            .get(&me, &sub.id)
            .await
            .unwrap()
            .unwrap();
        assert!(s.secret_promoted_at.is_some());
        let now = server.db.now_millis();
        assert_eq!(
            s.signing_secrets(now),
            vec![rotated.as_str(), secret.as_str()]
        );
        let again = b.post(&promote, &[("csrf", &csrf)]).await;
        assert_eq!(again.status(), 409);
        assert!(
            again
                .text()
                .await
                .unwrap()
                .contains("当前没有待启用的新密钥")
        );
        let audit = server.db.audit().list(50, 0).await.unwrap();
        assert!(
            audit.iter().any(|e| e.action == "webhook.promote_secret"
                && e.target.as_deref() == Some(sub.id.as_str())),
            "the promote is audited"
        );

        // Deliveries: 13 orders synced (ORDER_CREATED + PAYMENT_RECEIVED each, the dispatcher
        // off) → 26 pending; page 1 holds 20 and links the next, the filters narrow them.
        let token = server.token(&mine).await;
        for i in 0..13 {
            let res = server
                .http()
                .post(server.url("/api/mobile/orders/sync"))
                .bearer_auth(&token)
                .header("x-request-id", uuid::Uuid::new_v4().to_string())
                .json(&order(&format!("PO-{i}")))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }
        let rows = |html: &str| html.matches("<details class=\"delivery\"").count();
        let page1 = b.get(&here).await.text().await.unwrap();
        assert_eq!(rows(&page1), 20);
        assert!(page1.contains("下一页"));
        let page2 = b.get(&format!("{here}?page=2")).await.text().await.unwrap();
        assert_eq!(rows(&page2), 6);
        assert!(!page2.contains("下一页") && page2.contains("上一页"));
        let payments = b
            .get(&format!("{here}?event=PAYMENT_RECEIVED"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(rows(&payments), 13);
        // A row's summary: time, event type, current status.
        let row_of = |t: &str| format!("<span class=\"mono\">{t}</span> <span class=\"badge");
        assert!(!payments.contains(&row_of("ORDER_CREATED")));
        assert!(payments.contains(&row_of("PAYMENT_RECEIVED")));
        let pending = b
            .get(&format!("{here}?status=PENDING&event=ORDER_CREATED"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(rows(&pending), 13);
        let failed = b
            .get(&format!("{here}?status=FAILED"))
            .await
            .text()
            .await
            .unwrap();
        assert!(failed.contains("暂无投递记录"));
        // Nonsense filters are ignored, not errors.
        let odd = b
            .get(&format!("{here}?status=DROP%20TABLE&event=NOPE&page=-4"))
            .await;
        assert_eq!(odd.status(), 200);
        assert_eq!(rows(&odd.text().await.unwrap()), 20);

        // Lead sources: create (push URL and key shown once), rotate, delete; another app's → 404.
        let ls = format!("/console/apps/{}/lead-sources", mine.id);
        let res = b
            .post(
                &ls,
                &[
                    ("csrf", &csrf),
                    ("name", "官网表单"),
                    ("id_pointer", "/id"),
                    ("mobile_pointer", "/phone"),
                ],
            )
            .await;
        assert_eq!(res.status(), 201);
        let page = res.text().await.unwrap();
        let url = shown_secret(&page, "push-url").unwrap();
        assert!(url.contains("/api/hooks/leads/lst_"), "{url}");
        assert!(
            shown_secret(&page, "push-secret")
                .unwrap()
                .starts_with("lsk_")
        );
        let bad = b
            .post(
                &ls,
                &[
                    ("csrf", &csrf),
                    ("name", "x"),
                    ("id_pointer", "id"),
                    ("mobile_pointer", "/phone"),
                ],
            )
            .await;
        assert_eq!(bad.status(), 422);
        assert!(bad.text().await.unwrap().contains("参数无效"));
        let (sources, _) = server.db.lead_sources().list(&me, 1, 10).await.unwrap();
        assert_eq!(sources.len(), 1);
        let src = &sources[0];
        let res = b
            .post(&format!("{ls}/{}/rotate", src.id), &[("csrf", &csrf)])
            .await;
        assert_eq!(res.status(), 200);
        assert_ne!(
            shown_secret(&res.text().await.unwrap(), "push-url").unwrap(),
            url
        );
        let their_ls = format!("/console/apps/{}/lead-sources", theirs.id);
        assert_eq!(
            b.post(&format!("{their_ls}/{}/delete", src.id), &[("csrf", &csrf)])
                .await
                .status(),
            404
        );
        assert_eq!(
            b.post(&format!("{ls}/lsrc_nope/delete"), &[("csrf", &csrf)])
                .await
                .status(),
            404
        );
        assert_eq!(
            b.post(&format!("{ls}/{}/delete", src.id), &[("csrf", &csrf)])
                .await
                .status(),
            303
        );
        assert_eq!(server.db.lead_sources().count(&me).await.unwrap(), 0);

        // Delete the webhook.
        assert_eq!(
            b.post(&format!("{here}/delete"), &[("csrf", &csrf)])
                .await
                .status(),
            303
        );
        assert!(server.db.webhooks().list(&me).await.unwrap().is_empty());
        assert_eq!(b.get(&here).await.status(), 404);
        server.stop().await;
    }
}

/// `datetime-local` form value of unix ms `ms`, in 北京时间 as the console reads it.
fn local(ms: i64) -> String {
    l2c_server::store::sql::millis_to_cst(ms)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Every delivery of `sub` (up to 100), newest first.
async fn logged(
    server: &TestServer,
    client: &ClientId,
    sub: &str,
) -> Vec<l2c_core::api::webhooks::Delivery> {
    let webhooks = server.db.webhooks();
    let sub = webhooks.get(client, sub).await.unwrap().unwrap();
    webhooks
        .deliveries(&sub, &DeliveryFilter::default(), 1, 100)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_test_event_and_a_recovery_from_the_console() {
    for backend in Backend::available() {
        let mut options = TestOptions::default();
        options.config.webhooks.dispatcher = false;
        let server = TestServer::start_with(backend, options).await;
        let mine = server.create_client(Scopes::all()).await;
        let me = ClientId::new(mine.id.as_str());
        let sub = server
            .db
            .webhooks()
            .create(
                &me,
                "https://example.com/hook",
                &[EventType::OrderCreated],
                "whsec_mine",
                0,
                20,
            )
            .await
            .unwrap()
            .unwrap();
        account(&server.db, "dev", Role::Developer, Some(&mine.id)).await;
        let mut b = Browser::new(&server);
        b.login("dev").await;
        let csrf = b.csrf().await;
        let here = format!("/console/apps/{}/webhooks/{}", mine.id, sub.id);
        // Without or with a wrong CSRF token: 403, nothing queued.
        for token in ["", "x"] {
            for action in ["/test", "/recover"] {
                let res = b
                    .post(
                        &format!("{here}{action}"),
                        &[("csrf", token), ("since", "2026-12-06T09:30")],
                    )
                    .await;
                assert_eq!(res.status(), 403, "{action} with {token:?}");
            }
        }
        assert!(logged(&server, &me, &sub.id).await.is_empty());

        // 发送测试事件: one PING queued for this subscription, audited.
        let res = b.post(&format!("{here}/test"), &[("csrf", &csrf)]).await;
        assert_eq!(res.status(), 303);
        let page = b
            .get(&format!("{here}?ok=tested"))
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("测试事件（PING）已排队"));
        assert!(page.contains("<span class=\"mono\">PING</span> <span class=\"badge wait\">"));
        let log = logged(&server, &me, &sub.id).await;
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].event_type, EventType::Ping);
        let payload = server
            .db
            .webhooks()
            .payloads(&me, std::slice::from_ref(&log[0].event_id))
            .await
            .unwrap();
        assert!(
            payload[&log[0].event_id].contains(&sub.id),
            "the body names the webhook"
        );

        // Disabled: refused in words, nothing queued.
        sqlx::query("UPDATE webhook_subscriptions SET enabled = 0 WHERE id = $1")
            .bind(&sub.id)
            .execute(server.db.pool())
            .await
            .unwrap();
        let res = b.post(&format!("{here}/test"), &[("csrf", &csrf)]).await;
        assert_eq!(res.status(), 409);
        assert!(res.text().await.unwrap().contains("已停用"));
        assert_eq!(logged(&server, &me, &sub.id).await.len(), 1);
        sqlx::query("UPDATE webhook_subscriptions SET enabled = 1 WHERE id = $1")
            .bind(&sub.id)
            .execute(server.db.pool())
            .await
            .unwrap();

        // Recover: the failed PING is queued again; bad times are refused in words.
        sqlx::query("UPDATE webhook_deliveries SET status = 'FAILED' WHERE subscription_id = $1")
            .bind(&sub.id)
            .execute(server.db.pool())
            .await
            .unwrap();
        let now = server.db.now_millis();
        for (since, words) in [
            ("yesterday".to_owned(), "请填写有效的起始时间"),
            (local(now + 86_400_000), "不能晚于现在"),
            (local(now - 40 * 86_400_000), "不能早于"),
        ] {
            let res = b
                .post(
                    &format!("{here}/recover"),
                    &[("csrf", &csrf), ("since", &since)],
                )
                .await;
            assert_eq!(res.status(), 422, "{since}");
            assert!(res.text().await.unwrap().contains(words), "{since}");
        }
        assert_eq!(
            logged(&server, &me, &sub.id).await[0].status,
            l2c_core::api::webhooks::DeliveryStatus::Failed
        );
        let res = b
            .post(
                &format!("{here}/recover"),
                &[("csrf", &csrf), ("since", &local(now - 3_600_000))],
            )
            .await;
        assert_eq!(res.status(), 200);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("已将 1 条失败的投递重新排队发送")
        );
        assert_eq!(
            logged(&server, &me, &sub.id).await[0].status,
            l2c_core::api::webhooks::DeliveryStatus::Pending
        );
        let audit = server.db.audit().list(50, 0).await.unwrap();
        for action in ["webhook.test", "webhook.recover"] {
            assert!(
                audit
                    .iter()
                    .any(|e| e.action == action && e.username == "dev"),
                "{action} audited"
            );
        }
        server.stop().await;
    }
}
