//! The peer's I/O thread ("vpp-io"): polls the kernel sockets of global-scope listeners, TCP
//! sessions and connects in progress (non-blocking, at most [`POLL_WAIT`] per round, never with
//! the state lock held), then handles what is ready under the lock, and runs the transport
//! timers. Kernel connects are started here too ([`State::tcp_connect_start`]); only loopback
//! destinations are ever connected.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::socket::{
    bind, connect, getsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    SockaddrIn6,
};
use nix::sys::time::TimeSpec;
use vcl_codec::session_error::{SESSION_E_REFUSED, SESSION_E_SYSCALL, SESSION_E_TIMEDOUT};

use crate::shared::Shared;
use crate::vpp::kinds::{HalfOpen, Kind};
use crate::vpp::state::State;

/// Longest poll per round (bounds timer and wake-up latency).
pub const POLL_WAIT: Duration = Duration::from_millis(2);
/// A kernel connect still pending after this long fails with SESSION_E_TIMEDOUT.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections accepted per listener per round.
const ACCEPT_BATCH: usize = 16;

#[derive(Debug, Clone, Copy)]
enum Key {
    Listener(u64),
    Conn(u64),
    UdpListener(u64),
    Udp(u64),
    HalfOpen(u32),
}

/// The fds to poll this round, and how long the round may wait for them: [`POLL_WAIT`], or
/// less when an owed ACK's tx pass falls due sooner (`State::tcp_program_ack`).
fn targets(st: &State) -> (Vec<(RawFd, PollFlags, Key)>, Duration) {
    let mut v = Vec::new();
    let now = Instant::now();
    let mut wait = POLL_WAIT;
    for pool in &st.sessions.pools {
        for (_, s) in pool.iter() {
            match &s.kind {
                Kind::Listener(Some(l)) => {
                    v.push((l.as_raw_fd(), PollFlags::POLLIN, Key::Listener(s.handle())))
                }
                Kind::Tcp(t) => {
                    if let Some(at) = t.ack_due {
                        wait = wait.min(at.saturating_duration_since(now));
                    }
                    let Some(sock) = &t.sock else { continue };
                    let mut ev = PollFlags::empty();
                    if !t.rd_eof && !t.rx_paused {
                        ev |= PollFlags::POLLIN;
                    }
                    if t.tx_blocked {
                        ev |= PollFlags::POLLOUT;
                    }
                    if !ev.is_empty() {
                        v.push((sock.as_raw_fd(), ev, Key::Conn(s.handle())));
                    }
                }
                Kind::UdpListener(l) => v.push((
                    l.sock.as_raw_fd(),
                    PollFlags::POLLIN,
                    Key::UdpListener(s.handle()),
                )),
                Kind::Udp(u) => {
                    if let Some(sock) = &u.sock {
                        v.push((sock.as_raw_fd(), PollFlags::POLLIN, Key::Udp(s.handle())));
                    }
                }
                _ => {}
            }
        }
    }
    for (i, ho) in st.sessions.half_opens.iter() {
        v.push((ho.sock.as_raw_fd(), PollFlags::POLLOUT, Key::HalfOpen(i)));
    }
    (v, wait)
}

/// Body of the I/O thread.
pub fn run(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 64 << 10];
    let gate = shared.lock().io_gate.clone();
    while !shared.stop.load(Ordering::Acquire) {
        let (t, wait) = targets(&shared.lock());
        let mut ready = Vec::new();
        if t.is_empty() {
            std::thread::sleep(wait);
        } else {
            // The fds belong to sockets in the state; one closed meanwhile makes poll report
            // POLLNVAL (or a reused number a spurious wake-up), both harmless since every action
            // below re-validates under the lock and is non-blocking.
            #[allow(unsafe_code)] // naming state-owned fds by number for poll
            let borrow = |fd: i32| {
                // SAFETY: see above; the borrow only lives for this poll call.
                unsafe { BorrowedFd::borrow_raw(fd) }
            };
            let mut pfds: Vec<PollFd<'_>> = t
                .iter()
                .map(|(fd, ev, _)| PollFd::new(borrow(*fd), *ev))
                .collect();
            pfds.push(PollFd::new(gate.wake_fd(), PollFlags::POLLIN));
            gate.enter_poll();
            let n = ppoll(&mut pfds, Some(TimeSpec::from_duration(wait)), None).unwrap_or(0);
            gate.leave_poll();
            if n > 0 {
                for (p, (_, _, k)) in pfds.iter().zip(&t) {
                    if let Some(r) = p.revents().filter(|r| !r.is_empty()) {
                        ready.push((*k, r));
                    }
                }
            }
        }
        let mut st = shared.lock();
        if st.dead {
            continue;
        }
        for (k, r) in ready {
            handle(&mut st, k, r, &mut buf);
        }
        timers(&mut st);
        // Deliver what the kernel side just queued (RX, close notifications) now rather than
        // at the owning thread's next round, which can be a full idle wait away.
        for t in 0..st.threads {
            crate::events::flush_thread(&mut st, t);
        }
    }
}

