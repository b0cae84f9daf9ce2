//! Passing the fds of shared memory (segment memfds, queue eventfds) over a unix socket:
//! one datagram plus SCM_RIGHTS, as VPP's app socket API does. Received fds come back owned,
//! so none can leak, and a truncated control message is an error rather than lost fds.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Most fds one datagram may carry (VPP sends at most 3 + number of VPP threads).
pub const MAX_FDS: usize = 32;

/// Send `data` as one datagram with `fds` attached (none if empty).
pub fn send_with_fds(sock: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> Result<usize, Errno> {
    let iov = [IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
}

/// Send two datagrams (no fds) with one system call, so the receiver finds the second queued as
/// soon as it has read the first: VPP reads the cert/key payload that follows ADD_DEL_CERT_KEY
/// with a few non-blocking reads microseconds apart, and a sender preempted between two sends
/// would miss them. Returns how many datagrams went (0 to 2).
pub fn send_two(sock: BorrowedFd<'_>, a: &[u8], b: &[u8]) -> Result<usize, Errno> {
    let mut iov = [
        libc::iovec {
            iov_base: a.as_ptr() as *mut libc::c_void,
            iov_len: a.len(),
        },
        libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        },
    ];
    // SAFETY: an all-zero mmsghdr (null name and control, no iovecs) is a valid value.
    let mut msgs: [libc::mmsghdr; 2] = unsafe { std::mem::zeroed() };
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: msgs and the iovecs they point at live across the call; the kernel only reads
    // a and b (iov_base is *mut only by the C type).
    let n = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            2,
            libc::MSG_NOSIGNAL as _,
        )
    };
    if n < 0 {
        return Err(Errno::last());
    }
    Ok(n as usize)
}

/// Receive one datagram into `buf`; returns its length and the fds that came with it.
/// A datagram whose fds did not fit (MSG_CTRUNC) is an error (EMSGSIZE).
pub fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>), Errno> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for fd in raw {
                // SAFETY: the kernel just installed this fd in our table for us; nothing else owns it, so wrapping it makes it closed exactly once.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(Errno::EMSGSIZE);
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsFd;

    #[test]
    fn fds_travel_with_the_datagram() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::empty(),
        )
        .unwrap();
        let seg = crate::Segment::create("fdpass", 1 << 16, 8192).unwrap();
        send_with_fds(a.as_fd(), b"hello", &[seg.fd(), seg.fd()]).unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = recv_with_fds(b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 2);
        let mapped = crate::Segment::map(fds.into_iter().next().unwrap()).unwrap();
        assert_eq!(mapped.len(), 1 << 16);
        send_with_fds(a.as_fd(), b"x", &[]).unwrap();
        let (n, fds) = recv_with_fds(b.as_fd(), &mut buf).unwrap();
        assert_eq!((n, fds.len()), (1, 0));
    }
}
