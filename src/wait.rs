//! The one wait loop: every blocking call (listen, connect, accept, read, write, transport
//! attributes, epoll_wait, select, poll) drains the worker's app mq into its session table,
//! re-checks its condition and sleeps on the mq (condvar or eventfd) with the worker's session
//! lock released, until the condition holds, its deadline passes or VPP detached the worker.
//!
//! Before its first sleep a waiter busy-polls (re-checks its condition without sleeping) for an
//! adaptive window: in cut-through the peer's bytes are in the shared fifo the moment they are
//! written, so a spinning reader sees them in microseconds instead of after an mq wake-up. The
//! window doubles (up to the `busy-poll-usec` ceiling) when spinning paid off and halves when it
//! did not; a wait that slept and still ended within the ceiling sets it to what would have
//! caught it ([`learn`]). Only the first round of a wait spins, so an idle waiter then sleeps.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use vcl_svm::sync::MutexGuard;

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

pub use crate::config::DEFAULT_BUSY_POLL_USEC;
static BUSY_POLL_CEIL_US: AtomicU32 = AtomicU32::new(DEFAULT_BUSY_POLL_USEC);
/// Zero-timeout polls in a row that find nothing before each further one yields the CPU.
const YIELD_AFTER: u32 = 64;
/// How long a spin looks without yielding the CPU between looks, adapted per thread between
/// these bounds ([`adapt_pure`]). Past it every look yields. A fixed 64 looks (~35 µs on the
/// 2-core VM: a look drains the mq and pauses 16 times, ~25 ns each) held the CPU from a peer
/// app sharing it (beside a polling VPP, a TCP ping-pong took 80 µs a round trip against 35 µs
/// without busy-polling); a fixed 4 µs gave the CPU away too soon where the peer runs on
/// another CPU (a cut-through ping-pong at times 16 µs instead of 2 µs: a yield let some other
/// thread run first).
const PURE_MIN_US: u32 = 4;
const PURE_MAX_US: u32 = 64;
/// Two looks this far apart had something else run on this CPU in between (a yield another
/// thread took, or a preemption): alone, a look and a yield take ~1 µs.
const LONG_GAP: Duration = Duration::from_micros(4);
/// Smallest window once busy-polling is on: a miss costs at most this much CPU per wait.
const MIN_WINDOW_US: u32 = 2;

/// How long an exploring spin ([`EXPLORE_EVERY`]) looks at most, whatever the ceiling: what an
/// idle waiter pays once per that many waits.
const EXPLORE_MAX_US: u32 = 300;

/// Every this many spins a thread spins for the whole ceiling (at most [`EXPLORE_MAX_US`]) once,
/// whatever its window: two apps in a ping-pong whose windows had both shrunk (a few slow
/// rounds) could stay asleep in turn, each woken by VPP's event (~317 µs a round trip instead of
/// ~1.2 µs; seen once in `make bench`, before waits taught the window too, see [`learn`]). A
/// long spin that catches the peer's reply while the peer still spins after its write ends
/// that. Idle waiters pay one such spin per this many waits.
const EXPLORE_EVERY: u32 = 64;

thread_local! {
    /// This thread's current window in µs (adapted per thread: a thread is one worker's waiter).
    static WINDOW_US: Cell<u32> = const { Cell::new(0) };
    /// Spins so far on this thread (for [`EXPLORE_EVERY`]).
    static SPINS: Cell<u32> = const { Cell::new(0) };
    /// Zero-timeout waits in a row on this thread that found nothing.
    static EMPTY_POLLS: Cell<u32> = const { Cell::new(0) };
    /// This thread's pure-spin time in µs ([`PURE_MIN_US`]..=[`PURE_MAX_US`]).
    static PURE_US: Cell<u32> = const { Cell::new(PURE_MAX_US) };
}

/// Adapt the pure-spin time after a spin found its condition: right after something else ran
/// on this CPU (`after_gap`), the data most likely came from a peer that needed this CPU, so
/// yield early from now on; otherwise the peer runs elsewhere and looking without yielding is
/// what catches its data soonest (grow back, doubling).
fn adapt_pure(after_gap: bool) {
    PURE_US.with(|p| {
        let next = if after_gap {
            PURE_MIN_US
        } else {
            p.get().saturating_mul(2)
        };
        p.set(next.clamp(PURE_MIN_US, PURE_MAX_US));
    });
}

