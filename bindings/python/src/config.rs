//! Python keyword arguments → `ProcessFactory` + `PoolConfig`.
//!
//! Durations are float seconds in Python; they must be finite and not
//! negative. Range and consistency checks (`min <= max`, `ttl > 0`...) are
//! left to the core, whose `InvalidConfig` messages name the field.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use herd_core::{PoolConfig, ProcessFactory, SandboxMode};
use pyo3::prelude::*;

use crate::errors::invalid_config;

/// Seconds → `Duration`, naming the argument when the value is unusable.
pub(crate) fn seconds(py: Python<'_>, name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid_config(py, format!("{name} must be a finite, non-negative number of seconds (got {value})"))
    })
}

/// Like [`seconds`] for an optional value (`None` stays `None`).
pub(crate) fn opt_seconds(py: Python<'_>, name: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    value.map(|v| seconds(py, name, v)).transpose()
}

/// The worker command and how to start it.
pub(crate) struct FactoryOptions {
    pub command: Vec<String>,
    pub env: Option<HashMap<String, String>>,
    pub inherit_env: bool,
    pub cwd: Option<PathBuf>,
    pub health_path: Option<String>,
    pub start_timeout: f64,
    pub start_delay: f64,
    pub port_retries: u32,
    pub sandbox: String,
    pub memory_limit: Option<u64>,
    pub cpu_limit: Option<f64>,
    pub pids_limit: Option<u64>,
    pub namespaces: bool,
    pub cgroup_root: Option<PathBuf>,
}

impl FactoryOptions {
    pub(crate) fn build(self, py: Python<'_>) -> PyResult<ProcessFactory> {
        let mut command = self.command.into_iter();
        let Some(program) = command.next() else {
            return Err(invalid_config(py, "command must name a program: got an empty list"));
        };
        let mut factory = ProcessFactory::new(program, command)
            .inherit_env(self.inherit_env)
            .start_timeout(seconds(py, "start_timeout", self.start_timeout)?)
            .start_delay(seconds(py, "start_delay", self.start_delay)?)
            .port_retries(self.port_retries)
            .sandbox(self.sandbox.parse::<SandboxMode>().map_err(|e| crate::errors::to_py(py, &e))?)
            .pids_limit(self.pids_limit)
            .namespaces(self.namespaces);
        if let Some(bytes) = self.memory_limit {
            factory = factory.memory_limit(bytes);
        }
        if let Some(cores) = self.cpu_limit {
            factory = factory.cpu_limit(cores);
        }
        if let Some(root) = self.cgroup_root {
            factory = factory.cgroup_root(root);
        }
        if let Some(env) = self.env {
            // Sorted, so that workers see the same order every time.
            let mut env: Vec<_> = env.into_iter().collect();
            env.sort();
            factory = factory.envs(env);
        }
        if let Some(cwd) = self.cwd {
            factory = factory.cwd(cwd);
        }
        factory = match self.health_path {
            Some(path) => factory.health_path(path),
            None => factory.tcp_readiness(),
        };
        Ok(factory)
    }
}

/// Sizing and lifecycle, in Python units.
pub(crate) struct PoolOptions {
    pub min: usize,
    pub max: usize,
    pub min_idle: usize,
    pub ttl: f64,
    pub max_session_lifetime: Option<f64>,
    pub reuse: bool,
    pub recycle_after_sessions: Option<u32>,
    pub max_worker_age: Option<f64>,
    pub idle_worker_timeout: f64,
    pub health_interval: f64,
    pub health_timeout: f64,
    pub health_failure_threshold: u32,
    pub acquire_timeout: f64,
    pub max_queue: usize,
    pub stop_grace: f64,
    pub stats_interval: f64,
    pub runtime_threads: usize,
}

impl PoolOptions {
    pub(crate) fn build(self, py: Python<'_>) -> PyResult<PoolConfig> {
        Ok(PoolConfig {
            min: self.min,
            max: self.max,
            min_idle: self.min_idle,
            ttl: seconds(py, "ttl", self.ttl)?,
            max_session_lifetime: opt_seconds(py, "max_session_lifetime", self.max_session_lifetime)?,
            reuse: self.reuse,
            recycle_after_sessions: self.recycle_after_sessions,
            max_worker_age: opt_seconds(py, "max_worker_age", self.max_worker_age)?,
            idle_worker_timeout: seconds(py, "idle_worker_timeout", self.idle_worker_timeout)?,
            health_interval: seconds(py, "health_interval", self.health_interval)?,
            health_timeout: seconds(py, "health_timeout", self.health_timeout)?,
            health_failure_threshold: self.health_failure_threshold,
            acquire_timeout: seconds(py, "acquire_timeout", self.acquire_timeout)?,
            max_queue: self.max_queue,
            stop_grace: seconds(py, "stop_grace", self.stop_grace)?,
            stats_interval: seconds(py, "stats_interval", self.stats_interval)?,
            runtime_threads: self.runtime_threads,
        })
    }
}
