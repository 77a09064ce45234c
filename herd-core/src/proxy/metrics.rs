//! Prometheus metrics of the proxy and its pool, served by the admin
//! listener's `GET /metrics` in the Prometheus text format.
//!
//! Labels are bounded: HTTP status codes, rejection reasons, worker states
//! and session end reasons. Session IDs and worker IDs never become labels
//! (both are unbounded over a pool's life).

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::pool::Pool;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CodeLabel {
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

/// The proxy's own metrics.
pub(crate) struct Metrics {
    responses: Family<CodeLabel, Counter>,
    rejected: Family<ReasonLabel, Counter>,
    head_latency: Histogram,
    pub client_connections: Gauge,
    pub websockets: Gauge,
    websocket_closes: Family<ReasonLabel, Counter>,
    pub upstream_connections: Gauge,
    pub upstream_connects: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        Metrics {
            responses: Family::default(),
            rejected: Family::default(),
            head_latency: Histogram::new(exponential_buckets(0.000_1, 2.0, 18)),
            client_connections: Gauge::default(),
            websockets: Gauge::default(),
            websocket_closes: Family::default(),
            upstream_connections: Gauge::default(),
            upstream_connects: Counter::default(),
        }
    }

    /// Counts a response sent to a client, and how long its head took.
    pub(crate) fn response(&self, code: u16, elapsed: Duration) {
        self.responses.get_or_create(&CodeLabel { code }).inc();
        self.head_latency.observe(elapsed.as_secs_f64());
    }

    pub(crate) fn rejected(&self, why: Rejected) {
        self.rejected.get_or_create(&ReasonLabel { reason: why.as_str() }).inc();
    }

    /// Counts a WebSocket (or other upgraded connection) closed by herd or
    /// its peers, by why it closed.
    pub(crate) fn websocket_closed(&self, reason: &'static str) {
        self.websocket_closes.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A registry with these metrics and the pool's, for one scrape.
    pub(crate) fn registry(self: &std::sync::Arc<Self>, pool: &Pool) -> Registry {
        let mut registry = Registry::with_prefix("herd");
        let proxy = registry.sub_registry_with_prefix("proxy");
        proxy.register("responses", "Responses sent to clients, by status code", self.responses.clone());
        proxy.register(
            "rejected_requests",
            "Requests answered by herd itself (no worker reached), by reason",
            self.rejected.clone(),
        );
        proxy.register_with_unit(
            "response_head_duration",
            "Time from a request's head to its response's head",
            prometheus_client::registry::Unit::Seconds,
            self.head_latency.clone(),
        );
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
        registry.register_collector(Box::new(PoolCollector { pool: pool.clone() }));
        registry
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
            let mut family = encoder.encode_descriptor(
                "workers",
                "Worker processes by state",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
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
            prometheus_client::metrics::MetricType::Counter,
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