/// A zero-timeout wait (epoll_wait, select or poll with timeout 0) found nothing: whether to
/// offer the CPU now. An app that busy-polls this way holds its core; past a run of
/// [`YIELD_AFTER`] empty polls each one yields: with fewer free cores than busy threads, the peer
/// that must fill or drain the fifos may be waiting for this core (a cut-through UDP stream on
/// 2 cores: README, "Busy-poll"), and on an otherwise idle core the yield returns at once.
fn empty_poll_yields() -> bool {
    EMPTY_POLLS.with(|n| {
        let k = n.get().saturating_add(1);
        n.set(k);
        k > YIELD_AFTER
    })
}

/// Set the busy-poll ceiling (at attach, from the configuration).
pub(crate) fn set_busy_poll_usec(us: u32) {
    BUSY_POLL_CEIL_US.store(us, Relaxed);
}

/// The window to spin for now, in µs (0: don't).
fn window() -> u32 {
    window_upto(BUSY_POLL_CEIL_US.load(Relaxed))
}

/// [`window`] under another ceiling.
fn window_upto(ceil: u32) -> u32 {
    if ceil == 0 {
        return 0;
    }
    let k = SPINS.with(|n| {
        let k = n.get();
        n.set(k.wrapping_add(1));
        k
    });
    if k % EXPLORE_EVERY == EXPLORE_EVERY - 1 {
        // the shim's 5 ms ceiling would make this costly for a mostly idle program
        return ceil.min(EXPLORE_MAX_US);
    }
    WINDOW_US.with(|w| {
        let cur = w.get();
        if cur == 0 {
            // First wait on this thread: start at the ceiling, adapt from there.
            w.set(ceil);
            ceil
        } else {
            cur.clamp(MIN_WINDOW_US.min(ceil), ceil)
        }
    })
}

/// Adapt the window: grow after a spin that found the condition, shrink after one that missed.
fn adapt(paid_off: bool) {
    adapt_upto(paid_off, BUSY_POLL_CEIL_US.load(Relaxed));
}

/// [`adapt`] under another ceiling.
fn adapt_upto(paid_off: bool, ceil: u32) {
    // an exploring spin counts as any other: one that catches the peer's reply while the peer
    // still spins after its write is enough to break the stuck cycle (see EXPLORE_EVERY)
    WINDOW_US.with(|w| {
        let cur = w.get().max(1);
        let next = if paid_off {
            cur.saturating_mul(2)
        } else {
            cur / 2
        };
        w.set(next.clamp(MIN_WINDOW_US.min(ceil), ceil));
    });
}

/// A wait whose spin missed slept and then ended `waited` after the spin began: a window that
/// long would have caught it, so, within the ceiling, take it with half again as margin.
/// Halving alone cannot get back: where each side of an exchange waits longer than the window
/// it has shrunk to, every spin misses, and both sides keep sleeping through exchanges a spin
/// would have made faster. Through VPP's TCP on a VPP that sleeps between loops
/// (`poll-sleep-usec 100`), a side that replies while VPP sleeps has the reply leave on VPP's
/// next loop, with the ACK it owes; a side that wakes on VPP's event replies a loop later: 4 of
/// VPP's ~175 µs loops a 64-byte round trip instead of 2 (docs/benchmarking.md, "Waits that
/// span VPP's loops").
fn learn(waited: Duration) {
    learn_upto(waited, BUSY_POLL_CEIL_US.load(Relaxed));
}

/// [`learn`] under another ceiling.
fn learn_upto(waited: Duration, ceil: u32) {
    let us = u32::try_from(waited.as_micros()).unwrap_or(u32::MAX);
    if ceil == 0 || us >= ceil {
        return;
    }
    let want = us.saturating_add(us / 2).min(ceil);
    WINDOW_US.with(|w| w.set(w.get().max(want)));
}

/// The busy-poll ceiling in µs (`busy-poll-usec`; 0: off).
pub(crate) fn ceiling_us() -> u32 {
    BUSY_POLL_CEIL_US.load(Relaxed)
}

/// The window a waiter outside this module (the LD_PRELOAD shim's mixed waits) spins for now,
/// under its own ceiling in µs; zero when that is 0. Report the outcome with [`spin_outcome`].
pub(crate) fn spin_window(ceil_us: u32) -> Duration {
    Duration::from_micros(u64::from(window_upto(ceil_us)))
}

/// Adapt this thread's window after a spin of [`spin_window`]: it found its condition or not.
pub(crate) fn spin_outcome(paid_off: bool, ceil_us: u32) {
    adapt_upto(paid_off, ceil_us);
}

