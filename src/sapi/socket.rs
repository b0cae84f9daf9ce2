//! One worker's app socket: 209-byte `app_sapi_msg_t` datagrams with fds, demultiplexed by
//! type because VPP can slip a SEND_FDS (a new segment's memfd) between a request and its reply.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use vcl_codec::sapi::{msg_type, SapiMsg, SAPI_MSG_LEN};
use vcl_svm::fdpass;

use crate::error::Error;

/// Most segment fds kept for APP_ADD_SEGMENTs still to come. VPP sends one SEND_FDS (one fd)
/// right before each APP_ADD_SEGMENT, so only a few are ever in flight; more than this is a
/// flood from a broken or hostile peer, and the excess is closed (docs/wire.md, "fd flood").
pub const MAX_PENDING_FDS: usize = 8;

/// A connected app socket and the segment fds VPP pushed ahead of their ADD_SEGMENT events.
#[derive(Debug)]
pub struct SapiSocket {
    fd: OwnedFd,
    pending_fds: VecDeque<OwnedFd>,
}

fn io_err(what: &str, e: Errno) -> Error {
    tracing::error!("app socket: {what}: {}", e.desc());
    Error::from_errno(e as i32)
}

impl SapiSocket {
    /// Wrap a connected socket; replies that take longer than `timeout` are errors.
    pub fn new(fd: OwnedFd, timeout: Duration) -> Result<SapiSocket, Error> {
        let tv = nix::sys::time::TimeVal::new(
            timeout.as_secs().min(i64::MAX as u64) as i64,
            timeout.subsec_micros() as i64,
        );
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
            .map_err(|e| io_err("set receive timeout", e))?;
        Ok(SapiSocket {
            fd,
            pending_fds: VecDeque::new(),
        })
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Send one message (with fds, if any).
    pub fn send(&self, msg: &SapiMsg) -> Result<(), Error> {
        tracing::trace!(?msg, "sapi send");
        self.send_bytes(&msg.encode())
    }

    /// Send a raw datagram (the cert/key payload that follows ADD_DEL_CERT_KEY).
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
        match fdpass::send_with_fds(self.fd.as_fd(), bytes, &[]) {
            Ok(n) if n == bytes.len() => Ok(()),
            Ok(n) => {
                tracing::error!("app socket: sent {n} of {} bytes", bytes.len());
                Err(Error::ConnReset)
            }
            Err(e) => Err(io_err("send", e)),
        }
    }

