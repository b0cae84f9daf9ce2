//! Epoll data: which epoll session (vep) watches a session and for what, and each vep's ready
//! queue. Marking a member ready is a data operation done here, so the event handler records
//! readiness without calling up into the epoll layer.
//!
//! An event marks a registered session pending on its vep's ready queue (once, merging bits);
//! epoll_wait pops from that queue, so its cost follows the number of ready sessions, not
//! registered ones. Level-triggered sessions that were ready when delivered sit on the vep's
//! `lt` list until the next wait re-checks them (upstream's LT list).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::{BitAnd, BitOr, BitOrAssign};

use super::Sessions;

/// Epoll event bits (`EPOLLIN`, ...), the values of <sys/epoll.h>; unknown bits ride along
/// untouched. Converted from and to `u32` only at the C ABI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events(u32);

impl Events {
    pub const NONE: Events = Events(0);
    pub const IN: Events = Events(libc::EPOLLIN as u32);
    pub const OUT: Events = Events(libc::EPOLLOUT as u32);
    pub const ERR: Events = Events(libc::EPOLLERR as u32);
    pub const HUP: Events = Events(libc::EPOLLHUP as u32);
    pub const RDHUP: Events = Events(libc::EPOLLRDHUP as u32);
    pub const ET: Events = Events(libc::EPOLLET as u32);
    pub const ONESHOT: Events = Events(libc::EPOLLONESHOT as u32);
    /// Reported whether asked for or not.
    pub const ALWAYS: Events = Events(libc::EPOLLERR as u32 | libc::EPOLLHUP as u32);

    pub const fn from_bits(bits: u32) -> Events {
        Events(bits)
    }

    pub const fn bits(self) -> u32 {
        self.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: Events) -> bool {
        self.0 & other.0 != 0
    }

    /// These bits without `other`'s.
    pub const fn without(self, other: Events) -> Events {
        Events(self.0 & !other.0)
    }
}

impl BitOr for Events {
    type Output = Events;
    fn bitor(self, o: Events) -> Events {
        Events(self.0 | o.0)
    }
}

impl BitOrAssign for Events {
    fn bitor_assign(&mut self, o: Events) {
        self.0 |= o.0;
    }
}

impl BitAnd for Events {
    type Output = Events;
    fn bitand(self, o: Events) -> Events {
        Events(self.0 & o.0)
    }
}

/// A session's membership in an epoll session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Registration {
    pub vep: u32,
    pub events: Events,
    pub data: u64,
    /// Bits waiting to be delivered (non-empty: queued on the vep's ready queue).
    pub pending: Events,
    /// Edge-triggered: more ACCEPTEDs arrived while one was pending. Upstream reports one
    /// EPOLLIN per ACCEPTED, and vppcom apps (VPP's vcl_test_server) accept once per event.
    pub more_accepts: u32,
    /// Edge-triggered stream session: its rx fifo's tail when it was last reported readable.
    /// An EPOLLIN edge means bytes arrived since; VPP's event for bytes already reported (the
    /// wait looked at the fifo first, `epoll::probe_hot`) makes no second edge.
    pub edge_tail: Option<u32>,
    /// Edge-triggered: the rx tail a waiting epoll_wait last saw there, and since when
    /// (`epoll::probe_hot` reports bytes once they stop arriving, or in bulk).
    pub probe_seen: Option<(u32, std::time::Instant)>,
    /// Edge-triggered member whose bytes kept arriving between two looks (a stream): the
    /// next look is not before this (`epoll::PROBE_STREAM_LOOK`).
    pub probe_next: Option<std::time::Instant>,
    /// Edge-triggered stream session: its tx fifo's tail at its last EPOLLIN (whether the app
    /// wrote since, i.e. answered what it read).
    pub edge_tx: Option<u32>,
}

