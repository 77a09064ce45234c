//! How sessions end and what happens to their workers: idle ttl (never
//! with an open lease), end_session, max lifetime, reuse on and off,
//! recycling.

mod common;

use std::time::Duration;

use common::*;
use herd_core::{EndReason, EventKind, Pool};

#[test]
fn an_idle_session_is_evicted_after_its_ttl_but_never_while_leased() {
    let mut cfg = config(0, 2);
    cfg.ttl = Duration::from_millis(300);
    let (pool, ends) = pool_with_ends(demo_factory(), cfg);
    let lease = pool.acquire_blocking("reader", None).unwrap();
    let pid = lease.pid().unwrap();
    // Held for several ttls: still bound.
    assert!(
        ends.recv_timeout(Duration::from_millis(1200)).is_err(),
        "a session with an open lease was evicted"
    );
    assert_eq!(pool.stats().sessions, 1);
    assert_eq!(pool.acquire_blocking("reader", None).unwrap().pid(), Some(pid));
    drop(lease);
    let end = ends.recv_timeout(Duration::from_secs(5)).expect("evicted once idle");
    assert_eq!(&*end.session, "reader");
    assert_eq!(end.reason, EndReason::IdleTimeout);
    assert!(end.duration >= Duration::from_millis(1200));
    let stats = pool.stats();
    assert_eq!(stats.sessions, 0);
    assert_eq!(stats.counters.sessions_ended.idle_timeout, 1);
    // reuse = true (default): the worker serves the next session.
    assert_eq!(stats.workers.idle, 1);
    assert_eq!(pool.acquire_blocking("next", None).unwrap().pid(), Some(pid));
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn with_reuse_a_worker_serves_the_next_session() {
    let (pool, ends) = pool_with_ends(demo_factory(), config(0, 1));
    let lease = pool.acquire_blocking("one", None).unwrap();
    let pid = lease.pid().unwrap();
    drop(lease);
    assert!(pool.end_session("one").unwrap());
    assert!(!pool.end_session("one").unwrap(), "ending twice is a no-op");
    let end = ends.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(end.reason, EndReason::Ended);
    let lease = pool.acquire_blocking("two", None).unwrap();
    assert_eq!(lease.pid(), Some(pid));
    assert!(running(pid));
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn without_reuse_a_worker_is_killed_and_replaced() {
    let mut cfg = config(1, 2);
    cfg.reuse = false;
    let pool = Pool::new(demo_factory(), cfg).unwrap();
    let lease = pool.acquire_blocking("tenant-a", None).unwrap();
    let pid = lease.pid().unwrap();
    http(lease.address().unwrap(), "PUT", "/kv/secret", b"a's").unwrap();
    // Children of the worker die with it.
    get(lease.address().unwrap(), "/children?n=2");
    drop(lease);
    let children = descendants(pid);
    assert_eq!(children.len(), 2);
    assert!(pool.end_session("tenant-a").unwrap());
    wait_until("the old worker is gone", Duration::from_secs(5), || !alive(pid));
    for child in children {
        wait_until("the old worker's children are gone", Duration::from_secs(5), || !alive(child));
    }
    let lease = pool.acquire_blocking("tenant-b", None).unwrap();
    assert_ne!(lease.pid(), Some(pid));
    assert_eq!(get(lease.address().unwrap(), "/kv/secret").0, 404, "no state leaked");
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn ending_a_session_with_open_leases_drains_before_reuse() {
    let pool = Pool::new(demo_factory(), config(0, 1)).unwrap();
    let lease = pool.acquire_blocking("old", None).unwrap();
    let pid = lease.pid();
    assert!(pool.end_session("old").unwrap());
    assert!(lease.is_ended());
    assert_eq!(pool.stats().workers.draining, 1);
    // The worker is not handed to anyone while the old lease is open.
    assert!(pool.try_acquire("new").unwrap().is_none());
    let waiter = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.acquire_blocking("new", Some(Duration::from_secs(10))))
    };
    wait_until("new waits", Duration::from_secs(5), || pool.stats().queued_sessions == 1);
    drop(lease);
    let next = waiter.join().unwrap().unwrap();
    assert_eq!(next.pid(), pid, "reused after the drain");
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_session_ends_at_its_max_lifetime_even_when_leased() {
    let mut cfg = config(0, 1);
    cfg.max_session_lifetime = Some(Duration::from_millis(300));
    let (pool, ends) = pool_with_ends(demo_factory(), cfg);
    let lease = pool.acquire_blocking("mayfly", None).unwrap();
    let end = ends.recv_timeout(Duration::from_secs(5)).expect("ended");
    assert_eq!(end.reason, EndReason::MaxLifetime);
    assert!(lease.is_ended());
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn workers_are_recycled_after_n_sessions() {
    let mut cfg = config(0, 1);
    cfg.recycle_after_sessions = Some(2);
    let pool = Pool::new(demo_factory(), cfg).unwrap();
    let first = pool.acquire_blocking("s1", None).unwrap().pid();
    pool.end_session("s1").unwrap();
    assert_eq!(pool.acquire_blocking("s2", None).unwrap().pid(), first);
    pool.end_session("s2").unwrap();
    let third = pool.acquire_blocking("s3", None).unwrap().pid();
    assert_ne!(third, first, "recycled after two sessions");
    assert_eq!(pool.stats().counters.recycled, 1);
    wait_until("the recycled worker is gone", Duration::from_secs(5), || !alive(first.unwrap()));
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn min_and_min_idle_are_kept_and_surplus_idle_workers_trimmed() {
    let mut cfg = config(2, 6);
    cfg.min_idle = 1;
    cfg.idle_worker_timeout = Duration::from_millis(200);
    let pool = Pool::new(demo_factory(), cfg).unwrap();
    wait_until("min workers", Duration::from_secs(10), || pool.stats().workers.idle == 2);
    let leases: Vec<_> = (0..4).map(|i| pool.acquire_blocking(&format!("u{i}"), None).unwrap()).collect();
    wait_until("a warm spare beside four bound", Duration::from_secs(10), || {
        let s = pool.stats();
        s.workers.bound == 4 && s.workers.idle == 1
    });
    drop(leases);
    for i in 0..4 {
        pool.end_session(&format!("u{i}")).unwrap();
    }
    // Five idle now; trimmed back to max(min, min_idle) = 2.
    wait_until("trimmed to min", Duration::from_secs(10), || {
        let s = pool.stats();
        s.workers.total == 2 && s.workers.idle == 2
    });
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn events_follow_the_lifecycle() {
    let (pool, events) = pool_with_events(demo_factory(), config(0, 1));
    let lease = pool.acquire_blocking("watched", None).unwrap();
    let worker = lease.worker_id();
    wait_event(
        &events,
        Duration::from_secs(5),
        |k| matches!(k, EventKind::WorkerSpawning { worker: w } if *w == worker),
    );
    wait_event(
        &events,
        Duration::from_secs(5),
        |k| matches!(k, EventKind::WorkerReady { worker: w, .. } if *w == worker),
    );
    wait_event(
        &events,
        Duration::from_secs(5),
        |k| matches!(k, EventKind::SessionBound { session, .. } if &**session == "watched"),
    );
    drop(lease);
    wait_event(
        &events,
        Duration::from_secs(5),
        |k| matches!(k, EventKind::LeaseReleased { session, .. } if &**session == "watched"),
    );
    pool.end_session("watched").unwrap();
    wait_event(
        &events,
        Duration::from_secs(5),
        |k| matches!(k, EventKind::SessionEnded(e) if e.reason == EndReason::Ended),
    );
    pool.shutdown_blocking(Duration::from_secs(2));
    wait_event(
        &events,
        Duration::from_secs(5),
        |k| matches!(k, EventKind::WorkerExited { worker: w, expected: true, .. } if *w == worker),
    );
}
