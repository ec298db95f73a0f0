//! The connection cap derived from the open-files limit.

/// The fewest file descriptors kept out of the connection cap.
pub const MIN_FD_RESERVE: u64 = 64;
/// The soft `RLIMIT_NOFILE` assumed where it cannot be read.
pub const FALLBACK_OPEN_FILES: u64 = 1024;
/// The largest derived cap (an unlimited `RLIMIT_NOFILE` is taken as this many).
pub const MAX_DERIVED_CONNECTIONS: u64 = 1 << 20;
/// Connections the metrics listener serves at once (a scraper or two).
pub const METRICS_MAX_CONNECTIONS: usize = 16;

/// The soft `RLIMIT_NOFILE` of this process, read from `/proc/self/limits` (no `unsafe`
/// `getrlimit` call); `None` where that file does not exist. `unlimited` reads as
/// [`MAX_DERIVED_CONNECTIONS`].
pub fn open_files_soft_limit() -> Option<u64> {
    parse_open_files_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

pub(super) fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(MAX_DERIVED_CONNECTIONS);
    }
    soft.parse().ok()
}

/// The default `--max-connections`: the soft open-files limit (or [`FALLBACK_OPEN_FILES`])
/// minus `reserve` descriptors (at least [`MIN_FD_RESERVE`]) for the database pool, Redis,
/// webhook deliveries, listeners and files, but never less than half the limit, and at least 1.
pub fn derive_max_connections(soft_limit: Option<u64>, reserve: u64) -> usize {
    let limit = soft_limit
        .unwrap_or(FALLBACK_OPEN_FILES)
        .min(MAX_DERIVED_CONNECTIONS);
    let cap = limit
        .saturating_sub(reserve.max(MIN_FD_RESERVE))
        .max(limit / 2)
        .max(1);
    usize::try_from(cap).unwrap_or(usize::MAX)
}
