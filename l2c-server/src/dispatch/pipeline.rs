//! The spawned dispatcher's loop: up to [`WebhookConfig::batch_size`] attempts in flight, the
//! next ones already claimed, the outcomes recorded in batches by a task of their own.
//!
//! The dispatcher holds up to [`CLAIM_AHEAD`] times `batch_size` deliveries: those in flight
//! and those ready to start as a slot frees. Once a slot's worth is missing it claims the
//! difference, in the background while the attempts go on, so a claim's round trips are not
//! waited for and claims stay large batches under load (a lone event is still claimed at once
//! when idle). A claim
//! that comes back short means the queue is empty: the loop then waits for a wake-up (this
//! replica's enqueues, another replica's `NOTIFY` on PostgreSQL) or the poll interval. Each
//! attempt runs in a task of its own, so a slow receiver holds one slot, not a round.
//!
//! A ready delivery whose lease would end before an attempt could be made and recorded (the
//! slots were held by slow receivers) is not started: its lease lapses and it is claimed again,
//! so it is never sent by two dispatchers.
//!
//! [`WebhookConfig::batch_size`]: super::WebhookConfig::batch_size

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Dispatcher;
use super::record::Finished;
use crate::store::StoreError;
use crate::store::outbox::{Job, MAX_FINISH_BATCH};

/// How many deliveries a dispatcher holds at most, in slots: `batch_size` in flight and the
/// rest claimed, ready to start. A claim is a write transaction (a commit, a WAL flush on
/// PostgreSQL), so claiming several slots' worth at once keeps the claims off the path of the
/// attempts under load; a ready delivery whose lease runs short is not started (above).
pub const CLAIM_AHEAD: usize = 8;

/// A claim under way: the jobs with the end of their lease, and how many were asked for.
type Claiming = Pin<
    Box<dyn Future<Output = (Result<(Vec<Job>, std::time::Instant), StoreError>, usize)> + Send>,
>;

impl Dispatcher {
    /// Runs until `stopped` turns true, then lets the attempts in flight (and those already
    /// claimed) finish and records them.
    pub(super) async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let slots = (self.config.batch_size as usize).max(1);
        // Room for a whole batch of outcomes: a slot frees as soon as its outcome is queued,
        // and the recorder's batches grow while a write is under way.
        let (finished, to_record) = mpsc::channel::<Finished>(MAX_FINISH_BATCH);
        let recorder = {
            let this = Arc::clone(&self);
            tokio::spawn(this.record_loop(to_record))
        };
        let across = self.listen_across_replicas(stopped.clone());
        let mut in_flight = JoinSet::new();
        let mut ready: VecDeque<(Job, std::time::Instant)> = VecDeque::new();
        let mut claiming: Option<Claiming> = None;
        // The queue came back short (or the claim failed): wait for a wake-up or the poll.
        let mut idle = false;
        let mut next_poll = Instant::now() + self.config.poll_interval;
        loop {
            self.start_ready(&mut ready, &mut in_flight, slots, &finished);
            if *stopped.borrow() {
                break;
            }
            let held = ready.len() + in_flight.len();
            if claiming.is_none() && !idle && held <= slots * (CLAIM_AHEAD - 1) {
                next_poll = Instant::now() + self.config.poll_interval;
                let (this, want) = (Arc::clone(&self), CLAIM_AHEAD * slots - held);
                claiming = Some(Box::pin(async move { (this.claim(want).await, want) }));
            }
            tokio::select! {
                (claimed, want) = async {
                    match claiming.as_mut() {
                        Some(c) => c.await,
                        None => std::future::pending().await,
                    }
                } => {
                    claiming = None;
                    idle = self.claimed(claimed, want, &mut ready);
                }
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = stopped.changed() => {}
                () = self.wake.notified() => {
                    idle = false;
                    // Work arrived here while every slot is busy: let idle replicas take it.
                    if in_flight.len() >= slots {
                        if let Some(across) = &across {
                            across.announce();
                        }
                    }
                }
                () = super::wake::woken(across.as_ref()) => idle = false,
                () = tokio::time::sleep_until(next_poll), if idle => idle = false,
            }
        }
        // Stopping: what was claimed is still sent (a claim under way included).
        if let Some(c) = claiming.take() {
            let (claimed, want) = c.await;
            self.claimed(claimed, want, &mut ready);
        }
        while !ready.is_empty() || !in_flight.is_empty() {
            self.start_ready(&mut ready, &mut in_flight, slots, &finished);
            let _ = in_flight.join_next().await;
        }
        drop(finished);
        let _ = recorder.await;
        drop(across);
    }

    /// Adds a claim's jobs to `ready`; returns whether the queue came back short (idle).
    fn claimed(
        &self,
        claimed: Result<(Vec<Job>, std::time::Instant), StoreError>,
        want: usize,
        ready: &mut VecDeque<(Job, std::time::Instant)>,
    ) -> bool {
        match claimed {
            Ok((jobs, leased_until)) => {
                let short = jobs.len() < want;
                ready.extend(jobs.into_iter().map(|j| (j, leased_until)));
                short
            }
            Err(e) => {
                tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "claiming webhook deliveries failed");
                true
            }
        }
    }

    /// Starts ready jobs in the free slots, skipping those whose lease is too short for an
    /// attempt and its record.
    fn start_ready(
        self: &Arc<Self>,
        ready: &mut VecDeque<(Job, std::time::Instant)>,
        in_flight: &mut JoinSet<()>,
        slots: usize,
        finished: &mpsc::Sender<Finished>,
    ) {
        // The attempt may take its whole timeout; recording it gets half as long again (at
        // least a second) before the lease could lapse and another dispatcher send it again.
        let timeout = self.config.attempt_timeout;
        let needed = timeout + (timeout / 2).max(Duration::from_secs(1));
        while in_flight.len() < slots {
            let Some((job, leased_until)) = ready.pop_front() else {
                return;
            };
            if std::time::Instant::now() + needed > leased_until {
                tracing::warn!(delivery = %job.delivery_id, "webhook delivery not started: its lease is nearly over; it will be claimed again");
                continue;
            }
            let (this, finished) = (Arc::clone(self), finished.clone());
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
}
