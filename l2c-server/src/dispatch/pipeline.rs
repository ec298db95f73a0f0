//! The spawned dispatcher's loop: up to [`WebhookConfig::batch_size`] attempts in flight, more
//! claimed as they finish, their outcomes recorded in batches by a task of their own.
//!
//! A claim asks for as many deliveries as there are free slots, once at least half of them are
//! free (so claims stay batches under load, and a lone event is claimed at once when idle). A
//! claim that comes back short means the queue is empty: the loop then waits for a wake-up
//! (this replica's enqueues, another replica's `NOTIFY` on PostgreSQL) or
//! the poll interval. Each attempt runs in a task of its own, so a slow receiver holds one slot,
//! not a round.
//!
//! [`WebhookConfig::batch_size`]: super::WebhookConfig::batch_size

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Dispatcher;
use super::record::Finished;
use crate::store::outbox::MAX_FINISH_BATCH;

impl Dispatcher {
    /// Runs until `stopped` turns true, then lets the attempts in flight finish and records
    /// them.
    pub(super) async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let slots = (self.config.batch_size as usize).max(1);
        // Claim once half the slots are free (at least one).
        let refill = slots.div_ceil(2);
        // Room for a whole batch of outcomes: a slot frees as soon as its outcome is queued,
        // and the recorder's batches grow while a write is under way.
        let (finished, to_record) = mpsc::channel::<Finished>(MAX_FINISH_BATCH);
        let recorder = {
            let this = Arc::clone(&self);
            tokio::spawn(async move { this.record_loop(to_record).await })
        };
        let across = self.listen_across_replicas(stopped.clone());
        let mut in_flight = JoinSet::new();
        // The queue came back short (or the claim failed): wait for a wake-up or the poll.
        let mut idle = false;
        let mut next_poll = Instant::now() + self.config.poll_interval;
        loop {
            if *stopped.borrow() {
                break;
            }
            let free = slots - in_flight.len();
            if !idle && free >= refill {
                next_poll = Instant::now() + self.config.poll_interval;
                match self.claim(free).await {
                    Ok((jobs, leased_until)) => {
                        idle = jobs.len() < free;
                        for job in jobs {
                            let this = Arc::clone(&self);
                            let finished = finished.clone();
                            in_flight.spawn(async move {
                                let outcome = this.deliver(job).await;
                                // Fails only once the recorder is gone (a runtime shutting down).
                                let _ = finished
                                    .send(Finished {
                                        outcome,
                                        leased_until,
                                    })
                                    .await;
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "claiming webhook deliveries failed");
                        idle = true;
                    }
                }
                continue;
            }
            tokio::select! {
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = stopped.changed() => {}
                () = self.wake.notified() => {
                    idle = false;
                    // Work arrived here while every slot is busy: let idle replicas take it.
                    if slots - in_flight.len() < refill {
                        if let Some(across) = &across {
                            across.announce();
                        }
                    }
                }
                () = super::wake::woken(across.as_ref()) => {
                    idle = false;
                }
                () = tokio::time::sleep_until(next_poll), if idle => {
                    idle = false;
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
        drop(finished);
        let _ = recorder.await;
        drop(across);
    }
}
