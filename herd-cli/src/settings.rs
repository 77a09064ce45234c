//! From command line and config file to the settings herd runs with.
//!
//! A flag wins over the same key in the file; what neither sets keeps
//! herd-core's default. Every mistake is reported as a [`BadConfig`]
//! naming the flag or key, and `herd` exits with code 2.

use std::path::Path;
use std::time::Duration;

use herd_core::{PoolConfig, ProcessFactory, ProxyConfig, SessionSource};

use crate::cli::{LogFormat, Options, ReadinessKind, ServeArgs};

/// A bad flag, key or value, in words that name it.
#[derive(Debug)]
pub(crate) struct BadConfig(pub String);

/// Everything `herd serve` needs.
pub(crate) struct Settings {
    pub pool: PoolConfig,
    pub factory: ProcessFactory,
    pub proxy: ProxyConfig,
    pub shutdown_grace: Duration,
    /// How long to wait for the first `min` workers at start.
    pub ready_timeout: Duration,
    pub log_format: LogFormat,
    pub command_line: String,
}

/// Reads the config file, if any.
pub(crate) fn read_file(path: &Path) -> Result<Options, BadConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BadConfig(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| BadConfig(format!("bad config file {}: {e}", path.display())))
}

/// Flag over file over default, for each plain option.
macro_rules! merge {
    ($flags:expr, $file:expr; $($field:ident),* $(,)?) => {
        $( if $flags.$field.is_none() { $flags.$field = $file.$field.take(); } )*
    };
}

