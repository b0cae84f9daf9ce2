//! The library's typed Rust API for in-process users (the LD_PRELOAD shim in `ldpreload/`).
//!
//! A thin layer over the internals (`app`, `worker`, `session`, `epoll`): handles are the
//! library's session handles, addresses are `SocketAddr`, errors are [`Error`]. Every session
//! call names the [`Worker`] that owns the session, so any thread may use a session: the call
//! runs under that worker's own lock (never a global one).

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use vcl_codec::msg::Ip46;
use vcl_codec::session_error::SESSION_E_ALREADY_LISTENING;
use vcl_svm::fifo::notify::SVM_FIFO_WANT_DEQ_NOTIF;

pub use crate::config::{load as load_config, Config, CONF_DEFAULT};
pub use crate::error::{Error, Result};
pub use crate::logging::{init as init_logging, set_debug};
pub use crate::sapi::addr_display;
use crate::session::{self, Endpoint, State};
use crate::table::{Events, FifoRef};
use crate::{app, epoll, worker};

/// A VCL worker (one app worker in VPP, with its own app mq and sessions).
#[derive(Clone)]
pub struct Worker(Arc<worker::Worker>);

impl Worker {
    /// Our worker index (the top byte of its session handles).
    pub fn index(&self) -> u32 {
        self.0.index
    }

    /// The app mq's eventfd (use-mq-eventfd): readable when VPP queued events for this worker.
    pub fn mq_eventfd(&self) -> Option<RawFd> {
        self.0.conn().app_mq.eventfd()
    }

    /// The worker's epoll fd over its mq eventfd and app socket (-1 without use-mq-eventfd).
    pub fn mqs_epfd(&self) -> RawFd {
        self.0.mqs_epfd()
    }

    /// Whether VPP dropped this worker (its app socket hung up).
    pub fn is_detached(&self) -> bool {
        self.0.is_detached()
    }

    /// How many sessions (of any state) the worker holds.
    pub fn session_count(&self) -> usize {
        self.0.sessions.lock().slab.len()
    }

    /// How many sessions the app has not closed (closed ones only wait for VPP's cleanup).
    pub fn open_session_count(&self) -> usize {
        let ss = self.0.sessions.lock();
        ss.slab
            .iter()
            .filter(|(_, s)| s.state != State::AppClosed)
            .count()
    }

    /// In a forked child: whether the library took this worker over at fork (it has a VPP
    /// worker of this process; its listeners listen here too, under the same handles).
    pub fn adopted(&self) -> bool {
        self.0.parent_ids().is_some() && !self.0.is_foreign()
    }

    /// In a forked child: whether this is one of the parent's workers, inert here.
    pub fn is_foreign(&self) -> bool {
        self.0.is_foreign()
    }

