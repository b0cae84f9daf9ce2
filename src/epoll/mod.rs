//! vppcom_epoll_*: epoll sessions over VCL sessions, level- or edge-triggered.
//!
//! Events from VPP mark a registered session pending on its epoll session's ready queue (once,
//! merging bits). epoll_wait pops from that queue, so its cost follows the number of ready
//! sessions, not registered ones. Level-triggered sessions that were ready when delivered are
//! re-checked on the next wait (upstream's LT list) and dropped once they are not ready.

mod select;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libc::{EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLONESHOT, EPOLLOUT, EPOLLRDHUP};
use vcl_svm::fifo::notify::{SVM_FIFO_WANT_DEQ_NOTIF, SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL};

pub use select::{poll, select};

use crate::error::{Error, Result};
use crate::session::{self, rx_ready, tx_space, Session, Sessions, State};
use crate::worker::Worker;

/// A session's membership in an epoll session.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    pub vep: u32,
    pub events: u32,
    pub data: u64,
    /// Bits waiting to be delivered (non-zero: queued on the vep's ready queue).
    pub pending: u32,
}

/// One epoll session's queues.
#[derive(Default)]
struct Vep {
    ready: VecDeque<u32>,
    lt: Vec<u32>,
    /// The other half of `lt`'s double buffer, so re-checking allocates nothing.
    lt_spare: Vec<u32>,
}

/// Every epoll session of a worker.
#[derive(Default)]
pub struct EpollState {
    veps: HashMap<u32, Vep>,
}

impl EpollState {
    /// A session is gone: drop it from queues (lazily: entries are checked when popped).
    pub fn forget(&mut self, index: u32) {
        self.veps.remove(&index);
    }
}

const ALWAYS: u32 = (EPOLLERR | EPOLLHUP) as u32;

/// Longest sleep of a waiting epoll_wait between looks at the app mq. Only VPP's events (which
/// do signal the mq) make sessions ready here, so unlike blocked reads there is nothing to
/// gain from waking often.
const EPOLL_NAP: Duration = Duration::from_millis(100);

/// What a session is ready for now, as epoll bits (before masking with its registration).
pub fn readiness(s: &Session) -> u32 {
    let mut ev = 0u32;
    match s.state {
        State::Listen if !s.accept_q.is_empty() => ev |= EPOLLIN as u32,
        State::Ready => {
            if rx_ready(s) > 0 {
                ev |= EPOLLIN as u32;
            }
            if tx_space(s) > 0 && !s.shut_wr {
                ev |= EPOLLOUT as u32;
            }
        }
        State::VppClosing => ev |= (EPOLLIN | EPOLLRDHUP | EPOLLHUP) as u32,
        State::Reset => ev |= (EPOLLERR | EPOLLHUP | EPOLLIN) as u32,
        // a failed connect shows as writable + hung up (upstream); a session VPP dropped as
        // error + hang-up
        State::Detached if s.vpp_error != 0 => ev |= (EPOLLOUT | EPOLLHUP) as u32,
        State::Detached => ev |= (EPOLLHUP | EPOLLERR) as u32,
        _ => {}
    }
    ev
}

/// Bits a registration reports: what it asked for plus ERR/HUP; a peer close shows as RDHUP
/// when asked for, else HUP (upstream's choice).
fn mask(reg: &Registration, bits: u32) -> u32 {
    let mut m = bits & (reg.events | ALWAYS);
    if bits & EPOLLRDHUP as u32 != 0 && reg.events & EPOLLRDHUP as u32 != 0 {
        m &= !(EPOLLHUP as u32);
    }
    m
}

/// Something happened to session `i`: queue it on its epoll session if it watches for that.
pub fn notify(ss: &mut Sessions, i: u32, bits: u32) {
    let Some(s) = ss.slab.get_mut(i as usize) else {
        return;
    };
    let Some(reg) = s.ep.as_mut() else { return };
    let m = mask(reg, bits);
    if m == 0 {
        return;
    }
    let was_queued = reg.pending != 0;
    reg.pending |= m;
    if !was_queued {
        let vep = reg.vep;
        ss.epoll.veps.entry(vep).or_default().ready.push_back(i);
    }
}

/// Take session `i` out of whatever epoll session watches it.
pub fn unregister(ss: &mut Sessions, i: u32) {
    if let Some(s) = ss.slab.get_mut(i as usize) {
        s.ep = None;
    }
}