    /// Send `msg` and then `payload` as a second datagram, in one system call (see
    /// `fdpass::send_two`: VPP gives the payload only microseconds to arrive).
    pub fn send_with_payload(&self, msg: &SapiMsg, payload: &[u8]) -> Result<(), Error> {
        tracing::trace!(?msg, len = payload.len(), "sapi send with payload");
        let head = msg.encode();
        let n = loop {
            match fdpass::send_two(self.fd.as_fd(), &head, payload) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(io_err("send", e)),
                Ok(n) => break n,
            }
        };
        match n {
            2 => Ok(()),
            1 => self.send_bytes(payload),
            _ => Err(io_err("send", Errno::EAGAIN)),
        }
    }

    /// Receive the next datagram: exactly 209 bytes (a shorter one means a broken peer).
    fn recv_one(&self) -> Result<(SapiMsg, Vec<OwnedFd>), Error> {
        let mut buf = [0u8; SAPI_MSG_LEN];
        let (n, fds) = loop {
            match fdpass::recv_with_fds(self.fd.as_fd(), &mut buf) {
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    tracing::error!("app socket: no reply from VPP before the timeout");
                    return Err(Error::TimedOut);
                }
                Err(e) => return Err(io_err("receive", e)),
                Ok(r) => break r,
            }
        };
        if n == 0 {
            tracing::error!("app socket: VPP closed the connection");
            return Err(Error::ConnReset);
        }
        if n != SAPI_MSG_LEN {
            tracing::error!("app socket: expected a {SAPI_MSG_LEN}-byte message, got {n} bytes");
            return Err(Error::ConnReset);
        }
        let msg = SapiMsg::decode(&buf).map_err(|e| {
            tracing::error!("app socket: {e}");
            Error::ConnReset
        })?;
        tracing::trace!(?msg, n_fds = fds.len(), "sapi recv");
        Ok((msg, fds))
    }

    /// Wait for a message of type `want`, queueing SEND_FDS fds met on the way and ignoring
    /// other types (logged), as VPP ignores what it does not expect.
    pub fn recv_reply(&mut self, want: u8) -> Result<(SapiMsg, Vec<OwnedFd>), Error> {
        loop {
            let (msg, fds) = self.recv_one()?;
            let t = msg.msg_type();
            if t == want {
                return Ok((msg, fds));
            }
            if t == msg_type::SEND_FDS {
                self.queue_fds(fds);
                continue;
            }
            tracing::warn!("app socket: expected message type {want}, got {t}; ignored");
        }
    }

    /// The fd of a segment VPP announced with APP_ADD_SEGMENT: already queued, or the next
    /// SEND_FDS to arrive.
    pub fn take_segment_fd(&mut self) -> Result<OwnedFd, Error> {
        if let Some(fd) = self.pending_fds.pop_front() {
            return Ok(fd);
        }
        let (_, fds) = self.recv_reply(msg_type::SEND_FDS)?;
        self.queue_fds(fds);
        self.pending_fds.pop_front().ok_or_else(|| {
            tracing::error!("app socket: SEND_FDS carried no fd");
            Error::ConnReset
        })
    }

    /// Keep the first fd of a SEND_FDS (VPP sends exactly one) while fewer than
    /// [`MAX_PENDING_FDS`] wait; close the rest.
    fn queue_fds(&mut self, fds: Vec<OwnedFd>) {
        let n = fds.len();
        let mut fds = fds.into_iter();
        if let Some(fd) = fds.next() {
            if self.pending_fds.len() < MAX_PENDING_FDS {
                self.pending_fds.push_back(fd);
            } else {
                tracing::warn!(
                    "app socket: {MAX_PENDING_FDS} segment fds already wait; closed one"
                );
            }
        }
        if n > 1 {
            tracing::warn!("app socket: SEND_FDS carried {n} fds (VPP sends 1); closed the extra");
        }
    }

    /// Segment fds received and not yet claimed by an APP_ADD_SEGMENT.
    pub fn pending_fds(&self) -> usize {
        self.pending_fds.len()
    }

    /// Wait up to `timeout` for VPP to close its end (it does after APP_DETACH and worker
    /// delete). Returns whether it did; anything VPP sends meanwhile is discarded.
    pub fn wait_peer_close(&self, timeout: Duration) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let ms = PollTimeout::try_from(left.as_millis().clamp(1, 1000) as i32)
                .unwrap_or(PollTimeout::ZERO);
            let mut p = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut p, ms) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Err(_) => return true,
                Ok(_) => {}
            }
            let mut buf = [0u8; SAPI_MSG_LEN];
            match fdpass::recv_with_fds(self.fd.as_fd(), &mut buf) {
                Ok((0, _)) | Err(_) => return true,
                Ok(_) => continue, // e.g. a late SEND_FDS: its fds close when dropped
            }
        }
    }

    /// In a forked child, for a socket that is the parent's: close our copy (VPP must see the
    /// parent's socket close when the parent closes it, not when the child exits too), leaving
    /// a socket whose peer is gone in its place.
    pub fn orphan(&mut self) {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        if let Ok((mine, _gone)) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        ) {
            self.fd = mine;
            self.pending_fds.clear();
        }
    }

    /// Whether VPP hung up (poll without waiting).
    pub fn peer_gone(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut p = [PollFd::new(self.fd.as_fd(), PollFlags::empty())];
        matches!(poll(&mut p, PollTimeout::ZERO), Ok(n) if n > 0
            && p[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)))
    }
}
