//! vppcom_select and vppcom_poll: readiness of a set of sessions, waiting on the app mq.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::session::readiness;
use crate::table::{Events, Sessions};
use crate::wait::{self, Naps, Wake};
use crate::worker::Worker;

/// Wait until `scan` finds something, `timeout` (None: forever) passes or VPP detached the
/// worker for good (then ENOTCONN if nothing was found; see `wait::until_back`).
fn wait_for(
    w: &Worker,
    timeout: Option<Duration>,
    mut scan: impl FnMut(&Sessions) -> usize,
) -> Result<usize> {
    let mut ss = w.sessions.lock();
    ss.multiplexed = true;
    let mut n = 0;
    match wait::until_back(w, &mut ss, timeout, Naps::Backoff, |ss| {
        n = scan(ss);
        n > 0
    }) {
        Wake::Done | Wake::TimedOut => Ok(n),
        Wake::Detached => Err(Error::NotConn),
    }
}

fn timeout_of(secs: f64) -> Option<Duration> {
    (secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

const BITS: usize = u64::BITS as usize;

/// Set the bits of `want` whose sessions are ready for `mask` into `got`; returns how many.
/// Walks set bits only, so the cost follows the watched sessions, not `n_bits`.
fn scan(ss: &Sessions, want: &[u64], got: &mut [u64], mask: Events) -> usize {
    let mut n = 0;
    for (wi, (&word, out)) in want.iter().zip(got.iter_mut()).enumerate() {
        let mut bits = word;
        *out = 0;
        while bits != 0 {
            let bit = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let si = (wi * BITS + bit) as u32;
            if ss.get(si).is_some_and(|s| readiness(s).intersects(mask)) {
                *out |= 1 << bit;
                n += 1;
            }
        }
    }
    n
}

/// vppcom_select over bitmaps of session indices (`maps`: read, write, except; each `words`
/// long). The caller's maps say what to watch and are overwritten with what is ready; the
/// watch sets are kept in the worker's scratch buffers, so a call allocates nothing once warm.
/// Upstream takes the wait in seconds, or in milliseconds with use-mq-eventfd.
pub fn select(
    w: &Worker,
    mut maps: [Option<&mut [u64]>; 3],
    wait: f64,
    wait_is_ms: bool,
) -> Result<usize> {
    const MASKS: [Events; 3] = [
        Events::from_bits(Events::IN.bits() | Events::ALWAYS.bits()),
        Events::OUT,
        Events::ALWAYS,
    ];
    let mut want = std::mem::take(&mut *w.select_scratch.lock());
    for (k, m) in maps.iter().enumerate() {
        want[k].clear();
        if let Some(m) = m {
            want[k].extend_from_slice(m);
        }
    }
    let timeout = timeout_of(if wait_is_ms { wait / 1e3 } else { wait });
    let n = wait_for(w, timeout, |ss| {
        let mut n = 0;
        for (k, m) in maps.iter_mut().enumerate() {
            if let Some(m) = m {
                n += scan(ss, &want[k], m, MASKS[k]);
            }
        }
        n
    });
    *w.select_scratch.lock() = want;
    n
}

/// vppcom_poll: `(handle, events)` in, revents out; waits up to `wait_s` seconds.
pub fn poll(w: &Worker, fds: &mut [(u32, i16, i16)], wait_s: f64) -> Result<usize> {
    let mut revents = vec![0i16; fds.len()];
    let n = wait_for(w, timeout_of(wait_s), |ss| {
        let mut n = 0;
        for (k, (sh, events, _)) in fds.iter().enumerate() {
            let r = match ss.lookup(w.index, *sh) {
                Ok(i) => ss.get(i).map_or(0, |s| poll_bits(readiness(s), *events)),
                Err(_) => libc::POLLHUP, // upstream's answer for an unknown session
            };
            revents[k] = r;
            n += usize::from(r != 0);
        }
        n
    });
    for (f, r) in fds.iter_mut().zip(revents) {
        f.2 = r;
    }
    n
}

fn poll_bits(ready: Events, events: i16) -> i16 {
    let mut r = 0i16;
    if ready.intersects(Events::IN) && events & libc::POLLIN != 0 {
        r |= libc::POLLIN;
    }
    if ready.intersects(Events::OUT) && events & libc::POLLOUT != 0 {
        r |= libc::POLLOUT;
    }
    if ready.intersects(Events::HUP) {
        r |= libc::POLLHUP;
    }
    if ready.intersects(Events::ERR) {
        r |= libc::POLLERR;
    }
    r
}