/// An epoll session is closed: its members are no longer watched.
pub fn close_vep(ss: &mut Sessions, vep: u32) {
    for (_, s) in ss.slab.iter_mut() {
        if s.ep.is_some_and(|r| r.vep == vep) {
            s.ep = None;
        }
    }
}

/// vppcom_epoll_create.
pub fn create(w: &Worker) -> Result<u32> {
    let mut ss = w.sessions.lock();
    let mut s = Session::new_vep();
    s.is_vep = true;
    let i = ss.alloc(s).ok_or(Error::NoMem)?;
    ss.epoll.veps.insert(i, Vep::default());
    Ok(session::handle(w.index, i))
}

/// Tx fifo want bits for EPOLLOUT (ERRATA O3 c): IF_FULL and a 3% threshold, plus a one-shot
/// notification when it is not writable now.
fn arm_tx(s: &Session, want_out: bool) {
    let Some(f) = s.fifos.as_ref().and_then(|f| f.tx_sig.get().ok()) else {
        return;
    };
    if !want_out {
        f.del_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL);
        return;
    }
    f.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL);
    f.set_deq_thresh(f.size() / 100 * 3);
    if tx_space(s) == 0 {
        f.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
    }
}

/// vppcom_epoll_ctl.
pub fn ctl(w: &Worker, vep_sh: u32, op: i32, sh: u32, ev: Option<(u32, u64)>) -> Result<()> {
    let mut ss = w.sessions.lock();
    let vep = session::lookup(w, &ss, vep_sh)?;
    if !ss.get(vep).is_some_and(|s| s.is_vep) {
        return Err(Error::Inval);
    }
    let i = session::lookup(w, &ss, sh)?;
    let s = ss.get_mut(i).expect("looked up");
    if s.is_vep {
        return Err(Error::Inval);
    }
    match op {
        libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD => {
            let (events, data) = ev.ok_or(Error::Inval)?;
            match (op, s.ep) {
                (libc::EPOLL_CTL_ADD, Some(_)) => return Err(Error::Exist),
                (libc::EPOLL_CTL_MOD, None) => return Err(Error::NoEnt),
                (libc::EPOLL_CTL_MOD, Some(r)) if r.vep != vep => return Err(Error::Inval),
                _ => {}
            }
            let pending = s.ep.map_or(0, |r| r.pending);
            s.ep = Some(Registration {
                vep,
                events,
                data,
                pending,
            });
            arm_tx(s, events & EPOLLOUT as u32 != 0);
            let now = readiness(s);
            notify(&mut ss, i, now);
        }
        libc::EPOLL_CTL_DEL => {
            match s.ep {
                Some(r) if r.vep == vep => {}
                Some(_) => return Err(Error::Inval),
                None => return Err(Error::NoEnt),
            }
            arm_tx(s, false);
            s.ep = None;
        }
        _ => return Err(Error::Inval),
    }
    Ok(())
}

/// Move LT sessions that are still ready back onto the ready queue.
fn recheck_lt(ss: &mut Sessions, vep: u32) {
    let mut todo = match ss.epoll.veps.get_mut(&vep) {
        Some(v) if !v.lt.is_empty() => {
            let spare = std::mem::take(&mut v.lt_spare);
            std::mem::replace(&mut v.lt, spare)
        }
        _ => return,
    };
    for i in todo.drain(..) {
        let ready = ss.get(i).map_or(0, readiness);
        notify(ss, i, ready);
    }
    if let Some(v) = ss.epoll.veps.get_mut(&vep) {
        v.lt_spare = todo;
    }
}

/// Deliver up to `out.len()` events of epoll session `vep`.
fn collect(ss: &mut Sessions, vep: u32, out: &mut [(u32, u64)]) -> usize {
    let mut n = 0;
    while n < out.len() {
        let Some(i) = ss
            .epoll
            .veps
            .get_mut(&vep)
            .and_then(|v| v.ready.pop_front())
        else {
            break;
        };
        let Some(s) = ss.slab.get_mut(i as usize) else {
            continue;
        };
        let now = readiness(s);
        let Some(reg) = s.ep.as_mut().filter(|r| r.vep == vep && r.pending != 0) else {
            continue;
        };
        let edge = reg.events & EPOLLET as u32 != 0;
        let bits = if edge {
            reg.pending
        } else {
            mask(reg, now) | (reg.pending & ALWAYS)
        };
        reg.pending = 0;
        if bits == 0 {
            continue;
        }
        out[n] = (bits, reg.data);
        n += 1;
        if reg.events & EPOLLONESHOT as u32 != 0 {
            reg.events = 0;
        } else if !edge {
            if let Some(v) = ss.epoll.veps.get_mut(&vep) {
                v.lt.push(i);
            }
        }
    }
    n
}

