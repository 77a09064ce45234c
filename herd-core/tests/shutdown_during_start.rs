//! Shutting a pool down while its workers are still starting — before the
//! spawner took the request, while it forks, while the worker boots —
//! leaves no process and no zombie. (Its own test binary: it checks that
//! this process has no child at all afterwards.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use herd_core::{Pool, ProcessFactory};

fn children_of_this_process() -> Vec<u32> {
    descendants(std::process::id())
}

#[test]
fn shutdown_while_workers_start_leaves_nothing_behind() {
    let slow = format!("sleep 0.3; exec {}", demo_worker());
    for delay_us in [0u64, 200, 1_000, 5_000, 50_000, 400_000] {
        let factory = ProcessFactory::new("sh", ["-c", slow.as_str()]);
        let pool = Pool::new(factory, config(4, 4)).unwrap();
        std::thread::sleep(Duration::from_micros(delay_us)); // vary where the shutdown lands
        pool.shutdown_blocking(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(3);
        while !children_of_this_process().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let left = children_of_this_process();
        assert!(left.is_empty(), "after a shutdown {delay_us} µs into start-up, left: {left:?}");
    }
}
