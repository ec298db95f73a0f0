//! Recording attempts in batches: the outcomes finished meanwhile are written together
//! ([`WebhookStore::finish_all`](crate::store::outbox::WebhookStore::finish_all), one
//! transaction), and a write the database was not there for is retried within the leases.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Dispatcher;
use crate::store::Backend;
use crate::store::outbox::{MAX_FINISH_BATCH, Outcome};

/// The first and the longest pause between tries to record attempts while the database is
/// unreachable (within the lease).
const FINISH_RETRY_FIRST: Duration = Duration::from_millis(100);
const FINISH_RETRY_MAX: Duration = Duration::from_secs(1);

/// An outcome waiting to be recorded, with the end of its lease (after which another dispatcher
/// may have claimed the delivery again).
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) outcome: Outcome,
    pub(super) leased_until: Instant,
}

/// How many record batches a dispatcher writes at once on `backend`: two on PostgreSQL (their
/// rows are distinct deliveries, so the next batch's round trips overlap the last one's), one
/// on SQLite (one writer).
pub fn record_writes_in_flight(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 2,
        Backend::Sqlite => 1,
    }
}

impl Dispatcher {
    /// Records what arrives on `finished` until every sender is gone: whatever is waiting is
    /// written as one batch (up to [`MAX_FINISH_BATCH`]), so batches grow with the load while a
    /// lone attempt is written at once, [`record_writes_in_flight`] batches at a time.
    pub(super) async fn record_loop(self: Arc<Self>, mut finished: mpsc::Receiver<Finished>) {
        let parallel = record_writes_in_flight(self.db.backend());
        let mut writing = JoinSet::new();
        let mut batch = Vec::with_capacity(MAX_FINISH_BATCH);
        loop {
            if writing.len() >= parallel {
                if let Some(joined) = writing.join_next().await {
                    log_panicked(joined);
                }
                continue;
            }
            tokio::select! {
                n = finished.recv_many(&mut batch, MAX_FINISH_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    let (this, batch) = (Arc::clone(&self), std::mem::take(&mut batch));
                    writing.spawn(async move { this.record(batch).await });
                }
                Some(joined) = writing.join_next(), if !writing.is_empty() => log_panicked(joined),
            }
        }
        while let Some(joined) = writing.join_next().await {
            log_panicked(joined);
        }
    }

    /// Records `batch`. While the database is unreachable the write is retried, with a growing
    /// pause, for the outcomes whose lease lasts beyond the pause: the attempts were made, and
    /// recording them once the database is back keeps the events from being sent again. Another
    /// error fails the batch; each outcome is then tried alone, so one bad row cannot take the
    /// others with it.
    pub(super) async fn record(&self, mut batch: Vec<Finished>) {
        let store = self.db.webhooks();
        let mut pause = FINISH_RETRY_FIRST;
        loop {
            let outcomes: Vec<&Outcome> = batch.iter().map(|f| &f.outcome).collect();
            let started = Instant::now();
            let written = store.finish_all(&self.owner, &outcomes).await;
            tracing::debug!(
                n = outcomes.len(),
                ms = started.elapsed().as_secs_f64() * 1e3,
                "webhook attempts recorded"
            );
            let err = match written {
                Ok(recorded) => {
                    for o in outcomes
                        .iter()
                        .filter(|o| !recorded.contains(&o.job.delivery_id))
                    {
                        tracing::warn!(delivery = %o.job.delivery_id, "webhook attempt not recorded: the lease was lost");
                    }
                    return;
                }
                Err(e) => e,
            };
            if !crate::error::is_unavailable(&err) {
                if batch.len() > 1 {
                    tracing::warn!(error = %err, n = batch.len(), "recording webhook attempts failed; recording them one by one");
                    for one in batch {
                        Box::pin(self.record(vec![one])).await;
                    }
                } else {
                    for f in &batch {
                        tracing::warn!(delivery = %f.outcome.job.delivery_id, error = %err, "recording a webhook attempt failed");
                    }
                }
                return;
            }
            let retry_at = Instant::now() + pause;
            batch.retain(|f| {
                let keep = retry_at < f.leased_until;
                if !keep {
                    tracing::warn!(delivery = %f.outcome.job.delivery_id, error = %err, "recording a webhook attempt failed; its lease is over");
                }
                keep
            });
            if batch.is_empty() {
                return;
            }
            tracing::warn!(error = %err, n = batch.len(), "recording webhook attempts failed; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(FINISH_RETRY_MAX);
        }
    }
}

/// Logs a record batch whose task panicked: nothing of it was written, so its deliveries are
/// claimed and sent again when their leases end.
fn log_panicked(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        tracing::error!(error = %e, "recording a batch of webhook attempts panicked; its deliveries are sent again when their leases end");
    }
}
