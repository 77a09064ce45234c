//! Waiting for a worker: FIFO order, timeouts, a full queue, and callers
//! that give up without stranding the others.

mod common;

use std::time::{Duration, Instant};

use common::*;
use herd_core::{ErrorKind, Pool};

#[test]
fn an_acquire_times_out_when_every_worker_is_bound() {
    let pool = Pool::new(demo_factory(), config(1, 1)).unwrap();
    let _held = pool.acquire_blocking("owner", None).unwrap();
    let started = Instant::now();
    let err = pool.acquire_blocking("latecomer", Some(Duration::from_millis(300))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AcquireTimeout, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(err.to_string().contains("latecomer"), "{err}");
    assert!(err.is_retryable());
    let stats = pool.stats();
    assert_eq!(stats.counters.acquire_timeouts, 1);
    assert_eq!(stats.queued_sessions, 0, "the timed-out session left the queue");
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_sessions_are_served_in_arrival_order() {
    let pool = Pool::new(demo_factory(), config(1, 1)).unwrap();
    let first = pool.acquire("first").await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for name in ["second", "third", "fourth"] {
        let p = pool.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let pool = p;
            let lease = pool.acquire(name).await.unwrap();
            tx.send(name).unwrap();
            // Hand the single worker on once this session is served.
            let id = lease.session_id().to_string();
            drop(lease);
            pool.end_session(&id).unwrap();
        });
        // Make arrival order unambiguous.
        let want = ["second", "third", "fourth"].iter().position(|n| *n == name).unwrap() + 1;
        tokio::time::timeout(Duration::from_secs(5), async {
            while pool.stats().queued_sessions < want {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("queued");
    }
    let id = first.session_id().to_string();
    drop(first);
    pool.end_session(&id).unwrap();
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap());
    }
    assert_eq!(order, ["second", "third", "fourth"]);
    pool.shutdown(Duration::from_secs(2)).await;
}

#[test]
fn a_full_queue_refuses_at_once() {
    let mut cfg = config(1, 1);
    cfg.max_queue = 1;
    let pool = Pool::new(demo_factory(), cfg).unwrap();
    let _held = pool.acquire_blocking("owner", None).unwrap();
    let waiter = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.acquire_blocking("waiting", Some(Duration::from_secs(10))))
    };
    wait_until("one session queued", Duration::from_secs(5), || pool.stats().queued_sessions == 1);
    let started = Instant::now();
    let err = pool.acquire_blocking("one-too-many", Some(Duration::from_secs(10))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolExhausted, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused without waiting");
    assert_eq!(pool.stats().counters.acquires_rejected, 1);
    // The queued one is still served when the worker frees up.
    pool.end_session("owner").unwrap();
    drop(_held);
    let lease = waiter.join().unwrap().expect("the queued session is served");
    assert_eq!(lease.session_id(), "waiting");
    drop(lease);
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[test]
fn a_caller_that_gives_up_does_not_strand_the_others() {
    let pool = Pool::new(demo_factory(), config(1, 1)).unwrap();
    let held = pool.acquire_blocking("owner", None).unwrap();
    // The first caller of "shared" gives up quickly, a second one waits.
    let patient = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.acquire_blocking("shared", Some(Duration::from_secs(20))))
    };
    wait_until("the patient caller waits", Duration::from_secs(5), || pool.stats().waiting_acquires == 1);
    let err = pool.acquire_blocking("shared", Some(Duration::from_millis(100))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AcquireTimeout);
    assert_eq!(pool.stats().queued_sessions, 1, "the session is still queued for the patient caller");
    drop(held);
    pool.end_session("owner").unwrap();
    let lease = patient.join().unwrap().expect("served");
    assert_eq!(lease.session_id(), "shared");
    drop(lease);
    pool.shutdown_blocking(Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_acquire_leaves_no_trace() {
    let pool = Pool::new(demo_factory(), config(1, 1)).unwrap();
    let _held = pool.acquire("owner").await.unwrap();
    let attempt = tokio::time::timeout(Duration::from_millis(100), pool.acquire("impatient")).await;
    assert!(attempt.is_err(), "still waiting when cancelled");
    let p = pool.clone();
    tokio::time::timeout(Duration::from_secs(5), async move {
        while p.stats().queued_sessions != 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the cancelled session left the queue");
    assert_eq!(pool.stats().waiting_acquires, 0);
    pool.shutdown(Duration::from_secs(2)).await;
}

#[test]
fn try_acquire_never_waits() {
    let mut cfg = config(1, 1);
    cfg.min_idle = 1;
    let pool = Pool::new(demo_factory(), cfg).unwrap();
    pool.wait_ready_blocking(Duration::from_secs(10)).unwrap();
    let lease = pool.try_acquire("a").unwrap().expect("an idle worker is ready");
    assert!(pool.try_acquire("b").unwrap().is_none(), "no worker free");
    assert_eq!(pool.try_acquire("a").unwrap().unwrap().pid(), lease.pid());
    pool.shutdown_blocking(Duration::from_secs(2));
}
