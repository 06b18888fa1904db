//! A socket address as Python prints the `addr` of `sock.accept()`.

use std::net::SocketAddr;

/// `('127.0.0.1', 45000)`
pub(crate) fn py_addr(addr: SocketAddr) -> String {
    format!("('{}', {})", addr.ip(), addr.port())
}
