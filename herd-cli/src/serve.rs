//! `herd serve`: the pool, the gateway in front of it, and a graceful
//! stop on SIGINT or SIGTERM (or, embedded, when the host asks: see
//! [`crate::stop`]).
//!
//! On the first stop request the gateway stops accepting, requests in
//! flight get `shutdown_grace` to finish, open WebSockets get a close
//! frame, then the pool stops every worker (SIGTERM, `stop_grace`, SIGKILL
//! to the whole tree) and herd exits 0. A second request skips the wait
//! for requests.

use std::time::Duration;

use herd_core::{ErrorKind, Pool, Proxy};

use crate::settings::Settings;
use crate::stop::StopSource;

/// Runs the gateway until a stop request; returns the exit code.
pub(crate) fn run(settings: Settings, stops: StopSource) -> i32 {
    crate::logging::init(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herd: cannot start: {e}");
            return 1;
        }
    };
    runtime.block_on(serve(settings, stops))
}

async fn serve(settings: Settings, stops: StopSource) -> i32 {
    let mut stops = match stops.listen() {
        Ok(stops) => stops,
        Err(e) => {
            eprintln!("herd: cannot handle signals: {e}");
            return 1;
        }
    };
    let pool = match Pool::new(settings.factory, settings.pool) {
        Ok(pool) => pool,
        Err(e) if matches!(e.kind(), ErrorKind::InvalidConfig | ErrorKind::SpawnFailed) => {
            eprintln!("herd: {e:#}");
            return crate::EXIT_BAD_CONFIG;
        }
        Err(e) => {
            eprintln!("herd: cannot start the pool: {e:#}");
            return 1;
        }
    };
    let proxy = match Proxy::serve(pool.clone(), settings.proxy).await {
        Ok(proxy) => proxy,
        Err(e) => {
            let code = if e.kind() == ErrorKind::InvalidConfig { crate::EXIT_BAD_CONFIG } else { 1 };
            eprintln!("herd: {e:#}");
            pool.shutdown(Duration::from_secs(2)).await;
            return code;
        }
    };
    let stop_grace = pool.config().stop_grace;
    let ready = tokio::select! {
        ready = pool.wait_ready(settings.ready_timeout) => ready,
        _ = stops.next() => return stop(&proxy, &pool, Duration::ZERO, stop_grace).await,
    };
    if let Err(e) = ready {
        eprintln!("herd: workers of `{}` did not start: {e:#}", settings.command_line);
        proxy.stop(Duration::ZERO).await;
        pool.shutdown(stop_grace).await;
        return 1;
    }
    println!("herd: gateway listening on http://{}", proxy.local_addr());
    if let Some(admin) = proxy.admin_addr() {
        println!("herd: admin listening on http://{admin}");
    }
    tracing::info!(workers = %settings.command_line, "herd ready");
    let why = stops.next().await;
    tracing::info!("{why}: stopping");
    tracing::info!(grace = ?settings.shutdown_grace, "finishing requests in flight (asking again skips the wait)");
    tokio::select! {
        _ = proxy.stop(settings.shutdown_grace) => {}
        why = stops.next() => tracing::info!("{why}: stopping at once"),
    }
    stop(&proxy, &pool, Duration::ZERO, stop_grace).await
}

async fn stop(proxy: &Proxy, pool: &Pool, grace: Duration, stop_grace: Duration) -> i32 {
    proxy.stop(grace).await;
    pool.shutdown(stop_grace).await;
    tracing::info!("herd stopped; no worker left");
    0
}
