//! Baselines of `scripts/bench-work.sh`: the real work of the server — order sync and lead intake
//! — as bare axum handlers that run the same SQL statements `l2c-server` runs for it, and nothing
//! else.
//!
//! Each handler parses the same JSON body into the same `l2c_core::api` type, opens the same
//! kind of write transaction on the same kind of pool ([`l2c_server::store::Db`] and
//! [`begin_write`]: on SQLite the single write connection and `BEGIN IMMEDIATE`, WAL, the same
//! `busy_timeout`; on PostgreSQL the same 16-connection pool), runs the server's statements, in
//! the server's order (the constants of `l2c_server::store::{orders::sync, customers, leads,
//! outbox::enqueue}`, not copies; sqlx prepares and caches them per connection, as it does in
//! the server), commits and answers a small JSON body.
//! No authentication, rate limit, idempotency record, validation, transition check or event
//! serialisation: the physical limit of that work on this machine, against which the server's
//! throughput is a ratio.
//!
//! The client id the rows belong to is a client the script creates with `l2c-server client
//! create` (foreign keys), passed with `--client-id`. Run it with e.g.
//!
//! ```text
//! cargo run --release -p l2c-bench --bin l2c-work -- \
//!     --database-url sqlite:///tmp/w.db?mode=rwc --client-id cli_x --listen 127.0.0.1:8400
//! ```
//!
//! It prints `listening=<addr>` once it accepts connections.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use clap::Parser;
use l2c_core::api::leads::PushLead;
use l2c_core::api::orders::SyncOrder;
use l2c_server::domain::new_id;
use l2c_server::store::Db;
use l2c_server::store::customers::{INSERT_CUSTOMER_SQL, LINK_SQL, by_mobile_sql};
use l2c_server::store::leads::{INSERT_LEAD_SQL, existing_lead_query};
use l2c_server::store::orders::sync::{
    INSERT_HISTORY_SQL, INSERT_ORDER_SQL, INSERT_PAYMENT_SQL, UPDATE_ORDER_SQL, lock_sql,
};
use l2c_server::store::outbox::enqueue::{SUBSCRIPTIONS_SQL, insert_events_sql};
use l2c_server::store::sql::{begin_write, planned_each_run};
use sqlx::{Any, Row, Transaction};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The order-sync route of `l2c-server`.
const SYNC_ROUTE: &str = "/api/mobile/orders/sync";
/// The lead-intake route of `l2c-server`.
const LEAD_ROUTE: &str = "/api/mobile/leads/hook";

#[derive(Debug, Parser)]
#[command(
    name = "l2c-work",
    about = "Bare-handler baselines of scripts/bench-work.sh"
)]
struct Args {
    /// `sqlite://FILE?mode=rwc` or `postgres://…` (migrated on start, like the server's).
    #[arg(long)]
    database_url: String,
    /// The client the rows are written for (an existing `clients.id`).
    #[arg(long)]
    client_id: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

#[derive(Clone)]
struct App {
    db: Db,
    client: std::sync::Arc<str>,
    /// `customers::id_by_mobile`'s statement for one blind index (no data key).
    by_mobile: std::sync::Arc<str>,
}

/// A failed baseline request: 500 with the error in the body (the script counts non-2xx).
struct Failed(String);

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.0).into_response()
    }
}

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed(e.to_string())
    }
}

// The server's statements are its own constants (`l2c_server::store::{orders::sync, customers,
// leads, outbox::enqueue}`), so this baseline cannot drift from them. Without a data key
// (`L2C_DATA_KEY`, as the benchmark runs) sealed columns are stored as is and the mobile's one
// blind index is the E.164 number itself.

