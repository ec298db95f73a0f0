//! Baselines of `scripts/bench-work.sh`: the real work of the server — order sync and lead intake
//! — as bare axum handlers that run the same SQL statements `l2c-server` runs for it, and nothing
//! else.
//!
//! Each handler parses the same JSON body into the same `l2c_core::api` type, opens the same
//! kind of write transaction on the same kind of pool ([`l2c_server::store::Db`] and
//! [`begin_write`]: on SQLite the single write connection and `BEGIN IMMEDIATE`, WAL, the same
//! `busy_timeout`; on PostgreSQL the same 16-connection pool), runs the server's statements
//! (copied from `l2c-server/src/store/{orders/sync,customers,leads,outbox/enqueue}.rs`; sqlx prepares and
//! caches them per connection, as it does in the server), commits and answers a small JSON body.
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
use l2c_server::store::sql::begin_write;
use l2c_server::store::{Backend, Db};
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

// --- the server's statements, verbatim ----------------------------------------------------------

// store/orders/sync.rs (`sync_in`) (with ` FOR UPDATE` on PostgreSQL).
const ORDER_SELECT: &str = "SELECT id, customer_id, status, payment_status, version FROM orders \
     WHERE client_id = $1 AND external_order_no = $2";
// store/customers.rs `find_or_create`, `id_by_mobile`, `link`.
// Without a data key (`L2C_DATA_KEY`, as the benchmark runs) the mobile is stored as is and its
// blind index is the E.164 number itself.
const CUSTOMER_INSERT: &str = "INSERT INTO customers (id, mobile_e164, mobile_index, name, province, city, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
const CUSTOMER_BY_MOBILE: &str = "SELECT id FROM customers WHERE mobile_index IN ($1)";
const LINK_INSERT: &str = "INSERT INTO client_customers (client_id, customer_id, linked_at, name, province, city) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id, customer_id) DO NOTHING";
// store/orders/sync.rs: create, update, history, payments.
const ORDER_INSERT: &str = "INSERT INTO orders (id, client_id, external_order_no, customer_id, status, \
     payment_status, total_fen, deposit_fen, paid_fen, currency, items, milestones, version, \
     created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (client_id, external_order_no) DO NOTHING";
const ORDER_UPDATE: &str = "UPDATE orders SET status = $1, payment_status = $2, total_fen = $3, deposit_fen = $4, \
     paid_fen = $5, currency = $6, items = $7, milestones = $8, version = $9, updated_at = $10 \
     WHERE id = $11 AND version < $9";
const HISTORY_INSERT: &str = "INSERT INTO order_history (order_id, version, status, payment_status, changed_at) \
     VALUES ($1, $2, $3, $4, $5)";
const PAYMENT_INSERT: &str = "INSERT INTO payments (id, client_id, order_id, kind, method, amount_fen, \
     channel_transaction_id, paid_at, recorded_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (client_id, method, channel_transaction_id) DO NOTHING";
// store/outbox/enqueue.rs (`enqueue_in`).
const SUBSCRIPTIONS_SELECT: &str =
    "SELECT id, events FROM webhook_subscriptions WHERE client_id = $1 AND enabled = 1";
const EVENT_INSERT: &str = "INSERT INTO webhook_events (id, client_id, event_type, payload, created_at) \
     VALUES ($1, $2, $3, $4, $5)";
// store/leads.rs `existing`, `push`.
const LEAD_SELECT: &str = "SELECT id, customer_id, name, province, city FROM leads \
     WHERE client_id = $1 AND source = $2 AND external_lead_id = $3";
const LEAD_INSERT: &str = "INSERT INTO leads (id, client_id, source, external_lead_id, customer_id, name, \
     mobile_e164, province, city, intent, form_fields, attribution, submitted_at, \
     raw_payload, created_at, lead_source_id, push_headers) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
     ON CONFLICT (client_id, source, external_lead_id) DO NOTHING";

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

