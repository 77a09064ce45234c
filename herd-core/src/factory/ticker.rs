//! Sub-millisecond sleeps for readiness polling.
//!
//! tokio's timer has millisecond granularity: a 1 ms sleep often ends
//! after 2 ms. A worker that is ready 1.2 ms after exec would then be seen
//! at 2-3 ms. A timerfd per starting worker gives microsecond precision
//! for the few polls that matter; it is dropped once the worker is ready.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

pub(crate) struct Ticker {
    fd: AsyncFd<OwnedFd>,
}

impl Ticker {
    pub(crate) fn new() -> io::Result<Ticker> {
        // SAFETY: timerfd_create returns a new fd or -1.
        let raw =
            unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Ticker { fd: crate::process::watch_readable(fd)? })
    }

    /// Sleeps for `duration` (at least 1 µs).
    pub(crate) async fn sleep(&self, duration: Duration) -> io::Result<()> {
        let duration = duration.max(Duration::from_micros(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: duration.as_secs() as libc::time_t,
                tv_nsec: duration.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: arming a timerfd we own with a valid itimerspec.
        if unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            // SAFETY: reading the 8-byte expiration count into a buffer.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
            if n == 8 {
                return Ok(());
            }
            guard.clear_ready();
        }
    }
}
