//! The SDK's lead source and lead read operations against a real server: create, update,
//! rotate, list (page and stream), delete, and reading a pushed lead back.
#![allow(clippy::unwrap_used)]

use futures_util::TryStreamExt;
use l2c_client::types::lead_sources::{Channel, CreateLeadSource, UpdateLeadSource};
use l2c_client::types::leads::LeadSource;
use l2c_client::{Client, Error};
use l2c_core::Scopes;
use l2c_server::testing::{Backend, TestServer};

fn sdk(server: &TestServer, id: &str, secret: &str) -> Client {
    Client::builder()
        .base_url(&server.base_url)
        .credentials(id, secret)
        .http_client(reqwest::Client::builder().no_proxy().build().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_sdk_manages_lead_sources_and_reads_the_leads_they_deliver() {
    let server = TestServer::start(Backend::Sqlite).await;
    let app = server.create_client(Scopes::all()).await;
    let client = sdk(&server, &app.id, &app.secret);

    let feiyu = client
        .lead_sources()
        .create(CreateLeadSource::new(Channel::Feiyu, "飞鱼"))
        .send()
        .await
        .unwrap();
    assert!(feiyu.push_url.contains("/api/hooks/leads/lst_"));
    assert!(feiyu.secret.is_none());
    let generic = client
        .lead_sources()
        .create(
            CreateLeadSource::new(Channel::Generic, "百度").settings(serde_json::json!({
                "source": "BAIDU",
                "fields": {"externalLeadId": "/id", "mobile": "/tel"}
            })),
        )
        .send()
        .await
        .unwrap();
    assert!(generic.secret.as_deref().unwrap().starts_with("lsk_"));

    // A bad setting comes back as a typed API error naming it.
    let err =
        client
            .lead_sources()
            .create(CreateLeadSource::new(Channel::Generic, "x").settings(
                serde_json::json!({"fields": {"externalLeadId": "id", "mobile": "/tel"}}),
            ))
            .send()
            .await
            .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status, .. } if status.as_u16() == 422),
        "{err:?}"
    );

    let updated = client
        .lead_sources()
        .update(
            feiyu.id.as_str(),
            UpdateLeadSource::new()
                .name("飞鱼 主账户")
                .settings(serde_json::json!({"fields": {"mobile": ["phone"]}})),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(updated.name, "飞鱼 主账户");
    assert!(!updated.has_secret);

    let rotated = client
        .lead_sources()
        .rotate(feiyu.id.as_str())
        .send()
        .await
        .unwrap();
    assert_ne!(rotated.push_url, feiyu.push_url);

    // A push through the rotated URL, read back through the SDK.
    let res = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(&rotated.push_url)
        .header("content-type", "application/json")
        .body(r#"{"clue_id":"sdk-1","phone":"13800138030","name":"钱七"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let leads = client
        .leads()
        .list()
        .lead_source_id(feiyu.id.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(leads.total, 1);
    let lead = client
        .leads()
        .get(leads.items[0].id.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(lead.source, LeadSource::Douyin);
    assert_eq!(lead.external_lead_id, "sdk-1");
    assert_eq!(lead.name, "钱*");
    assert_eq!(lead.mobile, "138****8030");

    let all: Vec<_> = client
        .lead_sources()
        .list()
        .page_size(1)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|s| s.channel == Channel::Feiyu || s.has_secret)
    );

    client
        .lead_sources()
        .delete(generic.id.as_str())
        .send()
        .await
        .unwrap();
    let err = client
        .lead_sources()
        .get(generic.id.as_str())
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status, .. } if status.as_u16() == 404),
        "{err:?}"
    );
    server.stop().await;
}