/// vppcom_epoll_wait: `wait_ms` 0 polls, negative waits forever (-2: only queued events).
pub fn wait(w: &Worker, vep_sh: u32, out: &mut [(u32, u64)], wait_ms: f64) -> Result<usize> {
    let mut ss = w.sessions.lock();
    let vep = session::lookup(w, &ss, vep_sh)?;
    if !ss.get(vep).is_some_and(|s| s.is_vep) {
        return Err(Error::Inval);
    }
    if wait_ms == -2.0 {
        return Ok(collect(&mut ss, vep, out));
    }
    let deadline =
        (wait_ms >= 0.0).then(|| Instant::now() + Duration::from_secs_f64(wait_ms / 1e3));
    recheck_lt(&mut ss, vep);
    loop {
        session::drain(w, &mut ss);
        let n = collect(&mut ss, vep, out);
        if n > 0 {
            return Ok(n);
        }
        let nap = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(EPOLL_NAP),
                _ => return Ok(0),
            },
            None => EPOLL_NAP,
        };
        parking_lot::MutexGuard::unlocked(&mut ss, || w.wait_mq(nap));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(events: i32) -> Registration {
        Registration {
            vep: 0,
            events: events as u32,
            data: 0,
            pending: 0,
        }
    }

    #[test]
    fn err_and_hup_are_always_reported() {
        let r = reg(EPOLLIN);
        assert_eq!(
            mask(&r, (EPOLLERR | EPOLLHUP | EPOLLOUT) as u32),
            (EPOLLERR | EPOLLHUP) as u32
        );
        assert_eq!(mask(&r, EPOLLOUT as u32), 0);
    }

    #[test]
    fn peer_close_is_rdhup_when_asked_for_else_hup() {
        let close = (EPOLLIN | EPOLLRDHUP | EPOLLHUP) as u32;
        assert_eq!(
            mask(&reg(EPOLLIN | EPOLLRDHUP), close),
            (EPOLLIN | EPOLLRDHUP) as u32
        );
        assert_eq!(mask(&reg(EPOLLIN), close), (EPOLLIN | EPOLLHUP) as u32);
    }

    #[test]
    fn notify_queues_a_session_once_and_merges_bits() {
        let mut ss = Sessions::default();
        let vep = ss.alloc(Session::new_vep()).unwrap();
        let i = ss.alloc(Session::new(0, true)).unwrap();
        ss.get_mut(i).unwrap().ep = Some(Registration {
            vep,
            ..reg(EPOLLIN | EPOLLOUT | EPOLLET)
        });
        notify(&mut ss, i, EPOLLIN as u32);
        notify(&mut ss, i, EPOLLOUT as u32);
        let mut out = [(0, 0); 4];
        assert_eq!(collect(&mut ss, vep, &mut out), 1);
        assert_eq!(out[0].0, (EPOLLIN | EPOLLOUT) as u32);
        assert_eq!(
            collect(&mut ss, vep, &mut out),
            0,
            "edge-triggered: delivered once"
        );
    }

    #[test]
    fn oneshot_disables_after_one_delivery() {
        let mut ss = Sessions::default();
        let vep = ss.alloc(Session::new_vep()).unwrap();
        let i = ss.alloc(Session::new(0, true)).unwrap();
        ss.get_mut(i).unwrap().ep = Some(Registration {
            vep,
            ..reg(EPOLLIN | EPOLLONESHOT | EPOLLET)
        });
        notify(&mut ss, i, EPOLLIN as u32);
        let mut out = [(0, 0); 4];
        assert_eq!(collect(&mut ss, vep, &mut out), 1);
        notify(&mut ss, i, EPOLLIN as u32);
        assert_eq!(collect(&mut ss, vep, &mut out), 0);
    }
}
