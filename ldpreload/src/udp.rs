//! UDP sockets on VPP: datagram semantics of the socket calls on a VPP UDP session (the
//! library's datagram model: a bound socket listens connectionless and learns each sender; a
//! connected one has one peer). One call moves one whole datagram; a short receive buffer
//! gets its first bytes and the rest is dropped (MSG_TRUNC says the whole length, as in
//! Linux); a datagram larger than the session can ever carry is EMSGSIZE.
//!
//! The library keeps the last sender (or destination) in the session itself, so a receive and
//! the address it reports, or a destination and the send, go together under the socket's
//! `dgram_lock` (threads sharing a socket would otherwise mix them up).

use std::net::SocketAddr;
use std::time::Duration;

use libc::{iovec, msghdr, sockaddr, EPOLLIN, EPOLLOUT};
use vcl::api::{self, Error, Status};

use crate::addr::{errno_of, for_family, from_c, to_c, unmap};
use crate::sock::{Res, VSock};

/// How long a UDP connect waits for VPP (it never returns EINPROGRESS, as in Linux).
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// A received datagram: bytes copied, its whole length, its sender.
pub struct Got {
    pub n: usize,
    pub full: usize,
    pub from: SocketAddr,
}

impl VSock {
    /// recv/recvfrom/recvmsg on a UDP socket: MSG_PEEK, MSG_DONTWAIT honoured (MSG_TRUNC is
    /// the caller's: it picks `full` instead of `n`).
    pub fn recv_dgram(&self, buf: &mut [u8], flags: i32) -> Res<Got> {
        if flags & libc::MSG_OOB != 0 {
            return Err(libc::EOPNOTSUPP);
        }
        self.epoch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let peek = flags & libc::MSG_PEEK != 0;
        let nonblock = self.is_nonblocking(flags);
        loop {
            let r = {
                let _g = self.dgram_lock.lock();
                api::recv_dgram(&self.w, self.sh, buf, peek)
            };
            match r {
                Ok((n, full, from)) => return Ok(Got { n, full, from }),
                Err(Error::Again) if !nonblock => {
                    if crate::wake::is_dead(&self.w) {
                        return Err(libc::ECONNRESET);
                    }
                    let timeout = self.opts.lock().rcvtimeo;
                    self.wait(EPOLLIN, timeout)?;
                }
                // never bound nor connected: nothing can arrive (Linux would wait forever on
                // an unbound socket; VPP has no session to wait on)
                Err(Error::NotConn) if self.status()? == Status::Idle => {
                    return Err(if nonblock {
                        libc::EAGAIN
                    } else {
                        libc::ENOTCONN
                    })
                }
                Err(e) => return Err(errno_of(&e)),
            }
        }
    }

    /// send/sendto/sendmsg on a UDP socket: `to` None sends to the connected peer
    /// (EDESTADDRREQ when there is none). EPIPE raises SIGPIPE unless MSG_NOSIGNAL.
    pub fn send_dgram(&self, buf: &[u8], flags: i32, to: Option<SocketAddr>) -> Res<usize> {
        let r = self.send_dgram_inner(buf, flags, to);
        if r == Err(libc::EPIPE) && flags & libc::MSG_NOSIGNAL == 0 {
            // SAFETY: raise sends a signal to the calling thread; no memory is involved.
            unsafe { libc::raise(libc::SIGPIPE) };
        }
        r
    }

