//! Acquire latency (criterion): a bound session, and a new session that
//! takes a warm idle worker.
//!
//! Run: `cargo bench -p herd-core --bench acquire`
//! Goals: bound acquire ≤ 150 ns median; new session on a warm worker ≤ 50 µs.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use herd_core::{Pool, PoolConfig, ProcessFactory};

fn demo_pool(min: usize, max: usize, min_idle: usize) -> Pool {
    let factory = ProcessFactory::new(env!("CARGO_BIN_EXE_herd-demo-worker"), Vec::<String>::new());
    let config = PoolConfig { min, max, min_idle, ..Default::default() };
    let pool = Pool::new(factory, config).expect("pool");
    pool.wait_ready_blocking(Duration::from_secs(30)).expect("ready");
    pool
}

fn bound(c: &mut Criterion) {
    let pool = demo_pool(1, 1, 0);
    let _keep = pool.acquire_blocking("bench", None).expect("bind");
    let mut group = c.benchmark_group("bound_session");
    group.bench_function("acquire", |b| {
        // Time the acquires only; release outside the timed region.
        b.iter_custom(|iters| {
            let mut leases = Vec::with_capacity(iters as usize);
            let start = Instant::now();
            for _ in 0..iters {
                leases.push(pool.try_acquire("bench").unwrap().unwrap());
            }
            let elapsed = start.elapsed();
            drop(leases);
            elapsed
        })
    });
    group.bench_function("acquire_release", |b| b.iter(|| drop(pool.try_acquire("bench").unwrap())));
    group.bench_function("acquire_blocking_release", |b| {
        b.iter(|| drop(pool.acquire_blocking("bench", None).unwrap()))
    });
    group.finish();
    drop(_keep);
    pool.shutdown_blocking(Duration::from_secs(5));
}

fn new_session_warm_worker(c: &mut Criterion) {
    let pool = demo_pool(1, 2, 1);
    let mut n = 0u64;
    c.bench_function("new_session_idle_worker/acquire", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let id = format!("s{n}");
                let start = Instant::now();
                let lease = pool.acquire_blocking(&id, None).unwrap();
                total += start.elapsed();
                drop(lease);
                // reuse: the worker goes straight back to idle.
                pool.end_session(&id).unwrap();
            }
            total
        })
    });
    pool.shutdown_blocking(Duration::from_secs(5));
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bound, new_session_warm_worker
}
criterion_main!(benches);
