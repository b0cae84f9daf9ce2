//! A VPP socket behind a descriptor, and the blocking, timeout and errno semantics of the
//! socket calls on it. The library's sessions are always non-blocking; blocking is done
//! here (waiting on the owning worker's events) so SO_RCVTIMEO / SO_SNDTIMEO apply.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libc::{EPOLLIN, EPOLLOUT};
use vcl::api::{self, Error, Status, Worker};
use vcl_svm::sync::Mutex;

use crate::addr::errno_of;
use crate::real;

/// [`VSock::dormant`]: inherited, the parent used it (it keeps listening there).
pub const DORMANT_PARENT_ACTIVE: u8 = 1;
/// Inherited, the parent never used it (taking it over stops the parent's listening).
pub const DORMANT_PARENT_IDLE: u8 = 2;
/// Being taken over by another thread.
const TAKING: u8 = 3;

pub type Res<T> = Result<T, i32>;

/// Options kept per socket (what was set is what getsockopt reports).
#[derive(Default)]
pub struct Opts {
    pub bound: Option<SocketAddr>,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    /// Other accepted options by (level, name): their raw value.
    pub vals: HashMap<(i32, i32), Vec<u8>>,
    /// SO_ERROR already reported the failed connect.
    pub error_taken: bool,
    /// A UDP socket's connected peer.
    pub peer: Option<SocketAddr>,
}

/// One VPP socket; shared by every descriptor dup'ed from it, closed in VPP when the last
/// goes away.
pub struct VSock {
    /// The worker that owns the session: every call runs on it, from whatever thread.
    pub w: Worker,
    pub sh: u32,
    pub family: i32,
    /// A UDP socket (crate::udp).
    pub dgram: bool,
    /// Held around each datagram call (see crate::udp).
    pub dgram_lock: Mutex<()>,
    pub nonblock: AtomicBool,
    /// (In an Arc so that fork's prepare handler can hold it: see `crate::fork_hooks`.)
    pub opts: Arc<Mutex<Opts>>,
    /// Where it listens, once it does (a forked child listens there again).
    pub listen_addr: OnceLock<SocketAddr>,
    /// This process accepted on it or waited on it (a listener a forked child takes over stays
    /// listening in the parent only then).
    pub active: AtomicBool,
    /// A forked child's inherited listener not yet listened from this process (see
    /// [`VSock::take_over`]): 0, or one of the `DORMANT_*` states.
    pub dormant: AtomicU8,
    /// Bumped by every read, write and accept: an edge-triggered epoll registration re-arms
    /// when the app did I/O since it last looked (it may have drained what was reported).
    pub epoch: AtomicU32,
    /// An AF_INET6 listener on `::` (IPV6_V6ONLY off, Linux's default) also takes IPv4
    /// connections: VPP listens per family, so a second listener on 0.0.0.0 does that part.
    pub twin: OnceLock<u32>,
}

impl Drop for VSock {
    fn drop(&mut self) {
        for sh in std::iter::once(self.sh).chain(self.twin.get().copied()) {
            if let Err(e) = api::close(&self.w, sh) {
                tracing::debug!("close of session {sh:#x}: {e}");
            }
        }
    }
}

fn err(e: Error) -> i32 {
    errno_of(&e)
}

impl VSock {
    pub fn new(w: Worker, sh: u32, family: i32, nonblock: bool) -> VSock {
        VSock {
            w,
            sh,
            family,
            dgram: false,
            dgram_lock: Mutex::new(()),
            nonblock: AtomicBool::new(nonblock),
            opts: Arc::new(Mutex::new(Opts::default())),
            listen_addr: OnceLock::new(),
            active: AtomicBool::new(false),
            dormant: AtomicU8::new(0),
            epoch: AtomicU32::new(0),
            twin: OnceLock::new(),
        }
    }

