//! Unit tests of the module.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::Version;
use tokio::time::Instant;

use crate::config::ConnectionConfig;

use super::{activity::*, fd_limit::*};

#[test]
fn the_open_files_limit_is_read_from_proc_limits() {
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max cpu time              unlimited            unlimited            seconds   \n\
                  Max open files            300                  524288               files     \n";
    assert_eq!(parse_open_files_limit(limits), Some(300));
    let unlimited = "Max open files            unlimited            unlimited            files\n";
    assert_eq!(
        parse_open_files_limit(unlimited),
        Some(MAX_DERIVED_CONNECTIONS)
    );
    assert_eq!(parse_open_files_limit("Max processes 10 10\n"), None);
    if cfg!(target_os = "linux") {
        assert!(open_files_soft_limit().is_some_and(|n| n > 0));
    }
}

#[test]
fn the_derived_cap_leaves_a_reserve() {
    assert_eq!(derive_max_connections(Some(1024), 40), 960);
    assert_eq!(derive_max_connections(Some(1024), 200), 824);
    assert_eq!(derive_max_connections(Some(300), 64), 236);
    assert_eq!(derive_max_connections(Some(64), 64), 32);
    assert_eq!(derive_max_connections(Some(1), 64), 1);
    assert_eq!(derive_max_connections(None, 64), 960);
    assert_eq!(
        derive_max_connections(Some(u64::MAX), 64),
        usize::try_from(MAX_DERIVED_CONNECTIONS - 64).unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn phases_follow_reads_and_requests() {
    let config = ConnectionConfig {
        header_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        ..ConnectionConfig::default()
    };
    let start = Instant::now();
    let a = Activity::new(&config, Duration::from_secs(5));
    assert_eq!(a.deadline(), Some(start + Duration::from_secs(2)));
    // Bytes of the first head do not extend its deadline.
    tokio::time::advance(Duration::from_secs(1)).await;
    a.bytes_read();
    assert_eq!(a.deadline(), Some(start + Duration::from_secs(2)));
    let first = a.request_started(Version::HTTP_11);
    let second = a.request_started(Version::HTTP_11);
    assert_eq!(a.deadline(), None);
    drop(first);
    assert_eq!(a.deadline(), None, "one request still in flight");
    tokio::time::advance(Duration::from_secs(10)).await;
    drop(second);
    let idle_since = Instant::now();
    assert_eq!(a.deadline(), Some(idle_since + Duration::from_secs(5)));
    assert_eq!(a.expired(idle_since), None);
    // The next request's first byte starts its head timeout.
    tokio::time::advance(Duration::from_secs(1)).await;
    a.bytes_read();
    let head = Instant::now() + Duration::from_secs(2);
    assert_eq!(a.deadline(), Some(head));
    assert!(matches!(a.expired(head), Some(Phase::Head { .. })));

    // A response the client stops reading: the idle timeout runs from the blocked write,
    // and a write that goes through stops it.
    let busy = a.request_started(Version::HTTP_11);
    assert_eq!(a.deadline(), None);
    a.write_blocked();
    let stalled = Instant::now() + Duration::from_secs(5);
    assert_eq!(a.deadline(), Some(stalled));
    tokio::time::advance(Duration::from_secs(1)).await;
    a.write_blocked();
    assert_eq!(
        a.deadline(),
        Some(stalled),
        "a second block does not extend it"
    );
    assert!(matches!(a.expired(stalled), Some(Phase::Busy { .. })));
    a.write_progressed();
    assert_eq!(a.deadline(), None);
    drop(busy);

    // HTTP/2: reads on an idle connection are pings and window updates, not a head.
    let h2 = Activity::new(&config, Duration::from_secs(5));
    drop(h2.request_started(Version::HTTP_2));
    let idle = h2.deadline().unwrap();
    h2.bytes_read();
    assert_eq!(h2.deadline(), Some(idle));
    assert!(matches!(h2.expired(idle), Some(Phase::Idle { .. })));
}
