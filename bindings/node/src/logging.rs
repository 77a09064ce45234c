//! herd's logs, including every worker's stdout and stderr (target
//! `herd::worker`), on this process's stderr when `HERD_LOG` is set.
//!
//! `HERD_LOG` takes `tracing` filter directives: `HERD_LOG=info` shows
//! worker output and lifecycle messages, `HERD_LOG=herd::worker=info` only
//! worker output, `HERD_LOG=debug` everything. Unset, herd logs nothing.

/// Installs the stderr logger once per process if `HERD_LOG` is set.
/// Another global subscriber (an embedding that set its own) wins quietly.
pub(crate) fn init_from_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(directives) = std::env::var("HERD_LOG") else { return };
        let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(directives);
        let colors = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(colors)
            .try_init();
    });
}
