//! What every wait on VPP sockets shares: how long a kernel sleep may last, whether a
//! worker's VPP went away, the workers' eventfds, signal handlers' restart rule, and VCL's
//! readiness bits as Linux reports them. Below the fd table and the modules that wait.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use libc::{EPOLLERR, EPOLLHUP, EPOLLOUT, EPOLLRDHUP};
use vcl::api::Worker;

use crate::real;

/// Longest kernel sleep between looks at the VPP sockets. Each worker's eventfd wakes the
/// sleeper at once; this only bounds the cost of a wake-up another thread consumed (a blocked
/// call on a session of the same worker reads the same eventfd).
pub const CAP: Duration = Duration::from_millis(20);

/// Workers whose VPP went away (their app socket hung up), by worker index.
static DEAD: [AtomicBool; 256] = [const { AtomicBool::new(false) }; 256];

/// Whether `w`'s VPP is known to be gone (cheap: checked by [`check_dead`] when idle).
pub fn is_dead(w: &Worker) -> bool {
    DEAD.get(w.index() as usize)
        .is_some_and(|d| d.load(Ordering::Relaxed))
}

/// Look (a system call) whether `w`'s VPP went away: done by idle waiters, so a VPP that dies
/// shows as EPOLLHUP|EPOLLERR on its sockets within one [`CAP`].
pub fn check_dead(w: &Worker) -> bool {
    if !is_dead(w) && w.is_detached() {
        if let Some(d) = DEAD.get(w.index() as usize) {
            d.store(true, Ordering::Relaxed);
        }
        tracing::warn!("VPP went away: the sockets of worker {} fail", w.index());
    }
    is_dead(w)
}

/// Whether some signal has a handler installed without SA_RESTART: then a blocking call a
/// signal interrupted returns EINTR (looked at only when one did).
pub fn no_restart_handler() -> bool {
    (1..libc::SIGRTMAX()).any(|sig| {
        // SAFETY: an all-zero sigaction is a valid out-parameter.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: reads the disposition of `sig` into `old`; changes nothing.
        let ok = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } == 0;
        ok && old.sa_sigaction != libc::SIG_DFL
            && old.sa_sigaction != libc::SIG_IGN
            && old.sa_flags & libc::SA_RESTART == 0
    })
}

/// A wait about to sleep on these workers' events (`vcl::api::sleep_begin`): the library
/// clears the has_event flags their drained sessions kept set (left set while we look at the
/// fifos ourselves, so VPP queues no event per write it relays), or VPP would not signal their
/// next bytes, and holds none until this is dropped.
pub struct Sleeping<'a> {
    workers: Vec<&'a Worker>,
    /// Some session got bytes meanwhile: look again instead of sleeping.
    pub data: bool,
}

impl<'a> Sleeping<'a> {
    pub fn new(workers: impl IntoIterator<Item = &'a Worker>) -> Sleeping<'a> {
        let workers: Vec<&Worker> = workers.into_iter().collect();
        let mut data = false;
        for w in &workers {
            data |= vcl::api::sleep_begin(w);
        }
        Sleeping { workers, data }
    }
}

impl Drop for Sleeping<'_> {
    fn drop(&mut self) {
        for w in &self.workers {
            vcl::api::sleep_end(w);
        }
    }
}

/// Consume a worker eventfd's counter (it is non-blocking).
pub fn drain_evfd(fd: c_int) {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a live u64.
    unsafe { real::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
}

/// VCL's readiness bits as Linux reports them for a socket that asked for `want`: a peer's
/// close (FIN) is IN|RDHUP and still writable, not HUP; RDHUP only when asked for.
pub fn linux_bits(bits: u32, want: u32) -> u32 {
    let mut b = bits;
    let (rdhup, err, hup) = (EPOLLRDHUP as u32, EPOLLERR as u32, EPOLLHUP as u32);
    if b & rdhup != 0 && b & err == 0 {
        b &= !hup;
        b |= EPOLLOUT as u32;
    }
    if want & rdhup == 0 {
        b &= !rdhup;
    }
    b & (want | err | hup)
}
