//! The webhook receivers: signatures verified, event ids and changes counted.

use super::*;

/// What one receiver saw.
#[derive(Debug)]
pub(super) struct Receiver {
    pub(super) verifier: Verifier,
    /// Distinct event ids.
    pub(super) ids: Mutex<HashSet<String>>,
    /// What each event is about, to see one change emitted twice under two ids.
    pub(super) changes: Mutex<HashSet<String>>,
    pub(super) redeliveries: AtomicU64,
    pub(super) duplicates_executed: AtomicU64,
    pub(super) bad_signatures: AtomicU64,
}

impl Receiver {
    pub(super) fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            ids: Mutex::default(),
            changes: Mutex::default(),
            redeliveries: AtomicU64::new(0),
            duplicates_executed: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
        }
    }

    pub(super) fn received(&self) -> u64 {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).len() as u64
    }
}

/// The change an event reports, the same for every emission of it.
pub(super) fn change_of(event: &EventData) -> String {
    match event {
        EventData::OrderCreated(o) => format!("created {}", o.external_order_no),
        EventData::OrderStatusChanged(c) => {
            format!("status {} v{}", c.external_order_no, c.version)
        }
        EventData::PaymentReceived(p) => {
            format!("payment {} {}", p.method, p.channel_transaction_id)
        }
        EventData::Ping(p) => format!("ping {}", p.webhook_id),
    }
}

pub(super) async fn receive(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let event = match r.verifier.verify(&headers, &body) {
        Ok(event) => event,
        Err(e) => {
            r.bad_signatures.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: refused a delivery: {e}");
            return StatusCode::UNAUTHORIZED;
        }
    };
    let new_id = r
        .ids
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(event.id.clone());
    if !new_id {
        r.redeliveries.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NO_CONTENT;
    }
    let new_change = r
        .changes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(change_of(&event.payload));
    if !new_change {
        r.duplicates_executed.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "soak: event {} repeats a change already received: {}",
            event.id,
            change_of(&event.payload)
        );
    }
    StatusCode::NO_CONTENT
}

/// Binds a receiver on 127.0.0.1:0, subscribes it, then serves it.
pub(super) async fn subscribe(
    driver: &Driver,
    token: &str,
    i: usize,
) -> Result<Arc<Receiver>, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("receiver: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("receiver: {e}"))?;
    let body = json!({
        "url": format!("http://{addr}/hook/{i}"),
        "events": ["ORDER_CREATED", "ORDER_STATUS_CHANGED", "PAYMENT_RECEIVED"],
    });
    let key = format!("soak-{}-subscribe-{i}", driver.run);
    let replica = driver.pick();
    let a = driver
        .send(
            replica,
            reqwest::Method::POST,
            "/api/mobile/webhooks",
            token,
            Some(&key),
            Some(&body),
        )
        .await
        .ok_or("subscription: no answer")?;
    let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
    if !a.status.is_success() {
        return Err(format!("subscription: {} {v}", a.status));
    }
    let secret = v["secret"]
        .as_str()
        .ok_or_else(|| format!("subscription: no secret in {v}"))?;
    let secret = WebhookSecret::parse(secret).map_err(|e| format!("subscription secret: {e}"))?;
    let receiver = Arc::new(Receiver::new(Verifier::new(secret)));
    let app = Router::new()
        .route(&format!("/hook/{i}"), post(receive))
        .with_state(Arc::clone(&receiver));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("soak: receiver {i} stopped: {e}");
        }
    });
    Ok(receiver)
}
