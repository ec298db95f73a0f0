//! The generic cell rate algorithm, as a pure function over one stored number per key.

use super::Quota;

/// The two numbers GCRA needs, derived from a [`Quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraParams {
    /// Nanoseconds between two requests at the sustained rate (`T`).
    pub emission_nanos: u64,
    /// How far ahead of now the theoretical arrival time may run: `T × burst` (`τ + T`).
    pub tolerance_nanos: u64,
}

impl GcraParams {
    /// The parameters of `quota`.
    pub fn of(quota: &Quota) -> Self {
        let emission_nanos = quota.emission_interval_nanos();
        Self {
            emission_nanos,
            tolerance_nanos: emission_nanos.saturating_mul(u64::from(quota.burst_size())),
        }
    }
}

/// The answer of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests still allowed right now after this one (0 when rejected).
    pub remaining: u64,
    /// Nanoseconds until the quota is fully restored (allowed) or until the next request will be
    /// allowed (rejected).
    pub reset_after_nanos: u64,
}

impl Decision {
    /// An allowed request with `remaining` requests left, fully restored in `reset_after_nanos`.
    pub fn allowed(remaining: u64, reset_after_nanos: u64) -> Self {
        Self {
            allowed: true,
            remaining,
            reset_after_nanos,
        }
    }

    /// A rejected request; the next one is allowed in `retry_after_nanos`.
    pub fn limited(retry_after_nanos: u64) -> Self {
        Self {
            allowed: false,
            remaining: 0,
            reset_after_nanos: retry_after_nanos,
        }
    }
}

/// One GCRA step: given the stored theoretical arrival time `tat` (0 for a new key) and `now`,
/// the decision and the new value to store (`None`: leave it unchanged).
///
/// A stored `tat <= now` means the bucket is full, exactly as if the key were absent, which is why
/// idle keys can be evicted without changing any answer.
#[inline]
pub fn gcra(tat: u64, now: u64, params: GcraParams) -> (Decision, Option<u64>) {
    let base = tat.max(now);
    let new_tat = base.saturating_add(params.emission_nanos);
    let ahead = new_tat - now;
    if ahead > params.tolerance_nanos {
        (Decision::limited(ahead - params.tolerance_nanos), None)
    } else {
        let remaining = (params.tolerance_nanos - ahead) / params.emission_nanos;
        (Decision::allowed(remaining, ahead), Some(new_tat))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_burst_requests_pass_at_one_instant() {
        let p = GcraParams::of(&Quota::per_second(5));
        let (mut tat, now) = (0, 1_000);
        let mut passed = 0;
        for _ in 0..20 {
            let (d, new) = gcra(tat, now, p);
            if let Some(new) = new {
                tat = new;
                passed += 1;
                assert_eq!(d.remaining, 5 - passed);
            } else {
                assert_eq!(d.reset_after_nanos, 200_000_000);
            }
        }
        assert_eq!(passed, 5);
        // One emission interval later exactly one more passes.
        let (d, new) = gcra(tat, now + 200_000_000, p);
        assert!(d.allowed && new.is_some());
        assert!(!gcra(new.unwrap(), now + 200_000_000, p).0.allowed);
    }

    #[test]
    fn burst_smaller_than_count_keeps_the_rate() {
        let p = GcraParams::of(&Quota::per_second(10).burst(2));
        let (d1, t1) = gcra(0, 0, p);
        let (d2, t2) = gcra(t1.unwrap(), 0, p);
        let (d3, _) = gcra(t2.unwrap(), 0, p);
        assert!(d1.allowed && d2.allowed && !d3.allowed);
        assert_eq!(d3.reset_after_nanos, 100_000_000);
    }
}
