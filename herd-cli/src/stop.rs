//! What tells `herd serve` to stop: SIGINT and SIGTERM for the `herd`
//! binary, or a [`Stopper`] held by a program that embeds the command.
//!
//! An embedding runtime (Node, Python) owns the process's signals: it has
//! its own SIGINT/SIGTERM handlers, and a handler herd installed on top
//! would chain to them. Node's handler resets the terminal and re-raises
//! the signal, so a chained herd handler ran again as soon as it returned,
//! forever: the thread that took the signal never ran anything else, the
//! gateway never stopped, and the process spun until killed. Embedded, herd
//! therefore installs no signal handler at all; the host catches its
//! signals its own way and calls [`Stopper::stop`].

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

/// Asks an embedded `herd serve` ([`crate::run_until_stopped`]) to stop,
/// the way SIGTERM stops the `herd` binary: the first request stops
/// gracefully (no new connections, requests in flight get
/// `--shutdown-grace`, then every worker stops); a second one skips the
/// wait for requests.
///
/// Cheap to clone; usable from any thread. When every clone is dropped,
/// that counts as one stop request: nothing could stop herd any more.
#[derive(Clone, Debug)]
pub struct Stopper(mpsc::UnboundedSender<String>);

impl Stopper {
    /// Requests a stop; `why` says what asked, for the log (`"SIGTERM"`
    /// logs `SIGTERM: stopping`). Does nothing once the command has ended.
    pub fn stop(&self, why: impl Into<String>) {
        let _ = self.0.send(why.into());
    }
}

/// The receiving end of a [`Stopper`]: pass it to [`crate::run_until_stopped`].
#[derive(Debug)]
pub struct StopRequests(mpsc::UnboundedReceiver<String>);

/// A connected [`Stopper`] and [`StopRequests`].
pub fn stop_channel() -> (Stopper, StopRequests) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Stopper(tx), StopRequests(rx))
}

/// Where stop requests come from.
pub(crate) enum StopSource {
    /// SIGTERM and SIGINT (the `herd` binary).
    Signals,
    /// The embedding program.
    Host(StopRequests),
}

impl StopSource {
    /// Starts listening. Call inside the runtime that will await
    /// [`Stops::next`] (signal streams register with it).
    pub(crate) fn listen(self) -> std::io::Result<Stops> {
        Ok(match self {
            StopSource::Signals => Stops::Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            },
            StopSource::Host(requests) => Stops::Host { requests: requests.0, dropped: false },
        })
    }
}

/// A stream of stop requests.
pub(crate) enum Stops {
    Signals { term: Signal, int: Signal },
    Host { requests: mpsc::UnboundedReceiver<String>, dropped: bool },
}

impl Stops {
    /// Waits for the next stop request; returns what it was, for the log.
    pub(crate) async fn next(&mut self) -> String {
        match self {
            Stops::Signals { term, int } => tokio::select! {
                _ = term.recv() => "SIGTERM".to_string(),
                _ = int.recv() => "SIGINT".to_string(),
            },
            Stops::Host { requests, dropped } => {
                if let Some(why) = requests.recv().await {
                    return why;
                }
                if *dropped {
                    // Reported once; after that no request can come.
                    std::future::pending::<()>().await;
                }
                *dropped = true;
                "every stop handle dropped".to_string()
            }
        }
    }
}
