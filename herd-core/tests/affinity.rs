//! Affinity, isolation, singleflight, stats and input checks, with real
//! demo-worker processes.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use herd_core::{ErrorKind, Pool, PoolConfig};

#[test]
fn same_session_reaches_the_same_process() {
    let pool = Pool::new(demo_factory(), config(1, 4)).unwrap();
    let first = pool.acquire_blocking("alice", None).unwrap();
    let (pid, worker_id) = identity(first.address().unwrap());
    assert_eq!(Some(pid), first.pid(), "the worker reports the PID herd knows");
    assert_eq!(worker_id, first.worker_id().to_string());
    drop(first);
    for _ in 0..5 {
        let again = pool.acquire_blocking("alice", None).unwrap();
        assert_eq!(identity(again.address().unwrap()).0, pid);
    }
    // State stays with the session: the worker's own key/value store.
    let lease = pool.acquire_blocking("alice", None).unwrap();
    let addr = lease.address().unwrap();
    assert_eq!(http(addr, "PUT", "/kv/color", b"green").unwrap().0, 200);
    drop(lease);
    let lease = pool.acquire_blocking("alice", None).unwrap();
    assert_eq!(get(lease.address().unwrap(), "/kv/color"), (200, "green".to_string()));
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn different_sessions_reach_different_processes() {
    let pool = Pool::new(demo_factory(), config(0, 6)).unwrap();
    let leases: Vec<_> = (0..6).map(|i| pool.acquire_blocking(&format!("user-{i}"), None).unwrap()).collect();
    let pids: HashSet<u32> = leases.iter().map(|l| identity(l.address().unwrap()).0).collect();
    assert_eq!(pids.len(), 6, "six sessions, six processes");
    // One session's state is invisible to another.
    http(leases[0].address().unwrap(), "PUT", "/kv/secret", b"zero").unwrap();
    assert_eq!(get(leases[1].address().unwrap(), "/kv/secret").0, 404);
    let stats = pool.stats();
    assert_eq!(stats.sessions, 6);
    assert_eq!(stats.workers.bound, 6);
    drop(leases);
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_acquires_of_one_new_session_make_one_binding() {
    let pool = Pool::new(demo_factory(), config(0, 4)).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let pool = pool.clone();
        tasks
            .push(tokio::spawn(async move { pool.acquire("crowd").await.map(|l| (l.pid(), l.worker_id())) }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(seen.len(), 1, "every caller got the same worker: {seen:?}");
    let stats = pool.stats();
    assert_eq!(stats.counters.spawned, 1, "exactly one spawn");
    assert_eq!(stats.counters.sessions_bound, 1, "exactly one binding");
    assert_eq!(stats.workers.total, 1);
    pool.shutdown(Duration::from_secs(2)).await;
}

#[test]
fn concurrent_acquires_from_many_threads_keep_one_worker_per_session() {
    let pool = Pool::new(demo_factory(), config(0, 8)).unwrap();
    let results = Arc::new(parking_lot::Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for t in 0..16 {
            let pool = pool.clone();
            let results = results.clone();
            s.spawn(move || {
                for i in 0..50 {
                    let id = format!("s{}", (t + i) % 8);
                    let lease = pool.acquire_blocking(&id, None).unwrap();
                    results.lock().push((id, lease.pid().unwrap()));
                }
            });
        }
    });
    let mut by_session = std::collections::HashMap::new();
    let mut by_pid = std::collections::HashMap::new();
    for (id, pid) in results.lock().iter() {
        assert_eq!(*by_session.entry(id.clone()).or_insert(*pid), *pid, "session {id} moved");
        assert_eq!(*by_pid.entry(*pid).or_insert(id.clone()), *id, "pid {pid} served two sessions");
    }
    assert_eq!(by_session.len(), 8);
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn stats_match_reality() {
    let mut cfg = config(1, 5);
    cfg.min_idle = 1;
    cfg.stats_interval = Duration::from_millis(100);
    let pool = Pool::new(demo_factory(), cfg).unwrap();
    pool.wait_ready_blocking(Duration::from_secs(10)).unwrap();
    let a = pool.acquire_blocking("a", None).unwrap();
    let b = pool.acquire_blocking("b", None).unwrap();
    let b2 = pool.acquire_blocking("b", None).unwrap();
    // Two bound, and min_idle keeps one more warm.
    wait_until("a warm spare", Duration::from_secs(10), || pool.stats().workers.idle == 1);
    let stats = pool.stats();
    assert_eq!(stats.workers.bound, 2);
    assert_eq!(stats.workers.total, 3);
    assert_eq!(stats.sessions, 2);
    assert_eq!(stats.open_leases, 3);
    assert_eq!(stats.counters.sessions_bound, 2);
    let row = stats.worker_rows.iter().find(|r| r.session.as_deref() == Some("b")).unwrap();
    assert_eq!(row.pid, b.pid());
    // Every row's PID is a live process.
    for row in &stats.worker_rows {
        assert!(running(row.pid.unwrap()), "{row:?}");
    }
    // Process figures arrive with the background sample.
    wait_until("rss sampled", Duration::from_secs(5), || {
        pool.stats().worker_rows.iter().all(|r| r.rss_bytes.unwrap_or(0) > 0)
    });
    let host = pool.stats().host;
    assert!(host.memory_total_bytes > 0 && host.memory_available_bytes <= host.memory_total_bytes);
    assert!((0.0..=1.0).contains(&host.cpu_idle));
    drop((a, b, b2));
    assert_eq!(pool.stats().open_leases, 0);
    pool.shutdown_blocking(Duration::from_secs(2));
    let stats = pool.stats();
    assert!(stats.closed);
    assert_eq!(stats.workers.total, 0);
    assert_eq!(stats.counters.sessions_ended.shutdown, 2);
}

#[test]
fn bad_session_ids_are_rejected_with_a_typed_error() {
    let pool = Pool::new(demo_factory(), config(0, 2)).unwrap();
    for id in ["", "with\nnewline", "nul\0byte", &"x".repeat(257)] {
        let err = pool.acquire_blocking(id, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSessionId, "{id:?}: {err}");
        assert_eq!(pool.end_session(id).unwrap_err().kind(), ErrorKind::InvalidSessionId);
    }
    assert_eq!(pool.stats().workers.total, 0, "bad input spawned nothing");
    pool.shutdown_blocking(Duration::from_secs(1));
}

#[test]
fn bad_configs_are_rejected_naming_the_field() {
    let cases = [
        (PoolConfig { min: 3, max: 2, ..Default::default() }, "min"),
        (PoolConfig { max: 0, ..Default::default() }, "max"),
        (PoolConfig { min_idle: 20, ..Default::default() }, "min_idle"),
        (PoolConfig { ttl: Duration::ZERO, ..Default::default() }, "ttl"),
        (PoolConfig { health_failure_threshold: 0, ..Default::default() }, "health_failure_threshold"),
    ];
    for (cfg, field) in cases {
        let err = Pool::new(demo_factory(), cfg).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.to_string().contains(field), "{err} should name {field}");
    }
}
