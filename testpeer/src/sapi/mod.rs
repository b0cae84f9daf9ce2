//! The sapi thread: VPP main thread's file-poll part for the namespace socket. It accepts
//! connections (each gets the next socket index), reads one 209-byte datagram per readiness
//! like session_api.c `sapi_sock_read_ready`, dispatches ATTACH / ADD_DEL_WORKER /
//! ADD_DEL_CERT_KEY under the state lock (VPP takes the worker barrier), and sends replies with
//! their fds. Broken connections detach their worker (`sapi_socket_detach`). Faults that act on
//! the connection (drop, abrupt exit, reply delay) are applied here.

pub mod socket;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use vcl_codec::sapi::{CertKeyAddDel, SapiMsg, SAPI_MSG_LEN};
use vcl_codec::DecodeError;

use crate::log::{Dir, MsgKind};
use crate::shared::Shared;
use crate::vpp::app::MAX_CERTKEY_LEN;
use vcl_svm::fdpass;

use self::socket::Recv;
use crate::vpp::state::{SapiReply, Sock, State, INVALID};

/// Poll timeout: the loop also re-checks the stop flag this often.
const POLL_MS: u16 = 100;
/// `sapi_socket_receive_wait`: reads of the cert/key payload, and how long they may wait for it.
/// VPP makes 6 non-blocking reads 1 µs apart. VPP's main loop polls the app socket, so its
/// tries start whenever the loop comes by. This thread sleeps on the socket instead: the
/// header's arrival wakes it, and on a loaded machine it then preempts the sender between
/// its two datagrams (the kernel reschedules inside sendmmsg), a window VPP hardly ever
/// sees; 5 pauses of 1 ms once missed a payload under two test suites at once. So the reads
/// wait on the socket, up to [`PAYLOAD_WAIT`] in all. The rule stays VPP's: no payload within
/// the reads is SESSION_E_INVALID, and a late payload is a malformed message that detaches
/// the worker.
const PAYLOAD_TRIES: u32 = 6;
const PAYLOAD_WAIT: Duration = Duration::from_millis(100);

/// Body of the sapi thread; returns when the peer stops or dies.
pub fn run(shared: Arc<Shared>, listener: OwnedFd) {
    while !shared.stop.load(Ordering::Acquire) {
        let socks = live_sockets(&shared);
        let ready = match wait(&shared, &listener, &socks) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(%e, "sapi poll failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if ready.listener {
            accept_all(&shared, listener.as_raw_fd());
        }
        for (sock, fd) in ready.socks {
            if shared.stop.load(Ordering::Acquire) {
                break;
            }
            handle_readable(&shared, sock, fd);
        }
    }
    tracing::debug!("sapi thread exits");
}

/// Sockets to poll; also drops the fds of connections closed since the last round (we are not
/// polling them now, so their numbers cannot be confused with new fds).
fn live_sockets(shared: &Shared) -> Vec<(u32, RawFd)> {
    let mut st = shared.lock();
    st.graveyard.clear();
    st.socks
        .iter()
        .filter_map(|(i, s)| s.fd.as_ref().map(|f| (i, f.as_raw_fd())))
        .collect()
}

struct Ready {
    listener: bool,
    socks: Vec<(u32, RawFd)>,
}

/// Name a connection fd the state owns by number, for one poll of this thread (BorrowedFd
/// needs unsafe for that). The state's connection fds are closed only by this thread, through
/// the graveyard drained in `live_sockets`, so one stays open while this thread polls it.
#[allow(unsafe_code)]
fn state_fd<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: open for the poll (above: only this thread closes it, not while it polls).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn wait(shared: &Shared, listener: &OwnedFd, socks: &[(u32, RawFd)]) -> nix::Result<Ready> {
    let ev = PollFlags::POLLIN;
    let mut pfds = vec![
        PollFd::new(shared.wake.as_fd(), ev),
        PollFd::new(listener.as_fd(), ev),
    ];
    for &(_, fd) in socks {
        pfds.push(PollFd::new(state_fd(fd), ev));
    }
    poll(&mut pfds, PollTimeout::from(POLL_MS))?;
    let fired = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
    if fired(&pfds[0]) {
        let _ = shared.wake.read();
    }
    let ready_socks = socks
        .iter()
        .zip(&pfds[2..])
        .filter(|(_, p)| fired(p))
        .map(|(s, _)| *s)
        .collect();
    Ok(Ready {
        listener: fired(&pfds[1]),
        socks: ready_socks,
    })
}

