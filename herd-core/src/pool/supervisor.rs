//! One task per worker: start it, watch it exit, check its health, stop it.
//!
//! The supervisor owns the worker object; the pool's state only holds the
//! worker's entry and a `Notify` to ask for a stop. Exits are seen from the
//! process itself (`Worker::exited`), not by polling.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use super::shared::Shared;
use crate::factory::{SpawnContext, WorkerId};

pub(crate) async fn supervise(shared: Arc<Shared>, id: WorkerId, stop: Arc<Notify>) {
    let started = Instant::now();
    let ctx = SpawnContext { worker_id: id, pool_name: shared.name.clone() };
    let spawn = shared.factory.spawn(ctx);
    let mut worker = tokio::select! {
        result = spawn => match result {
            Ok(worker) => worker,
            Err(error) => {
                shared.spawn_failed(id, error);
                return;
            }
        },
        _ = stop.notified() => {
            // Dropping the spawn future kills whatever it started.
            shared.worker_stopped(id, None);
            return;
        }
    };
    if !shared.worker_ready(id, worker.address(), worker.pid(), started.elapsed()) {
        let status = worker.stop(shared.stop_grace()).await;
        shared.worker_stopped(id, Some(status));
        return;
    }

    let config = &shared.config;
    let mut failures = 0u32;
    loop {
        let check = worker.health_check(config.health_timeout);
        let next_check = async {
            tokio::time::sleep(config.health_interval).await;
            check.await
        };
        tokio::select! {
            status = worker.exited() => {
                shared.worker_exited(id, status);
                return;
            }
            _ = stop.notified() => break,
            result = next_check => match result {
                Ok(()) => {
                    if failures > 0 {
                        failures = 0;
                        shared.health_checked(id, 0);
                    }
                }
                Err(reason) => {
                    failures += 1;
                    shared.health_checked(id, failures);
                    tracing::debug!(worker = %id, failures, "health check failed: {reason}");
                    if failures == config.health_failure_threshold {
                        shared.worker_unhealthy(
                            id,
                            &format!("{failures} health checks failed in a row; last: {reason}"),
                        );
                    }
                }
            },
        }
    }
    let status = worker.stop(shared.stop_grace()).await;
    shared.worker_stopped(id, Some(status));
}
