//! One attempt: vet the destination, sign, POST, read the answer, and decide what comes next
//! ([`retry::next_step`]), giving the [`Outcome`] to record.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use l2c_core::api::webhooks::MAX_RECORDED_RESPONSE;
use l2c_core::webhook::{WebhookSecret, sign_headers};
use rand::Rng as _;

use super::retry::{self, Answer};
use super::{Dispatcher, MAX_RESPONSE_BYTES, USER_AGENT};
use crate::ssrf;
use crate::store::outbox::{AttemptRecord, Job, NextStep, Outcome, Subscription};

/// What a receiver answered.
struct Response {
    status: u16,
    retry_after: Option<Duration>,
}

impl Dispatcher {
    /// Makes `job`'s attempt (none when its subscription is disabled or deleted) and returns
    /// what to record.
    pub(super) async fn deliver(&self, job: Job) -> Outcome {
        let Some(sub) = job.subscription.as_ref().filter(|s| s.enabled) else {
            if let Some(metrics) = &self.metrics {
                metrics.record_webhook_attempt("not_sent");
            }
            let now = self.now();
            let record = AttemptRecord::new(
                now,
                None,
                0,
                Some("not sent: the subscription is disabled or deleted".to_owned()),
            );
            return Outcome::new(job, Some(record), NextStep::Failed, now);
        };
        let started_at = self.now();
        let started = Instant::now();
        let mut exchange = Exchange::default();
        let result = self.attempt(&job, sub, started_at, &mut exchange).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now = self.now();
        let (answer, status, error) = match result {
            Ok(Response {
                status,
                retry_after,
            }) => {
                let why = match status {
                    200..300 => None,
                    410 => Some("410 Gone: the subscription is disabled".to_owned()),
                    300..400 => Some(format!("HTTP {status}: redirects are not followed")),
                    _ => Some(format!("HTTP {status}")),
                };
                let answer = Answer::Status {
                    status,
                    retry_after,
                };
                (answer, Some(status), why)
            }
            Err(why) => (Answer::NoAnswer, None, Some(why)),
        };
        let next = retry::next_step(
            answer,
            job.failures,
            &self.config.retry_schedule,
            rand::thread_rng().gen_range(retry::JITTER),
            now,
        );
        // Every attempt is in the delivery log (and counted); the process log gets the failures
        // at `info`, and the successes only at `debug`: a line per delivered event costs as much
        // as a fair part of the delivery under load.
        if next == NextStep::Succeeded {
            tracing::debug!(
                delivery = %job.delivery_id,
                event = %job.event_id,
                status = ?status,
                latency_ms,
                "webhook attempt"
            );
        } else {
            tracing::info!(
                delivery = %job.delivery_id,
                event = %job.event_id,
                status = ?status,
                latency_ms,
                next = ?next,
                "webhook attempt"
            );
        }
        self.count_attempt(&job, next, now);
        let record = AttemptRecord::new(started_at, status, latency_ms, error)
            .with_exchange(exchange.response_body, exchange.request_headers);
        Outcome::new(job, Some(record), next, now)
    }

    async fn attempt(
        &self,
        job: &Job,
        sub: &Subscription,
        now_ms: i64,
        exchange: &mut Exchange,
    ) -> Result<Response, String> {
        let url = ssrf::check_url(&sub.url, self.config.allow_private)
            .map_err(|e| format!("destination refused: {e}"))?;
        let secrets = sub
            .signing_secrets(now_ms)
            .into_iter()
            .map(WebhookSecret::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("stored secret unusable: {e}"))?;
        let refs: Vec<&WebhookSecret> = secrets.iter().collect();
        let ts = u64::try_from(now_ms / 1000).unwrap_or(0);
        let headers = sign_headers(
            &refs,
            &job.event_id,
            job.event_type,
            ts,
            job.payload.as_bytes(),
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let client = self.http.as_ref().map_err(Clone::clone)?;
        let mut req = client
            .post(url)
            .timeout(self.config.attempt_timeout)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(job.payload.clone());
        exchange.sent(&headers);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let mut res = req.send().await.map_err(describe)?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| l2c_core::retry_after::parse(v.as_bytes(), self.clock.now()));
        // Drain a bounded amount so the connection can be reused; the start is kept for the
        // delivery log.
        let mut read = 0usize;
        let mut start = Vec::new();
        while read < MAX_RESPONSE_BYTES {
            match res.chunk().await {
                Ok(Some(c)) => {
                    let room = MAX_RECORDED_RESPONSE.saturating_sub(start.len());
                    start.extend_from_slice(&c[..c.len().min(room)]);
                    read += c.len();
                }
                _ => break,
            }
        }
        exchange.response_body = (!start.is_empty()).then(|| recorded_text(start));
        Ok(Response {
            status,
            retry_after,
        })
    }
}

