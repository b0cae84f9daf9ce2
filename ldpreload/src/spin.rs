//! Busy-polling before a wait sleeps. A blocked call (read, write, accept, poll, select,
//! epoll_wait) first re-checks its condition without sleeping for the library's adaptive window
//! (`vcl::api::busy_poll_window`, ceiling [`crate::init::spin_ceiling_us`]): data VPP puts in a fifo is then
//! seen in microseconds instead of after an eventfd wake-up and a reschedule (milliseconds on
//! a loaded machine). Only the first round of a call spins.
//!
//! A spinning thread yields the CPU between looks: on a machine with few cores the peer app
//! and VPP must run for the data to come at all (without it, redis-benchmark against
//! redis-server, both spinning, fell to a third of what they did without busy-polling).
//!
//! The window grows when a spin found its condition, and also when it missed but the sleep
//! after it was shorter than the window (spinning on would have caught it: a stream through
//! VPP's TCP delivers every few hundred µs); it shrinks when the wait went on longer or timed
//! out, so an idle program soon spins only a few µs per call and sleeps in the kernel (~0% CPU).

use std::cell::Cell;
use std::time::Instant;

use vcl::api;

/// Kernel fds are looked at (a system call) every this many spins; VPP sessions every spin.
pub const KERNEL_EVERY: u32 = 8;

thread_local! {
    /// The last spin of this thread missed: when it gave up and how long it had spun. Judged
    /// by [`woke`], or as a plain miss by the next spin.
    static MISSED: Cell<Option<(Instant, std::time::Duration)>> = const { Cell::new(None) };
}

/// Spin on `ready` (given the spin's count) until it holds, the window or `deadline` passes.
/// Returns whether it held. A zero timeout (`deadline` already passed) never spins.
pub fn spin(deadline: Option<Instant>, mut ready: impl FnMut(u32) -> bool) -> bool {
    let ceil = crate::init::spin_ceiling_us();
    if MISSED.with(|m| m.take()).is_some() {
        api::busy_poll_outcome(false, ceil);
    }
    let win = api::busy_poll_window(ceil);
    if win.is_zero() {
        return false;
    }
    let now = Instant::now();
    let mut end = now + win;
    if let Some(d) = deadline {
        if d <= now {
            return false;
        }
        end = end.min(d);
    }
    let mut i = 0u32;
    loop {
        if ready(i) {
            api::busy_poll_outcome(true, ceil);
            return true;
        }
        let t = Instant::now();
        if t >= end {
            MISSED.with(|m| m.set(Some((t, win))));
            return false;
        }
        i = i.wrapping_add(1);
        // Let whatever else is runnable on this CPU go first (the peer app or VPP that will
        // produce what we wait for, on a machine with few cores); alone, it returns at once.
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
}

/// A wait whose spin missed found its condition after sleeping: a sleep shorter than the
/// window counts as a hit (grow), a longer one as a miss (shrink).
pub fn woke() {
    if let Some((at, win)) = MISSED.with(|m| m.take()) {
        api::busy_poll_outcome(at.elapsed() < win, crate::init::spin_ceiling_us());
    }
}