async fn insert_event(
    tx: &mut Transaction<'static, Any>,
    client: &str,
    kind: &str,
    no: &str,
    now: i64,
) -> Result<(), Failed> {
    let id = new_id("evt");
    sqlx::query(EVENT_INSERT)
        .bind(&id)
        .bind(client)
        .bind(kind)
        .bind(event_payload(kind, &id, no))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn order_sync(State(app): State<App>, body: Bytes) -> Result<Response, Failed> {
    let o: SyncOrder = serde_json::from_slice(&body)?;
    let client = &*app.client;
    let now = app.db.now_millis();
    let select = match app.db.backend() {
        Backend::Postgres => format!("{ORDER_SELECT} FOR UPDATE"),
        _ => ORDER_SELECT.to_owned(),
    };
    let mobile = o
        .customer
        .as_ref()
        .map(|c| e164(&c.mobile))
        .unwrap_or_default();
    let name = o.customer.as_ref().map(|c| c.name.as_str()).unwrap_or("");
    let items = serde_json::to_string(&o.items)?;
    let milestones = serde_json::to_string(&o.milestones)?;
    let mut tx = begin_write(&app.db).await?;
    let stored = sqlx::query(&select)
        .bind(client)
        .bind(&o.external_order_no)
        .fetch_optional(&mut *tx)
        .await?;
    let (order_id, created) = match stored {
        None => {
            let mut customer = new_id("cus");
            let inserted = sqlx::query(CUSTOMER_INSERT)
                .bind(&customer)
                .bind(&mobile)
                .bind(&mobile)
                .bind(name)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                customer = sqlx::query(CUSTOMER_BY_MOBILE)
                    .bind(&mobile)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("id")?;
            }
            sqlx::query(LINK_INSERT)
                .bind(client)
                .bind(&customer)
                .bind(now)
                .bind(name)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .execute(&mut *tx)
                .await?;
            let id = new_id("ord");
            sqlx::query(ORDER_INSERT)
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
            sqlx::query(CUSTOMER_BY_MOBILE)
                .bind(&mobile)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query(ORDER_UPDATE)
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
    sqlx::query(HISTORY_INSERT)
        .bind(&order_id)
        .bind(o.version)
        .bind(o.status.as_str())
        .bind(o.payment_status.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    for p in &o.payments {
        sqlx::query(PAYMENT_INSERT)
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
    // The outbox: the subscriptions, then one event row per event (ORDER_CREATED on a new
    // order, PAYMENT_RECEIVED per payment).
    sqlx::query(SUBSCRIPTIONS_SELECT)
        .bind(client)
        .fetch_all(&mut *tx)
        .await?;
    if created {
        insert_event(&mut tx, client, "ORDER_CREATED", &o.external_order_no, now).await?;
    }
    for _ in &o.payments {
        insert_event(
            &mut tx,
            client,
            "PAYMENT_RECEIVED",
            &o.external_order_no,
            now,
        )
        .await?;
    }
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
    let now = app.db.now_millis();
    let mobile = e164(&lead.mobile);
    let form_fields = serde_json::to_string(&lead.form_fields)?;
    let attribution = lead
        .attribution
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let mut tx = begin_write(&app.db).await?;
    sqlx::query(LEAD_SELECT)
        .bind(client)
        .bind(lead.source.as_str())
        .bind(&lead.external_lead_id)
        .fetch_optional(&mut *tx)
        .await?;
    let mut customer = new_id("cus");
    let inserted = sqlx::query(CUSTOMER_INSERT)
        .bind(&customer)
        .bind(&mobile)
        .bind(&mobile)
        .bind(lead.name.trim())
        .bind(lead.province.as_deref())
        .bind(lead.city.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if inserted == 0 {
        customer = sqlx::query(CUSTOMER_BY_MOBILE)
            .bind(&mobile)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
    }
    let id = new_id("lead");
    sqlx::query(LEAD_INSERT)
        .bind(&id)
        .bind(client)
        .bind(lead.source.as_str())
        .bind(&lead.external_lead_id)
        .bind(&customer)
        .bind(lead.name.trim())
        .bind(&mobile)
        .bind(lead.province.as_deref())
        .bind(lead.city.as_deref())
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
    sqlx::query(LINK_INSERT)
        .bind(client)
        .bind(&customer)
        .bind(now)
        .bind(lead.name.trim())
        .bind(lead.province.as_deref())
        .bind(lead.city.as_deref())
        .execute(&mut *tx)
        .await?;
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