/// Merges `args` with `file` and builds herd-core's settings.
/// `self_command` starts this program again (for `--demo`).
pub(crate) fn resolve(
    mut args: ServeArgs,
    mut file: Options,
    self_command: &[String],
) -> Result<Settings, BadConfig> {
    let o = &mut args.options;
    merge!(o, file;
        listen, admin, acquire_timeout, retry_after, max_header_bytes, header_read_timeout,
        upstream_connect_timeout, upstream_idle_timeout, upstream_max_idle, websocket_close_timeout, threads,
        shutdown_grace, log_format, min, max, min_idle, ttl, max_session_lifetime,
        recycle_after_sessions, max_worker_age, idle_worker_timeout, health_interval, health_timeout,
        health_failure_threshold, max_queue, stop_grace, stats_interval, runtime_threads,
        health_path, readiness, start_timeout, start_delay, port_retries, cwd,
        sandbox, memory_limit, cpu_limit, pids_limit, cgroup_root,
    );
    let o = args.options;

    let mut pool = PoolConfig::default();
    macro_rules! set {
        ($($field:ident),* $(,)?) => { $( if let Some(v) = o.$field { pool.$field = v; } )* };
    }
    set!(
        min,
        max,
        min_idle,
        ttl,
        idle_worker_timeout,
        health_interval,
        health_timeout,
        health_failure_threshold,
        max_queue,
        stop_grace,
        stats_interval,
        runtime_threads
    );
    pool.max_session_lifetime = o.max_session_lifetime.or(pool.max_session_lifetime);
    pool.recycle_after_sessions = o.recycle_after_sessions.or(pool.recycle_after_sessions);
    pool.max_worker_age = o.max_worker_age.or(pool.max_worker_age);
    if let Some(timeout) = o.acquire_timeout {
        pool.acquire_timeout = timeout;
    }
    pool.reuse = match (args.reuse, args.no_reuse) {
        (true, _) => true,
        (_, true) => false,
        _ => file.reuse.unwrap_or(pool.reuse),
    };

    let demo = args.demo || file.demo.unwrap_or(false);
    let command =
        if args.command.is_empty() { file.command.take().unwrap_or_default() } else { args.command };
    let command = match (demo, command.is_empty()) {
        (true, true) => {
            let (program, rest) = self_command
                .split_first()
                .ok_or_else(|| BadConfig("--demo: cannot tell how to start this program again".into()))?;
            let mut argv = vec![program.clone()];
            argv.extend(rest.iter().cloned());
            argv.push(herd_core::demo::WORKER_ARG.to_string());
            argv
        }
        (true, false) => return Err(BadConfig("give either --demo or a worker command, not both".into())),
        (false, true) => {
            return Err(BadConfig(
                "no worker command: give one after `--` (herd serve -- PROGRAM ARGS...), \
                 set `command` in the config file, or use --demo"
                    .into(),
            ));
        }
        (false, false) => command,
    };
    let command_line = command.join(" ");
    let mut factory = ProcessFactory::new(command[0].clone(), command[1..].to_vec());
    let mut env: Vec<(String, String)> = file.env.take().unwrap_or_default().into_iter().collect();
    env.extend(args.env);
    for (key, _) in &env {
        if key.is_empty() || key.contains('=') {
            return Err(BadConfig(format!("env: bad variable name {key:?}")));
        }
    }
    factory = factory.envs(env);
    if args.clear_env || file.inherit_env == Some(false) {
        factory = factory.inherit_env(false);
    }
    if let Some(cwd) = o.cwd {
        factory = factory.cwd(cwd);
    }
    match (o.readiness, o.health_path) {
        (Some(ReadinessKind::Tcp), Some(_)) => {
            return Err(BadConfig("health_path: not used with readiness = tcp; drop one of them".into()));
        }
        (Some(ReadinessKind::Tcp), None) => factory = factory.tcp_readiness(),
        (_, Some(path)) => factory = factory.health_path(path),
        (_, None) => {}
    }
    if let Some(d) = o.start_timeout {
        factory = factory.start_timeout(d);
    }
    if let Some(d) = o.start_delay {
        factory = factory.start_delay(d);
    }
    if let Some(n) = o.port_retries {
        factory = factory.port_retries(n);
    }
    if let Some(mode) = o.sandbox {
        factory = factory.sandbox(mode);
    }
    if let Some(bytes) = o.memory_limit {
        factory = factory.memory_limit(bytes);
    }
    if let Some(cores) = o.cpu_limit {
        factory = factory.cpu_limit(cores);
    }
    if let Some(limit) = o.pids_limit {
        factory = factory.pids_limit(limit.0);
    }
    if let Some(root) = o.cgroup_root {
        factory = factory.cgroup_root(root);
    }
    if args.no_namespaces || file.namespaces == Some(false) {
        factory = factory.namespaces(false);
    }

    let mut proxy = ProxyConfig::default();
    if let Some(listen) = o.listen {
        proxy.listen = listen;
    }
    proxy.admin_listen = o.admin;
    proxy.acquire_timeout = o.acquire_timeout;
    if let Some(v) = o.max_header_bytes {
        proxy.max_header_bytes = v;
    }
    for (value, field) in [
        (o.retry_after, &mut proxy.retry_after),
        (o.header_read_timeout, &mut proxy.header_read_timeout),
        (o.upstream_connect_timeout, &mut proxy.upstream_connect_timeout),
        (o.upstream_idle_timeout, &mut proxy.upstream_idle_timeout),
        (o.websocket_close_timeout, &mut proxy.websocket_close_timeout),
    ] {
        if let Some(v) = value {
            *field = v;
        }
    }
    if let Some(v) = o.upstream_max_idle {
        proxy.upstream_max_idle = v;
    }
    if let Some(v) = o.threads {
        proxy.threads = v;
    }
    proxy.preserve_host = args.preserve_host || file.preserve_host.unwrap_or(false);
    let from_flags = session_sources_from_flags(&args.session_order);
    proxy.session_sources = if !from_flags.is_empty() {
        from_flags
    } else if let Some(listed) = file.session_sources.take() {
        listed.iter().map(|s| parse_session_source(s)).collect::<Result<_, _>>()?
    } else {
        proxy.session_sources
    };

    Ok(Settings {
        pool,
        factory,
        proxy,
        shutdown_grace: o.shutdown_grace.unwrap_or(Duration::from_secs(10)),
        ready_timeout: o.start_timeout.unwrap_or(Duration::from_secs(30)) + Duration::from_secs(5),
        log_format: o.log_format.unwrap_or(LogFormat::Plain),
        command_line,
    })
}

/// The session sources given as flags, in command-line order.
fn session_sources_from_flags(order: &[(usize, SessionSource)]) -> Vec<SessionSource> {
    let mut sorted = order.to_vec();
    sorted.sort_by_key(|(index, _)| *index);
    sorted.into_iter().map(|(_, s)| s).collect()
}

/// `header:NAME`, `cookie:NAME`, `query:NAME` or `path:/PREFIX/`.
fn parse_session_source(text: &str) -> Result<SessionSource, BadConfig> {
    let bad = || {
        BadConfig(format!(
            "session_sources: {text:?} is not one of \"header:NAME\", \"cookie:NAME\", \"query:NAME\", \"path:/PREFIX/\""
        ))
    };
    let (kind, value) = text.split_once(':').ok_or_else(bad)?;
    if value.is_empty() {
        return Err(bad());
    }
    Ok(match kind {
        "header" => SessionSource::Header(value.to_string()),
        "cookie" => SessionSource::Cookie(value.to_string()),
        "query" => SessionSource::Query(value.to_string()),
        "path" => SessionSource::PathPrefix(value.to_string()),
        _ => return Err(bad()),
    })
}
