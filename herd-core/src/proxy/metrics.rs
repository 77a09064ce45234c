//! Prometheus metrics of the proxy and its pool, served by the admin
//! listener's `GET /metrics` in the Prometheus text format.
//!
//! Labels are bounded: HTTP status codes, rejection reasons, worker states
//! and session end reasons. Session IDs and worker IDs never become labels
//! (both are unbounded over a pool's life).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};

use crate::pool::Pool;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    reason: &'static str,
}

/// Why the proxy answered a request itself instead of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    MissingSessionId,
    InvalidSessionId,
    AcquireTimeout,
    PoolExhausted,
    PoolClosed,
    SpawnFailed,
    WorkerUnreachable,
    Internal,
}

impl Rejected {
    const ALL: [Rejected; 8] = [
        Rejected::MissingSessionId,
        Rejected::InvalidSessionId,
        Rejected::AcquireTimeout,
        Rejected::PoolExhausted,
        Rejected::PoolClosed,
        Rejected::SpawnFailed,
        Rejected::WorkerUnreachable,
        Rejected::Internal,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Rejected::MissingSessionId => "missing_session_id",
            Rejected::InvalidSessionId => "invalid_session_id",
            Rejected::AcquireTimeout => "acquire_timeout",
            Rejected::PoolExhausted => "pool_exhausted",
            Rejected::PoolClosed => "pool_closed",
            Rejected::SpawnFailed => "spawn_failed",
            Rejected::WorkerUnreachable => "worker_unreachable",
            Rejected::Internal => "internal",
        }
    }
}

/// The proxy's own metrics that change per connection or tunnel (shared
/// by the I/O threads); per-request figures are in [`ThreadMetrics`].
pub(crate) struct Metrics {
    pub client_connections: Gauge,
    pub websockets: Gauge,
    websocket_closes: Family<ReasonLabel, Counter>,
    pub upstream_connections: Gauge,
    pub upstream_connects: Counter,
    threads: Vec<Arc<ThreadMetrics>>,
}

/// Response head latency buckets: 100 µs × 2^i, i < `BUCKETS`, then +Inf.
const BUCKETS: usize = 18;

/// Per-request figures one I/O thread keeps alone.
///
/// # Concurrency
///
/// Only its own thread writes them, so no cache line is shared between
/// threads on the request path (a shared counter family and histogram
/// lock cost ~5% of a proxied request's CPU across two threads). A scrape
/// reads them with relaxed loads and sums the threads: a scrape may see a
/// request counted in `responses` and not yet in the histogram, never a
/// count that goes down.
pub(crate) struct ThreadMetrics {
    /// By status code (hyper allows 100..=999).
    responses: Box<[AtomicU64]>,
    rejected: [AtomicU64; Rejected::ALL.len()],
    head_buckets: [AtomicU64; BUCKETS + 1],
    head_nanos: AtomicU64,
}

impl ThreadMetrics {
    fn new() -> ThreadMetrics {
        ThreadMetrics {
            responses: (0..1000).map(|_| AtomicU64::new(0)).collect(),
            rejected: Default::default(),
            head_buckets: Default::default(),
            head_nanos: AtomicU64::new(0),
        }
    }

