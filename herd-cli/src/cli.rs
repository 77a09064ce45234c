//! The command line, as clap parses it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "herd",
    version,
    about = "A session-affine process pool: an HTTP/WebSocket gateway that pins each session to its own worker process",
    after_help = "Run `herd serve --demo`, then: curl -H 'X-Session-ID: alice' http://127.0.0.1:8080/"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway: each session ID reaches its own worker process.
    Serve(Box<ServeArgs>),
    /// Run the demo worker (an HTTP server with per-process state).
    #[command(name = "demo-worker", disable_help_flag = true)]
    DemoWorker {
        /// Flags of the demo worker: --port N, --host ADDR, --threads N, --ignore-sigterm.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `herd serve`.
#[derive(Debug, Args)]
#[command(
    after_help = "Every option can also be set in the --config TOML file, under the option's name with '_' for '-' \
                  (flags win). Durations read like 500ms, 30s, 10m, 1h30m. The other keys: \
                  command = [\"PROGRAM\", \"ARG\"], demo = true, reuse = true|false, inherit_env = false \
                  (--clear-env), namespaces = false (--no-namespaces), preserve_host = true, [env] KEY = \"value\", \
                  session_sources = [\"header:X-Session-ID\", \"cookie:NAME\", \"query:NAME\", \"path:/s/\"]."
)]
pub(crate) struct ServeArgs {
    /// A TOML file with any of the options below.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run the embedded demo worker instead of PROGRAM (nothing else needed).
    #[arg(long, conflicts_with = "command")]
    pub demo: bool,

    /// Take the session ID from this header [default: X-Session-ID]. Repeatable; sources are tried in
    /// the order given on the command line.
    #[arg(long, value_name = "NAME", help_heading = "Session ID")]
    pub session_header: Vec<String>,
    /// Take the session ID from this cookie.
    #[arg(long, value_name = "NAME", help_heading = "Session ID")]
    pub session_cookie: Vec<String>,
    /// Take the session ID from this query parameter.
    #[arg(long, value_name = "NAME", help_heading = "Session ID")]
    pub session_query: Vec<String>,
    /// Take the session ID from the path: /s/{id}/rest reaches the worker as /rest.
    #[arg(long, value_name = "PREFIX", num_args = 0..=1, default_missing_value = "/s/", help_heading = "Session ID")]
    pub session_path_prefix: Vec<String>,

    /// After a session ends, reuse its worker for the next session [default].
    #[arg(long, overrides_with = "no_reuse", help_heading = "Pool")]
    pub reuse: bool,
    /// After a session ends, stop its worker and start a fresh one.
    #[arg(long, overrides_with = "reuse", help_heading = "Pool")]
    pub no_reuse: bool,

    /// Set an environment variable for workers (KEY=VALUE; the value may use {{.Port}}). Repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env, help_heading = "Worker")]
    pub env: Vec<(String, String)>,
    /// Start workers with only the --env variables, not herd's own environment.
    #[arg(long, help_heading = "Worker")]
    pub clear_env: bool,

    /// Run workers without new PID, mount and IPC namespaces.
    #[arg(long, help_heading = "Sandbox")]
    pub no_namespaces: bool,

    /// Forward the client's Host header instead of the worker's address.
    #[arg(long, help_heading = "Gateway")]
    pub preserve_host: bool,

    #[command(flatten)]
    pub options: Options,

    /// The session sources of the four flags above, in command-line order
    /// (filled in after parsing, from clap's argument indices).
    #[arg(skip)]
    pub session_order: Vec<(usize, herd_core::SessionSource)>,

    /// The worker program and its arguments ({{.Port}} and {{.WorkerId}} are replaced).
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub command: Vec<String>,
}

