//! Time-driven work: idle eviction, session lifetimes, trimming surplus
//! idle workers, recycling old ones, retrying sizing after a backoff, and
//! the background `/proc` sampling behind [`crate::Pool::stats`].

use std::sync::Arc;

use super::shared::Shared;
use crate::stats::HostSampler;

/// Runs until the pool closes. Sleeps until the next deadline (the earliest
/// session expiry, backoff end, trim or recycle time), or until kicked.
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        let notified = shared.maintainer.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some(next) = shared.maintain() else { return };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(next.into()) => {}
        }
    }
}

/// Samples host memory/CPU and each worker's RSS/CPU every
/// `stats_interval`, off the runtime threads (file reads block).
pub(crate) async fn sample(shared: Arc<Shared>) {
    let mut sampler = HostSampler::default();
    let mut interval = tokio::time::interval(shared.config.stats_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let pids: Vec<u32> = {
            let st = shared.state.lock();
            if st.closed {
                return;
            }
            st.workers.values().filter_map(|w| w.pid).collect()
        };
        let result = tokio::task::spawn_blocking(move || {
            let (host, usage) = sampler.sample(&pids);
            (sampler, host, usage)
        })
        .await;
        let Ok((back, host, usage)) = result else { return };
        sampler = back;
        let mut st = shared.state.lock();
        st.host = host;
        st.usage = usage;
    }
}
