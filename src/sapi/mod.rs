//! The app socket API (sapi): the SOCK_SEQPACKET unix socket to VPP's session layer.

mod socket;

pub use socket::{SapiSocket, MAX_PENDING_FDS};

use std::os::fd::OwnedFd;

use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};

use crate::config::SapiAddr;

/// Connect a blocking SOCK_SEQPACKET socket to VPP's app socket (a path or an abstract name).
/// On failure returns the errno, after one log line naming the address.
pub fn connect_app_socket(addr: &SapiAddr) -> Result<OwnedFd, nix::errno::Errno> {
    let result = connect_app_socket_quiet(addr);
    if let Err(e) = result {
        tracing::error!(
            "cannot connect to VPP's app socket {}: {} ({})",
            addr_display(addr),
            e.desc(),
            e
        );
    }
    result
}

/// [`connect_app_socket`] without the log line (a re-attach retrying while VPP is down).
pub fn connect_app_socket_quiet(addr: &SapiAddr) -> Result<OwnedFd, nix::errno::Errno> {
    let ua = match addr {
        SapiAddr::Path(p) => UnixAddr::new(p.as_path()),
        SapiAddr::Abstract(name) => UnixAddr::new_abstract(name),
    };
    ua.and_then(|ua| {
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &ua)?;
        Ok(fd)
    })
}

/// How we name a socket address in messages (`abstract:NAME` or the path).
pub fn addr_display(addr: &SapiAddr) -> String {
    match addr {
        SapiAddr::Path(p) => p.display().to_string(),
        SapiAddr::Abstract(n) => format!("abstract:{}", String::from_utf8_lossy(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_is_enoent_and_abstract_is_econnrefused() {
        let p = SapiAddr::Path("/nonexistent/vcl-test/sock".into());
        assert_eq!(
            connect_app_socket(&p).unwrap_err(),
            nix::errno::Errno::ENOENT
        );
        let a = SapiAddr::Abstract(b"vcl-test-nobody-listens-here".to_vec());
        assert_eq!(
            connect_app_socket(&a).unwrap_err(),
            nix::errno::Errno::ECONNREFUSED
        );
    }

    #[test]
    fn connects_to_a_listening_seqpacket_socket() {
        use nix::sys::socket::{bind, listen, Backlog};
        let name = format!("vcl-test-{}", std::process::id());
        let srv = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&srv),
            &UnixAddr::new_abstract(name.as_bytes()).unwrap(),
        )
        .unwrap();
        listen(&srv, Backlog::new(1).unwrap()).unwrap();
        let a = SapiAddr::Abstract(name.into_bytes());
        assert!(connect_app_socket(&a).is_ok());
    }
}