/// An outbox row's payload of about the size the server's serialised events have.
fn event_payload(kind: &str, id: &str, no: &str) -> String {
    format!(
        r#"{{"eventId":"{id}","eventType":"{kind}","occurredAt":"2026-11-20T10:15:00+08:00","data":{{"orderId":"{id}","externalOrderNo":"{no}","status":"DEPOSIT_PAID","paymentStatus":"DEPOSIT_PAID","amounts":{{"total":3980000,"deposit":500000,"paid":500000,"currency":"CNY"}},"customerId":"cus_0000000000000000000000000000000","version":1}}}}"#
    )
}

/// `+86…` as the server stores a mainland mobile number (the benchmark sends 11 digits).
fn e164(mobile: &str) -> String {
    format!("+86{mobile}")
}

/// The customer with `mobile`, found or created, as `customers::find_or_create` does it: the
/// lookup by blind index, then the insert when there is none (then the lookup once more when a
/// concurrent insert won).
async fn find_or_create_customer(
    tx: &mut Transaction<'static, Any>,
    by_mobile: &str,
    mobile: &str,
    name: &str,
    region: (Option<&str>, Option<&str>),
    now: i64,
) -> Result<String, Failed> {
    let found = sqlx::query(by_mobile)
        .bind(mobile)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(row) = found {
        return Ok(row.try_get("id")?);
    }
    let id = new_id("cus");
    let inserted = sqlx::query(INSERT_CUSTOMER_SQL)
        .bind(&id)
        .bind(mobile)
        .bind(mobile)
        .bind(name)
        .bind(region.0)
        .bind(region.1)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if inserted == 1 {
        return Ok(id);
    }
    Ok(sqlx::query(by_mobile)
        .bind(mobile)
        .fetch_one(&mut **tx)
        .await?
        .try_get("id")?)
}

