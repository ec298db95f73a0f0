//! The mixed-load driver: one replica after another, retries that must be replays.

use super::*;

/// The HTTP side of the driver: one client, the replicas in turn.
#[derive(Debug)]
pub(super) struct Driver {
    pub(super) http: reqwest::Client,
    pub(super) replicas: Vec<Replica>,
    pub(super) next: AtomicUsize,
    pub(super) stats: Stats,
    pub(super) run: String,
}

impl Driver {
    /// The next replica's index.
    pub(super) fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.replicas.len()
    }

    /// Sends a request to replica `replica`, counting it; `None` (counted as a failure) when no
    /// answer came.
    pub(super) async fn send(
        &self,
        replica: usize,
        method: reqwest::Method,
        path: &str,
        token: &str,
        request_id: Option<&str>,
        body: Option<&Value>,
    ) -> Option<Answer> {
        let url = format!("{}{path}", self.replicas[replica].base);
        let mut req = self.http.request(method.clone(), &url).bearer_auth(token);
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let result = async {
            let res = req.send().await?;
            let status = res.status();
            let headers = res.headers().clone();
            let body = res.bytes().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                headers,
                body,
            })
        }
        .await;
        match result {
            Ok(answer) => {
                if answer.status.is_server_error() {
                    self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.fail(format!(
                        "{method} {path} on replica {replica}: {} {}",
                        answer.status,
                        String::from_utf8_lossy(&answer.body)
                    ));
                }
                Some(answer)
            }
            Err(e) => {
                self.stats
                    .fail(format!("{method} {path} on replica {replica}: {e}"));
                None
            }
        }
    }

    /// Checks that `answer` has status `expected`; records a failure otherwise.
    pub(super) fn expect(&self, what: &str, answer: &Answer, expected: &[u16]) -> bool {
        if expected.contains(&answer.status.as_u16()) {
            return true;
        }
        // 5xx are already recorded by `send`.
        if !answer.status.is_server_error() {
            self.stats.fail(format!(
                "{what}: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        false
    }

    /// POSTs `body` with idempotency key `key` to the next replica, then, when `retry`, once more
    /// with the same key to the replica after it, which must replay the first answer.
    pub(super) async fn post_once(
        &self,
        what: &str,
        path: &str,
        token: &str,
        key: &str,
        body: &Value,
        retry: bool,
    ) -> Option<Answer> {
        let replica = self.pick();
        let first = self
            .send(
                replica,
                reqwest::Method::POST,
                path,
                token,
                Some(key),
                Some(body),
            )
            .await?;
        if retry && first.status.is_success() {
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let other = (replica + 1) % self.replicas.len();
            let again = self
                .send(
                    other,
                    reqwest::Method::POST,
                    path,
                    token,
                    Some(key),
                    Some(body),
                )
                .await;
            if let Some(again) = again {
                let replayed = again
                    .headers
                    .get("idempotent-replayed")
                    .is_some_and(|v| v == "true");
                if !replayed || again.status != first.status || again.body != first.body {
                    self.stats
                        .duplicates_executed
                        .fetch_add(1, Ordering::Relaxed);
                    self.stats.fail(format!(
                        "{what}: the retry of {key} was not a replay (replayed: {replayed}, {} {} \
                         then {} {})",
                        first.status,
                        String::from_utf8_lossy(&first.body),
                        again.status,
                        String::from_utf8_lossy(&again.body)
                    ));
                }
            }
        }
        Some(first)
    }

    /// One iteration of mixed load (number `n` of the run).
    pub(super) async fn iteration(&self, token: &str, n: u64) {
        let run = &self.run;
        self.push_lead(token, n).await;
        let order_no = format!("SOAK-{run}-{n}");
        if self.sync_order(token, n, &order_no, 1).await {
            self.sync_order(token, n, &order_no, 2).await;
        }
        let replica = self.pick();
        let path = format!("/api/mobile/orders/{order_no}/status");
        if let Some(a) = self
            .send(replica, reqwest::Method::GET, &path, token, None, None)
            .await
        {
            self.expect("order status", &a, &[200]);
        }
        let replica = self.pick();
        let path = format!("/api/mobile/showroom/items?page={}&pageSize=10", n % 3 + 1);
        if let Some(a) = self
            .send(replica, reqwest::Method::GET, &path, token, None, None)
            .await
        {
            self.expect("showroom", &a, &[200]);
        }
        self.stats.reads.fetch_add(2, Ordering::Relaxed);
        if n % EXPORT_EVERY == 0 {
            let replica = self.pick();
            let path = "/api/mobile/reports/orders/export";
            if let Some(a) = self
                .send(replica, reqwest::Method::GET, path, token, None, None)
                .await
                && self.expect("export", &a, &[200])
            {
                if a.body.is_empty() {
                    self.stats.fail("export: empty body".to_owned());
                }
                self.stats.exports.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(super) async fn push_lead(&self, token: &str, n: u64) {
        let run = &self.run;
        let body = json!({
            "source": if n % 2 == 0 { "DOUYIN" } else { "XIAOHONGSHU" },
            "externalLeadId": format!("soak-{run}-{n}"),
            "name": "张三",
            "mobile": format!("138{:08}", n % 100_000_000),
            "city": "杭州市",
            "intent": "全屋定制",
            "submittedAt": "2026-11-26T10:00:00+08:00",
        });
        let key = format!("soak-{run}-lead-{n}");
        let answer = self
            .post_once(
                "lead push",
                "/api/mobile/leads/hook",
                token,
                &key,
                &body,
                n % 4 == 0,
            )
            .await;
        if let Some(a) = answer
            && self.expect("lead push", &a, &[201])
        {
            self.stats.leads.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Version 1 creates the order with its deposit (ORDER_CREATED + PAYMENT_RECEIVED); version
    /// 2 moves it to MEASURE_PENDING with a progress payment (ORDER_STATUS_CHANGED +
    /// PAYMENT_RECEIVED; the deposit, sent again, is not recorded twice). Returns whether the
    /// sync was applied as planned.
    pub(super) async fn sync_order(
        &self,
        token: &str,
        n: u64,
        order_no: &str,
        version: u8,
    ) -> bool {
        let deposit = json!({"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 200_000,
            "channelTransactionId": format!("{order_no}-dep"),
            "paidAt": "2026-11-26T10:05:00+08:00"});
        let (status, paid, payments) = if version == 1 {
            ("DEPOSIT_PAID", 200_000, vec![deposit])
        } else {
            let progress = json!({"kind": "PROGRESS", "method": "ALIPAY", "amount": 1_000_000,
                "channelTransactionId": format!("{order_no}-prog"),
                "paidAt": "2026-11-27T10:05:00+08:00"});
            ("MEASURE_PENDING", 1_200_000, vec![deposit, progress])
        };
        let body = json!({
            "externalOrderNo": order_no,
            "status": status,
            "paymentStatus": if version == 1 { "DEPOSIT_PAID" } else { "PARTIALLY_PAID" },
            "amounts": {"total": 1_990_000, "deposit": 200_000, "paid": paid, "currency": "CNY"},
            "customer": {"name": "李四", "mobile": format!("139{:08}", n % 100_000_000)},
            "version": version,
            "payments": payments,
        });
        let key = format!("soak-{}-order-{n}-v{version}", self.run);
        let retry = n % 3 == u64::from(version) - 1;
        let what = if version == 1 {
            "order create"
        } else {
            "order update"
        };
        let Some(a) = self
            .post_once(what, "/api/mobile/orders/sync", token, &key, &body, retry)
            .await
        else {
            return false;
        };
        if !self.expect(what, &a, &[200, 201]) {
            return false;
        }
        let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        let as_planned = v["applied"] == json!(true)
            && v["created"] == json!(version == 1)
            && v["paymentsRecorded"] == json!(1)
            && v["status"] == json!(status);
        if !as_planned {
            self.stats
                .fail(format!("{what} {order_no}: not applied as planned: {v}"));
            return false;
        }
        // Two events per applied sync, for every subscription.
        self.stats.expected_events.fetch_add(2, Ordering::Relaxed);
        if version == 1 {
            self.stats.orders_created.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.orders_updated.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    pub(super) async fn token(&self, replica: usize, c: &Credentials) -> Result<String, String> {
        let url = format!("{}/api/oauth/token", self.replicas[replica].base);
        let res = self
            .http
            .post(&url)
            .json(&json!({"grant_type": "client_credentials",
                "client_id": c.id, "client_secret": c.secret}))
            .send()
            .await
            .map_err(|e| format!("token: {e}"))?;
        let status = res.status();
        let v: Value = res.json().await.map_err(|e| format!("token: {e}"))?;
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("token: {status} {v}"))
    }
}