impl Registration {
    /// Bits this registration reports: what it asked for plus ERR/HUP; a peer close shows as
    /// RDHUP when asked for, else HUP (upstream's choice). With ERR (VPP gone) it is a full
    /// hang-up: HUP stays.
    pub fn mask(&self, bits: Events) -> Events {
        let m = bits & (self.events | Events::ALWAYS);
        if bits.intersects(Events::RDHUP)
            && !bits.intersects(Events::ERR)
            && self.events.intersects(Events::RDHUP)
        {
            return m.without(Events::HUP);
        }
        m
    }
}

/// One epoll session's queues.
#[derive(Default)]
struct Vep {
    ready: VecDeque<u32>,
    lt: Vec<u32>,
    /// The other half of `lt`'s double buffer, so re-checking allocates nothing.
    lt_spare: Vec<u32>,
    /// Level-triggered members recently delivered EPOLLIN, newest last (at most [`HOT_MAX`]):
    /// a waiting epoll_wait looks at their rx fifos itself (see `epoll::probe_hot`).
    hot: Vec<u32>,
}

/// How many recently active members a waiting epoll_wait looks at directly.
pub(crate) const HOT_MAX: usize = 16;

/// Hashes a session index (the only key here) with one multiply: SipHash cost more than the
/// rest of an epoll_wait that delivers a few events (several lookups per event).
#[derive(Default)]
struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        // the multiply moves the index into the high bits the table's control bytes use
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Every epoll session of a worker.
#[derive(Default)]
pub(crate) struct EpollState {
    veps: HashMap<u32, Vep, BuildHasherDefault<IndexHasher>>,
}

impl EpollState {
    /// A session is gone: drop it from queues (lazily: entries are checked when popped).
    pub fn forget(&mut self, index: u32) {
        self.veps.remove(&index);
    }

    /// Session `vep` is an epoll session now.
    pub fn add_vep(&mut self, vep: u32) {
        self.veps.insert(vep, Vep::default());
    }

    /// The next session queued on `vep`.
    pub fn pop_ready(&mut self, vep: u32) -> Option<u32> {
        self.veps.get_mut(&vep).and_then(|v| v.ready.pop_front())
    }

    /// Session `i` (pending again) goes to the back of `vep`'s ready queue.
    pub fn requeue(&mut self, vep: u32, i: u32) {
        if let Some(v) = self.veps.get_mut(&vep) {
            v.ready.push_back(i);
        }
    }

    /// Session `i` was delivered level-triggered: re-check it on the next wait.
    pub fn push_lt(&mut self, vep: u32, i: u32) {
        if let Some(v) = self.veps.get_mut(&vep) {
            v.lt.push(i);
        }
    }

    /// Level-triggered session `i` was delivered EPOLLIN: remember it as active (the oldest
    /// falls off past [`HOT_MAX`]).
    pub fn mark_hot(&mut self, vep: u32, i: u32) {
        let Some(v) = self.veps.get_mut(&vep) else {
            return;
        };
        if let Some(at) = v.hot.iter().position(|&h| h == i) {
            v.hot.remove(at);
        } else if v.hot.len() == HOT_MAX {
            v.hot.remove(0);
        } else if v.hot.capacity() == 0 {
            v.hot.reserve_exact(HOT_MAX);
        }
        v.hot.push(i);
    }

    /// `vep`'s recently active members, copied out (no allocation).
    pub fn hot(&self, vep: u32) -> ([u32; HOT_MAX], usize) {
        let mut out = [0u32; HOT_MAX];
        let n = self.veps.get(&vep).map_or(0, |v| {
            out[..v.hot.len()].copy_from_slice(&v.hot);
            v.hot.len()
        });
        (out, n)
    }

    /// Session `i` is no longer a member worth looking at.
    pub fn unmark_hot(&mut self, vep: u32, i: u32) {
        if let Some(v) = self.veps.get_mut(&vep) {
            v.hot.retain(|&h| h != i);
        }
    }

