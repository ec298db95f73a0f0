//! Run with: cargo run --example quickstart
//!
//! Token → push a lead → sync its order → read the order's status, against a running platform.
//! Start one with `cargo run -p l2c-server` and export the demo credentials it prints:
//!
//! ```text
//! L2C_CLIENT_ID=… L2C_CLIENT_SECRET=… cargo run --example quickstart
//! ```
//!
//! `L2C_BASE_URL` defaults to `http://127.0.0.1:8080`.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{FixedOffset, Utc};
use l2c_client::Client;
use l2c_client::types::leads::{LeadSource, PushLead};
use l2c_client::types::orders::{OrderAmounts, Payment, PaymentKind, PaymentMethod, SyncOrder};
use l2c_client::types::status::{OrderStatus, PaymentStatus};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = client_from_env()?;
    client.authenticate().await?;
    println!("authenticated as {}", client.client_id());

    // A lead from a Douyin form; the external id makes the push safe to repeat.
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let now = Utc::now().with_timezone(&FixedOffset::east_opt(8 * 3600).ok_or("offset")?);
    let mut lead = PushLead::new(
        LeadSource::Douyin,
        format!("dy-quickstart-{run}"),
        "张三",
        "+86 138-0013-8000",
        now,
    );
    lead.city = Some("杭州市".to_owned());
    lead.intent = Some("全屋定制，120㎡".to_owned());
    let pushed = client.leads().push(lead).send().await?;
    println!(
        "lead {} → customer {} (duplicate: {})",
        pushed.lead_id, pushed.customer_id, pushed.duplicate
    );

    // The ERP creates the order with its deposit.
    let mut order = SyncOrder::new(
        format!("ERP-QS-{run}"),
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
        format!("wx-{run}"),
        now,
    ));
    let synced = client.orders().sync(order).send().await?;
    println!(
        "order {} synced (created: {}, applied: {})",
        synced.order_id, synced.created, synced.applied
    );

    let status = client.orders().status(synced.order_id).send().await?;
    println!(
        "status: {} {} / payment: {} {} (version {})",
        status.status,
        status.status_label,
        status.payment_status,
        status.payment_status_label,
        status.version
    );
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
