//! herd's `tracing` events → Python's `logging` (logger `herd` and its
//! children: `herd.worker` for worker output, `herd.pool`, ...).
//!
//! # Cost when disabled
//! The effective level of the `herd` logger is cached in an atomic; an
//! event below it is rejected by one load in [`PythonLogs::enabled`],
//! before any formatting. The cache is refreshed when the module loads,
//! when a pool is created, and every second by the bridge thread, so a
//! `logging.basicConfig(level=...)` call takes effect within a second.
//!
//! # Concurrency
//! Events are emitted on any herd thread, sometimes with a pool lock held.
//! This layer never takes the GIL: it formats the record and hands it to
//! the bridge thread (see [`crate::bridge`]), so it cannot deadlock with a
//! Python thread that holds the GIL and waits for the pool.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Python's numeric level below which records are not forwarded
/// (`logging.WARNING` until the first refresh).
static THRESHOLD: AtomicU8 = AtomicU8::new(30);

static GET_LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `tracing` level → Python `logging` level.
fn python_level(level: &Level) -> u8 {
    match *level {
        Level::TRACE => 5,
        Level::DEBUG => 10,
        Level::INFO => 20,
        Level::WARN => 30,
        Level::ERROR => 40,
    }
}

/// The Python logger for a `tracing` target: `herd::worker` →
/// `herd.worker`, `herd_core::pool::shared` → `herd.pool.shared`.
fn logger_name(target: &str) -> String {
    let rest = target
        .strip_prefix("herd_core::")
        .or_else(|| target.strip_prefix("herd::"))
        .or_else(|| target.strip_prefix("herd_python::"))
        .unwrap_or(target);
    if rest == "herd" || rest == "herd_core" || rest.is_empty() {
        return "herd".to_string();
    }
    format!("herd.{}", rest.replace("::", "."))
}

/// Installs the forwarding layer as the process's `tracing` subscriber,
/// once, when the first pool is created — not at import, so that the
/// `herd` command line (which never makes a `Pool` here) logs to stderr
/// like the Rust binary. If another library installed a subscriber first,
/// herd's events go there instead. Refreshes the cached level either way.
pub(crate) fn install(py: Python<'_>) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(PythonLogs);
        let installed = tracing::subscriber::set_global_default(subscriber).is_ok();
        FORWARDING.store(installed, Ordering::Relaxed);
    });
    refresh_level(py);
}

static FORWARDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether herd's events go to Python `logging` (see [`install`]).
pub(crate) fn forwarding() -> bool {
    FORWARDING.load(Ordering::Relaxed)
}

/// Re-reads the effective level of the `herd` logger.
pub(crate) fn refresh_level(py: Python<'_>) {
    let level =
        logger(py, "herd").and_then(|l| l.call_method0("getEffectiveLevel")).and_then(|l| l.extract::<i64>());
    if let Ok(level) = level {
        THRESHOLD.store(level.clamp(0, 255) as u8, Ordering::Relaxed);
    }
}

fn logger<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let get_logger = GET_LOGGER.get_or_try_init(py, || {
        py.import("logging").and_then(|m| m.getattr("getLogger")).map(Bound::unbind)
    })?;
    get_logger.bind(py).call1((name,))
}

/// Emits one record on the bridge thread.
pub(crate) fn emit(py: Python<'_>, level: u8, logger_name: &str, message: &str) {
    let result = logger(py, logger_name).and_then(|l| l.call_method1("log", (level, "%s", message)));
    if let Err(err) = result {
        err.write_unraisable(py, None);
    }
}

/// The `tracing_subscriber` layer that forwards to Python.
struct PythonLogs;

impl<S: Subscriber> Layer<S> for PythonLogs {
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        // The level can change at any time: ask `enabled` on every event.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        python_level(metadata.level()) >= THRESHOLD.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut message = Message::default();
        event.record(&mut message);
        crate::bridge::submit_log(python_level(meta.level()), logger_name(meta.target()), message.finish());
    }
}

/// The event's `message` followed by its other fields as `key=value`.
#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Message {
    fn finish(mut self) -> String {
        if !self.fields.is_empty() {
            if !self.text.is_empty() {
                self.text.push(' ');
            }
            self.text.push_str(&self.fields);
        }
        self.text
    }
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
}
