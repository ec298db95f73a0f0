//! HTTP benchmark server for `scripts/bench-http.sh`.
//!
//! One handler — a `GET` returning ~230 bytes of JSON, the shape of an order-status response —
//! served in one of several modes, so the cost of each middleware stack is the difference to
//! `bare`:
//!
//! | mode | stack in front of the handler |
//! |---|---|
//! | `bare` | nothing: plain axum |
//! | `peer` | what users would pick instead of l2c: `tower_governor` keyed by peer IP, then a typical `jsonwebtoken` HS256 bearer middleware (`axum::middleware::from_fn`) |
//! | `peer-429` | the same with a governor quota so small that every request is rejected |
//! | `l2c` | the full l2c stack: `RequestIdLayer`, `JwtAuthLayer`, `KeyedRateLimitLayer`, `IdempotencyLayer` (pass-through on a GET), `RequireScopeLayer` |
//! | `l2c-429` | the same with a quota so small that every request is rejected |
//!
//! The server prints one line `token=<jwt>` (a bearer token valid for the selected mode) and one
//! line `listening=<addr>` on stdout once it accepts connections; `--print-token` prints the token
//! only and exits. Run it with e.g.
//!
//! ```text
//! cargo run --release -p l2c-bench -- --mode peer --listen 127.0.0.1:8300
//! ```

mod l2c;
mod peer;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use clap::{Parser, ValueEnum};
use serde::Serialize;

/// The route every mode serves.
pub const ROUTE: &str = "/api/mobile/orders/ord_01JD7Y3K9Q/status";

/// Issuer, audience, subject and scope of the benchmark tokens.
pub const ISSUER: &str = "https://l2c.example/bench";
/// Audience of the benchmark tokens.
pub const AUDIENCE: &str = "l2c-open-api";
/// Client id (`sub`) of the benchmark tokens.
pub const CLIENT_ID: &str = "cli_bench";
/// Scope of the benchmark tokens.
pub const SCOPE: &str = "orders:read";

/// Default HS256 secret: fine for a benchmark on loopback, never for anything else.
const DEFAULT_SECRET: &str = "l2c-bench-secret-0123456789abcdef0123456789";

/// How long the printed token stays valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Plain axum.
    Bare,
    /// tower_governor (keyed by peer IP, nothing rejected) + jsonwebtoken `from_fn` middleware.
    Peer,
    /// As `peer`, with a quota so small every request is rejected.
    #[value(name = "peer-429")]
    Peer429,
    /// The full l2c stack (request id, JWT auth, rate limit, idempotency, scope check).
    L2c,
    /// As `l2c`, with a quota so small every request is rejected.
    #[value(name = "l2c-429")]
    L2c429,
}

#[derive(Debug, Parser)]
#[command(about = "Benchmark server: one JSON handler behind the selected middleware stack")]
struct Args {
    /// Middleware stack in front of the handler.
    #[arg(long, value_enum, default_value = "bare")]
    mode: Mode,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8300")]
    listen: SocketAddr,
    /// Tokio worker threads (the benchmark gives the server one core).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// HS256 secret the tokens are signed and checked with (UTF-8, at least 32 bytes).
    #[arg(long, env = "L2C_BENCH_SECRET", default_value = DEFAULT_SECRET, hide_default_value = true)]
    secret: String,
    /// Print a bearer token valid for `--mode` and exit.
    #[arg(long)]
    print_token: bool,
    /// Print the names of the modes, one per line, and exit.
    #[arg(long)]
    list_modes: bool,
}

/// The handler's response: 237 bytes of JSON once serialized (amount in fen).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderStatus {
    order_id: &'static str,
    external_order_no: &'static str,
    status: &'static str,
    status_label: &'static str,
    payment_status: &'static str,
    payment_status_label: &'static str,
    amount: u64,
    updated_at: &'static str,
}

async fn order_status() -> Json<OrderStatus> {
    Json(OrderStatus {
        order_id: "ord_01JD7Y3K9Q",
        external_order_no: "ERP-2026-000123",
        status: "SCHEDULING",
        status_label: "正在排产",
        payment_status: "FULLY_PAID",
        payment_status_label: "已付全款",
        amount: 1_990_000,
        updated_at: "2026-11-26T09:30:00+08:00",
    })
}

/// The bare router every mode wraps.
fn handler_router() -> Router {
    Router::new().route(ROUTE, get(order_status))
}

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn token_for(mode: Mode, secret: &str) -> Result<String, BoxError> {
    match mode {
        // `bare` ignores the header; any token will do, so hand out the peer one.
        Mode::Bare | Mode::Peer | Mode::Peer429 => {
            peer::issue_token(secret.as_bytes(), now_secs(), TOKEN_LIFETIME)
        }
        Mode::L2c | Mode::L2c429 => l2c::issue_token(secret.as_bytes()),
    }
}

async fn serve(args: Args, token: String) -> Result<(), BoxError> {
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        // Best effort, as in most production setups; a failure only costs latency.
        let _ = tcp.set_nodelay(true);
    });
    println!("token={token}");
    println!("listening={local}");
    let secret = args.secret.into_bytes();
    match args.mode {
        Mode::Bare => axum::serve(listener, handler_router()).await?,
        Mode::Peer | Mode::Peer429 => {
            let app = peer::stack(handler_router(), &secret, args.mode == Mode::Peer429)?;
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await?
        }
        Mode::L2c | Mode::L2c429 => {
            let app = l2c::stack(handler_router(), &secret, args.mode == Mode::L2c429)?;
            axum::serve(listener, app).await?
        }
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    if args.list_modes {
        for mode in Mode::value_variants() {
            if let Some(value) = mode.to_possible_value() {
                println!("{}", value.get_name());
            }
        }
        return Ok(());
    }
    if args.secret.len() < 32 {
        return Err("--secret must be at least 32 bytes".into());
    }
    let token = token_for(args.mode, &args.secret)?;
    if args.print_token {
        println!("{token}");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, token))
}
