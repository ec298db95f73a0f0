//! Waking the dispatchers of other replicas on PostgreSQL: `LISTEN` on a channel, and a
//! `NOTIFY` on it when work arrives at a replica whose slots are all busy (its own enqueues wake
//! it through the in-process [`Notify`] of [`AppState`](crate::AppState)). A notification only
//! makes a dispatcher claim sooner; the poll interval remains the fallback when the listening
//! connection is down or a notification is lost. On SQLite (one process) there is nothing to
//! do.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::Dispatcher;
use crate::store::Backend;

/// The pause before listening again after the connection was lost (or could not be opened).
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);

/// The cross-replica wake-up of a running dispatcher; its tasks end when it is dropped.
#[derive(Debug)]
pub(super) struct AcrossReplicas {
    woken: Arc<Notify>,
    announce: Arc<Notify>,
    tasks: [JoinHandle<()>; 2],
}

impl AcrossReplicas {
    /// Asks the other replicas to claim (coalesced: one `NOTIFY` covers every request made
    /// while it is sent).
    pub(super) fn announce(&self) {
        self.announce.notify_one();
    }
}

impl Drop for AcrossReplicas {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Resolves when another replica announced work (never without `across`).
pub(super) async fn woken(across: Option<&AcrossReplicas>) {
    match across {
        Some(a) => a.woken.notified().await,
        None => std::future::pending().await,
    }
}

impl Dispatcher {
    /// Starts listening for other replicas' announcements, on PostgreSQL only.
    pub(super) fn listen_across_replicas(
        &self,
        stopped: watch::Receiver<bool>,
    ) -> Option<AcrossReplicas> {
        if self.db.backend() != Backend::Postgres {
            return None;
        }
        let woken = Arc::new(Notify::new());
        let announce = Arc::new(Notify::new());
        let listen = {
            let (this, woken, mut stopped) = (self.clone(), Arc::clone(&woken), stopped.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = this.listen(&woken) => {}
                    _ = stopped.wait_for(|s| *s) => {}
                }
            })
        };
        let notify = {
            let (this, announce, mut stopped) = (self.clone(), Arc::clone(&announce), stopped);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = announce.notified() => {}
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                    if let Err(e) = this.db.webhooks().announce(&this.owner).await {
                        tracing::debug!(error = %e, "announcing webhook deliveries failed");
                    }
                }
            })
        };
        Some(AcrossReplicas {
            woken,
            announce,
            tasks: [listen, notify],
        })
    }

    /// Wakes `woken` on every other dispatcher's announcement, listening again (and waking
    /// once, for what may have been missed) after the connection is lost.
    async fn listen(&self, woken: &Notify) {
        loop {
            let mut listener = match self.db.webhooks().listen().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for webhook announcements; polling");
                    tokio::time::sleep(RELISTEN_PAUSE).await;
                    continue;
                }
            };
            woken.notify_one();
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) if n.payload() != self.owner => woken.notify_one(),
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            tokio::time::sleep(RELISTEN_PAUSE).await;
        }
    }
}