/// session_api.c `sapi_sock_accept_ready`: every connection gets a socket index before any
/// message is read; its worker is unknown until it attaches.
fn accept_all(shared: &Shared, listener: RawFd) {
    loop {
        match socket::accept(listener) {
            Ok(Some(fd)) => {
                let mut st = shared.lock();
                let idx = st.socks.put(Sock {
                    fd: Some(fd),
                    app_wrk_index: INVALID,
                    n_rx: 0,
                });
                tracing::debug!(sock = idx, "sapi connection accepted");
            }
            Ok(None) => return,
            Err(e) => {
                tracing::error!(%e, "sapi accept failed");
                return;
            }
        }
    }
}

fn handle_readable(shared: &Shared, sock: u32, fd: RawFd) {
    let mut buf = [0u8; SAPI_MSG_LEN];
    let r = socket::recv(fd, &mut buf);
    let reply = {
        let mut st = shared.lock();
        if st
            .socks
            .get(sock)
            .and_then(|s| s.fd.as_ref())
            .map(|f| f.as_raw_fd())
            != Some(fd)
        {
            return; // closed meanwhile
        }
        match r {
            Recv::WouldBlock => return,
            Recv::Eof | Recv::Error(_) => {
                st.note(Dir::Rx, MsgKind::Close, sock);
                broken(&mut st, sock, true);
                return;
            }
            Recv::Data(n) => match count_and_apply_faults(shared, &mut st, sock) {
                FaultAction::None => on_datagram(&mut st, sock, fd, &buf, n),
                FaultAction::Stop => return,
            },
        }
    };
    if let Some(r) = reply {
        send_reply(shared, r);
    }
}

enum FaultAction {
    None,
    Stop,
}

fn count_and_apply_faults(shared: &Shared, st: &mut State, sock: u32) -> FaultAction {
    let total = shared.rx_total.fetch_add(1, Ordering::AcqRel) + 1;
    let n = st.socks.get_mut(sock).map_or(0, |s| {
        s.n_rx += 1;
        s.n_rx
    });
    if st.faults.exit_after.is_some_and(|k| total >= k) {
        tracing::error!(total, "fault: abrupt exit");
        if st.faults.abort_process {
            // Die like a crashed VPP, without leaving a core file behind in CI.
            use nix::sys::resource::{setrlimit, Resource};
            let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
            std::process::abort();
        }
        die(shared, st);
        return FaultAction::Stop;
    }
    if st.faults.drop_after.is_some_and(|k| n >= k) {
        tracing::warn!(sock, n, "fault: dropping connection");
        st.socket_detach(sock);
        st.close_socket_w_handle(State::sock_handle(sock));
        return FaultAction::Stop;
    }
    FaultAction::None
}

/// In-process abrupt exit: every connection closed without a reply, all threads stop.
fn die(shared: &Shared, st: &mut State) {
    st.dead = true;
    for i in st.socks.indices() {
        if let Some(fd) = st.socks.get_mut(i).and_then(|s| s.fd.take()) {
            socket::shutdown(fd.as_raw_fd());
            st.graveyard.push(fd);
        }
    }
    shared.stop.store(true, Ordering::Release);
}

/// A connection broke (EOF, error, or a datagram of the wrong size): detach its worker. If the
/// socket survives (it had no worker, or its worker was registered on another socket), VPP
/// keeps it; after EOF/error we stop reading it but keep its index (VPP never frees it).
fn broken(st: &mut State, sock: u32, dead: bool) {
    st.socket_detach(sock);
    if dead {
        st.zombify(sock);
    }
}

