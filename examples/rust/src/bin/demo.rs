//! A pool of demo workers: the same session ID always reaches the same
//! process, different IDs reach different processes.
//!
//! Run: `cargo run --release -p herd-examples --bin demo`

use std::time::Duration;

use herd_core::{Pool, PoolConfig, demo};

fn main() -> Result<(), herd_core::Error> {
    // This binary doubles as the demo worker (`demo demo-worker`).
    demo::run_if_requested();

    let config = PoolConfig { min: 1, max: 4, min_idle: 1, ..Default::default() };
    let pool = Pool::new(demo::embedded_factory()?, config)?;
    pool.wait_ready_blocking(Duration::from_secs(10))?;

    println!("{:<10} {:>8}  {:<7} address", "session", "pid", "worker");
    for session in ["alice", "bob", "alice", "carol", "bob", "alice"] {
        let lease = pool.acquire_blocking(session, None)?;
        println!(
            "{:<10} {:>8}  {:<7} {}",
            session,
            lease.pid().unwrap_or(0),
            lease.worker_id().to_string(),
            lease.url().unwrap_or_default()
        );
    }
    let stats = pool.stats();
    println!(
        "\n{} sessions, each on its own worker process ({} workers in all, counting warm spares).",
        stats.sessions, stats.workers.total
    );
    pool.shutdown_blocking(Duration::from_secs(5));
    println!("shut down: every worker process is gone.");
    Ok(())
}