fn handle(st: &mut State, k: Key, r: PollFlags, buf: &mut [u8]) {
    match k {
        Key::Listener(h) => {
            for _ in 0..ACCEPT_BATCH {
                let acc = match st.sess(h).map(|s| &s.kind) {
                    Some(Kind::Listener(Some(l))) => l.accept(),
                    _ => return,
                };
                match acc {
                    Ok((sock, _)) => st.tcp_accept(h, sock),
                    Err(_) => return,
                }
            }
        }
        Key::Conn(h) => {
            if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                st.tcp_rx(h, buf);
            }
            if r.intersects(PollFlags::POLLOUT | PollFlags::POLLERR) {
                if let Some(t) = st.tcp_mut(h) {
                    t.tx_blocked = false;
                }
                st.tcp_tx(h);
            }
        }
        Key::UdpListener(h) => st.udp_listener_rx(h, buf),
        Key::Udp(h) => st.udp_rx(h, buf),
        Key::HalfOpen(i) => {
            let Some(ho) = st.sessions.half_opens.remove(i) else {
                return;
            };
            let err = match getsockopt(&ho.sock, sockopt::SocketError) {
                Ok(0) => 0,
                Ok(e) if e == libc::ETIMEDOUT => SESSION_E_TIMEDOUT,
                _ => SESSION_E_REFUSED,
            };
            st.tcp_connect_notify(ho, err);
        }
    }
}

fn timers(st: &mut State) {
    let now = Instant::now();
    let tcp: Vec<u64> = st
        .sessions
        .pools
        .iter()
        .flat_map(|p| p.iter())
        .filter(|(_, s)| matches!(s.kind, Kind::Tcp(_)))
        .map(|(_, s)| s.handle())
        .collect();
    for h in tcp {
        st.tcp_timers(h, now);
    }
    st.udp_timers();
    let expired: Vec<u32> = st
        .sessions
        .half_opens
        .iter()
        .filter(|(_, ho)| now.duration_since(ho.started) >= CONNECT_TIMEOUT)
        .map(|(i, _)| i)
        .collect();
    for i in expired {
        if let Some(ho) = st.sessions.half_opens.remove(i) {
            st.tcp_connect_notify(ho, SESSION_E_TIMEDOUT);
        }
    }
}

fn sockaddr_connect(fd: &OwnedFd, a: SocketAddr) -> nix::Result<()> {
    match a {
        SocketAddr::V4(v4) => connect(fd.as_raw_fd(), &SockaddrIn::from(v4)),
        SocketAddr::V6(v6) => connect(fd.as_raw_fd(), &SockaddrIn6::from(v6)),
    }
}

fn sockaddr_bind(fd: &OwnedFd, a: SocketAddr) -> nix::Result<()> {
    match a {
        SocketAddr::V4(v4) => bind(fd.as_raw_fd(), &SockaddrIn::from(v4)),
        SocketAddr::V6(v6) => bind(fd.as_raw_fd(), &SockaddrIn6::from(v6)),
    }
}

impl State {
    /// Start a non-blocking kernel connect to `dst` (a loopback address, checked by the
    /// caller), from `lcl` when it is a loopback address or a port was asked for. Errors known
    /// at once are returned as SESSION_E_* values.
    pub fn tcp_connect_start(
        &mut self,
        wrk: u32,
        ctx: u32,
        dst: SocketAddr,
        lcl: Option<SocketAddr>,
    ) -> Result<(), i32> {
        let fam = match dst.ip() {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let fd = socket(fam, SockType::Stream, flags, None).map_err(|_| SESSION_E_SYSCALL)?;
        if let Some(l) = lcl {
            sockaddr_bind(&fd, l).map_err(|_| vcl_codec::session_error::SESSION_E_PORTINUSE)?;
        }
        match sockaddr_connect(&fd, dst) {
            Ok(()) | Err(Errno::EINPROGRESS) | Err(Errno::EINTR) => {}
            Err(Errno::ECONNREFUSED) => return Err(SESSION_E_REFUSED),
            Err(e) => {
                tracing::debug!(%e, %dst, "kernel connect failed");
                return Err(SESSION_E_REFUSED);
            }
        }
        self.sessions.half_opens.put(HalfOpen {
            sock: fd,
            app_wrk: wrk,
            ctx,
            started: Instant::now(),
        });
        Ok(())
    }
}