/// Options that read the same on the command line and in the config file.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Options {
    /// Where clients connect [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", help_heading = "Gateway")]
    pub listen: Option<SocketAddr>,
    /// Where the admin routes listen (GET /stats, GET /metrics, DELETE /sessions/{id}) [default: off].
    #[arg(long, value_name = "ADDR", help_heading = "Gateway")]
    pub admin: Option<SocketAddr>,
    /// How long a request for a new session waits for a worker before 503 [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Gateway")]
    #[serde(default, deserialize_with = "duration")]
    pub acquire_timeout: Option<Duration>,
    /// The Retry-After sent with 503 [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Gateway")]
    #[serde(default, deserialize_with = "duration")]
    pub retry_after: Option<Duration>,
    /// The largest request head accepted, in bytes [default: 65536].
    #[arg(long, value_name = "BYTES", help_heading = "Gateway")]
    pub max_header_bytes: Option<usize>,
    /// How long a client may take to send a request head, or stay idle between requests [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Gateway")]
    #[serde(default, deserialize_with = "duration")]
    pub header_read_timeout: Option<Duration>,
    /// How long connecting to a worker may take before 502 [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Gateway")]
    #[serde(default, deserialize_with = "duration")]
    pub upstream_connect_timeout: Option<Duration>,
    /// Idle connections to workers are not reused after this [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Gateway")]
    #[serde(default, deserialize_with = "duration")]
    pub upstream_idle_timeout: Option<Duration>,
    /// Most idle connections kept per worker [default: 128].
    #[arg(long, value_name = "N", help_heading = "Gateway")]
    pub upstream_max_idle: Option<usize>,
    /// How long a WebSocket client gets to answer herd's close frame [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Gateway")]
    #[serde(default, deserialize_with = "duration")]
    pub websocket_close_timeout: Option<Duration>,
    /// I/O threads serving clients [default: 0 = one per core, at most 4].
    #[arg(long, value_name = "N", help_heading = "Gateway")]
    pub threads: Option<usize>,
    /// On SIGINT/SIGTERM, how long requests in flight get to finish [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Gateway")]
    #[serde(default, deserialize_with = "duration")]
    pub shutdown_grace: Option<Duration>,
    /// Log format [default: plain]. The filter comes from HERD_LOG or RUST_LOG [default: info].
    #[arg(long, value_name = "FORMAT", help_heading = "Gateway")]
    pub log_format: Option<LogFormat>,

    /// Workers always alive [default: 1].
    #[arg(long, value_name = "N", help_heading = "Pool")]
    pub min: Option<usize>,
    /// Hard cap on worker processes [default: 10].
    #[arg(long, value_name = "N", help_heading = "Pool")]
    pub max: Option<usize>,
    /// Ready spare workers kept warm [default: 0].
    #[arg(long, value_name = "N", help_heading = "Pool")]
    pub min_idle: Option<usize>,
    /// Idle time after which a session ends [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Pool")]
    #[serde(default, deserialize_with = "duration")]
    pub ttl: Option<Duration>,
    /// Absolute session lifetime [default: none].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Pool")]
    #[serde(default, deserialize_with = "duration")]
    pub max_session_lifetime: Option<Duration>,
    /// Stop a worker after it served N sessions [default: never].
    #[arg(long, value_name = "N", help_heading = "Pool")]
    pub recycle_after_sessions: Option<u32>,
    /// Stop unbound workers older than this [default: never].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Pool")]
    #[serde(default, deserialize_with = "duration")]
    pub max_worker_age: Option<Duration>,
    /// Trim unbound workers above max(min, min-idle) after this [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Pool")]
    #[serde(default, deserialize_with = "duration")]
    pub idle_worker_timeout: Option<Duration>,
    /// How often workers are health-checked [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Pool")]
    #[serde(default, deserialize_with = "duration")]
    pub health_interval: Option<Duration>,
    /// How long one health check may take [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Pool")]
    #[serde(default, deserialize_with = "duration")]
    pub health_timeout: Option<Duration>,
    /// Failed checks in a row before a worker is unhealthy [default: 3].
    #[arg(long, value_name = "N", help_heading = "Pool")]
    pub health_failure_threshold: Option<u32>,
    /// Sessions allowed to wait for a worker before 503 at once [default: 1024].
    #[arg(long, value_name = "N", help_heading = "Pool")]
    pub max_queue: Option<usize>,
    /// SIGTERM → SIGKILL delay when stopping a worker [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Pool")]
    #[serde(default, deserialize_with = "duration")]
    pub stop_grace: Option<Duration>,
    /// How often worker RSS/CPU and host figures are sampled [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Pool")]
    #[serde(default, deserialize_with = "duration")]
    pub stats_interval: Option<Duration>,
    /// Threads of herd's runtime [default: 0 = min(cores, 4), at least 2].
    #[arg(long, value_name = "N", help_heading = "Pool")]
    pub runtime_threads: Option<usize>,

    /// Workers are ready (and healthy) when GET PATH answers 2xx [default: /health].
    #[arg(long, value_name = "PATH", help_heading = "Worker")]
    pub health_path: Option<String>,
    /// Readiness check: http (GET --health-path) or tcp (a connect succeeds) [default: http].
    #[arg(long, value_name = "KIND", help_heading = "Worker")]
    pub readiness: Option<ReadinessKind>,
    /// How long a worker may take to become ready [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Worker")]
    #[serde(default, deserialize_with = "duration")]
    pub start_timeout: Option<Duration>,
    /// Wait this long after starting a worker before checking readiness [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Worker")]
    #[serde(default, deserialize_with = "duration")]
    pub start_delay: Option<Duration>,
    /// Retries with a new port when another process took a worker's port [default: 3].
    #[arg(long, value_name = "N", help_heading = "Worker")]
    pub port_retries: Option<u32>,
    /// The workers' working directory [default: herd's].
    #[arg(long, value_name = "DIR", help_heading = "Worker")]
    pub cwd: Option<PathBuf>,

    /// Sandbox mode: off, best_effort (use what the host offers, warn once) or required (fail the
    /// spawn otherwise) [default: best_effort].
    #[arg(long, value_name = "MODE", value_parser = parse_sandbox, help_heading = "Sandbox")]
    #[serde(default, deserialize_with = "sandbox_mode")]
    pub sandbox: Option<herd_core::SandboxMode>,
    /// Memory per worker, swap excluded, like 512MiB or 2GiB (K, M, G are powers of 1024) [default: none].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, help_heading = "Sandbox")]
    #[serde(default, deserialize_with = "bytes")]
    pub memory_limit: Option<u64>,
    /// CPU per worker in cores, fractional (0.5 = half a core) [default: none].
    #[arg(long, value_name = "CORES", help_heading = "Sandbox")]
    pub cpu_limit: Option<f64>,
    /// Processes and threads per worker, or "unlimited" [default: 100].
    #[arg(long, value_name = "N", value_parser = parse_pids, help_heading = "Sandbox")]
    #[serde(default, deserialize_with = "pids")]
    pub pids_limit: Option<PidsLimit>,
    /// The cgroup path herd nests its cgroups under, like /herd [default: herd's own cgroup].
    #[arg(long, value_name = "PATH", help_heading = "Sandbox")]
    pub cgroup_root: Option<PathBuf>,

    // Keys that only the config file has (the command line has other
    // spellings for them, merged in `settings`).
    /// `["PROGRAM", "ARG"...]`.
    #[arg(skip)]
    pub command: Option<Vec<String>>,
    #[arg(skip)]
    pub demo: Option<bool>,
    /// `["header:X-Session-ID", "cookie:sid", "query:session", "path:/s/"]`.
    #[arg(skip)]
    pub session_sources: Option<Vec<String>>,
    #[arg(skip)]
    pub reuse: Option<bool>,
    #[arg(skip)]
    pub env: Option<std::collections::BTreeMap<String, String>>,
    #[arg(skip)]
    pub inherit_env: Option<bool>,
    #[arg(skip)]
    pub preserve_host: Option<bool>,
    /// New PID, mount and IPC namespaces for workers (`--no-namespaces`).
    #[arg(skip)]
    pub namespaces: Option<bool>,
}

