//! Free loopback ports for workers.
//!
//! The kernel picks a free port (bind to port 0); herd remembers every port
//! it has handed to a live worker so two of its own workers never get the
//! same one, even when the kernel offers a port again after the probe socket
//! closed. Another process can still take the port between the probe and
//! the worker's own bind — the factory detects that and retries.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::LazyLock;

use parking_lot::Mutex;

static IN_USE: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// A port reserved for one worker; released when dropped.
#[derive(Debug)]
pub(crate) struct PortLease {
    port: u16,
}

impl PortLease {
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        IN_USE.lock().remove(&self.port);
    }
}

/// A loopback port no live herd worker of this process uses.
pub(crate) fn allocate() -> io::Result<PortLease> {
    for _ in 0..64 {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if IN_USE.lock().insert(port) {
            return Ok(PortLease { port });
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "no free loopback port found in 64 tries"))
}

/// Whether some other process now listens on `port` (bind fails).
pub(crate) fn taken_by_someone_else(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_a_live_port_twice() {
        let leases: Vec<_> = (0..200).map(|_| allocate().unwrap()).collect();
        let unique: HashSet<u16> = leases.iter().map(|l| l.port()).collect();
        assert_eq!(unique.len(), leases.len());
    }
}
