//! Socket plumbing of the app socket API, as VPP's vppinfra `clib_socket_*` does it for sapi:
//! the SOCK_SEQPACKET listener (SO_PASSCRED, SO_REUSEADDR, backlog 5, group-write allowed on
//! filesystem sockets), non-blocking accepted connections, exact-length receives (sends with an
//! SCM_RIGHTS array use `vcl_svm::fdpass`).

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;

use nix::errno::Errno;
use nix::sys::socket::{
    accept4, bind, listen, recvmsg, setsockopt, socket, sockopt, AddressFamily, Backlog, MsgFlags,
    SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::{umask, Mode};

use crate::config::SockAddr;

fn nix_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Create the listening socket (vppinfra socket.c `clib_socket_init` with IS_SERVER |
/// SEQPACKET | PASSCRED | ALLOW_GROUP_WRITE; session_api.c `appns_sapi_add_ns_socket`).
pub fn bind_listener(addr: &SockAddr) -> io::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        // Non-blocking so the accept loop can drain the backlog and stop.
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(nix_io)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(nix_io)?;
    setsockopt(&fd, sockopt::PassCred, &true).map_err(nix_io)?;
    match addr {
        SockAddr::Abstract(name) => {
            let ua = UnixAddr::new_abstract(name.as_bytes()).map_err(nix_io)?;
            bind(fd.as_raw_fd(), &ua).map_err(nix_io)?;
        }
        SockAddr::Path(p) => {
            // vppinfra unlinks a stale socket file before binding a server socket.
            if let Ok(md) = std::fs::symlink_metadata(p) {
                if md.file_type().is_socket() {
                    let _ = std::fs::remove_file(p);
                }
            }
            let ua = UnixAddr::new(p).map_err(nix_io)?;
            // ALLOW_GROUP_WRITE: only "others" lose write permission while binding.
            let old = umask(Mode::S_IWOTH);
            let r = bind(fd.as_raw_fd(), &ua);
            umask(old);
            r.map_err(nix_io)?;
        }
    }
    listen(&fd, Backlog::new(5).map_err(nix_io)?).map_err(nix_io)?;
    Ok(fd)
}

/// Accept one connection, non-blocking like VPP's accepted sapi sockets (socket.c
/// `clib_socket_accept`). `Ok(None)` when nothing is pending.
#[allow(unsafe_code)] // nix's accept4 returns a raw fd; it becomes owned here
pub fn accept(listener: RawFd) -> io::Result<Option<OwnedFd>> {
    match accept4(listener, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK) {
        // SAFETY: accept4 returned a fresh fd that nothing else owns.
        Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
        Err(Errno::EAGAIN) | Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => Ok(None),
        Err(e) => Err(nix_io(e)),
    }
}

/// What one receive produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    /// A datagram of this many bytes (already truncated by the kernel to the buffer size).
    Data(usize),
    /// The app closed the connection.
    Eof,
    /// Nothing to read right now.
    WouldBlock,
    /// A socket error.
    Error(i32),
}

/// Receive one datagram into `buf`. Room is left for SCM_CREDENTIALS only, as VPP passes no fd
/// array when reading sapi messages (socket.c `default_socket_recvmsg` with num_fds = 0): fds a
/// client attaches are cut off and closed by the kernel.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> Recv {
    let mut cmsg = nix::cmsg_space!(libc::ucred);
    let mut iov = [IoSliceMut::new(buf)];
    match recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT) {
        Ok(m) if m.bytes == 0 => Recv::Eof,
        Ok(m) => Recv::Data(m.bytes),
        Err(Errno::EAGAIN) | Err(Errno::EINTR) => Recv::WouldBlock,
        Err(e) => Recv::Error(e as i32),
    }
}

/// Make the app see the connection closed now, even if our fd lives a little longer
/// (the sapi thread may be polling it; it is closed there).
pub fn shutdown(fd: RawFd) {
    let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
}