/// `--pids-limit`: a number, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PidsLimit(pub Option<u64>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReadinessKind {
    Http,
    Tcp,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (durations read like 500ms, 30s, 10m)"))
}

fn parse_sandbox(text: &str) -> Result<herd_core::SandboxMode, String> {
    text.parse().map_err(|e: herd_core::Error| e.message().to_string())
}

/// `512MiB`, `2G`, `1048576`: K, M, G and T (with or without `iB`/`B`)
/// are powers of 1024.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{text:?} is not a size like 512MiB or 2GiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use K, M, G or T, as in 512MiB)")),
    };
    Ok((number * (1u64 << shift) as f64) as u64)
}

fn parse_pids(text: &str) -> Result<PidsLimit, String> {
    match text {
        "unlimited" | "none" => Ok(PidsLimit(None)),
        n => n
            .parse()
            .map(|n| PidsLimit(Some(n)))
            .map_err(|_| format!("{text:?} is not a number or \"unlimited\"")),
    }
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE".to_string()),
    }
}

/// serde: `"best_effort"` and the like.
fn sandbox_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<herd_core::SandboxMode>, D::Error> {
    let text = String::deserialize(d)?;
    parse_sandbox(&text).map(Some).map_err(serde::de::Error::custom)
}

/// serde: a size, `"512MiB"` or a number of bytes.
fn bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(u64),
        Text(String),
    }
    match Written::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a size like \"512MiB\" or a number of bytes"))?
    {
        Written::Number(n) => Ok(Some(n)),
        Written::Text(text) => parse_bytes(&text).map(Some).map_err(serde::de::Error::custom),
    }
}

/// serde: a number of processes, or `"unlimited"`.
fn pids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PidsLimit>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(u64),
        Text(String),
    }
    match Written::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a number or \"unlimited\""))?
    {
        Written::Number(n) => Ok(Some(PidsLimit(Some(n)))),
        Written::Text(text) => parse_pids(&text).map(Some).map_err(serde::de::Error::custom),
    }
}

/// serde: a duration written like `"500ms"`, or a whole number of seconds.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as \"500ms\", \"30s\" or \"10m\"")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
            parse_duration(text).map_err(E::custom)
        }

        fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<Duration, E> {
            u64::try_from(secs)
                .map(Duration::from_secs)
                .map_err(|_| E::custom("a duration cannot be negative"))
        }
    }
    d.deserialize_any(Visitor).map(Some)
}
