//! The quota client: driven above its quota, checked against one GCRA bucket.

use super::*;

/// The quota client's record: when each request was sent and answered, and whether it was let
/// through.
#[derive(Debug, Default)]
pub(super) struct QuotaLog {
    /// `(sent, answered, allowed)` relative to the start, in order of sending.
    pub(super) requests: Vec<(Duration, Duration, bool)>,
    pub(super) per_replica_allowed: HashMap<usize, u64>,
}

/// Whether the quota client got exactly what one GCRA bucket allows.
///
/// The limiter runs the GCRA in Redis on Redis's clock (`TIME`), one bucket per client for
/// every replica: emission interval `I` = period / count, tolerance `burst * I`; a request at
/// time `t` passes when `tat + I - t <= burst * I`, and then `tat += I` (`tat` starts at the
/// first request's time `T0`). Driven above the quota without a pause as long as `burst * I`,
/// the bucket never refills past its limit, so the number of requests let through up to the
/// last request at `T1` is `K` with `burst - 1 + (T1 - T0) / I < K <= burst + (T1 - T0) / I`.
/// `T0` and `T1` are not seen here, only that each check ran between the sending and the
/// answer of its request; so the bounds use the shortest and longest `T1 - T0` those allow,
/// `lo = burst + floor(min / I)` and `hi = burst + floor(max / I)`, widened by one on each side
/// for the integer microseconds of the script. No other tolerance is needed: one clock, one
/// bucket, and every request is counted.
#[derive(Debug)]
pub(super) struct QuotaCheck {
    pub(super) allowed: u64,
    pub(super) limited: u64,
    pub(super) lo: u64,
    pub(super) hi: u64,
    pub(super) longest_gap: Duration,
    pub(super) starved: bool,
}

impl QuotaCheck {
    pub(super) fn new(quota: Quota, log: &QuotaLog) -> Option<Self> {
        let first = log.requests.first()?;
        let last = log.requests.last()?;
        let interval = Duration::from_nanos(quota.emission_interval_nanos());
        let burst = u64::from(quota.burst_size());
        let min = last.0.saturating_sub(first.1);
        let max = last.1.saturating_sub(first.0);
        let per = |d: Duration| (d.as_nanos() / interval.as_nanos()) as u64;
        let allowed = log.requests.iter().filter(|r| r.2).count() as u64;
        let longest_gap = log
            .requests
            .windows(2)
            .map(|w| w[1].0.saturating_sub(w[0].0))
            .max()
            .unwrap_or_default();
        Some(Self {
            allowed,
            limited: log.requests.len() as u64 - allowed,
            lo: (burst + per(min)).saturating_sub(1),
            hi: burst + per(max) + 1,
            longest_gap,
            // A pause as long as the bucket's tolerance lets it refill: the bound above
            // would not hold, so the check cannot say yes.
            starved: longest_gap >= interval * quota.burst_size(),
        })
    }

    pub(super) fn exact(&self) -> bool {
        !self.starved && self.limited > 0 && (self.lo..=self.hi).contains(&self.allowed)
    }
}

/// Drives the quota client for `duration` at [`QUOTA_OVERDRIVE`] times its rate.
pub(super) async fn drive_quota(
    driver: Arc<Driver>,
    token: String,
    quota: Quota,
    start: Instant,
    end: Instant,
) -> QuotaLog {
    let interval = Duration::from_nanos(quota.emission_interval_nanos()) / QUOTA_OVERDRIVE;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut log = QuotaLog::default();
    let path = "/api/mobile/showroom/items?page=1&pageSize=1";
    while Instant::now() < end {
        ticks.tick().await;
        let replica = driver.pick();
        let sent = start.elapsed();
        let Some(a) = driver
            .send(replica, reqwest::Method::GET, path, &token, None, None)
            .await
        else {
            continue;
        };
        let answered = start.elapsed();
        let allowed = match a.status.as_u16() {
            200 => true,
            429 => false,
            _ => {
                driver.expect("quota client", &a, &[200, 429]);
                continue;
            }
        };
        if allowed {
            *log.per_replica_allowed.entry(replica).or_default() += 1;
        }
        log.requests.push((sent, answered, allowed));
    }
    log
}