/// What [`spin`] did.
enum Spin {
    /// `done` held.
    Hit,
    /// The window passed first; it began then.
    Missed(Instant),
    /// Busy-polling is off.
    Off,
}

/// [`learn`] for a waiter outside this module, under its own ceiling ([`spin_window`]).
pub(crate) fn spin_learn(waited: Duration, ceil_us: u32) {
    learn_upto(waited, ceil_us);
}

/// Busy-poll `done` for up to the adaptive window (never past `deadline`), releasing the session
/// lock briefly between looks so other threads of the worker can get in.
fn spin(
    w: &Worker,
    ss: &mut MutexGuard<'_, Sessions>,
    deadline: Option<Instant>,
    done: &mut impl FnMut(&mut Sessions) -> bool,
) -> Spin {
    let us = window();
    if us == 0 {
        return Spin::Off;
    }
    let start = Instant::now();
    let mut end = start + Duration::from_micros(u64::from(us));
    if let Some(d) = deadline {
        end = end.min(d);
    }
    let pure_until = start + Duration::from_micros(u64::from(PURE_US.with(Cell::get)));
    let mut now = start;
    loop {
        if now < pure_until {
            for _ in 0..16 {
                std::hint::spin_loop();
            }
        } else {
            // Past the pure spin, offer the CPU between looks: with fewer free cores than
            // busy threads (the peer writing, VPP), a pure spin takes the core the data has to
            // come from (stream throughput halved on 2 cores); an idle core returns at once.
            std::thread::yield_now();
        }
        MutexGuard::bump(ss);
        w.drain(ss);
        let seen = Instant::now();
        if done(ss) {
            adapt(true);
            adapt_pure(seen.saturating_duration_since(now) >= LONG_GAP);
            return Spin::Hit;
        }
        // the rate-limited probe: a socket poll per look would make every look a syscall
        now = seen;
        if w.probe_detached() || now >= end {
            adapt(false);
            return Spin::Missed(start);
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
    // the clock is read only once the first look found nothing (a select or epoll_wait that
    // finds something, or polls with timeout 0, reads no clock)
    let mut deadline = None;
    let mut round = 0;
    // when the spin that missed began
    let mut missed: Option<Instant> = None;
    loop {
        round += 1;
        w.drain(ss);
        if done(ss) {
            EMPTY_POLLS.with(|n| n.set(0));
            if let Some(t0) = missed {
                learn(t0.elapsed());
            }
            return Wake::Done;
        }
        if round == 1 {
            if timeout.is_some_and(|t| t.is_zero()) {
                if empty_poll_yields() {
                    MutexGuard::unlocked(ss, std::thread::yield_now);
                }
                return Wake::TimedOut;
            }
            deadline = timeout.map(|t| Instant::now() + t);
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
        if round == 1 {
            match spin(w, ss, deadline, &mut done) {
                Spin::Hit => return Wake::Done,
                Spin::Missed(t0) => missed = Some(t0),
                Spin::Off => {}
            }
        }
        // a drained session whose has_event was kept set gets it cleared now, or VPP would
        // not signal its next bytes (see `Sessions::hold_rx`)
        if ss.begin_sleep() && done(ss) {
            ss.end_sleep();
            return Wake::Done;
        }
        MutexGuard::unlocked(ss, || w.wait_mq(nap));
        ss.end_sleep();
    }
}

/// How long a wait naps while VPP is away and the app re-attaches.
const AWAY_NAP: Duration = Duration::from_millis(20);

/// As [`until`], for waits on readiness that outlive a VPP restart (epoll, select, poll, an
/// accept on a listener that listens again): while the worker is detached and the app will
/// attach again, nap until `done`, the deadline or the re-attach, instead of returning
/// `Detached` (which an app's loop would meet again at once: a spin). Without re-attach, as
/// [`until`].
pub(crate) fn until_back(
    w: &Worker,
    ss: &mut MutexGuard<'_, Sessions>,
    timeout: Option<Duration>,
    naps: Naps,
    mut done: impl FnMut(&mut Sessions) -> bool,
) -> Wake {
    // a poll (timeout 0) is one look, which never reports Detached: read no clock for it (a
    // select loop polling ten sessions spent ~1% of its CPU in the two reads below)
    if timeout.is_some_and(|t| t.is_zero()) {
        return until(w, ss, timeout, naps, done);
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match until(w, ss, left, naps, &mut done) {
            Wake::Detached if crate::worker::reattaches() => {
                let nap = left.map_or(AWAY_NAP, |l| l.min(AWAY_NAP));
                if nap.is_zero() {
                    return Wake::TimedOut;
                }
                MutexGuard::unlocked(ss, || std::thread::sleep(nap));
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_poll_window_adapts_within_ceiling() {
        set_busy_poll_usec(64);
        WINDOW_US.with(|w| w.set(0));
        assert_eq!(window(), 64, "first wait starts at the ceiling");
        adapt(false);
        adapt(false);
        assert_eq!(window(), 16, "misses halve it");
        for _ in 0..10 {
            adapt(false);
        }
        assert_eq!(window(), MIN_WINDOW_US, "never below the floor");
        for _ in 0..10 {
            adapt(true);
        }
        assert_eq!(window(), 64, "hits double it up to the ceiling");
        set_busy_poll_usec(0);
        assert_eq!(window(), 0, "0 turns it off");
        set_busy_poll_usec(DEFAULT_BUSY_POLL_USEC);
    }

    #[test]
    fn a_wait_that_ended_within_the_ceiling_sets_the_window() {
        const CEIL: u32 = 1000;
        WINDOW_US.with(|w| w.set(0));
        assert_eq!(window_upto(CEIL), CEIL);
        for _ in 0..20 {
            adapt_upto(false, CEIL);
        }
        assert_eq!(WINDOW_US.with(Cell::get), MIN_WINDOW_US, "collapsed");
        learn_upto(Duration::from_micros(1500), CEIL);
        assert_eq!(
            WINDOW_US.with(Cell::get),
            MIN_WINDOW_US,
            "past the ceiling: nothing"
        );
        learn_upto(Duration::from_micros(400), CEIL);
        assert_eq!(WINDOW_US.with(Cell::get), 600, "the wait and half again");
        learn_upto(Duration::from_micros(100), CEIL);
        assert_eq!(WINDOW_US.with(Cell::get), 600, "never shrinks it");
        learn_upto(Duration::from_micros(700), CEIL);
        assert_eq!(WINDOW_US.with(Cell::get), CEIL, "at most the ceiling");
        learn_upto(Duration::from_micros(10), 0);
        assert_eq!(WINDOW_US.with(Cell::get), CEIL, "busy-poll off: untouched");
    }

    #[test]
    fn a_shrunk_window_spins_the_whole_ceiling_now_and_then() {
        const CEIL: u32 = 256;
        WINDOW_US.with(|w| w.set(0));
        SPINS.with(|n| n.set(0));
        assert_eq!(window_upto(CEIL), CEIL);
        for _ in 0..20 {
            adapt_upto(false, CEIL);
        }
        let windows: Vec<u32> = (0..EXPLORE_EVERY)
            .map(|_| {
                let w = window_upto(CEIL);
                adapt_upto(false, CEIL);
                w
            })
            .collect();
        assert_eq!(
            windows.iter().filter(|&&w| w == CEIL).count(),
            1,
            "{windows:?}"
        );
        const { assert!(CEIL <= EXPLORE_MAX_US) };
        assert!(windows.iter().all(|&w| w == CEIL || w == MIN_WINDOW_US));
    }

    #[test]
    fn the_pure_spin_shortens_when_data_follows_a_gap_and_grows_back() {
        PURE_US.with(|p| p.set(PURE_MAX_US));
        adapt_pure(true);
        assert_eq!(
            PURE_US.with(Cell::get),
            PURE_MIN_US,
            "the peer needed this CPU"
        );
        adapt_pure(false);
        assert_eq!(PURE_US.with(Cell::get), 2 * PURE_MIN_US, "doubles back");
        for _ in 0..10 {
            adapt_pure(false);
        }
        assert_eq!(PURE_US.with(Cell::get), PURE_MAX_US, "never past the bound");
    }

    #[test]
    fn only_a_run_of_empty_zero_timeout_polls_yields() {
        EMPTY_POLLS.with(|n| n.set(0));
        assert!((0..YIELD_AFTER).all(|_| !empty_poll_yields()));
        assert!(empty_poll_yields() && empty_poll_yields());
        EMPTY_POLLS.with(|n| n.set(0)); // what a wait that found its condition does
        assert!(!empty_poll_yields());
    }

    #[test]
    fn waiters_poll_fast_then_slow() {
        assert_eq!(Naps::Backoff.nap(1), Duration::from_millis(1));
        assert_eq!(Naps::Backoff.nap(500), Duration::from_millis(10));
        let d = Duration::from_millis(100);
        assert_eq!(Naps::AtMost(d).nap(1), d);
    }
}
