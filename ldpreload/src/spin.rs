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
//! A whole wait that ended within the library's default ceiling (1 ms) sets the window to that
//! wait and half again, as the library's own waits do: a request/response through a VPP that
//! sleeps between loops needs the reply caught before VPP's next loop.

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
/// window counts as a hit (grow), a longer one as a miss (shrink); and a whole wait that ended
/// within the library's default ceiling sets the window to what would have caught it
/// (`api::busy_poll_learn`), which halving and doubling alone never reach once every wait is
/// longer than the window.
pub fn woke() {
    woke_under(crate::init::spin_ceiling_us());
}

/// [`woke`] under the ceiling `ceil` µs.
fn woke_under(ceil: u32) {
    if let Some((at, win)) = MISSED.with(|m| m.take()) {
        let slept = at.elapsed();
        api::busy_poll_outcome(slept < win, ceil);
        api::busy_poll_learn(slept + win, ceil);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A window that misses have shrunk to nothing comes back after one wait that slept a few
    /// hundred µs (a reply through a VPP that sleeps between loops), to the wait and half again,
    /// never past the library's default ceiling however high the shim's is.
    #[test]
    fn a_wait_that_slept_teaches_the_window() {
        const CEIL: u32 = 5000;
        for _ in 0..20 {
            api::busy_poll_outcome(false, CEIL);
        }
        let shrunk = api::busy_poll_window(CEIL);
        assert!(shrunk < Duration::from_micros(10), "{shrunk:?}");
        // a loaded machine may oversleep past the ceiling: try until one sleep stays short
        let learned = (0..50)
            .find_map(|_| {
                let t0 = Instant::now();
                MISSED.with(|m| m.set(Some((t0, shrunk))));
                std::thread::sleep(Duration::from_micros(300));
                if t0.elapsed() >= Duration::from_micros(600) {
                    MISSED.with(|m| m.set(None));
                    return None;
                }
                woke_under(CEIL);
                Some(api::busy_poll_window(CEIL))
            })
            .expect("no 300 µs sleep ended within 600 µs in 50 tries");
        assert!(
            learned >= Duration::from_micros(450) && learned <= Duration::from_millis(1),
            "{learned:?}"
        );
        // a wait longer than the library's ceiling teaches nothing: the miss halves it
        MISSED.with(|m| m.set(Some((Instant::now(), learned))));
        std::thread::sleep(Duration::from_millis(3));
        woke_under(CEIL);
        assert!(api::busy_poll_window(CEIL) <= learned / 2 + Duration::from_micros(1));
    }
}
