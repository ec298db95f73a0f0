//! End to end: the SDK against a real `l2c-server` on 127.0.0.1:0.
#![allow(clippy::unwrap_used)]

use http::StatusCode;
use l2c_client::{Client, Error};
use l2c_core::Scopes;
use l2c_server::testing::{Backend, TestServer};

fn sdk(server: &TestServer, id: &str, secret: &str) -> Client {
    Client::builder()
        .base_url(&server.base_url)
        .credentials(id, secret)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        )
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_sdk_gets_a_token_and_the_server_accepts_it() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let app = server.create_client(Scopes::all()).await;
        let client = sdk(&server, &app.id, &app.secret);

        client
            .authenticate()
            .await
            .expect("token from the real endpoint");

        // The bearer token passes the JWT layer: the answer is the route's 404, not a 401.
        let err = client
            .customers()
            .get("cus_does_not_exist")
            .send()
            .await
            .expect_err("no such customer");
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND), "{err:?}");
        assert!(err.request_id().is_some(), "{err:?}");

        server.stop().await;
    }
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_with_the_oauth_code() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let app = server.create_client(Scopes::all()).await;
        let client = sdk(&server, &app.id, "not-the-secret-not-the-secret-000");

        let err = client.authenticate().await.expect_err("refused");
        match &err {
            Error::Auth { status, error } => {
                assert_eq!(*status, StatusCode::UNAUTHORIZED);
                assert_eq!(error.error.as_str(), "invalid_client");
            }
            other => panic!("expected Error::Auth, got {other:?}"),
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn the_quickstart_flow_through_the_sdk() {
    use futures_util::TryStreamExt;
    use l2c_client::types::leads::{LeadSource, PushLead};
    use l2c_client::types::orders::{OrderAmounts, Payment, PaymentKind, PaymentMethod, SyncOrder};
    use l2c_client::types::status::{OrderStatus, PaymentStatus};

    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let app = server.create_client(Scopes::all()).await;
        let client = sdk(&server, &app.id, &app.secret);
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-26T09:30:00+08:00").unwrap();

        let lead = PushLead::new(
            LeadSource::Douyin,
            "dy-e2e-1",
            "张三",
            "+86 138-0013-8000",
            now,
        );
        let pushed = client
            .leads()
            .push(lead.clone())
            .send()
            .await
            .expect("push lead");
        assert!(!pushed.duplicate);
        let again = client.leads().push(lead).send().await.expect("push again");
        assert!(again.duplicate);
        assert_eq!(again.lead_id, pushed.lead_id);

        let customer = client
            .customers()
            .get(pushed.customer_id.clone())
            .send()
            .await
            .expect("customer");
        assert_eq!(customer.mobile, "138****8000");

        let mut order = SyncOrder::new(
            "ERP-E2E-1",
            OrderStatus::DepositPaid,
            PaymentStatus::DepositPaid,
            OrderAmounts::cny(1_990_000, 200_000, 200_000),
            1,
        );
        order.customer_id = Some(pushed.customer_id.clone());
        order.payments.push(Payment::new(
            PaymentKind::Deposit,
            PaymentMethod::WechatPay,
            200_000,
            "wx-e2e-1",
            now,
        ));
        let synced = client
            .orders()
            .sync(order)
            .request_id("erp-e2e-1-v1")
            .send()
            .await
            .expect("sync order");
        assert!(synced.applied);

        let status = client
            .orders()
            .status(synced.order_id.clone())
            .send()
            .await
            .expect("status");
        assert_eq!(status.status, OrderStatus::DepositPaid);
        assert_eq!(status.payment_status_label, "已付定金");

        // An illegal transition (payment going back to UNPAID) is a typed 409. (CANCELLED is
        // the one status that may be UNPAID at all; with any other the body itself is a 422.)
        let backwards = SyncOrder::new(
            "ERP-E2E-1",
            OrderStatus::Cancelled,
            PaymentStatus::Unpaid,
            OrderAmounts::cny(1_990_000, 200_000, 0),
            2,
        );
        let err = client
            .orders()
            .sync(backwards)
            .send()
            .await
            .expect_err("illegal");
        assert_eq!(err.status(), Some(StatusCode::CONFLICT), "{err:?}");
        assert_eq!(err.code(), Some("illegal_payment_transition"), "{err:?}");

        let page = client
            .showroom()
            .items()
            .page_size(2)
            .send()
            .await
            .expect("page");
        let all: Vec<_> = client
            .showroom()
            .items()
            .page_size(2)
            .stream()
            .try_collect()
            .await
            .expect("stream");
        assert_eq!(all.len() as u64, page.total);

        let csv = client
            .reports()
            .export_orders()
            .send()
            .await
            .expect("export")
            .collect()
            .await
            .expect("csv body");
        let csv = String::from_utf8(csv.to_vec()).unwrap();
        assert!(csv.starts_with("orderId,"), "{csv}");
        assert!(csv.contains("ERP-E2E-1"), "{csv}");

        server.stop().await;
    }
}