    fn send_dgram_inner(&self, buf: &[u8], flags: i32, to: Option<SocketAddr>) -> Res<usize> {
        if flags & libc::MSG_OOB != 0 {
            return Err(libc::EOPNOTSUPP);
        }
        self.epoch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let peer = self.opts.lock().peer;
        let to = match (to, peer) {
            // the library's connected session has one peer: a matching address is that
            (Some(a), Some(p)) if a == p => None,
            (Some(_), Some(_)) => return Err(libc::EISCONN),
            (None, None) => return Err(libc::EDESTADDRREQ),
            (to, _) => to,
        };
        let nonblock = self.is_nonblocking(flags);
        loop {
            let r = {
                let _g = self.dgram_lock.lock();
                api::send_dgram(&self.w, self.sh, buf, to)
            };
            match r {
                Ok(n) => {
                    if let Some(a) = to {
                        self.note_bound(a);
                    }
                    return Ok(n);
                }
                Err(Error::Again) if !nonblock => {
                    if crate::wake::is_dead(&self.w) {
                        return Err(libc::EPIPE);
                    }
                    let timeout = self.opts.lock().sndtimeo;
                    self.wait(EPOLLOUT, timeout)?;
                }
                Err(Error::Inval) => return Err(libc::EINVAL),
                Err(e) => return Err(errno_of(&e)),
            }
        }
    }

    /// After a first sendto bound the socket in VPP: remember it is bound (to where VPP put it).
    fn note_bound(&self, _to: SocketAddr) {
        let mut o = self.opts.lock();
        if o.bound.is_none() {
            o.bound = self.local_addr().ok();
        }
    }

    /// connect on a UDP socket: waits for VPP whatever O_NONBLOCK says (Linux's UDP connect
    /// never returns EINPROGRESS). The library's connected session cannot change peers nor be
    /// made connectionless again: another address is EISCONN, and a socket already bound
    /// (listening connectionless in VPP) cannot connect (EISCONN too).
    pub fn connect_dgram(&self, to: SocketAddr) -> Res<()> {
        if let Some(p) = self.opts.lock().peer {
            return if p == to { Ok(()) } else { Err(libc::EISCONN) };
        }
        if self.status()? != Status::Idle {
            return Err(libc::EISCONN);
        }
        match api::connect(&self.w, self.sh, to, Some(CONNECT_WAIT)) {
            Ok(()) | Err(Error::InProgress) => {}
            Err(e) => return Err(errno_of(&e)),
        }
        let _ = self.wait(EPOLLOUT, Some(CONNECT_WAIT));
        match self.status()? {
            Status::Connected => {
                self.opts.lock().peer = Some(to);
                Ok(())
            }
            Status::Failed(e) => Err(errno_of(&e)),
            Status::Connecting => Err(libc::ETIMEDOUT),
            _ => Err(libc::ECONNREFUSED),
        }
    }
}

impl VSock {
    /// read/recv: a datagram on a UDP socket (MSG_TRUNC: its whole length), else the stream.
    pub fn recv_any(&self, buf: &mut [u8], flags: i32) -> Res<usize> {
        if !self.dgram {
            return self.recv(buf, flags);
        }
        let g = self.recv_dgram(buf, flags)?;
        Ok(if flags & libc::MSG_TRUNC != 0 {
            g.full
        } else {
            g.n
        })
    }

    /// write/send: a datagram to the connected peer on a UDP socket, else the stream.
    pub fn send_any(&self, buf: &[u8], flags: i32) -> Res<usize> {
        if self.dgram {
            self.send_dgram(buf, flags, None)
        } else {
            self.send(buf, flags)
        }
    }
}

/// EPOLLOUT for a UDP socket VPP does not know yet (never bound, connected nor sent from)
/// when `want` asks for it: such a socket is writable, as in Linux (its first sendto binds
/// it), though the library's session has nothing to report.
pub fn idle_out(s: &VSock, want: u32) -> u32 {
    let out = EPOLLOUT as u32;
    if s.dgram && want & out != 0 && s.status() == Ok(Status::Idle) {
        out
    } else {
        0
    }
}

