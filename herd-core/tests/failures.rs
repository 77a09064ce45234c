//! Workers that crash, turn unhealthy, never start, exit at once or ignore
//! SIGTERM; and shutdown, which must leave no process behind.

mod common;

use std::time::{Duration, Instant};

use common::*;
use herd_core::{EndReason, ErrorKind, Pool, ProcessFactory};

#[test]
fn killing_a_bound_worker_ends_its_session_as_crashed_and_replaces_it() {
    let (pool, ends) = pool_with_ends(demo_factory(), config(1, 3));
    let lease = pool.acquire_blocking("victim", None).unwrap();
    let pid = lease.pid().unwrap();
    let worker = lease.worker_id();
    drop(lease);
    kill(pid, libc::SIGKILL);
    let end = ends.recv_timeout(Duration::from_secs(5)).expect("crash reported");
    assert_eq!(&*end.session, "victim");
    assert_eq!(end.worker, worker);
    assert_eq!(end.pid, Some(pid));
    match end.reason {
        EndReason::Crashed { status } => assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}"),
        other => panic!("expected crashed, got {other}"),
    }
    // The binding is gone and the next acquire gets a new, healthy worker.
    let lease = pool.acquire_blocking("victim", None).unwrap();
    assert_ne!(lease.pid(), Some(pid));
    assert_eq!(identity(lease.address().unwrap()).0, lease.pid().unwrap());
    let stats = pool.stats();
    assert_eq!(stats.counters.crashed, 1);
    assert_eq!(stats.counters.sessions_ended.crashed, 1);
    assert!(!alive(pid), "the crashed worker was reaped");
    drop(lease);
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_crashed_idle_worker_is_replaced_to_keep_min() {
    let pool = Pool::new(demo_factory(), config(2, 4)).unwrap();
    pool.wait_ready_blocking(Duration::from_secs(10)).unwrap();
    let victim = pool.stats().worker_rows[0].pid.unwrap();
    kill(victim, libc::SIGKILL);
    wait_until("a replacement", Duration::from_secs(10), || {
        let s = pool.stats();
        s.counters.crashed == 1 && s.workers.idle == 2 && s.worker_rows.iter().all(|r| r.pid != Some(victim))
    });
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_worker_exiting_with_a_code_reports_it() {
    let (pool, ends) = pool_with_ends(demo_factory(), config(0, 1));
    let lease = pool.acquire_blocking("crasher", None).unwrap();
    let _ = http(lease.address().unwrap(), "GET", "/crash?code=42", b"");
    let end = ends.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(end.reason.exit_status().and_then(|s| s.code()), Some(42), "{}", end.reason);
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn health_failures_below_the_threshold_are_tolerated_then_the_session_ends_unhealthy() {
    let mut cfg = config(0, 2);
    cfg.health_interval = Duration::from_millis(50);
    cfg.health_failure_threshold = 3;
    let (pool, ends) = pool_with_ends(demo_factory(), cfg);
    let lease = pool.acquire_blocking("patient", None).unwrap();
    let addr = lease.address().unwrap();
    let pid = lease.pid().unwrap();
    let failures = |pool: &Pool| pool.stats().worker_rows.first().map(|r| r.health_failures).unwrap_or(0);
    // One failure, then healthy again: tolerated and reset.
    http(addr, "POST", "/health/fail", b"").unwrap();
    wait_until("a failed check", Duration::from_secs(5), || failures(&pool) >= 1);
    http(addr, "POST", "/health/ok", b"").unwrap();
    wait_until("failures reset", Duration::from_secs(5), || failures(&pool) == 0);
    assert!(ends.try_recv().is_err(), "one failure must not end the session");
    assert!(running(pid));
    // Failing for good: ends after the threshold.
    http(addr, "POST", "/health/fail", b"").unwrap();
    let end = ends.recv_timeout(Duration::from_secs(5)).expect("ended");
    assert_eq!(end.reason, EndReason::Unhealthy);
    assert!(lease.is_ended());
    wait_until("the unhealthy worker is stopped", Duration::from_secs(5), || !alive(pid));
    assert_eq!(pool.stats().counters.unhealthy, 1);
    drop(lease);
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_health_path_the_worker_does_not_serve_is_named_in_the_spawn_error() {
    // The demo worker answers 404 for routes it does not have: the error
    // quotes the last probe's answer and says what to change.
    let factory = demo_factory().health_path("/no-such-route").start_timeout(Duration::from_millis(600));
    let pool = Pool::new(factory, config(0, 1)).unwrap();
    let err = pool.acquire_blocking("s", Some(Duration::from_secs(10))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SpawnFailed, "{err}");
    let message = err.to_string();
    assert!(message.contains("not ready within"), "{message}");
    assert!(message.contains("last probe: GET /no-such-route on 127.0.0.1:"), "{message}");
    assert!(message.contains("answered 404"), "{message}");
    assert!(message.contains("set the health path to a route the worker serves"), "{message}");
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_worker_that_never_becomes_ready_fails_the_spawn_after_start_timeout() {
    let factory = ProcessFactory::new("sleep", ["1000"]).start_timeout(Duration::from_millis(400));
    let pool = Pool::new(factory, config(0, 1)).unwrap();
    let started = Instant::now();
    let err = pool.acquire_blocking("s", Some(Duration::from_secs(10))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SpawnFailed, "{err}");
    assert!(err.to_string().contains("not ready within"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let stats = pool.stats();
    assert_eq!(stats.counters.spawn_failures, 1);
    assert_eq!(stats.sessions, 0, "no binding leaked");
    assert!(descendants(std::process::id()).iter().all(|p| !cmdline(*p).starts_with("sleep\u{0}1000")));
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_worker_that_exits_at_once_fails_the_spawn_at_once_with_its_output() {
    let factory = ProcessFactory::new("sh", ["-c", "echo 'config file missing' >&2; exit 7"])
        .start_timeout(Duration::from_secs(30));
    let pool = Pool::new(factory, config(0, 1)).unwrap();
    let started = Instant::now();
    let err = pool.acquire_blocking("s", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SpawnFailed, "{err}");
    let text = err.to_string();
    assert!(text.contains("exit code 7"), "{text}");
    assert!(text.contains("config file missing"), "the worker's output explains it: {text}");
    assert!(started.elapsed() < Duration::from_secs(5), "no waiting out the start timeout");
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_missing_or_non_executable_program_is_a_clear_error() {
    let err = Pool::new(ProcessFactory::new("no-such-program-herd", ["x"]), config(0, 1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SpawnFailed);
    assert!(err.to_string().contains("not found"), "{err}");

    let dir = std::env::temp_dir().join(format!("herd-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let err = Pool::new(ProcessFactory::new(script.to_str().unwrap(), ["x"]), config(0, 1)).unwrap_err();
    assert!(err.to_string().contains("not executable"), "{err}");
    let err = Pool::new(ProcessFactory::new(dir.to_str().unwrap(), ["x"]), config(0, 1)).unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_worker_ignoring_sigterm_and_its_children_are_killed_after_the_grace() {
    let factory = ProcessFactory::new(demo_worker(), ["--ignore-sigterm"]);
    let mut cfg = config(0, 1);
    cfg.stop_grace = Duration::from_millis(300);
    let pool = Pool::new(factory, cfg).unwrap();
    let lease = pool.acquire_blocking("stubborn", None).unwrap();
    let pid = lease.pid().unwrap();
    // Children that ignore SIGTERM, one of them in its own session.
    get(lease.address().unwrap(), "/children?n=2&ignore_term=1");
    get(lease.address().unwrap(), "/children?n=1&ignore_term=1&detach=1");
    let mut tree = descendants(pid);
    assert_eq!(tree.len(), 3, "three children of the worker: {tree:?}");
    tree.push(pid);
    drop(lease);
    let started = Instant::now();
    pool.shutdown_blocking(Duration::from_millis(300));
    assert!(started.elapsed() >= Duration::from_millis(300), "SIGTERM was ignored, so the grace ran out");
    for p in tree {
        assert!(!alive(p), "process {p} survived the shutdown");
    }
}

#[test]
fn shutdown_leaves_no_process_and_refuses_new_acquires() {
    let pool = Pool::new(demo_factory(), config(2, 4)).unwrap();
    let leases: Vec<_> = (0..3).map(|i| pool.acquire_blocking(&format!("s{i}"), None).unwrap()).collect();
    let mut pids: Vec<u32> = pool.stats().worker_rows.iter().filter_map(|r| r.pid).collect();
    for lease in &leases {
        get(lease.address().unwrap(), "/children?n=1");
        let children = descendants(lease.pid().unwrap());
        assert_eq!(children.len(), 1);
        pids.extend(children);
    }
    let parents: Vec<u32> = pids.iter().filter_map(|p| ppid(*p)).collect();
    pool.shutdown_blocking(Duration::from_secs(2));
    for p in pids.iter().chain(&parents).filter(|p| **p != std::process::id()) {
        assert!(!alive(*p), "process {p} is left after shutdown");
    }
    assert!(leases.iter().all(|l| l.is_ended()));
    let err = pool.acquire_blocking("late", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolClosed);
    // A second shutdown is harmless.
    pool.shutdown_blocking(Duration::from_secs(1));
}

#[test]
fn dropping_the_last_pool_handle_shuts_it_down() {
    let pool = Pool::new(demo_factory(), config(2, 2)).unwrap();
    pool.wait_ready_blocking(Duration::from_secs(10)).unwrap();
    let pids: Vec<u32> = pool.stats().worker_rows.iter().filter_map(|r| r.pid).collect();
    assert_eq!(pids.len(), 2);
    drop(pool);
    for p in pids {
        assert!(!alive(p), "worker {p} outlived its pool");
    }
}

#[test]
fn a_callback_may_call_back_into_the_pool() {
    let (tx, rx) = std::sync::mpsc::channel();
    let slot: std::sync::Arc<std::sync::OnceLock<Pool>> = Default::default();
    let seen = slot.clone();
    let tx = std::sync::Mutex::new(tx);
    let pool = Pool::builder(demo_factory())
        .config(config(0, 2))
        .on_session_end(move |end| {
            // Blocking calls from the event thread must not deadlock.
            let pool = seen.get().unwrap();
            let stats = pool.stats();
            let again = pool.acquire_blocking("from-callback", Some(Duration::from_secs(10)));
            let _ = tx.lock().unwrap().send((end.reason, stats.sessions, again.map(|l| l.pid())));
        })
        .build()
        .unwrap();
    slot.set(pool.clone()).unwrap();
    let lease = pool.acquire_blocking("first", None).unwrap();
    drop(lease);
    pool.end_session("first").unwrap();
    let (reason, _, again) = rx.recv_timeout(Duration::from_secs(10)).expect("callback ran");
    assert_eq!(reason, EndReason::Ended);
    assert!(again.unwrap().is_some());
    slot.get().unwrap().shutdown_blocking(Duration::from_secs(2));
    drop(pool);
}

#[test]
fn a_forked_child_gets_a_clear_error_not_a_hang() {
    let pool = Pool::new(demo_factory(), config(1, 1)).unwrap();
    let lease = pool.acquire_blocking("parent", None).unwrap();
    // SAFETY: the child only calls herd's fork check and _exit.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let code = match pool.try_acquire("parent") {
            // Stats of the parent's pool are empty and closed; dropping
            // the parent's lease is a no-op here (no lock is taken).
            Err(e) if e.kind() == ErrorKind::Forked && pool.stats().closed => 0,
            _ => 1,
        };
        drop(lease);
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(child, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child got Forked");
    // The parent's pool is unaffected.
    assert_eq!(pool.acquire_blocking("parent", None).unwrap().pid(), lease.pid());
    drop(lease);
    pool.shutdown_blocking(Duration::from_secs(2));
}

fn cmdline(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default()
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}
