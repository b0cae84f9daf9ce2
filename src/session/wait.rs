//! Waiting for VPP: drain the worker's app mq into the session table, and block on the mq
//! (condvar or eventfd) until a condition holds or a deadline passes.

use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use super::events::handle_event;
use super::Sessions;
use crate::worker::Worker;

/// How long to sleep on the mq before looking at the sessions again. VPP does not always signal
/// data it adds while a fifo's has_event is still set (upstream VCL copes by re-checking every
/// millisecond, ERRATA O12), so a waiter re-checks every 1 ms for its first 200 naps, then
/// every 10 ms: idle waiters stay cheap and a missed wake-up costs at most that long.
pub fn nap(round: u32) -> Duration {
    if round < 200 {
        Duration::from_millis(1)
    } else {
        Duration::from_millis(10)
    }
}

/// Handle every message queued on the app mq now; returns how many.
pub fn drain(w: &Worker, ss: &mut Sessions) -> usize {
    let mut total = 0;
    loop {
        match w.drain_mq(|t, p| handle_event(w, ss, t, p)) {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

/// Drain and re-check `done` until it holds or `timeout` (None: forever) passes. The worker's
/// session lock is released while sleeping. Returns whether `done` held.
pub fn until(
    w: &Worker,
    ss: &mut MutexGuard<'_, Sessions>,
    timeout: Option<Duration>,
    mut done: impl FnMut(&Sessions) -> bool,
) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut round = 0;
    loop {
        round += 1;
        drain(w, ss);
        if done(ss) {
            return true;
        }
        let nap = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(nap(round)),
                _ => return false,
            },
            None => nap(round),
        };
        if w.is_detached() {
            return false;
        }
        MutexGuard::unlocked(ss, || w.wait_mq(nap));
    }
}
