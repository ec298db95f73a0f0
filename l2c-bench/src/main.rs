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
//! | `bare-post` | nothing: plain axum serving the `POST` of `l2c-replay` (reads the ~150-byte body, answers ~1 KiB of JSON) |
//! | `l2c-replay` | the full l2c stack on that `POST` retried with the same `X-Request-Id`: the first request runs the handler, every later one is the stored ~1 KiB response replayed by `IdempotencyLayer` |
//! | `static-post` | nothing: plain axum answering that `POST` (body read) with the same ~1 KiB, serialized once at start — the exchange alone, the most any replay could reach |
//!
//! The server prints one line `token=<jwt>` (a bearer token valid for the selected mode) and one
//! line `listening=<addr>` on stdout once it accepts connections; `--print-token` prints the token
//! only and exits. `--in-process N` serves nothing: it drives the same router in process (no
//! sockets, no HTTP parsing) and prints `in_process_ns=<ns per request, fastest of seven batches>`,
//! the cost of the stack itself. `--print-request` prints the request the mode expects (`method=`,
//! `path=`, `header=` lines and a `body=` line), from which the script builds wrk's Lua script and
//! its own checks. Run it with e.g.
//!
//! ```text
//! cargo run --release -p l2c-bench -- --mode peer --listen 127.0.0.1:8300
//! cargo run --release -p l2c-bench -- --mode l2c --in-process 100000
//! ```

mod l2c;
mod peer;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use clap::{Parser, ValueEnum};
use l2c_core::Scope;
use serde::Serialize;
use tower::Service;

/// The route every mode serves.
pub const ROUTE: &str = "/api/mobile/orders/ord_01JD7Y3K9Q/status";

/// The `POST` route of `l2c-replay`.
pub const REPLAY_ROUTE: &str = "/api/mobile/leads/hook";

/// The idempotency key every `l2c-replay` request carries.
const REPLAY_KEY: &str = "bench-replay-0001";

/// The body every `l2c-replay` request carries (the same each time, so it replays).
const REPLAY_BODY: &str = r#"{"source":"DOUYIN","externalLeadId":"dy-20261126-0001","name":"张三","mobile":"13800138000","city":"上海","intent":"全屋定制"}"#;

/// Issuer, audience, subject and scope of the benchmark tokens.
pub const ISSUER: &str = "https://l2c.example/bench";
/// Audience of the benchmark tokens.
pub const AUDIENCE: &str = "l2c-open-api";
/// Client id (`sub`) of the benchmark tokens.
pub const CLIENT_ID: &str = "cli_bench";
/// Scope of the benchmark tokens of the GET modes.
pub const SCOPE: Scope = Scope::OrdersRead;

/// Default HS256 secret: fine for a benchmark on loopback, never for anything else.
const DEFAULT_SECRET: &str = "l2c-bench-secret-0123456789abcdef0123456789";

/// How long the printed token stays valid: l2c's own default.
const TOKEN_LIFETIME: Duration = l2c_core::auth::DEFAULT_TTL;

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
    /// Plain axum serving the POST of `l2c-replay`: the same exchange without any layer.
    #[value(name = "bare-post")]
    BarePost,
    /// The full l2c stack on a POST retried with one `X-Request-Id`: a stored ~1 KiB replay.
    #[value(name = "l2c-replay")]
    L2cReplay,
    /// Plain axum answering the POST of `l2c-replay` with bytes serialized once: the exchange
    /// alone, the ceiling of any replay.
    #[value(name = "static-post")]
    StaticPost,
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
    /// Instead of serving, drive the router in process: seven batches of N requests, then print
    /// `in_process_ns=<ns per request of the fastest batch>` and exit.
    #[arg(long, value_name = "N")]
    in_process: Option<u32>,
    /// Print the names of the modes, one per line, and exit.
    #[arg(long)]
    list_modes: bool,
    /// Print the request `--mode` expects (`method=`, `path=`, `header=`, `body=` lines) and exit.
    #[arg(long)]
    print_request: bool,
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

/// What a lead push answers in `l2c-replay`: about 1 KiB of JSON once serialized.
async fn push_lead(_body: axum::body::Bytes) -> (http::StatusCode, Json<serde_json::Value>) {
    (http::StatusCode::CREATED, Json(lead_pushed()))
}

/// `push_lead`'s answer serialized once, for `static-post`.
static LEAD_PUSHED_BYTES: std::sync::LazyLock<axum::body::Bytes> = std::sync::LazyLock::new(|| {
    serde_json::to_vec(&lead_pushed())
        .unwrap_or_default()
        .into()
});