    /// Take `vep`'s LT list (empty: nothing to re-check); give it back with [`Self::put_lt`].
    pub fn take_lt(&mut self, vep: u32) -> Vec<u32> {
        match self.veps.get_mut(&vep) {
            Some(v) if !v.lt.is_empty() => {
                let spare = std::mem::take(&mut v.lt_spare);
                std::mem::replace(&mut v.lt, spare)
            }
            _ => Vec::new(),
        }
    }

    /// Return the (drained) buffer [`Self::take_lt`] lent.
    pub fn put_lt(&mut self, vep: u32, spare: Vec<u32>) {
        if let Some(v) = self.veps.get_mut(&vep) {
            v.lt_spare = spare;
        }
    }
}

impl Sessions {
    /// Something happened to session `i`: queue it on its epoll session if it watches for that.
    pub(crate) fn notify(&mut self, i: u32, bits: Events) {
        let Some(s) = self.slab.get_mut(i as usize) else {
            return;
        };
        let Some(reg) = s.ep.as_mut() else { return };
        let m = reg.mask(bits);
        if m.is_empty() {
            return;
        }
        let was_queued = !reg.pending.is_empty();
        reg.pending |= m;
        if !was_queued {
            let vep = reg.vep;
            self.epoll.veps.entry(vep).or_default().ready.push_back(i);
        }
    }

    /// An ACCEPTED for listener `i`: as [`Sessions::notify`], and an edge-triggered listener
    /// owes one more EPOLLIN per accept already pending (see `Registration::more_accepts`).
    pub(crate) fn notify_accept(&mut self, i: u32) {
        if let Some(reg) = self.slab.get_mut(i as usize).and_then(|s| s.ep.as_mut()) {
            if reg.events.intersects(Events::ET) && reg.pending.intersects(Events::IN) {
                reg.more_accepts = reg.more_accepts.saturating_add(1);
                return;
            }
        }
        self.notify(i, Events::IN);
    }

    /// An epoll session is closed: its members are no longer watched.
    pub(crate) fn close_vep(&mut self, vep: u32) {
        for (_, s) in self.slab.iter_mut() {
            if s.ep.is_some_and(|r| r.vep == vep) {
                s.ep = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(events: Events) -> Registration {
        Registration {
            vep: 0,
            events,
            data: 0,
            pending: Events::NONE,
            more_accepts: 0,
            edge_tail: None,
            probe_seen: None,
            probe_next: None,
            edge_tx: None,
        }
    }

    #[test]
    fn err_and_hup_are_always_reported() {
        let r = reg(Events::IN);
        assert_eq!(
            r.mask(Events::ERR | Events::HUP | Events::OUT),
            Events::ERR | Events::HUP
        );
        assert_eq!(r.mask(Events::OUT), Events::NONE);
    }

    #[test]
    fn peer_close_is_rdhup_when_asked_for_else_hup() {
        let close = Events::IN | Events::RDHUP | Events::HUP;
        assert_eq!(
            reg(Events::IN | Events::RDHUP).mask(close),
            Events::IN | Events::RDHUP
        );
        assert_eq!(reg(Events::IN).mask(close), Events::IN | Events::HUP);
    }

    #[test]
    fn the_hot_list_keeps_the_newest_members_once_each() {
        let mut e = EpollState::default();
        e.add_vep(7);
        for i in 0..(HOT_MAX as u32 + 3) {
            e.mark_hot(7, i);
        }
        e.mark_hot(7, 5);
        let (hot, n) = e.hot(7);
        assert_eq!(n, HOT_MAX);
        assert_eq!(hot[n - 1], 5, "marked again: newest");
        assert!(
            !hot[..n].contains(&0) && !hot[..n].contains(&2),
            "oldest fell off"
        );
        assert_eq!(hot[..n].iter().filter(|&&h| h == 5).count(), 1);
        e.unmark_hot(7, 5);
        assert_eq!(e.hot(7).1, HOT_MAX - 1);
        assert_eq!(e.hot(8).1, 0, "no such epoll session");
    }
}
