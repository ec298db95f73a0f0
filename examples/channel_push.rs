//! Run with: cargo run --example channel_push
//!
//! A 小红书 聚光 lead arriving natively: create a lead source for the channel (with the token
//! 聚光 shows in the landing page's 数据推送 settings), push a lead the way 聚光 does — its own
//! JSON, signed `X-Red-Signature: sha1=HMAC-SHA1(token, body)` — to the source's push URL, push it
//! again (the platform retries: 200, nothing new), then read the lead back, masked, with the
//! SDK. Against a running platform:
//!
//! ```text
//! L2C_CLIENT_ID=… L2C_CLIENT_SECRET=… cargo run --example channel_push
//! ```
//!
//! `L2C_BASE_URL` defaults to `http://127.0.0.1:8080`. The client needs the
//! `lead-sources:manage` and `leads:read` scopes (the demo client has every scope).

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use l2c_client::Client;
use l2c_client::types::lead_sources::{Channel, CreateLeadSource};
use l2c_client::types::leads::LeadSource;
use serde_json::json;
use sha1::Sha1;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = client_from_env()?;
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();

    // 1. The lead source: the token comes from 聚光, the push URL from us (shown only now).
    let token = format!("juguang-token-{run}");
    let source = client
        .lead_sources()
        .create(
            CreateLeadSource::new(Channel::Xiaohongshu, "聚光 全屋定制落地页")
                .settings(json!({"token": token})),
        )
        .send()
        .await?;
    println!(
        "lead source {} → paste into 聚光: {}",
        source.id, source.push_url
    );

    // 2. What 聚光 sends when someone submits the landing page's form.
    let leads_id = format!("65f0c1{run}");
    let body = serde_json::to_vec(&json!({
        "timestamp": 1721800000000_i64,
        "source": "juguang",
        "data": {
            "leads_id": leads_id,
            "landing_page_id": 123,
            "submitted_time": "2024-07-24 13:46:40",
            "campaign_id": 9001, "unit_id": 9002, "creative_id": 9003,
            "data": [
                {"label": "姓名", "value": "张三"},
                {"label": "手机号", "value": "138 0013 8000"},
                {"label": "所在城市", "value": "杭州"},
                {"label": "装修需求", "value": "全屋定制"}
            ]
        }
    }))?;
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(token.as_bytes())?;
    mac.update(&body);
    let signature = format!("sha1={}", hex::encode(mac.finalize().into_bytes()));

    let http = reqwest::Client::new();
    let mut lead_id = None;
    for attempt in ["first delivery", "the platform's retry"] {
        let res = http
            .post(&source.push_url)
            .header("content-type", "application/json")
            .header("X-Red-Signature", &signature)
            .body(body.clone())
            .send()
            .await?;
        let status = res.status();
        let ack: serde_json::Value = res.json().await?;
        println!("{attempt}: {status} {ack}");
        if status != 200 {
            return Err(format!("the push was refused: {ack}").into());
        }
        lead_id = ack["leadId"].as_str().map(str::to_owned);
    }
    let lead_id = lead_id.ok_or("no lead id in the answer")?;

    // A tampered body is refused (401) and stores nothing.
    let tampered = http
        .post(&source.push_url)
        .header("content-type", "application/json")
        .header("X-Red-Signature", &signature)
        .body(String::from_utf8(body)?.replace("张三", "李四"))
        .send()
        .await?;
    println!("tampered body: {}", tampered.status());
    if tampered.status() != 401 {
        return Err("a tampered push was accepted".into());
    }

    // 3. The partner reads back what its channel delivered, masked like a customer.
    let lead = client.leads().get(lead_id.as_str()).send().await?;
    println!(
        "lead {}: {} {} {} from {} (source {}), submitted {}",
        lead.id,
        lead.name,
        lead.mobile,
        lead.city.as_deref().unwrap_or("-"),
        lead.source,
        lead.lead_source_id.as_deref().unwrap_or("-"),
        lead.submitted_at
    );
    let page = client
        .leads()
        .list()
        .lead_source_id(source.id.as_str())
        .send()
        .await?;
    println!("{} lead(s) delivered through {}", page.total, source.id);
    if lead.source != LeadSource::Xiaohongshu || page.total != 1 {
        return Err("unexpected lead read back".into());
    }
    client.lead_sources().delete(source.id).send().await?;
    Ok(())
}

fn client_from_env() -> Result<Client, Box<dyn std::error::Error>> {
    let base_url =
        std::env::var("L2C_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let (Ok(id), Ok(secret)) = (
        std::env::var("L2C_CLIENT_ID"),
        std::env::var("L2C_CLIENT_SECRET"),
    ) else {
        return Err("set L2C_CLIENT_ID and L2C_CLIENT_SECRET (printed by `cargo run -p l2c-server` on first start)".into());
    };
    Ok(Client::builder()
        .base_url(base_url)
        .credentials(id, secret)
        .build()?)
}
