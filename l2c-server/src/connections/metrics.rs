//! [`ConnectionMetrics`]: what the public listener's connections did, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::Arc;

/// What a listener's connections did, rendered on `/metrics` (see the module docs).
#[derive(Debug, Default)]
pub struct ConnectionMetrics {
    open: AtomicU64,
    pub(super) over_capacity: AtomicU64,
    pub(super) header_timeout: AtomicU64,
    pub(super) idle_timeout: AtomicU64,
    pub(super) send_stalled: AtomicU64,
    pub(super) tls_handshake: AtomicU64,
    pub(super) drain_timeout: AtomicU64,
}

impl ConnectionMetrics {
    pub(super) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Collector for ConnectionMetrics {
    /// `l2c_connections_open` and `l2c_connections_closed_total{reason}`, read at each scrape.
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let open = ConstGauge::new(i64::try_from(load(&self.open)).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "l2c_connections_open",
            "Connections open on the public listener",
            None,
            open.metric_type(),
        )?;
        open.encode(metric)?;
        let mut family = encoder.encode_descriptor(
            "l2c_connections_closed",
            "Connections the server closed, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in [
            ("over_capacity", &self.over_capacity),
            ("header_timeout", &self.header_timeout),
            ("idle_timeout", &self.idle_timeout),
            ("send_stalled", &self.send_stalled),
            ("tls_handshake", &self.tls_handshake),
            ("drain_timeout", &self.drain_timeout),
        ] {
            let labels = [("reason", reason)];
            ConstCounter::new(load(n)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// One open connection in [`ConnectionMetrics::open`], until dropped (aborted tasks too).
pub(super) struct OpenGuard(Arc<ConnectionMetrics>);

impl OpenGuard {
    pub(super) fn new(metrics: &Arc<ConnectionMetrics>) -> Self {
        metrics.open.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(metrics))
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}