/// What one attempt exchanged with the receiver, for the delivery log.
#[derive(Debug, Default)]
struct Exchange {
    /// The request headers as sent.
    request_headers: BTreeMap<String, String>,
    /// The start of the answer.
    response_body: Option<String>,
}

impl Exchange {
    /// Notes the headers of the request about to be sent with `signed`.
    fn sent(&mut self, signed: &[(http::HeaderName, http::HeaderValue)]) {
        self.request_headers = recorded_request_headers(signed);
    }
}

/// The request headers an attempt's record keeps (the delivery log shows them): the `signed`
/// ones ([`sign_headers`]) plus the two every attempt adds, `content-type: application/json` and
/// `user-agent` ([`USER_AGENT`]).
pub fn recorded_request_headers(
    signed: &[(http::HeaderName, http::HeaderValue)],
) -> BTreeMap<String, String> {
    let text = |v: &http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let mut headers: BTreeMap<String, String> = signed
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), text(v)))
        .collect();
    headers.insert(
        http::header::CONTENT_TYPE.as_str().to_owned(),
        "application/json".to_owned(),
    );
    headers.insert(
        http::header::USER_AGENT.as_str().to_owned(),
        USER_AGENT.to_owned(),
    );
    headers
}

/// The kept start of an answer as text: a character cut by the 4 KiB limit is dropped, other
/// invalid UTF-8 replaced, and NUL too (PostgreSQL's text cannot hold it: an answer with one
/// would make the attempt unrecordable, and the event sent again and again).
fn recorded_text(mut bytes: Vec<u8>) -> String {
    if let Err(e) = std::str::from_utf8(&bytes) {
        if e.error_len().is_none() {
            bytes.truncate(e.valid_up_to());
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains('\0') {
        return text.into_owned();
    }
    // Each NUL (1 byte) becomes U+FFFD (3 bytes): cut again to the limit, at a character.
    let mut text = text.replace('\0', "\u{fffd}");
    let mut end = text.len().min(MAX_RECORDED_RESPONSE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

fn describe(e: reqwest::Error) -> String {
    // The resolver refused the addresses of the host name.
    if let Some(refused) = ssrf::refusal(&e) {
        return format!("destination refused: {refused}");
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(inner) = src {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            src = inner.source();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_text_drops_a_cut_character_and_replaces_bad_bytes() {
        // "订单" is 6 bytes; cut after 4 the second character is incomplete and dropped.
        assert_eq!(recorded_text("订单".as_bytes()[..4].to_vec()), "订");
        assert_eq!(recorded_text(b"a\0b".to_vec()), "a\u{fffd}b");
        let full = vec![0u8; MAX_RECORDED_RESPONSE];
        let kept = recorded_text(full);
        assert_eq!(
            kept.len(),
            MAX_RECORDED_RESPONSE / 3 * 3,
            "whole characters within the limit"
        );
        assert!(kept.chars().all(|c| c == '\u{fffd}'));
        assert_eq!(recorded_text(b"ok \xff!".to_vec()), "ok \u{fffd}!");
        assert_eq!(recorded_text(b"plain".to_vec()), "plain");
    }
}