/// `customers::link`.
async fn link(
    tx: &mut Transaction<'static, Any>,
    client: &str,
    customer: &str,
    name: &str,
    region: (Option<&str>, Option<&str>),
    now: i64,
) -> Result<(), Failed> {
    sqlx::query(LINK_SQL)
        .bind(client)
        .bind(customer)
        .bind(now)
        .bind(name)
        .bind(region.0)
        .bind(region.1)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn order_sync(State(app): State<App>, body: Bytes) -> Result<Response, Failed> {
    let o: SyncOrder = serde_json::from_slice(&body)?;
    let client = &*app.client;
    let mobile = o
        .customer
        .as_ref()
        .map(|c| e164(&c.mobile))
        .unwrap_or_default();
    let name = o.customer.as_ref().map(|c| c.name.as_str()).unwrap_or("");
    let items = serde_json::to_string(&o.items)?;
    let milestones = serde_json::to_string(&o.milestones)?;
    let mut tx = begin_write(&app.db).await?;
    let now = app.db.now_millis();
    let stored = planned_each_run(lock_sql(app.db.backend()), app.db.backend())
        .bind(client)
        .bind(&o.external_order_no)
        .fetch_optional(&mut *tx)
        .await?;
    let (order_id, created) = match stored {
        None => {
            let customer =
                find_or_create_customer(&mut tx, &app.by_mobile, &mobile, name, (None, None), now)
                    .await?;
            link(&mut tx, client, &customer, name, (None, None), now).await?;
            let id = new_id("ord");
            sqlx::query(INSERT_ORDER_SQL)
                .bind(&id)
                .bind(client)
                .bind(&o.external_order_no)
                .bind(&customer)
                .bind(o.status.as_str())
                .bind(o.payment_status.as_str())
                .bind(o.amounts.total)
                .bind(o.amounts.deposit)
                .bind(o.amounts.paid)
                .bind(&o.amounts.currency)
                .bind(items)
                .bind(milestones)
                .bind(o.version)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            (id, true)
        }
        Some(row) => {
            let id: String = row.try_get("id")?;
            sqlx::query(&app.by_mobile)
                .bind(&mobile)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query(UPDATE_ORDER_SQL)
                .bind(o.status.as_str())
                .bind(o.payment_status.as_str())
                .bind(o.amounts.total)
                .bind(o.amounts.deposit)
                .bind(o.amounts.paid)
                .bind(&o.amounts.currency)
                .bind(items)
                .bind(milestones)
                .bind(o.version)
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            (id, false)
        }
    };
    sqlx::query(INSERT_HISTORY_SQL)
        .bind(&order_id)
        .bind(o.version)
        .bind(o.status.as_str())
        .bind(o.payment_status.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    for p in &o.payments {
        sqlx::query(INSERT_PAYMENT_SQL)
            .bind(new_id("pay"))
            .bind(client)
            .bind(&order_id)
            .bind(p.kind.as_str())
            .bind(p.method.as_str())
            .bind(p.amount)
            .bind(&p.channel_transaction_id)
            .bind(p.paid_at.to_rfc3339())
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    // The outbox: the subscriptions (the benchmark's client has none, so no deliveries), then
    // the events in one insert (ORDER_CREATED on a new order, PAYMENT_RECEIVED per payment).
    sqlx::query(SUBSCRIPTIONS_SQL)
        .bind(client)
        .fetch_all(&mut *tx)
        .await?;
    let kinds = created
        .then_some("ORDER_CREATED")
        .into_iter()
        .chain(o.payments.iter().map(|_| "PAYMENT_RECEIVED"));
    let mut events = Vec::new();
    for kind in kinds {
        let id = new_id("evt");
        let payload = event_payload(kind, &id, &o.external_order_no);
        events.extend([id, kind.to_owned(), payload]);
    }
    let sql = insert_events_sql(events.len() / 3);
    events
        .iter()
        .fold(sqlx::query(&sql).bind(now).bind(client), |q, v| q.bind(v))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(serde_json::json!({"orderId": order_id, "applied": true})),
    )
        .into_response())
}

async fn lead_intake(State(app): State<App>, body: Bytes) -> Result<Response, Failed> {
    let lead: PushLead = serde_json::from_slice(&body)?;
    let raw = std::str::from_utf8(&body)?;
    let client = &*app.client;
    let mobile = e164(&lead.mobile);
    let name = lead.name.trim();
    let region = (lead.province.as_deref(), lead.city.as_deref());
    let form_fields = serde_json::to_string(&lead.form_fields)?;
    let attribution = lead
        .attribution
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let now = app.db.now_millis();
    let mut tx = begin_write(&app.db).await?;
    existing_lead_query(&tx)
        .bind(client)
        .bind(lead.source.as_str())
        .bind(&lead.external_lead_id)
        .fetch_optional(&mut *tx)
        .await?;
    let customer =
        find_or_create_customer(&mut tx, &app.by_mobile, &mobile, name, region, now).await?;
    let id = new_id("lead");
    sqlx::query(INSERT_LEAD_SQL)
        .bind(&id)
        .bind(client)
        .bind(lead.source.as_str())
        .bind(&lead.external_lead_id)
        .bind(&customer)
        .bind(name)
        .bind(&mobile)
        .bind(region.0)
        .bind(region.1)
        .bind(lead.intent.as_deref())
        .bind(form_fields)
        .bind(attribution)
        .bind(lead.submitted_at.to_rfc3339())
        .bind(raw)
        .bind(now)
        .bind(None::<&str>)
        .bind(None::<&str>)
        .execute(&mut *tx)
        .await?;
    link(&mut tx, client, &customer, name, region, now).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"leadId": id, "customerId": customer, "duplicate": false})),
    )
        .into_response())
}

async fn serve(args: Args) -> Result<(), BoxError> {
    let db = Db::connect(&args.database_url).await?;
    let app = App {
        db,
        client: args.client_id.into(),
        by_mobile: by_mobile_sql(1).into(),
    };
    let router = Router::new()
        .route(SYNC_ROUTE, post(order_sync))
        .route(LEAD_ROUTE, post(lead_intake))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("listening={local}");
    axum::serve(listener, router).await?;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()?
        .block_on(serve(args))
}
