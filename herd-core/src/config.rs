//! Pool sizing and lifecycle settings.

use std::time::Duration;

use crate::error::Error;

/// How a pool sizes itself and when sessions end.
///
/// Build one with [`PoolConfig::default`] and change the fields you need;
/// [`crate::Pool::new`] validates it and reports the first bad field by name.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Workers always kept alive, bound or not. Default 1.
    pub min: usize,
    /// Hard cap on worker processes, including those starting and stopping.
    /// Default 10.
    pub max: usize,
    /// Ready, unbound workers kept warm so a new session binds in
    /// microseconds. Never raises the count above `max`. Default 0.
    pub min_idle: usize,
    /// A session with no open lease and no activity for this long ends with
    /// reason `idle_timeout`. Default 5 minutes.
    pub ttl: Duration,
    /// A session ends with reason `max_lifetime` this long after it was
    /// bound, leases or not. Default: none.
    pub max_session_lifetime: Option<Duration>,
    /// After a session ends, keep its worker for the next session (`true`,
    /// default) or stop it and start a fresh one (`false`: no state can leak
    /// between tenants).
    pub reuse: bool,
    /// With `reuse`, stop a worker after it has served this many sessions.
    pub recycle_after_sessions: Option<u32>,
    /// Stop a worker once it is this old and not bound to a session.
    pub max_worker_age: Option<Duration>,
    /// Unbound workers above `max(min, min_idle)` are stopped after being idle
    /// this long. Default 60 s.
    pub idle_worker_timeout: Duration,
    /// How often each ready worker is health-checked. Default 5 s.
    pub health_interval: Duration,
    /// How long one health check may take. Default 2 s.
    pub health_timeout: Duration,
    /// Consecutive failed checks before a worker is declared unhealthy.
    /// Default 3.
    pub health_failure_threshold: u32,
    /// How long an acquire of an unbound session waits for a worker when no
    /// call-specific timeout is given. Default 30 s.
    pub acquire_timeout: Duration,
    /// Most sessions allowed to wait for a worker beyond what starting and
    /// startable workers can serve. Past it, acquires fail at once with
    /// `PoolExhausted`. Default 1024.
    pub max_queue: usize,
    /// When stopping a worker: time between SIGTERM and SIGKILL. Default 5 s.
    pub stop_grace: Duration,
    /// How often per-worker RSS/CPU and host memory/CPU are sampled for
    /// [`crate::Pool::stats`]. Default 2 s.
    pub stats_interval: Duration,
    /// Threads of the pool's own runtime. 0 picks `min(cores, 4)`, at least 2.
    pub runtime_threads: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            min: 1,
            max: 10,
            min_idle: 0,
            ttl: Duration::from_secs(300),
            max_session_lifetime: None,
            reuse: true,
            recycle_after_sessions: None,
            max_worker_age: None,
            idle_worker_timeout: Duration::from_secs(60),
            health_interval: Duration::from_secs(5),
            health_timeout: Duration::from_secs(2),
            health_failure_threshold: 3,
            acquire_timeout: Duration::from_secs(30),
            max_queue: 1024,
            stop_grace: Duration::from_secs(5),
            stats_interval: Duration::from_secs(2),
            runtime_threads: 0,
        }
    }
}

impl PoolConfig {
    /// Checks every field and their relations; the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max == 0 {
            return Err(Error::invalid_config("max must be at least 1"));
        }
        if self.min > self.max {
            return Err(Error::invalid_config(format!(
                "min ({}) must not exceed max ({})",
                self.min, self.max
            )));
        }
        if self.min_idle > self.max {
            return Err(Error::invalid_config(format!(
                "min_idle ({}) must not exceed max ({})",
                self.min_idle, self.max
            )));
        }
        let positive = [
            ("ttl", self.ttl),
            ("idle_worker_timeout", self.idle_worker_timeout),
            ("health_interval", self.health_interval),
            ("health_timeout", self.health_timeout),
            ("stats_interval", self.stats_interval),
        ];
        for (name, value) in positive {
            if value.is_zero() {
                return Err(Error::invalid_config(format!("{name} must be greater than zero")));
            }
        }
        for (name, value) in
            [("max_session_lifetime", self.max_session_lifetime), ("max_worker_age", self.max_worker_age)]
        {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(Error::invalid_config(format!("{name} must be greater than zero when set")));
            }
        }
        if self.health_failure_threshold == 0 {
            return Err(Error::invalid_config("health_failure_threshold must be at least 1"));
        }
        if self.recycle_after_sessions == Some(0) {
            return Err(Error::invalid_config("recycle_after_sessions must be at least 1 when set"));
        }
        if self.runtime_threads > 1024 {
            return Err(Error::invalid_config("runtime_threads must be at most 1024"));
        }
        Ok(())
    }

    pub(crate) fn effective_runtime_threads(&self) -> usize {
        if self.runtime_threads > 0 {
            return self.runtime_threads;
        }
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        cores.clamp(2, 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        PoolConfig::default().validate().unwrap();
    }

    #[test]
    fn names_the_bad_field() {
        let cases: Vec<(PoolConfig, &str)> = vec![
            (PoolConfig { max: 0, ..Default::default() }, "max"),
            (PoolConfig { min: 5, max: 2, ..Default::default() }, "min (5)"),
            (PoolConfig { min_idle: 11, ..Default::default() }, "min_idle"),
            (PoolConfig { ttl: Duration::ZERO, ..Default::default() }, "ttl"),
            (PoolConfig { health_failure_threshold: 0, ..Default::default() }, "health_failure"),
            (
                PoolConfig { max_session_lifetime: Some(Duration::ZERO), ..Default::default() },
                "max_session_lifetime",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.message().contains(field), "{} should name {field}", err.message());
        }
    }
}
