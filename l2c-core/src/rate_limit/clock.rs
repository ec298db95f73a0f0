//! The cheap monotonic clock of the in-memory limiter.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::clock::MockClock;

/// Nanoseconds from a fixed origin, never going backwards. Read once per check.
pub trait NanoClock: Debug + Send + Sync + 'static {
    /// Nanoseconds since this clock's origin.
    fn now_nanos(&self) -> u64;
}

/// The default clock: the CPU's invariant time-stamp counter through `quanta` (the clock
/// governor uses), a few nanoseconds per read; `quanta` falls back to the OS monotonic clock
/// where the TSC is not usable.
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    clock: quanta::Clock,
    origin: u64,
}

impl MonotonicClock {
    /// A clock whose origin is now (the first one calibrates the counter, once per process).
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        Self { clock, origin }
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
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
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