fn on_datagram(st: &mut State, sock: u32, fd: RawFd, buf: &[u8], n: usize) -> Option<SapiReply> {
    if n != SAPI_MSG_LEN {
        // vppinfra `default_socket_recvmsg`: "malformed message" → the worker is detached.
        st.note(Dir::Rx, MsgKind::Malformed(n), sock);
        broken(st, sock, false);
        return None;
    }
    st.note(Dir::Rx, MsgKind::Sapi(buf[0]), sock);
    match SapiMsg::decode(buf) {
        Ok(SapiMsg::Attach(a)) => Some(st.attach(sock, a)),
        Ok(SapiMsg::AddDelWorker(m)) => st.worker_add_del(sock, m),
        Ok(SapiMsg::AddDelCertKey(m)) => {
            let payload = read_cert_payload(st, sock, fd, &m);
            Some(st.cert_key(sock, m, payload))
        }
        Ok(other) => {
            unknown(st, sock, other.msg_type());
            None
        }
        Err(DecodeError::UnknownSapiType(t)) => {
            unknown(st, sock, t);
            None
        }
        Err(e) => {
            tracing::warn!(sock, %e, "undecodable sapi message ignored");
            None
        }
    }
}

fn unknown(st: &State, sock: u32, ty: u8) {
    let wrk = st.socks.get(sock).map_or(INVALID, |s| s.app_wrk_index);
    tracing::warn!(sock, wrk, ty, "app wrk unknown message type");
}

/// The second datagram of a cert/key add (session_api.c `sapi_socket_receive_wait`): up to
/// [`PAYLOAD_TRIES`] reads within [`PAYLOAD_WAIT`], each consuming a datagram; only one of exactly
/// `certkey_len` bytes counts (a longer one is truncated to that size and accepted). Not read
/// at all when the length is over VPP's limit. A zero length would make VPP allocate 2^64
/// bytes; we refuse.
fn read_cert_payload(st: &mut State, sock: u32, fd: RawFd, m: &CertKeyAddDel) -> Option<Vec<u8>> {
    if !m.is_add || m.certkey_len > MAX_CERTKEY_LEN || m.certkey_len == 0 {
        return None;
    }
    let mut buf = vec![0u8; usize::from(m.certkey_len)];
    let deadline = std::time::Instant::now() + PAYLOAD_WAIT;
    let mut tries = 0;
    while tries < PAYLOAD_TRIES {
        match socket::recv(fd, &mut buf) {
            Recv::Data(n) if n == buf.len() => {
                st.note(Dir::Rx, MsgKind::CertKeyPayload, sock);
                return Some(buf);
            }
            Recv::Data(n) => st.note(Dir::Rx, MsgKind::Malformed(n), sock),
            Recv::WouldBlock => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return None;
                }
                let mut p = [PollFd::new(state_fd(fd), PollFlags::POLLIN)];
                let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
                let _ = poll(&mut p, PollTimeout::from(ms));
                continue;
            }
            _ => return None,
        }
        tries += 1;
    }
    None
}

/// Send a reply outside the state lock, after the configured delay.
fn send_reply(shared: &Shared, r: SapiReply) {
    let (fd, delay) = {
        let st = shared.lock();
        let fd = st
            .socks
            .get(r.sock)
            .and_then(|s| s.fd.as_ref())
            .and_then(|f| f.try_clone().ok());
        (fd, st.faults.reply_delay)
    };
    let Some(fd) = fd else {
        return;
    };
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
    let fds: Vec<RawFd> = r.fds.iter().map(|f| f.as_raw_fd()).collect();
    match fdpass::send_with_fds(fd.as_fd(), &r.bytes, &fds) {
        Ok(_) => shared
            .lock()
            .note(Dir::Tx, MsgKind::Sapi(r.bytes[0]), r.sock),
        Err(e) => tracing::error!(%e, sock = r.sock, "sapi reply not sent"),
    }
}