    /// Counts a response sent to a client, and how long its head took.
    pub(crate) fn response(&self, code: u16, elapsed: Duration) {
        if let Some(counter) = self.responses.get(usize::from(code)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let micros = elapsed.as_micros() as u64;
        let bucket = if micros <= 100 { 0 } else { (64 - ((micros - 1) / 100).leading_zeros()) as usize };
        self.head_buckets[bucket.min(BUCKETS)].fetch_add(1, Ordering::Relaxed);
        self.head_nanos.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, why: Rejected) {
        self.rejected[why as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Metrics for a proxy with `threads` I/O threads.
    pub(crate) fn new(threads: usize) -> Metrics {
        Metrics {
            client_connections: Gauge::default(),
            websockets: Gauge::default(),
            websocket_closes: Family::default(),
            upstream_connections: Gauge::default(),
            upstream_connects: Counter::default(),
            threads: (0..threads).map(|_| Arc::new(ThreadMetrics::new())).collect(),
        }
    }

    /// I/O thread `index`'s per-request metrics.
    pub(crate) fn thread(&self, index: usize) -> Arc<ThreadMetrics> {
        self.threads[index % self.threads.len().max(1)].clone()
    }

    /// Counts a WebSocket (or other upgraded connection) closed by herd or
    /// its peers, by why it closed.
    pub(crate) fn websocket_closed(&self, reason: &'static str) {
        self.websocket_closes.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A registry with these metrics and the pool's, for one scrape.
    pub(crate) fn registry(self: &Arc<Self>, pool: &Pool) -> Registry {
        let mut registry = Registry::with_prefix("herd");
        let proxy = registry.sub_registry_with_prefix("proxy");
        proxy.register("client_connections", "Open client connections", self.client_connections.clone());
        proxy.register("websockets", "Open upgraded (WebSocket) connections", self.websockets.clone());
        proxy.register(
            "websocket_closes",
            "Upgraded connections closed, by who or what closed them",
            self.websocket_closes.clone(),
        );
        proxy.register(
            "upstream_connections",
            "Open connections from herd to workers",
            self.upstream_connections.clone(),
        );
        proxy.register("upstream_connects", "Connections opened to workers", self.upstream_connects.clone());
        registry.register_collector(Box::new(RequestCollector { threads: self.threads.clone() }));
        registry.register_collector(Box::new(PoolCollector { pool: pool.clone() }));
        registry
    }
}

/// Sums the I/O threads' per-request figures at scrape time.
#[derive(Debug)]
struct RequestCollector {
    threads: Vec<Arc<ThreadMetrics>>,
}

impl std::fmt::Debug for ThreadMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadMetrics")
    }
}

impl Collector for RequestCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sum = |pick: &dyn Fn(&ThreadMetrics) -> &AtomicU64| -> u64 {
            self.threads.iter().map(|t| pick(t).load(Ordering::Relaxed)).sum()
        };
        {
            let mut family = encoder.encode_descriptor(
                "proxy_responses",
                "Responses sent to clients, by status code",
                None,
                MetricType::Counter,
            )?;
            for code in 0..1000u16 {
                let n = sum(&|t| &t.responses[usize::from(code)]);
                if n > 0 {
                    ConstCounter::new(n).encode(family.encode_family(&CodeLabel { code })?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "proxy_rejected_requests",
                "Requests answered by herd itself (no worker reached), by reason",
                None,
                MetricType::Counter,
            )?;
            for why in Rejected::ALL {
                let n = sum(&|t| &t.rejected[why as usize]);
                ConstCounter::new(n).encode(family.encode_family(&ReasonLabel { reason: why.as_str() })?)?;
            }
        }
        let buckets: Vec<(f64, u64)> = (0..=BUCKETS)
            .map(|i| {
                let upper = if i == BUCKETS { f64::INFINITY } else { 0.000_1 * (1u64 << i) as f64 };
                (upper, sum(&|t| &t.head_buckets[i]))
            })
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let seconds = sum(&|t| &t.head_nanos) as f64 / 1e9;
        let mut metric = encoder.encode_descriptor(
            "proxy_response_head_duration",
            "Time from a request's head to its response's head",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(seconds, count, &buckets, None)
    }
}

/// Reads the pool's stats at scrape time.
#[derive(Debug)]
struct PoolCollector {
    pool: Pool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value as i64);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.pool.stats();
        let w = &stats.workers;
        {
            let mut family =
                encoder.encode_descriptor("workers", "Worker processes by state", None, MetricType::Gauge)?;
            for (state, n) in [
                ("starting", w.starting),
                ("idle", w.idle),
                ("bound", w.bound),
                ("draining", w.draining),
                ("stopping", w.stopping),
            ] {
                ConstGauge::new(n as i64).encode(family.encode_family(&StateLabel { state })?)?;
            }
        }
        gauge(&mut encoder, "sessions", "Sessions bound to a worker", stats.sessions as u64)?;
        gauge(
            &mut encoder,
            "waiting_acquires",
            "Acquires waiting for a worker",
            stats.waiting_acquires as u64,
        )?;
        gauge(&mut encoder, "open_leases", "Open leases over all sessions", stats.open_leases)?;
        gauge(&mut encoder, "max_workers", "The pool's max", stats.max as u64)?;
        let c = &stats.counters;
        counter(&mut encoder, "workers_spawned", "Workers that became ready", c.spawned)?;
        counter(&mut encoder, "worker_spawn_failures", "Workers that failed to start", c.spawn_failures)?;
        counter(&mut encoder, "workers_crashed", "Workers that exited on their own", c.crashed)?;
        counter(&mut encoder, "sessions_bound", "Sessions bound to a worker", c.sessions_bound)?;
        counter(&mut encoder, "acquire_timeouts", "Acquires that timed out", c.acquire_timeouts)?;
        counter(
            &mut encoder,
            "acquires_rejected",
            "Acquires refused because the queue was full",
            c.acquires_rejected,
        )?;
        let e = &c.sessions_ended;
        let mut family = encoder.encode_descriptor(
            "sessions_ended",
            "Sessions that ended, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in [
            ("ended", e.ended),
            ("idle_timeout", e.idle_timeout),
            ("max_lifetime", e.max_lifetime),
            ("crashed", e.crashed),
            ("unhealthy", e.unhealthy),
            ("shutdown", e.shutdown),
        ] {
            ConstCounter::new(n).encode(family.encode_family(&ReasonLabel { reason })?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_times_land_in_their_bucket() {
        let m = ThreadMetrics::new();
        for (micros, bucket) in
            [(50, 0), (100, 0), (101, 1), (200, 1), (201, 2), (800, 3), (801, 4), (10_000_000_000, BUCKETS)]
        {
            let before = m.head_buckets[bucket].load(Ordering::Relaxed);
            m.response(200, Duration::from_micros(micros));
            assert_eq!(m.head_buckets[bucket].load(Ordering::Relaxed), before + 1, "{micros} µs");
        }
        assert_eq!(m.responses[200].load(Ordering::Relaxed), 8);
    }
}
