//! Upgraded connections (WebSocket, the protocol Playwright and CDP use):
//! bytes forwarded both ways for as long as the connection lives, under
//! one lease.
//!
//! * The lease stays open for the tunnel's whole life, so idle eviction
//!   never cuts an active WebSocket; traffic either way `touch`es it (at
//!   most every 100 ms).
//! * When herd ends the session (idle, lifetime, `end_session`, crash,
//!   shutdown) or the proxy stops, the client gets a close frame whose
//!   reason names why — not a dropped TCP connection.
//! * Each direction is its own loop, so a peer that stops reading stalls
//!   only the bytes meant for it, never the other direction.
//!
//! # Why the injected close frame is correct
//!
//! The worker → client direction is followed frame by frame
//! ([`FrameTracker`]). When the session ends, herd forwards bytes only up
//! to the end of the frame in flight, then writes its close frame: it
//! lands on a frame boundary, where RFC 6455 §5.4 allows a control frame
//! even inside a fragmented message. After it herd sends no more data
//! (§5.5.1), half-closes the client connection, and reads what the client
//! still sends (its close reply) until it closes or
//! `websocket_close_timeout` passes. If the worker stalls mid-frame after
//! the session ended, no boundary comes: the connection is dropped when
//! that timeout passes. Non-WebSocket upgrades are forwarded without frame
//! tracking and simply closed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::watch;

use super::frames::{FrameTracker, close_frame};
use super::server::StopSignal;
use super::timer::Timers;
use crate::events::EndReason;
use crate::pool::Lease;

/// The client's end of the tunnel.
type Io = TokioIo<Upgraded>;
/// The worker's end of the tunnel.
type WorkerIo = super::client::Upgraded;

const BUFFER: usize = 16 * 1024;
const TOUCH_EVERY_MS: u64 = 100;
/// After the worker closes a WebSocket without a close frame, how long to
/// wait for the pool to report why (a crash) before closing the client.
const CRASH_REASON_WAIT: Duration = Duration::from_millis(300);

/// How a tunnel ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The worker closed it (after a close frame, or abruptly).
    Worker,
    /// The client went away.
    Client,
    /// herd ended it: the session ended.
    SessionEnded,
    /// herd ended it: the proxy is stopping.
    ProxyStopping,
    /// A peer did not finish closing within the timeout.
    Timeout,
    /// The upgrade itself failed.
    UpgradeFailed,
}

impl Closed {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Closed::Worker => "worker",
            Closed::Client => "client",
            Closed::SessionEnded => "session_ended",
            Closed::ProxyStopping => "proxy_stopping",
            Closed::Timeout => "timeout",
            Closed::UpgradeFailed => "upgrade_failed",
        }
    }
}

/// What a tunnel needs besides its two ends.
pub(crate) struct Tunnel {
    pub lease: Lease,
    pub websocket: bool,
    pub stop: StopSignal,
    pub close_timeout: Duration,
    /// Runs the close deadline (the I/O threads have no timer).
    pub timers: Timers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// The client closed its side, or herd decided to close: the close
    /// timeout runs, bytes still flow.
    Winding,
    /// herd or the worker closed the tunnel; only the client's last bytes
    /// are read (and dropped).
    Closing,
}

/// Resolves once the tunnel is `Closing`.
async fn closing(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p == Phase::Closing).await;
}

/// Moves `Open` to `Winding` (a later phase stays).
fn wind_down(phase: &watch::Sender<Phase>) {
    phase.send_if_modified(|p| {
        let open = *p == Phase::Open;
        if open {
            *p = Phase::Winding;
        }
        open
    });
}

impl Tunnel {
    /// Waits for the client's upgrade, then forwards until the tunnel closes.
    pub(crate) async fn run(self, client: OnUpgrade, upstream: WorkerIo) -> Closed {
        let client = match client.await {
            Ok(client) => client,
            Err(e) => {
                tracing::debug!(session = %self.lease.session_id(), "upgrade failed: {e}");
                return Closed::UpgradeFailed;
            }
        };
        let (client_r, client_w) = tokio::io::split(TokioIo::new(client));
        let (up_r, up_w) = tokio::io::split(upstream);
        let activity = Activity { lease: &self.lease, started: Instant::now(), last_ms: AtomicU64::new(0) };
        let (phase, phase_rx) = watch::channel(Phase::Open);
        let mut deadline_rx = phase.subscribe();
        let to_worker = client_to_worker(client_r, up_w, &activity, &phase, phase_rx);
        let to_client = worker_to_client(up_r, client_w, &activity, &self, &phase);
        let pumps = async { tokio::join!(to_worker, to_client).1 };
        let deadline = async {
            if deadline_rx.wait_for(|p| *p != Phase::Open).await.is_err() {
                std::future::pending::<()>().await;
            }
            self.timers.sleep(self.close_timeout).await;
        };
        tokio::select! {
            closed = pumps => closed,
            _ = deadline => Closed::Timeout,
        }
    }
}

