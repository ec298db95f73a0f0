//! The cheap monotonic clock of the in-memory limiter.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use crate::clock::MockClock;

/// Nanoseconds from a fixed origin, never going backwards. Read once per check.
pub trait NanoClock: Debug + Send + Sync + 'static {
    /// Nanoseconds since this clock's origin.
    fn now_nanos(&self) -> u64;
}

/// The process's monotonic clock (`Instant`, a vDSO read on Linux): the default.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl NanoClock for MonotonicClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Tests drive the limiter with the crate's [`MockClock`]: nanoseconds since the Unix epoch.
impl NanoClock for MockClock {
    fn now_nanos(&self) -> u64 {
        use crate::clock::Clock;
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

impl<C: NanoClock + ?Sized> NanoClock for Arc<C> {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}