/// The bytes of `n` iovecs, gathered (one datagram).
///
/// # Safety
/// `iov` must point at `n` valid iovecs.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub unsafe fn gather(iov: *const iovec, n: usize) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    for v in iovecs(iov, n)? {
        if v.iov_len == 0 {
            continue;
        }
        if v.iov_base.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: an iovec describes caller memory of iov_len bytes.
        out.extend_from_slice(unsafe {
            std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len)
        });
        if out.len() > MAX_DGRAM {
            return Err(libc::EMSGSIZE);
        }
    }
    Ok(out)
}

/// Largest datagram any IP packet carries: a gathered one beyond is refused early.
const MAX_DGRAM: usize = 65_535;

fn iovecs<'a>(iov: *const iovec, n: usize) -> Res<&'a [iovec]> {
    if n > libc::UIO_MAXIOV as usize {
        return Err(libc::EINVAL);
    }
    if n == 0 {
        return Ok(&[]);
    }
    if iov.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the callers' contracts (gather, scatter) say iov holds n iovecs.
    Ok(unsafe { std::slice::from_raw_parts(iov, n) })
}

/// Receive one datagram into `n` iovecs: (bytes placed, whole length, sender).
///
/// # Safety
/// `iov` must point at `n` valid iovecs.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub unsafe fn recv_iov(s: &VSock, iov: *const iovec, n: usize, flags: i32) -> Res<Got> {
    let vs = iovecs(iov, n)?;
    let room: usize = vs.iter().map(|v| v.iov_len).sum::<usize>().min(MAX_DGRAM);
    let mut tmp = vec![0u8; room];
    let g = s.recv_dgram(&mut tmp, flags)?;
    let mut off = 0;
    for v in vs {
        if off == g.n {
            break;
        }
        let k = v.iov_len.min(g.n - off);
        if k == 0 {
            continue;
        }
        if v.iov_base.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: an iovec describes writable caller memory of iov_len >= k bytes.
        unsafe { std::ptr::copy_nonoverlapping(tmp[off..].as_ptr(), v.iov_base as *mut u8, k) };
        off += k;
    }
    Ok(g)
}

/// recvmsg on a UDP socket: the sender in msg_name, MSG_TRUNC in msg_flags when the datagram
/// was longer than the buffers (and as the result with MSG_TRUNC in `flags`).
///
/// # Safety
/// `m` must be a valid msghdr.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub unsafe fn recv_msg(s: &VSock, m: &mut msghdr, flags: i32) -> Res<usize> {
    // SAFETY: msg_iov holds msg_iovlen iovecs per recvmsg(2).
    let g = unsafe { recv_iov(s, m.msg_iov, m.msg_iovlen, flags)? };
    if !m.msg_name.is_null() {
        let mut len = m.msg_namelen;
        // SAFETY: msg_name is writable for msg_namelen bytes per recvmsg(2).
        unsafe {
            to_c(
                for_family(g.from, s.family),
                m.msg_name as *mut sockaddr,
                &mut len,
            )?
        };
        m.msg_namelen = len;
    } else {
        m.msg_namelen = 0;
    }
    m.msg_controllen = 0;
    m.msg_flags = if g.full > g.n { libc::MSG_TRUNC } else { 0 };
    Ok(if flags & libc::MSG_TRUNC != 0 {
        g.full
    } else {
        g.n
    })
}

/// sendmsg on a UDP socket: one datagram of the gathered buffers, to msg_name if given.
///
/// # Safety
/// `m` must be a valid msghdr.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub unsafe fn send_msg(s: &VSock, m: &msghdr, flags: i32) -> Res<usize> {
    let to = if m.msg_name.is_null() || m.msg_namelen == 0 {
        None
    } else {
        // SAFETY: msg_name is readable for msg_namelen bytes per sendmsg(2).
        Some(unmap(unsafe {
            from_c(m.msg_name as *const sockaddr, m.msg_namelen)?
        }))
    };
    // SAFETY: msg_iov holds msg_iovlen iovecs per sendmsg(2).
    let b = unsafe { gather(m.msg_iov, m.msg_iovlen)? };
    s.send_dgram(&b, flags, to)
}