/// `push_lead` without the work: the same status, content type and bytes.
async fn push_lead_static(
    _body: axum::body::Bytes,
) -> (
    http::StatusCode,
    [(http::HeaderName, &'static str); 1],
    axum::body::Bytes,
) {
    (
        http::StatusCode::CREATED,
        [(http::header::CONTENT_TYPE, "application/json")],
        LEAD_PUSHED_BYTES.clone(),
    )
}

/// The body of a lead push's answer.
fn lead_pushed() -> serde_json::Value {
    let history: Vec<serde_json::Value> = (1..=7)
        .map(|i| {
            serde_json::json!({
                "at": format!("2026-11-26T09:3{i}:00+08:00"),
                "event": "LEAD_ASSIGNED",
                "note": "分配给门店顾问 王*，预约量尺",
            })
        })
        .collect();
    serde_json::json!({
            "leadId": "lead_01JD7Y3K9Q4M2X8V6T0R5N1B3C",
            "customerId": "cus_01JD7Y3K9Q4M2X8V6T0R5N1B3D",
            "duplicate": false,
            "source": "DOUYIN",
            "externalLeadId": "dy-20261126-0001",
            "city": "上海",
            "intent": "全屋定制",
            "createdAt": "2026-11-26T09:30:00+08:00",
            "history": history,
    })
}

/// The bare router every mode wraps (`l2c-replay` serves the POST route instead).
fn handler_router(mode: Mode) -> Router {
    if mode == Mode::StaticPost {
        Router::new().route(REPLAY_ROUTE, axum::routing::post(push_lead_static))
    } else if mode.is_post() {
        Router::new().route(REPLAY_ROUTE, axum::routing::post(push_lead))
    } else {
        Router::new().route(ROUTE, get(order_status))
    }
}

/// The request a mode is driven with: method, path, extra headers, body.
struct BenchRequest {
    method: http::Method,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
}

impl Mode {
    /// Whether the mode serves the POST of `l2c-replay` rather than the GET.
    fn is_post(self) -> bool {
        matches!(self, Mode::L2cReplay | Mode::BarePost | Mode::StaticPost)
    }

    /// Whether every request is meant to be rejected with 429.
    fn rejects_all(self) -> bool {
        matches!(self, Mode::Peer429 | Mode::L2c429)
    }

    /// Whether the stack needs the peer address (`ConnectInfo<SocketAddr>`) in the extensions.
    fn needs_connect_info(self) -> bool {
        matches!(self, Mode::Peer | Mode::Peer429)
    }

    /// The scope the route requires (and the mode's token grants).
    fn scope(self) -> Scope {
        if self.is_post() {
            Scope::LeadsWrite
        } else {
            Scope::OrdersRead
        }
    }

    fn request(self) -> BenchRequest {
        if self.is_post() {
            BenchRequest {
                method: http::Method::POST,
                path: REPLAY_ROUTE,
                headers: &[
                    ("Content-Type", "application/json"),
                    ("X-Request-Id", REPLAY_KEY),
                ],
                body: REPLAY_BODY,
            }
        } else {
            BenchRequest {
                method: http::Method::GET,
                path: ROUTE,
                headers: &[],
                body: "",
            }
        }
    }

    /// The status every measured request must get.
    fn expected_status(self) -> http::StatusCode {
        if self.rejects_all() {
            http::StatusCode::TOO_MANY_REQUESTS
        } else if self.is_post() {
            http::StatusCode::CREATED
        } else {
            http::StatusCode::OK
        }
    }
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
        Mode::Bare | Mode::BarePost | Mode::StaticPost | Mode::Peer | Mode::Peer429 => {
            peer::issue_token(secret.as_bytes(), now_secs(), TOKEN_LIFETIME)
        }
        Mode::L2c | Mode::L2c429 | Mode::L2cReplay => {
            l2c::issue_token(secret.as_bytes(), mode.scope())
        }
    }
}

/// What a mode serves: the router itself (`bare*`, `static-post`) or the router wrapped whole in
/// a middleware stack, `ServiceBuilder::new().layer(..).service(router)`.
///
/// Every stack wraps the router from outside rather than through `Router::layer`, which puts
/// the layers inside routing and boxes every route once more (another `Route`, `Oneshot` and
/// boxed future per request, about 1,300 instructions): so the difference to `bare` is the cost
/// of the middleware alone, the same way for the peer stack and for l2c's.
pub trait Stacked:
    Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<T> Stacked for T where
    T: Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// Runs `$body` with `$app` bound to the mode's service (each mode has its own type).
///
/// `with_state(())` turns the handlers into routes once. Without it `axum::serve` does that for
/// every connection and an in-process caller for every request (a server with real state calls
/// `with_state` anyway).
macro_rules! with_app {
    ($mode:expr, $secret:expr, |$app:ident| $body:expr) => {{
        let mode: Mode = $mode;
        let router = handler_router(mode).with_state(());
        match mode {
            Mode::Bare | Mode::BarePost | Mode::StaticPost => {
                let $app = router;
                $body
            }
            Mode::Peer | Mode::Peer429 => {
                let $app = peer::stack(router, $secret, mode.rejects_all())?;
                $body
            }
            Mode::L2c | Mode::L2c429 | Mode::L2cReplay => {
                let $app = l2c::stack(router, $secret, mode.rejects_all(), mode.scope())?;
                $body
            }
        }
    }};
}

async fn serve(args: Args, token: String) -> Result<(), BoxError> {
    with_app!(args.mode, args.secret.as_bytes(), |app| {
        serve_app(&args, &token, app).await
    })
}

async fn serve_app<S: Stacked>(args: &Args, token: &str, app: S) -> Result<(), BoxError> {
    use axum::ServiceExt;

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        // Best effort, as in most production setups; a failure only costs latency.
        let _ = tcp.set_nodelay(true);
    });
    println!("token={token}");
    println!("listening={local}");
    if args.mode.needs_connect_info() {
        axum::serve(
            listener,
            ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(
                app,
            ),
        )
        .await?;
    } else {
        axum::serve(
            listener,
            ServiceExt::<axum::extract::Request>::into_make_service(app),
        )
        .await?;
    }
    Ok(())
}