/// Touches the lease on traffic, at most every [`TOUCH_EVERY_MS`].
struct Activity<'a> {
    lease: &'a Lease,
    started: Instant,
    last_ms: AtomicU64,
}

impl Activity<'_> {
    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        if now.saturating_sub(self.last_ms.load(Ordering::Relaxed)) >= TOUCH_EVERY_MS {
            self.last_ms.store(now, Ordering::Relaxed);
            self.lease.touch();
        }
    }
}

/// Client → worker: plain bytes, until the client closes or the tunnel
/// enters `Closing`; then drains the client until it closes.
async fn client_to_worker(
    mut client: ReadHalf<Io>,
    mut worker: WriteHalf<WorkerIo>,
    activity: &Activity<'_>,
    phase: &watch::Sender<Phase>,
    mut phase_rx: watch::Receiver<Phase>,
) {
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = tokio::select! {
            biased;
            _ = closing(&mut phase_rx) => break,
            read = client.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    wind_down(phase);
                    let _ = worker.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
        };
        activity.touch();
        let written = tokio::select! {
            biased;
            _ = closing(&mut phase_rx) => break,
            written = worker.write_all(&buf[..n]) => written,
        };
        if written.is_err() {
            // The worker is gone; the other direction sees it too.
            closing(&mut phase_rx).await;
            break;
        }
    }
    drop(worker);
    while let Ok(n) = client.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Worker → client: bytes followed frame by frame (for WebSockets), with a
/// close frame of herd's own when the session ends or the proxy stops.
async fn worker_to_client(
    mut worker: ReadHalf<WorkerIo>,
    mut client: WriteHalf<Io>,
    activity: &Activity<'_>,
    tunnel: &Tunnel,
    phase: &watch::Sender<Phase>,
) -> Closed {
    let mut frames = FrameTracker::default();
    let mut buf = vec![0u8; BUFFER];
    let mut stop = tunnel.stop.clone();
    let ended = tunnel.lease.ended();
    tokio::pin!(ended);
    let stopping = stop.stopping();
    tokio::pin!(stopping);
    // Set once herd decides to close: (why, close code, reason text).
    let mut ending: Option<(Closed, u16, String)> = None;
    let closed = loop {
        if ending.is_some() && (frames.at_boundary() || !tunnel.websocket) {
            break None;
        }
        let n = tokio::select! {
            biased;
            reason = &mut ended, if ending.is_none() => {
                ending = Some(session_close(reason));
                wind_down(phase);
                continue;
            }
            _ = &mut stopping, if ending.is_none() => {
                ending = Some((Closed::ProxyStopping, 1001, "herd is shutting down".to_string()));
                wind_down(phase);
                continue;
            }
            read = worker.read(&mut buf) => match read {
                Ok(0) | Err(_) => break Some(()),
                Ok(n) => n,
            },
        };
        let forward = if tunnel.websocket { frames.advance(&buf[..n], ending.is_some()) } else { n };
        if client.write_all(&buf[..forward]).await.is_err() {
            phase.send_replace(Phase::Closing);
            return Closed::Client;
        }
        activity.touch();
    };
    if closed.is_some() {
        // The worker closed its side.
        if !tunnel.websocket || frames.saw_close() || !frames.at_boundary() {
            let _ = client.shutdown().await;
            phase.send_replace(Phase::Closing);
            return Closed::Worker;
        }
        // No close frame: it vanished. Tell the client why if the pool
        // knows (a crash ends the session a moment later).
        let why = tunnel.timers.timeout(CRASH_REASON_WAIT, &mut ended).await;
        ending = Some(match why {
            Ok(reason) => session_close(reason),
            Err(_) => (Closed::Worker, 1011, "the worker closed the connection".to_string()),
        });
    }
    let (why, code, reason) = ending.unwrap_or((Closed::Worker, 1011, String::new()));
    if tunnel.websocket {
        let _ = client.write_all(&close_frame(code, &reason)).await;
    }
    let _ = client.shutdown().await;
    phase.send_replace(Phase::Closing);
    why
}

/// The close frame for a session that ended: 1001 (going away) when herd
/// ended it on purpose, 1011 (server error) when its worker failed.
fn session_close(reason: EndReason) -> (Closed, u16, String) {
    let code = match reason {
        EndReason::Crashed { .. } | EndReason::Unhealthy => 1011,
        _ => 1001,
    };
    (Closed::SessionEnded, code, format!("herd session ended: {reason}"))
}
