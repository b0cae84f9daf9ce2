//! Passing the fds of shared memory (segment memfds, queue eventfds) over a unix socket:
//! one datagram plus SCM_RIGHTS, as VPP's app socket API does. Received fds come back owned,
//! so none can leak, and a truncated control message is an error rather than lost fds.
// Shared memory / fds: fds received with SCM_RIGHTS become owned here (from_raw_fd).
#![allow(unsafe_code)]

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

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
/// A datagram whose fds did not fit (MSG_CTRUNC) is an error (EMSGSIZE); the fds that did
/// arrive are closed on that path too (the kernel installs them before it truncates).
pub fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>), Errno> {
    // Room for MAX_FDS fds, u64-aligned as cmsghdr wants.
    let mut space = [0u64; CMSG_SPACE_WORDS];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&space) as _;
    // SAFETY: msg points at our iovec (over `buf`) and control buffer, both live for the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(Errno::last());
    }
    let fds = take_rights(&msg);
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        drop(fds);
        return Err(Errno::EMSGSIZE);
    }
    Ok((n as usize, fds))
}

/// CMSG_SPACE for MAX_FDS fds on LP64: a 16-byte cmsghdr plus the fds, 8-byte aligned.
const CMSG_SPACE_WORDS: usize = (16 + MAX_FDS * 4).div_ceil(8);

/// Every fd of every SCM_RIGHTS message in `msg`'s control buffer, owned (so closed once).
fn take_rights(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR stay inside msg_controllen.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !c.is_null() {
        // SAFETY: c is a cmsghdr inside the control buffer (CMSG_FIRSTHDR/NXTHDR checked it).
        let h = unsafe { &*c };
        if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a pure size computation.
            let hdr = unsafe { libc::CMSG_LEN(0) } as usize;
            let n = (h.cmsg_len as usize).saturating_sub(hdr) / std::mem::size_of::<RawFd>();
            // SAFETY: the data of an SCM_RIGHTS cmsg holds n ints; read them unaligned.
            let data = unsafe { libc::CMSG_DATA(c) } as *const RawFd;
            for i in 0..n {
                // SAFETY: i < n, inside this cmsg's data (the kernel wrote cmsg_len bytes).
                let fd = unsafe { data.add(i).read_unaligned() };
                if fd >= 0 {
                    // SAFETY: the kernel just installed this fd in our table for us; nothing else owns it, so wrapping it makes it closed exactly once.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        // SAFETY: msg and c are as above; NXTHDR returns null past the end.
        c = unsafe { libc::CMSG_NXTHDR(msg, c) };
    }
    fds
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

    /// How many of our fds name the memfd called `name` (other tests run in parallel threads
    /// and open and close fds of their own, so a count of all fds would be racy).
    fn fds_naming(name: &str) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|t| t.to_string_lossy().contains(name))
            .count()
    }

    /// A sender attaching more fds than we take gets EMSGSIZE, and none of the fds that did
    /// arrive stay open in our table.
    #[test]
    fn too_many_fds_are_refused_and_closed() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::empty(),
        )
        .unwrap();
        let seg = crate::Segment::create("fdflood", 1 << 16, 8192).unwrap();
        let many = vec![seg.fd(); MAX_FDS * 2];
        let mut buf = [0u8; 16];
        let before = fds_naming("memfd:fdflood");
        assert_eq!(before, 1);
        for _ in 0..10 {
            send_with_fds(a.as_fd(), b"flood", &many).unwrap();
            assert_eq!(
                recv_with_fds(b.as_fd(), &mut buf).err(),
                Some(Errno::EMSGSIZE)
            );
        }
        assert_eq!(fds_naming("memfd:fdflood"), before, "received fds leaked");
        send_with_fds(a.as_fd(), b"ok", &[seg.fd()]).unwrap();
        let (n, fds) = recv_with_fds(b.as_fd(), &mut buf).unwrap();
        assert_eq!((n, fds.len()), (2, 1));
    }
}