/// Drives the mode's router in process (no sockets, no HTTP parsing) and prints the nanoseconds
/// per request of the fastest of seven batches of `requests`: the cost of the middleware itself.
/// Other processes can only make a batch slower, so the fastest batch is the least disturbed one,
/// which keeps the figure usable on a busy machine.
async fn in_process(mode: Mode, secret: &[u8], token: &str, requests: u32) -> Result<(), BoxError> {
    with_app!(mode, secret, |app| {
        drive_in_process(mode, app, token, requests).await
    })
}

async fn drive_in_process<S: Stacked>(
    mode: Mode,
    mut svc: S,
    token: &str,
    requests: u32,
) -> Result<(), BoxError> {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;

    let bearer = http::HeaderValue::try_from(format!("Bearer {token}"))?;
    let peer = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000)));
    let spec = mode.request();
    let expected = mode.expected_status();
    let mut one = async || -> Result<(), BoxError> {
        let mut req = http::Request::builder()
            .method(spec.method.clone())
            .uri(spec.path)
            .header(http::header::AUTHORIZATION, bearer.clone());
        for (name, value) in spec.headers {
            req = req.header(*name, *value);
        }
        let mut req = req.body(Body::from(spec.body))?;
        req.extensions_mut().insert(peer);
        let res = svc.ready().await?.call(req).await?;
        let status = res.status();
        axum::body::to_bytes(res.into_body(), 64 * 1024).await?;
        // The first request of a 429 mode uses up the quota and is allowed.
        if status != expected && !(mode.rejects_all() && status.is_success()) {
            return Err(format!("mode answered {status}, expected {expected}").into());
        }
        Ok(())
    };
    for _ in 0..requests.div_ceil(10) {
        one().await?;
    }
    let mut best = f64::INFINITY;
    let mut best_cpu = f64::INFINITY;
    for _ in 0..7 {
        let cpu_start = thread_cpu_nanos();
        let start = std::time::Instant::now();
        for _ in 0..requests {
            one().await?;
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(requests));
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu_nanos()) {
            best_cpu = best_cpu.min(b.saturating_sub(a) as f64 / f64::from(requests));
        }
    }
    println!("in_process_ns={best:.0}");
    if best_cpu.is_finite() {
        println!("in_process_cpu_ns={best_cpu:.0}");
    }
    Ok(())
}

/// CPU time this thread has run for, in nanoseconds (Linux: `/proc/thread-self/schedstat`).
///
/// Unlike the wall clock it does not count the time other processes had the core, so on a
/// shared machine it is the steadier figure.
fn thread_cpu_nanos() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_ascii_whitespace().next()?.parse().ok()
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
    if args.secret.len() < l2c_core::auth::MIN_HMAC_KEY_LEN {
        return Err(format!(
            "--secret must be at least {} bytes",
            l2c_core::auth::MIN_HMAC_KEY_LEN
        )
        .into());
    }
    if args.print_request {
        let spec = args.mode.request();
        println!("method={}", spec.method);
        println!("path={}", spec.path);
        for (name, value) in spec.headers {
            println!("header={name}: {value}");
        }
        println!("body={}", spec.body);
        println!("status={}", args.mode.expected_status().as_u16());
        return Ok(());
    }
    let token = token_for(args.mode, &args.secret)?;
    if args.print_token {
        println!("{token}");
        return Ok(());
    }
    if let Some(requests) = args.in_process {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(in_process(
            args.mode,
            args.secret.as_bytes(),
            &token,
            requests.max(1),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, token))
}