    /// Whether both name the same worker.
    pub fn same(&self, other: &Worker) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Attach to VPP (worker 0 becomes the calling thread's). A refused or failed attach is
/// `ConnRefused`; the reason has been logged.
pub fn app_create(cfg: Config, name: Option<String>) -> Result<()> {
    app::create(cfg, name).map_err(|e| match e {
        app::CreateError::Vcl(e) => e,
        app::CreateError::AttachFailed => Error::ConnRefused,
    })
}

/// Whether the app is attached.
pub fn is_attached() -> bool {
    app::is_attached()
}

/// Register the calling thread as a new worker and make it the thread's current one.
pub fn worker_register() -> Result<Worker> {
    app::register_worker()?;
    worker_current().ok_or(Error::BadFd)
}

/// The calling thread's worker.
pub fn worker_current() -> Option<Worker> {
    worker::current().map(Worker)
}

/// In a forked child: forget the calling thread's worker (it is the parent's: its queues and
/// sessions must not be touched), so [`worker_register`] can give the child its own.
pub fn fork_child_forget_worker() {
    worker::set_current(worker::INVALID, None);
}

/// In a forked child: whether listeners listen again from the child at fork (the default) or
/// only once [`relisten`] asks (upstream vls's model; see the library's `app::fork`).
pub fn set_fork_relisten(at_fork: bool) {
    app::fork::set_relisten_at_fork(at_fork);
}

/// In a forked child, without the listen at fork ([`set_fork_relisten`]): listen from this
/// process's VPP worker on the listener `sh` inherited from the parent, waiting (up to the
/// session-timeout) for VPP's answer. True if it listens (also when it already did).
pub fn relisten(w: &Worker, sh: u32) -> Result<bool> {
    let mut ss = w.0.sessions.lock();
    let i = session::lookup(&w.0, &ss, sh)?;
    session::relisten(&w.0, &mut ss, app::session_timeout(), Some(i));
    Ok(ss.get(i).is_some_and(|s| s.state == State::Listen))
}

/// Stop `w`'s listening on listener `sh` in VPP, leaving our session as it is: a forked child
/// that takes over a listener stops the parent's worker from being handed connections it never
/// accepts (VPP's app listener keeps the workers that listen).
pub fn unlisten_worker(w: &Worker, sh: u32) -> Result<()> {
    let conn = w.0.conn();
    unlisten_as(w, sh, (conn.api_client_handle, conn.vpp_wrk_index))
}

/// In a forked child, for a worker the library took over at fork (see [`Worker::adopted`]):
/// stop the *parent's* VPP worker listening on listener `sh` (the child listens there too).
pub fn unlisten_parent(w: &Worker, sh: u32) -> Result<()> {
    let ids = w.0.parent_ids().ok_or(Error::BadFd)?;
    unlisten_as(w, sh, ids)
}

fn unlisten_as(w: &Worker, sh: u32, (client, wrk): (u32, u32)) -> Result<()> {
    use vcl_codec::msg::{CtrlMsg, Unlisten};
    let ss = w.0.sessions.lock();
    let i = session::lookup(&w.0, &ss, sh)?;
    let s = ss.get(i).expect("looked up");
    if s.state != State::Listen {
        return Err(Error::BadFd);
    }
    let msg = CtrlMsg::Unlisten(Unlisten {
        client_index: client,
        context: w.0.index,
        wrk_index: wrk,
        handle: s.vpp_handle,
    });
    // straight to VPP's queue: in a forked child the parent's worker is inert (detached) here
    let vpp = w.0.conn().vpp.clone();
    vpp.send_ctrl(vpp.ctrl, &msg)
}

/// Unregister the calling thread's worker (its sessions go with it).
pub fn worker_unregister() {
    app::unregister_worker();
}

fn endpoint(a: SocketAddr) -> Endpoint {
    let (ip, is_ip4) = Ip46::from_ip(a.ip());
    Endpoint {
        is_ip4,
        ip,
        port: a.port(),
    }
}

fn sockaddr(e: &Endpoint) -> SocketAddr {
    SocketAddr::new(e.ip.to_ip(e.is_ip4), e.port)
}

/// Run `f` on session `sh` of `w` (EBADFD if the handle names none).
fn with_session<T>(w: &Worker, sh: u32, f: impl FnOnce(&session::Session) -> T) -> Result<T> {
    let ss = w.0.sessions.lock();
    let i = session::lookup(&w.0, &ss, sh)?;
    Ok(f(ss.get(i).expect("looked up")))
}

/// A new TCP session on `w`.
pub fn session_create(w: &Worker, nonblocking: bool) -> Result<u32> {
    session::create(&w.0, 0, nonblocking)
}

/// A new UDP session on `w`: [`bind`] makes it listen (connectionless), [`connect`] connects
/// it to one peer, [`send_dgram`] with an address binds it first if needed (see the library's
/// datagram model in `session::dgram`).
pub fn udp_session_create(w: &Worker, nonblocking: bool) -> Result<u32> {
    session::create(&w.0, 1, nonblocking)
}

/// One datagram of UDP session `sh`, as [`read`] takes it (one per call; a short `buf` gets
/// its first bytes and, unless `peek`, the rest is dropped): bytes copied, the datagram's
/// whole length, its sender. The sender is read after the datagram: a caller sharing the
/// session between threads serialises its reads and sends (as upstream's recvfrom needs).
pub fn recv_dgram(
    w: &Worker,
    sh: u32,
    buf: &mut [u8],
    peek: bool,
) -> Result<(usize, usize, SocketAddr)> {
    let full = {
        let mut ss = w.0.sessions.lock();
        let i = session::lookup(&w.0, &ss, sh)?;
        if ss.get(i).and_then(session::dgram_next_len).is_none() {
            w.0.drain(&mut ss);
        }
        ss.get(i).and_then(session::dgram_next_len)
    };
    let n = session::read(&w.0, sh, buf, peek)?;
    let from = with_session(w, sh, |s| sockaddr(&s.rmt))?;
    Ok((n, full.map_or(n, |f| f as usize), from))
}

/// One datagram to `to` (a connectionless session: it becomes the session's remote, and a
/// session VPP does not know yet is bound first) or, with None, to the session's remote.
/// `Errno(EMSGSIZE)` when it can never fit.
pub fn send_dgram(w: &Worker, sh: u32, buf: &[u8], to: Option<SocketAddr>) -> Result<usize> {
    if let Some(to) = to {
        session::dgram_set_remote(&w.0, sh, endpoint(to))?;
    }
    session::write(&w.0, sh, buf, true)
}

pub fn bind(w: &Worker, sh: u32, addr: SocketAddr) -> Result<()> {
    session::bind(&w.0, sh, endpoint(addr))
}

/// LISTEN, waiting (up to the configured session-timeout) for VPP's answer.
pub fn listen(w: &Worker, sh: u32) -> Result<()> {
    session::listen(&w.0, sh, app::session_timeout())
}

/// The next accepted session (a non-blocking listener says `Again` when there is none).
pub fn accept(w: &Worker, sh: u32, nonblocking_child: bool) -> Result<(u32, SocketAddr)> {
    session::accept(&w.0, sh, nonblocking_child).map(|(h, e)| (h, sockaddr(&e)))
}

/// CONNECT; a non-blocking session says `InProgress` (see [`status`] for the outcome).
pub fn connect(w: &Worker, sh: u32, addr: SocketAddr, timeout: Option<Duration>) -> Result<()> {
    let t = timeout.unwrap_or_else(app::session_timeout);
    session::connect(&w.0, sh, endpoint(addr), t)
}

pub fn read(w: &Worker, sh: u32, buf: &mut [u8], peek: bool) -> Result<usize> {
    session::read(&w.0, sh, buf, peek)
}

pub fn write(w: &Worker, sh: u32, buf: &[u8]) -> Result<usize> {
    session::write(&w.0, sh, buf, false)
}

pub fn shutdown(w: &Worker, sh: u32, how: i32) -> Result<()> {
    session::shutdown(&w.0, sh, how)
}

pub fn close(w: &Worker, sh: u32) -> Result<()> {
    session::close(&w.0, sh)
}

pub fn set_nonblocking(w: &Worker, sh: u32, on: bool) -> Result<()> {
    let mut ss = w.0.sessions.lock();
    let i = session::lookup(&w.0, &ss, sh)?;
    ss.get_mut(i).expect("looked up").nonblocking = on;
    Ok(())
}

pub fn local_addr(w: &Worker, sh: u32) -> Result<SocketAddr> {
    with_session(w, sh, |s| sockaddr(&s.lcl))
}

/// The peer's address (`NotConn` until connected or accepted).
pub fn peer_addr(w: &Worker, sh: u32) -> Result<SocketAddr> {
    with_session(w, sh, |s| match s.state {
        State::Ready | State::VppClosing | State::Reset => Ok(sockaddr(&s.rmt)),
        _ => Err(Error::NotConn),
    })?
}

/// Bytes readable now (a listener: pending accepts).
pub fn nread(w: &Worker, sh: u32) -> Result<usize> {
    with_session(w, sh, |s| session::read_ready(s).map(|n| n.max(0) as usize))?
}

/// Bytes writable now.
pub fn nwrite(w: &Worker, sh: u32) -> Result<usize> {
    with_session(w, sh, |s| {
        session::write_ready(s).map(|n| n.max(0) as usize)
    })?
}

/// (rx, tx) fifo sizes, or the configured ones before the session has fifos.
pub fn buf_sizes(w: &Worker, sh: u32) -> Result<(u32, u32)> {
    with_session(w, sh, |s| {
        let size = |f: Option<&FifoRef>| f.map(|f| f.fifo().size());
        let fifos = s.fifos.as_ref();
        let (drx, dtx) = app::fifo_sizes();
        (
            size(fifos.map(|f| &f.rx)).unwrap_or(drx),
            size(fifos.map(|f| &f.tx)).unwrap_or(dtx),
        )
    })
}

/// Where a session is in its life, as socket calls need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Created (maybe bound), not yet known to VPP.
    Idle,
    Connecting,
    Listening,
    Connected,
    /// The peer closed: remaining data can be read.
    PeerClosed,
    Reset,
    /// A connect or listen failed with this error, or VPP dropped the session.
    Failed(Error),
    Closed,
}

pub fn status(w: &Worker, sh: u32) -> Result<Status> {
    with_session(w, sh, |s| match s.state {
        State::Closed => Status::Idle,
        State::Connecting | State::Binding => Status::Connecting,
        State::Listen => Status::Listening,
        State::Ready => Status::Connected,
        State::VppClosing => Status::PeerClosed,
        State::Reset => Status::Reset,
        State::Detached if s.vpp_error == SESSION_E_ALREADY_LISTENING => {
            Status::Failed(Error::AddrInUse)
        }
        State::Detached if s.vpp_error != 0 => Status::Failed(Error::ConnRefused),
        State::Detached => Status::Failed(Error::ConnReset),
        State::AppClosed => Status::Closed,
    })
}

/// The configured busy-poll ceiling in µs (`busy-poll-usec` / VCL_BUSY_POLL_USEC; 0: off).
pub fn busy_poll_usec() -> u32 {
    crate::wait::ceiling_us()
}

/// How long a waiter should busy-poll before it sleeps, now: the library's adaptive per-thread
/// window under `ceiling_us` (zero when that is 0), for waits built outside the library such
/// as the LD_PRELOAD shim's mixed kernel/VPP sets. Report each spin's outcome with
/// [`busy_poll_outcome`] and the same ceiling.
pub fn busy_poll_window(ceiling_us: u32) -> Duration {
    crate::wait::spin_window(ceiling_us)
}

/// A spin of [`busy_poll_window`] ended: it found what it waited for (`true`: the window
/// grows) or not (it shrinks, so an idle waiter soon costs next to nothing before it sleeps).
pub fn busy_poll_outcome(paid_off: bool, ceiling_us: u32) {
    crate::wait::spin_outcome(paid_off, ceiling_us);
}

/// A wait whose spin missed ended, after sleeping, `waited` after the spin began: within
/// `ceiling_us` (and the library's default ceiling, whichever is lower) the window becomes
/// that long and half again, as the library's own waits do (a reply that must beat VPP's next
/// loop is then caught by the next spin instead of slept through: docs/benchmarking.md, "Waits
/// that span VPP's loops").
pub fn busy_poll_learn(waited: Duration, ceiling_us: u32) {
    crate::wait::spin_learn(
        waited,
        ceiling_us.min(crate::config::DEFAULT_BUSY_POLL_USEC),
    );
}

/// Declare that every wait on this process's sessions goes through the caller (the LD_PRELOAD
/// shim), which calls [`sleep_begin`] before it sleeps. Sessions then hold has_event after a
/// drain even when non-blocking (see the library's `Sessions::hold_rx`), as blocking sessions
/// always do. Never call it in a process whose app may sleep on a worker's mq eventfd itself.
pub fn set_caller_waits() {
    crate::session::set_caller_waits();
}

/// A caller's wait on `w`'s sessions is about to sleep: clear the has_event a drained session
/// kept set, so VPP signals its next bytes, and hold none while it sleeps. True when bytes came
/// meanwhile (look again first). Pair every call with [`sleep_end`].
pub fn sleep_begin(w: &Worker) -> bool {
    w.0.sessions.lock().begin_sleep()
}

/// The wait [`sleep_begin`] announced is over.
pub fn sleep_end(w: &Worker) {
    w.0.sessions.lock().end_sleep();
}

/// Handle every event queued for `w` now.
pub fn drain(w: &Worker) {
    let mut ss = w.0.sessions.lock();
    w.0.drain(&mut ss);
}

/// Arm a dequeue notification on the tx fifo, so VPP signals when it frees space.
fn arm_tx(s: &session::Session) {
    if let Some(f) = s.fifos.as_ref() {
        f.tx_sig.fifo().add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
    }
}

/// Readiness of several sessions of `w` at once: drains the worker's events, then fills each
/// `(handle, wanted epoll bits, ready bits)`; ready bits are what is wanted plus ERR/HUP (an
/// unknown handle says EPOLLNVAL-like `EPOLLERR|EPOLLHUP`). Sessions waiting for EPOLLOUT that
/// are not writable ask VPP to signal freed space. Returns how many are ready.
pub fn readiness(w: &Worker, items: &mut [(u32, u32, u32)]) -> usize {
    let mut ss = w.0.sessions.lock();
    w.0.drain(&mut ss);
    let always = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
    let mut n = 0;
    for (sh, want, got) in items.iter_mut() {
        *got = match session::lookup(&w.0, &ss, *sh) {
            Ok(i) => {
                let s = ss.get(i).expect("looked up");
                let r = session::readiness(s).bits();
                if *want & libc::EPOLLOUT as u32 != 0 && r & libc::EPOLLOUT as u32 == 0 {
                    arm_tx(s);
                }
                r & (*want | always | libc::EPOLLRDHUP as u32)
            }
            Err(_) => always,
        };
        n += usize::from(*got != 0);
    }
    n
}

/// vppcom_epoll_create on `w`.
pub fn epoll_create(w: &Worker) -> Result<u32> {
    epoll::create(&w.0)
}

/// vppcom_epoll_ctl: `ev` is (events, data) for ADD and MOD.
pub fn epoll_ctl(w: &Worker, vep: u32, op: i32, sh: u32, ev: Option<(u32, u64)>) -> Result<()> {
    epoll::ctl(
        &w.0,
        vep,
        op,
        sh,
        ev.map(|(e, d)| (Events::from_bits(e), d)),
    )
}

/// vppcom_epoll_wait: fills (events, data) pairs; `wait_ms` < 0 waits forever.
pub fn epoll_wait(w: &Worker, vep: u32, out: &mut [(u32, u64)], wait_ms: f64) -> Result<usize> {
    let mut buf = [(Events::NONE, 0u64); 64];
    let n_max = out.len().min(buf.len());
    let n = epoll::wait(&w.0, vep, &mut buf[..n_max], wait_ms)?;
    for (o, (e, d)) in out.iter_mut().zip(&buf[..n]) {
        *o = (e.bits(), *d);
    }
    Ok(n)
}

/// vppcom_poll over (handle, events, revents) of `w`'s sessions.
pub fn poll(w: &Worker, fds: &mut [(u32, i16, i16)], wait_s: f64) -> Result<usize> {
    epoll::poll(&w.0, fds, wait_s)
}
