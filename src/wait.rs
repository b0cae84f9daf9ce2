//! The one wait loop: every blocking call (listen, connect, accept, read, write, transport
//! attributes, epoll_wait, select, poll) drains the worker's app mq into its session table,
//! re-checks its condition and sleeps on the mq (condvar or eventfd) with the worker's session
//! lock released, until the condition holds, its deadline passes or VPP detached the worker.

use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use crate::table::Sessions;
use crate::worker::Worker;

/// Why [`until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The condition held.
    Done,
    /// The deadline passed first.
    TimedOut,
    /// VPP dropped the worker (its app socket hung up): nothing will ever come.
    Detached,
}

impl Wake {
    pub fn is_done(self) -> bool {
        self == Wake::Done
    }
}

/// How long a waiter sleeps on the mq between looks at its sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Naps {
    /// VPP does not always signal data it adds while a fifo's has_event is still set (see
    /// docs/wire.md#fifos), so session waiters re-check every 1 ms for their first 200 naps,
    /// then every 10 ms: idle waiters stay cheap and a missed wake-up costs at most that long.
    Backoff,
    /// At most this long: for waits that only VPP's (signalled) events can satisfy.
    AtMost(Duration),
}

impl Naps {
    fn nap(self, round: u32) -> Duration {
        match self {
            Naps::Backoff if round < 200 => Duration::from_millis(1),
            Naps::Backoff => Duration::from_millis(10),
            Naps::AtMost(d) => d,
        }
    }
}

/// Drain and re-check `done` until it holds, `timeout` (None: forever) passes, or the worker
/// is detached. The worker's session lock is released while sleeping.
pub(crate) fn until(
    w: &Worker,
    ss: &mut MutexGuard<'_, Sessions>,
    timeout: Option<Duration>,
    naps: Naps,
    mut done: impl FnMut(&mut Sessions) -> bool,
) -> Wake {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut round = 0;
    loop {
        round += 1;
        w.drain(ss);
        if done(ss) {
            return Wake::Done;
        }
        let nap = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(naps.nap(round)),
                _ => return Wake::TimedOut,
            },
            None => naps.nap(round),
        };
        if w.is_detached() {
            // the sessions now show VPP gone: a waiter for their readiness is done
            w.apply_detach(ss);
            return if done(ss) { Wake::Done } else { Wake::Detached };
        }
        // A busy-poll phase (spinning on the mq for a while before sleeping) belongs here.
        MutexGuard::unlocked(ss, || w.wait_mq(nap));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_poll_fast_then_slow() {
        assert_eq!(Naps::Backoff.nap(1), Duration::from_millis(1));
        assert_eq!(Naps::Backoff.nap(500), Duration::from_millis(10));
        let d = Duration::from_millis(100);
        assert_eq!(Naps::AtMost(d).nap(1), d);
    }
}
