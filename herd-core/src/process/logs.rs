//! Worker output: stdout and stderr read line by line and logged through
//! `tracing` (target `herd::worker`) with the worker's ID.
//!
//! One small task per worker reads both pipes. Its read buffer lives only
//! between awaits, so an idle worker costs a few hundred bytes, not two
//! 8 KiB buffers — this matters with a thousand workers.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use parking_lot::Mutex;

/// Longest line logged in one piece; longer lines are split.
const MAX_LINE: usize = 16 * 1024;

/// The last few lines a worker printed, kept so that a worker that fails
/// to start can be explained in the error ("exited with code 1: EADDRINUSE").
#[derive(Debug, Default)]
pub(crate) struct OutputTail {
    lines: VecDeque<String>,
}

impl OutputTail {
    const LINES: usize = 4;
    const LINE_CHARS: usize = 300;

    fn push(&mut self, line: &str) {
        if self.lines.len() == Self::LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line.chars().take(Self::LINE_CHARS).collect());
    }

    /// The kept lines joined with " | ", or `None` if the worker printed nothing.
    pub(crate) fn summary(&self) -> Option<String> {
        (!self.lines.is_empty())
            .then(|| self.lines.iter().map(String::as_str).collect::<Vec<_>>().join(" | "))
    }
}

/// Reads both pipes until the worker tree has closed them.
pub(crate) async fn forward_output(
    worker: String,
    stdout: OwnedFd,
    stderr: OwnedFd,
    tail: Arc<Mutex<OutputTail>>,
) {
    let (Ok(stdout), Ok(stderr)) = (super::watch_readable(stdout), super::watch_readable(stderr)) else {
        tracing::warn!(worker = %worker, "cannot watch the worker's output pipes");
        return;
    };
    let mut out = LineSplitter::new(&worker, "stdout", &tail);
    let mut err = LineSplitter::new(&worker, "stderr", &tail);
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        tokio::select! {
            r = stdout.readable(), if out_open => match r {
                Ok(mut guard) => {
                    if out.drain(stdout.get_ref(), &mut guard).is_closed() { out_open = false; }
                }
                Err(_) => out_open = false,
            },
            r = stderr.readable(), if err_open => match r {
                Ok(mut guard) => {
                    if err.drain(stderr.get_ref(), &mut guard).is_closed() { err_open = false; }
                }
                Err(_) => err_open = false,
            },
        }
    }
    out.flush();
    err.flush();
}

enum Drained {
    Open,
    Closed,
}

impl Drained {
    fn is_closed(&self) -> bool {
        matches!(self, Drained::Closed)
    }
}

struct LineSplitter<'a> {
    worker: &'a str,
    stream: &'static str,
    partial: Vec<u8>,
    tail: &'a Mutex<OutputTail>,
}

impl<'a> LineSplitter<'a> {
    fn new(worker: &'a str, stream: &'static str, tail: &'a Mutex<OutputTail>) -> Self {
        LineSplitter { worker, stream, partial: Vec::new(), tail }
    }

    /// Reads what is available now and logs every complete line.
    fn drain(
        &mut self,
        fd: &OwnedFd,
        guard: &mut tokio::io::unix::AsyncFdReadyGuard<'_, OwnedFd>,
    ) -> Drained {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: read into a stack buffer from a nonblocking fd we own.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 {
                return Drained::Closed;
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        return Drained::Open;
                    }
                    io::ErrorKind::Interrupted => continue,
                    _ => return Drained::Closed,
                }
            }
            self.push(&buf[..n as usize]);
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&bytes[..pos]);
            self.emit();
            bytes = &bytes[pos + 1..];
        }
        self.partial.extend_from_slice(bytes);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            self.emit();
            self.partial = rest;
        }
        if self.partial.is_empty() && self.partial.capacity() > 1024 {
            self.partial = Vec::new();
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.partial);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        tracing::info!(target: "herd::worker", worker = %self.worker, stream = self.stream, "{line}");
        if !line.trim().is_empty() {
            self.tail.lock().push(line);
        }
        self.partial.clear();
    }

    fn flush(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
    }
}
