//! VPP going away, as one worker sees it: its app socket hangs up (VPP died or dropped the
//! app) or its app mq is corrupt. Either way nothing more will come from VPP, so the worker
//! is marked detached once (one log line) and its sessions are failed so that every waiter
//! and every epoll/select/poll caller sees it at once:
//! - open sessions keep their buffered rx data, then read ECONNRESET; writes fail with EPIPE;
//!   readiness IN|RDHUP|HUP|ERR (upstream queues a DISCONNECTED for them, see
//!   vcl_worker_detach_sessions in src/vcl/vcl_private.c);
//! - listeners, and listens/connects still waiting for VPP, fail (readiness ERR|HUP);
//! - sessions the app already closed are freed (their CLEANUP will never come).
//!
//! Nothing is sent to VPP once detached, so a close costs no queue timeout.

use std::sync::atomic::Ordering;
use std::time::Duration;

use vcl_codec::session_error::SESSION_E_INVALID;

use super::Worker;
use crate::session::readiness;
use crate::table::{Events, Session, Sessions, State};

/// Called once per worker when it becomes detached (the app starts its re-attach there); set
/// by the app layer, which sits above this one.
pub(crate) static ON_DETACH: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Whether a detach is followed by a re-attach (the app's `reattach`, off in a forked child):
/// waits for readiness then outlive VPP's absence instead of failing (see `wait::until_back`).
static REATTACHES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn set_reattaches(on: bool) {
    REATTACHES.store(on, Ordering::Release);
}

pub(crate) fn reattaches() -> bool {
    REATTACHES.load(Ordering::Acquire)
}

/// How often a caller that never sleeps (a busy non-blocking loop) probes the app socket.
const PROBE_EVERY: Duration = Duration::from_millis(1);

/// Microseconds on the coarse monotonic clock: a few ms resolution (enough for a 1 ms rate
/// limit) at a fraction of the precise clock's cost, which every drain paid here.
fn coarse_us() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE).map_or(u64::MAX, |t| {
        (t.tv_sec() as u64)
            .saturating_mul(1_000_000)
            .saturating_add(t.tv_nsec() as u64 / 1000)
    })
}

impl Worker {
    /// Mark the worker detached (logged once, whoever sees it first).
    pub(crate) fn mark_detached(&self, why: &str) {
        if !self.detached.swap(true, Ordering::AcqRel) {
            tracing::warn!("worker {}: detached from VPP: {why}", self.index);
            if let Some(hook) = ON_DETACH.get() {
                hook();
            }
        }
    }

    /// Whether the worker was already found detached (no system call).
    pub(crate) fn known_detached(&self) -> bool {
        self.detached.load(Ordering::Acquire)
    }

    /// Whether the worker is detached, probing the socket at most every [`PROBE_EVERY`]: cheap
    /// enough for a non-blocking call's would-block path.
    pub(crate) fn probe_detached(&self) -> bool {
        if self.known_detached() {
            return true;
        }
        let now = coarse_us();
        let last = self.last_probe.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PROBE_EVERY.as_micros() as u64 {
            return false;
        }
        self.last_probe.store(now, Ordering::Relaxed);
        self.is_detached()
    }

    /// Fail `ss`'s sessions once the worker is detached (idempotent); true if detached.
    pub(crate) fn apply_detach(&self, ss: &mut Sessions) -> bool {
        if !self.known_detached() {
            return false;
        }
        if !ss.detached {
            ss.detached = true;
            fail_sessions(ss);
        }
        true
    }
}

/// What a sweep over a worker's sessions does with one of them.
pub(crate) enum Sweep {
    /// Its state changed: queue ERR|HUP with its readiness (if registered with an epoll).
    Fail,
    /// Nothing changed: no readiness news.
    Keep,
    /// The app already closed it: free the slot.
    Free,
}

/// Forget the VPP handles of every session and apply `f` to each (epoll sessions aside).
pub(crate) fn sweep(ss: &mut Sessions, mut f: impl FnMut(&mut Session) -> Sweep) {
    ss.by_vpp.clear();
    ss.early_close.clear();
    let mut freed = Vec::new();
    let mut notify = Vec::new();
    for (i, s) in ss.slab.iter_mut() {
        let i = i as u32;
        if s.is_vep {
            continue;
        }
        match f(s) {
            Sweep::Free => freed.push(i),
            Sweep::Keep => {}
            Sweep::Fail if s.ep.is_some() => {
                notify.push((i, readiness(s) | Events::ERR | Events::HUP))
            }
            Sweep::Fail => {}
        }
    }
    for i in freed {
        ss.free(i);
    }
    for (i, ev) in notify {
        ss.notify(i, ev);
    }
}

/// Put every session of a detached worker in its final state and queue its readiness.
pub(crate) fn fail_sessions(ss: &mut Sessions) {
    sweep(ss, |s| {
        match s.state {
            State::Ready | State::VppClosing => {
                s.state = State::VppClosing;
                s.vpp_gone = true;
            }
            State::Listen => {
                // queued ACCEPTEDs name fifos VPP will never serve
                s.accept_q.clear();
                s.state = State::Detached;
                s.relisten = true;
                s.failure_taken = false;
                s.vpp_error = 0;
            }
            State::Binding | State::Connecting => {
                s.state = State::Detached;
                s.vpp_error = SESSION_E_INVALID;
            }
            State::AppClosed => return Sweep::Free,
            // nothing changes for these: no readiness news
            State::Closed | State::Reset | State::Detached => return Sweep::Keep,
        }
        Sweep::Fail
    });
}

/// How long a worker's delete waits at most for VPP to confirm the closes it sent.
pub(crate) const CLOSE_SETTLE: Duration = Duration::from_secs(2);

impl Worker {
    /// Wait, up to `limit`, until VPP confirmed every close this worker sent (CLEANUP, or
    /// UNLISTEN_REPLY for a listener, frees the session). The worker's delete travels on the
    /// app socket, which VPP serves on another thread than the mq carrying the DISCONNECTs: a
    /// delete that overtakes them frees the sessions, their handles are reused, and the late
    /// DISCONNECTs then close another worker's new sessions (docs/wire.md#worker-delete).
    pub(crate) fn settle_closes(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            {
                let mut ss = self.sessions.lock();
                self.drain(&mut ss);
                let pending = ss.slab.iter().any(|(_, s)| s.state == State::AppClosed);
                // a forked child's copy of the parent's worker reads no mq: nothing will come
                if !pending || self.known_detached() || self.is_foreign() {
                    return;
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::debug!("worker {}: closes unconfirmed at delete", self.index);
                return;
            }
            self.wait_mq(left.min(Duration::from_millis(10)));
        }
    }
}