    pub fn is_nonblocking(&self, flags: i32) -> bool {
        flags & libc::MSG_DONTWAIT != 0 || self.nonblock.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> Res<Status> {
        if self.dormant.load(Ordering::Acquire) != 0 {
            return Ok(Status::Listening); // still the parent's listener, as the app sees it
        }
        api::status(&self.w, self.sh).map_err(err)
    }

    /// The app accepts on it or waits on it: a forked child's inherited listener listens from
    /// this process from now on.
    pub fn used(&self) {
        self.active.store(true, Ordering::Relaxed);
        if self.dormant.load(Ordering::Acquire) != 0 {
            self.take_over();
        }
    }

    /// A forked child's first use of a dormant listener (see the fork module): listen from this
    /// process's VPP worker, wait for VPP's answer, then stop the parent's listening there if the
    /// parent never used it. In that order, VPP always has a worker listening. Other threads using
    /// it meanwhile wait for the outcome.
    fn take_over(&self) {
        let d = loop {
            match self.dormant.load(Ordering::Acquire) {
                0 => return,
                TAKING => std::thread::sleep(Duration::from_millis(1)), // one VPP round trip
                d => {
                    let taking = self.dormant.compare_exchange(
                        d,
                        TAKING,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    if taking.is_ok() {
                        break d;
                    }
                }
            }
        };
        let mut listens = true;
        for sh in std::iter::once(self.sh).chain(self.twin.get().copied()) {
            match api::relisten(&self.w, sh) {
                Ok(true) => {}
                r => {
                    listens = false;
                    tracing::warn!("session {sh:#x}: inherited listener not listened here: {r:?}");
                }
            }
        }
        if listens && d == DORMANT_PARENT_IDLE {
            for sh in std::iter::once(self.sh).chain(self.twin.get().copied()) {
                if let Err(e) = api::unlisten_parent(&self.w, sh) {
                    tracing::debug!("the parent's listen not stopped: {e}");
                }
            }
        }
        tracing::debug!("listener {:#x} now listens from this process", self.sh);
        self.dormant.store(0, Ordering::Release);
    }

    /// Wait for `want` (epoll bits) up to `timeout`; see [`VSock::block`].
    pub(crate) fn wait(&self, want: i32, timeout: Option<Duration>) -> Res<()> {
        self.block(&mut [(self.sh, want as u32, 0)], timeout)
    }

    /// Wait until one of `items` (sessions of this socket, as for `api::readiness`) is ready
    /// or hung up: EAGAIN when `timeout` passes; EINTR when a signal arrives whose handler was
    /// installed without SA_RESTART (the kernel's rule for blocking socket calls); ECONNRESET
    /// once VPP went away. Busy-polls first (see [`crate::spin`]), then sleeps on the worker's
    /// eventfd, re-checking every 1 ms, then 10 ms (VPP does not signal every fifo change, see
    /// the library's `wait::Naps`).
    fn block(&self, items: &mut [(u32, u32, u32)], timeout: Option<Duration>) -> Res<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut round = 0u32;
        // Signals stay blocked while we look at the sessions and are let in only inside ppoll,
        // atomically: one that arrives between a check and the sleep is then still seen as
        // EINTR (it was lost before, and a one-shot alarm left the caller blocked for good).
        let mask = SignalsHeld::new();
        loop {
            if crate::wake::is_dead(&self.w) {
                return Err(libc::ECONNRESET);
            }
            if api::readiness(&self.w, items) > 0 {
                if round > 0 {
                    crate::spin::woke();
                }
                return Ok(());
            }
            if round == 0 && crate::spin::spin(deadline, |_| api::readiness(&self.w, items) > 0) {
                return Ok(());
            }
            round += 1;
            if round % 100 == 0 && crate::wake::check_dead(&self.w) {
                return Err(libc::ECONNRESET);
            }
            let sleeping = crate::wake::Sleeping::new([&self.w]);
            if sleeping.data {
                continue;
            }
            let nap = Duration::from_millis(if round < 200 { 1 } else { 10 });
            let nap = match deadline {
                Some(d) => match d.saturating_duration_since(Instant::now()) {
                    left if left.is_zero() => return Err(libc::EAGAIN),
                    left => left.min(nap),
                },
                None => nap,
            };
            let Some(fd) = self.w.mq_eventfd() else {
                std::thread::sleep(nap);
                continue;
            };
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ts = libc::timespec {
                tv_sec: nap.as_secs() as libc::time_t,
                tv_nsec: nap.subsec_nanos().max(1) as libc::c_long,
            };
            // SAFETY: one valid pollfd, a valid timespec and the caller's signal mask, all live
            // for the duration of the call.
            // SAFETY: see above.
            let r = unsafe { real::ppoll(&mut p, 1, &ts, mask.original()) };
            if r < 0 && real::errno() == libc::EINTR && crate::wake::no_restart_handler() {
                return Err(libc::EINTR);
            }
            if r > 0 {
                crate::wake::drain_evfd(fd);
            }
            drop(sleeping);
        }
    }

    /// recv: MSG_PEEK, MSG_DONTWAIT and MSG_WAITALL honoured.
    pub fn recv(&self, buf: &mut [u8], flags: i32) -> Res<usize> {
        if flags & libc::MSG_OOB != 0 {
            return Err(libc::EOPNOTSUPP);
        }
        self.epoch.fetch_add(1, Ordering::Relaxed);
        if buf.is_empty() {
            return match self.status()? {
                Status::Connected | Status::PeerClosed => Ok(0),
                Status::Reset => Err(libc::ECONNRESET),
                _ => Err(libc::ENOTCONN),
            };
        }
        let peek = flags & libc::MSG_PEEK != 0;
        let nonblock = self.is_nonblocking(flags);
        let waitall = flags & libc::MSG_WAITALL != 0 && !peek && !nonblock;
        let mut got = 0;
        loop {
            match api::read(&self.w, self.sh, &mut buf[got..], peek) {
                Ok(0) => return Ok(got),
                Ok(n) => {
                    got += n;
                    if !waitall || got == buf.len() {
                        return Ok(got);
                    }
                }
                Err(Error::Again) if !nonblock => {
                    // the option is looked up only when about to block (a lock per call saved)
                    let timeout = self.opts.lock().rcvtimeo;
                    if let Err(e) = self.wait(EPOLLIN, timeout) {
                        return if got > 0 { Ok(got) } else { Err(e) };
                    }
                }
                Err(_) if got > 0 => return Ok(got),
                Err(Error::Again) if crate::wake::is_dead(&self.w) => return Err(libc::ECONNRESET),
                Err(e) => return Err(err(e)),
            }
        }
    }

    /// send: blocking sockets queue everything (or fail), non-blocking ones what fits.
    /// EPIPE raises SIGPIPE unless MSG_NOSIGNAL.
    pub fn send(&self, buf: &[u8], flags: i32) -> Res<usize> {
        if flags & libc::MSG_OOB != 0 {
            return Err(libc::EOPNOTSUPP);
        }
        let r = self.send_inner(buf, flags);
        if r == Err(libc::EPIPE) && flags & libc::MSG_NOSIGNAL == 0 {
            // SAFETY: raise sends a signal to the calling thread; no memory is involved.
            unsafe { libc::raise(libc::SIGPIPE) };
        }
        r
    }

    fn send_inner(&self, buf: &[u8], flags: i32) -> Res<usize> {
        self.epoch.fetch_add(1, Ordering::Relaxed);
        if crate::wake::is_dead(&self.w) {
            return Err(libc::EPIPE); // nobody takes the data any more
        }
        if buf.is_empty() {
            return self.status().map(|_| 0);
        }
        let nonblock = self.is_nonblocking(flags);
        let mut sent = 0;
        loop {
            match api::write(&self.w, self.sh, &buf[sent..]) {
                Ok(n) => {
                    sent += n;
                    if nonblock || sent == buf.len() {
                        return Ok(sent);
                    }
                }
                Err(Error::Again) if !nonblock => {}
                Err(_) if sent > 0 => return Ok(sent),
                Err(Error::Again) if crate::wake::is_dead(&self.w) => return Err(libc::EPIPE),
                Err(Error::Again) => return Err(libc::EAGAIN),
                // never connected or shut down for writing
                Err(Error::NotConn) | Err(Error::Pipe) => return Err(libc::EPIPE),
                Err(e) => return Err(err(e)),
            }
            let timeout = self.opts.lock().sndtimeo;
            if let Err(e) = self.wait(EPOLLOUT, timeout) {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
        }
    }

    /// connect: EINPROGRESS / EALREADY / EISCONN as Linux says them.
    pub fn connect(&self, to: SocketAddr) -> Res<()> {
        match self.status()? {
            Status::Connected | Status::PeerClosed => return Err(libc::EISCONN),
            Status::Connecting => return Err(libc::EALREADY),
            Status::Listening => return Err(libc::EINVAL),
            _ => {}
        }
        let timeout = self.opts.lock().sndtimeo;
        self.opts.lock().error_taken = false;
        match api::connect(&self.w, self.sh, to, timeout) {
            Ok(()) | Err(Error::InProgress) => {}
            Err(e) => return Err(err(e)),
        }
        if self.nonblock.load(Ordering::Relaxed) {
            return Err(libc::EINPROGRESS);
        }
        if self.wait(EPOLLOUT, timeout).is_err() {
            return Err(libc::EINPROGRESS);
        }
        match self.status()? {
            Status::Connected | Status::PeerClosed => Ok(()),
            Status::Failed(e) => {
                self.opts.lock().error_taken = true;
                Err(err(e))
            }
            Status::Reset => Err(libc::ECONNRESET),
            _ => Err(libc::ETIMEDOUT),
        }
    }

    /// The pending error SO_ERROR reports (once).
    pub fn take_error(&self) -> i32 {
        let e = match self.status() {
            Ok(Status::Failed(e)) => err(e),
            Ok(Status::Reset) => libc::ECONNRESET,
            _ => 0,
        };
        let mut o = self.opts.lock();
        if e != 0 && !o.error_taken {
            o.error_taken = true;
            e
        } else {
            0
        }
    }

    /// accept: the new session (on this socket's worker) and the peer's address.
    pub fn accept(&self) -> Res<(u32, SocketAddr)> {
        self.used();
        if self.status()? != Status::Listening {
            return Err(libc::EINVAL);
        }
        self.epoch.fetch_add(1, Ordering::Relaxed);
        let nonblock = self.nonblock.load(Ordering::Relaxed);
        let timeout = self.opts.lock().rcvtimeo;
        let listeners: Vec<u32> = std::iter::once(self.sh)
            .chain(self.twin.get().copied())
            .collect();
        loop {
            for &l in &listeners {
                match api::accept(&self.w, l, true) {
                    Ok(r) => return Ok(r),
                    Err(Error::Again) => {}
                    Err(Error::BadFd) => return Err(libc::EINVAL),
                    Err(e) => return Err(err(e)),
                }
            }
            if nonblock {
                return Err(libc::EAGAIN);
            }
            let mut items: Vec<(u32, u32, u32)> =
                listeners.iter().map(|&l| (l, EPOLLIN as u32, 0)).collect();
            self.block(&mut items, timeout)?;
        }
    }

    pub fn listen(&self) -> Res<()> {
        match self.status()? {
            Status::Listening => return Ok(()),
            Status::Idle => {}
            _ => return Err(libc::EINVAL),
        }
        let bound = self.opts.lock().bound;
        let addr = match bound {
            Some(a) => a,
            None => {
                // Linux binds an unbound listener to the wildcard address and a free port.
                let any = if self.family == libc::AF_INET6 {
                    SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
                } else {
                    SocketAddr::from(([0, 0, 0, 0], 0))
                };
                self.bind(any)?;
                any
            }
        };
        api::listen(&self.w, self.sh).map_err(|e| match e {
            Error::ConnRefused => libc::EADDRINUSE,
            e => err(e),
        })?;
        let _ = self.listen_addr.set(addr);
        let v6only = self
            .opts
            .lock()
            .vals
            .get(&(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY))
            .is_some_and(|v| v.iter().any(|b| *b != 0));
        if self.family == libc::AF_INET6 && addr.ip().is_unspecified() && !v6only {
            // the port VPP gave (bind to port 0 asks for one)
            let port = self.local_addr().map_or(addr.port(), |a| a.port());
            self.listen_twin(port);
        }
        Ok(())
    }

    /// The IPv4 half of a dual-stack listener (see [`VSock::twin`]).
    fn listen_twin(&self, port: u16) {
        let any4 = SocketAddr::from(([0, 0, 0, 0], port));
        let r = api::session_create(&self.w, true).and_then(|sh| {
            let r = api::bind(&self.w, sh, any4).and_then(|_| api::listen(&self.w, sh));
            match r {
                Ok(()) => Ok(sh),
                Err(e) => {
                    let _ = api::close(&self.w, sh);
                    Err(e)
                }
            }
        });
        match r {
            Ok(sh) => {
                let _ = self.twin.set(sh);
            }
            Err(e) => tracing::warn!("[::]:{port} takes no IPv4 connections: {any4}: {e}"),
        }
    }

    pub fn bind(&self, a: SocketAddr) -> Res<()> {
        let mut o = self.opts.lock();
        if o.bound.is_some() || self.status()? != Status::Idle {
            return Err(libc::EINVAL);
        }
        api::bind(&self.w, self.sh, a).map_err(err)?;
        o.bound = Some(a);
        Ok(())
    }

    pub fn local_addr(&self) -> Res<SocketAddr> {
        let a = api::local_addr(&self.w, self.sh).map_err(err)?;
        Ok(crate::addr::for_family(a, self.family))
    }

    pub fn peer_addr(&self) -> Res<SocketAddr> {
        let a = api::peer_addr(&self.w, self.sh).map_err(err)?;
        Ok(crate::addr::for_family(a, self.family))
    }

    pub fn shutdown(&self, how: i32) -> Res<()> {
        if !matches!(how, libc::SHUT_RD | libc::SHUT_WR | libc::SHUT_RDWR) {
            return Err(libc::EINVAL);
        }
        match self.status()? {
            Status::Connected | Status::PeerClosed | Status::Reset => {}
            Status::Listening => return Ok(()),
            _ => return Err(libc::ENOTCONN),
        }
        api::shutdown(&self.w, self.sh, how).map_err(err)
    }

    /// Bytes readable now (FIONREAD).
    pub fn nread(&self) -> Res<usize> {
        api::nread(&self.w, self.sh).or(Ok(0))
    }
}

/// This thread's signals blocked for as long as the value lives; the mask it had before is
/// restored on drop (every exit path of a blocking wait).
struct SignalsHeld {
    orig: libc::sigset_t,
}

impl SignalsHeld {
    fn new() -> SignalsHeld {
        // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask fill the sets we own.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut orig: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut orig);
            SignalsHeld { orig }
        }
    }

    fn original(&self) -> *const libc::sigset_t {
        &self.orig
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`, a valid sigset_t we own.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.orig, std::ptr::null_mut()) };
    }
}
