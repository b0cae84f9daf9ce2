//! vppcom_epoll_*: epoll sessions over VCL sessions, level- or edge-triggered.
//!
//! The registrations and ready queues are table data ([`crate::table::epoll`]): events from
//! VPP mark members ready there while the worker drains its mq. This module creates and
//! edits registrations and delivers what is queued.

mod select;

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::{Duration, Instant};

use vcl_svm::fifo::notify::{SVM_FIFO_WANT_DEQ_NOTIF, SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL};

pub use select::{poll, select};

use crate::error::{Error, Result};
use crate::session::{self, readiness};
use crate::table::{Events, Registration, Session, Sessions, State};
use crate::wait::{self, Naps, Wake};
use crate::worker::Worker;

/// Longest sleep of a waiting epoll_wait between looks at the app mq. Only VPP's events (which
/// do signal the mq) make sessions ready here, but VPP's death signals nothing: each wake-up
/// also probes the app socket, so this bounds how late a waiter learns it (docs/wire.md "VPP
/// death"; 100 ms made the typical epoll_wait detection ~100 ms, 20 ms costs 50 cheap
/// wake-ups a second while idle).
const EPOLL_NAP: Duration = Duration::from_millis(20);

/// vppcom_epoll_create.
pub fn create(w: &Worker) -> Result<u32> {
    let mut ss = w.sessions.lock();
    let i = ss.alloc(Session::new_vep()).ok_or(Error::NoMem)?;
    ss.epoll.add_vep(i);
    Ok(session::handle(w.index, i))
}

/// Tx fifo want bits for EPOLLOUT: IF_FULL and a 3% threshold, plus a one-shot notification
/// when it is not writable now (docs/wire.md#fifos).
fn arm_tx(s: &Session, want_out: bool) {
    let Some(f) = s.fifos.as_ref().map(|f| f.tx_sig.fifo()) else {
        return;
    };
    if !want_out {
        f.del_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL);
        return;
    }
    f.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL);
    f.set_deq_thresh(f.size() / 100 * 3);
    if s.tx_space() == 0 {
        f.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
    }
}

/// vppcom_epoll_ctl.
pub fn ctl(w: &Worker, vep_sh: u32, op: i32, sh: u32, ev: Option<(Events, u64)>) -> Result<()> {
    let mut ss = w.sessions.lock();
    let vep = ss.lookup(w.index, vep_sh)?;
    if !ss.get(vep).is_some_and(|s| s.is_vep) {
        return Err(Error::Inval);
    }
    let i = ss.lookup(w.index, sh)?;
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
            let pending = s.ep.map_or(Events::NONE, |r| r.pending);
            s.ep = Some(Registration {
                vep,
                events,
                data,
                pending,
                more_accepts: 0,
                edge_tail: None,
                probe_seen: None,
                probe_next: None,
                edge_tx: None,
            });
            arm_tx(s, events.intersects(Events::OUT));
            let now = readiness(s);
            ss.notify(i, now);
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
    let mut todo = ss.epoll.take_lt(vep);
    if todo.is_empty() {
        return;
    }
    for i in todo.drain(..) {
        let ready = ss.get(i).map_or(Events::NONE, readiness);
        ss.notify(i, ready);
    }
    ss.epoll.put_lt(vep, todo);
}

/// Look at the rx fifos of `vep`'s recently active members (`HOT_MAX` at most) and queue
/// those with bytes: in cut-through the peer's bytes are there as soon as it wrote them, long
/// before VPP relays its event (an epoll-driven echo server took ~320 µs a round trip that
/// way; blocking reads, which look at their fifo, ~2 µs). A level-triggered member with bytes
/// is readable, and VPP's later event for the same bytes delivers nothing more (`collect`
/// re-reads readiness). An edge-triggered one gets an edge only when its tail moved since its
/// last EPOLLIN (`Registration::edge_tail`: bytes left unread make no new edge, and VPP's later
/// event for bytes already reported makes none either), and only once the bytes stopped
/// arriving for [`PROBE_SETTLE`] or [`PROBE_BULK`] of them are queued: edge-triggered servers
/// often read once per edge (VPP's `vcl_test_server`), and an edge per write made one read
/// each write as it landed, which slows the writer (a stream of 1 KiB writes fell from ~16 to
/// ~11 Gbit/s over cut-through). A member found streaming is looked at only every
/// [`PROBE_STREAM_LOOK`] (`edge_due`).
fn probe_hot(ss: &mut Sessions, vep: u32, first: bool) {
    let (hot, n) = ss.epoll.hot(vep);
    let mut clock = None;
    for &i in &hot[..n] {
        let look = ss.get_mut(i).and_then(|s| {
            let r = s.ep.as_ref()?;
            if r.vep != vep || !r.events.intersects(Events::IN) {
                return None;
            }
            if !r.events.intersects(Events::ET) {
                return Some(readiness(s).intersects(Events::IN));
            }
            let now = *clock.get_or_insert_with(Instant::now);
            if r.probe_next.is_some_and(|next| now < next) {
                return Some(false);
            }
            let (tail, tx) = tails(s)?;
            let look = EdgeLook {
                tail,
                tx,
                queued: s.rx_ready() as usize,
                size: s.fifos.as_ref().map_or(0, |f| f.rx.fifo().size() as usize),
                first,
            };
            Some(edge_due(s.ep.as_mut()?, now, look))
        });
        match look {
            None => ss.epoll.unmark_hot(vep, i),
            Some(true) => ss.notify(i, Events::IN),
            Some(false) => {}
        }
    }
}

/// What one look at an edge-triggered member's fifos found.
#[derive(Clone, Copy)]
struct EdgeLook {
    /// The rx tail.
    tail: u32,
    /// The tx tail (the app's own writes).
    tx: u32,
    /// Bytes queued.
    queued: usize,
    /// The rx fifo's size.
    size: usize,
    /// The first look of this wait (the app just came back from handling the last events).
    first: bool,
}

/// Whether a look at an edge-triggered member reports EPOLLIN now (see [`probe_hot`]); keeps
/// what the look saw in `r`.
fn edge_due(r: &mut Registration, now: Instant, l: EdgeLook) -> bool {
    if r.edge_tail == Some(l.tail) || l.queued == 0 {
        return false;
    }
    let settled = match r.probe_seen {
        Some((t, since)) if t == l.tail => now.duration_since(since) >= PROBE_SETTLE,
        _ => {
            // a stream: new bytes already there when the app came back to wait and it wrote
            // nothing since its last EPOLLIN (not a request that landed while it answered the
            // last one), or more coming in a stream found that way: look again only after a
            // while
            if l.first && r.edge_tx == Some(l.tx) || r.probe_next.is_some() {
                r.probe_next = Some(now + PROBE_STREAM_LOOK);
            }
            r.probe_seen = Some((l.tail, now));
            false
        }
    };
    // (a stream's bulk at most half the fifo: the writer must not find it full meanwhile)
    let bulk = if r.probe_next.is_some() {
        PROBE_STREAM_BULK.min(l.size / 2).max(PROBE_BULK)
    } else {
        PROBE_BULK
    };
    settled || l.queued >= bulk
}

/// How long an edge-triggered member's bytes must have stopped arriving before a waiting
/// epoll_wait reports them itself (see [`probe_hot`]).
const PROBE_SETTLE: Duration = Duration::from_micros(2);
/// Bytes queued that an edge-triggered member is reported for at once.
const PROBE_BULK: usize = 64 << 10;
/// How often a waiting epoll_wait looks at a member whose bytes are streaming in. Each look
/// reads the line the writer stores its tail to, and looks every few hundred ns kept that line
/// and the fresh data lines moving between the two cores: VPP's `vcl_test_client -U -s 10`
/// over cut-through ran at 77-88 Gbit/s against upstream's 120-130; rate-limited to one look
/// per 25 µs, 116-136 (docs/benchmarking.md, "Reader batches"). A member's first new bytes are
/// still seen at once (a request after a quiet spell: ping-pong latency is unchanged).
const PROBE_STREAM_LOOK: Duration = Duration::from_micros(25);
/// Bytes queued that a member found streaming is reported for at once (else when its bytes
/// stop), at most half its fifo: bigger reads, fewer turns (`vcl_test_client -U -s 10`, 4 MB
/// fifos, same runs: 123-134 Gbit/s with [`PROBE_BULK`], 136-144 with 256 KiB; another set:
/// 256 KiB 143-147, 1 MiB 152-156, 2 MB 146-155, upstream 128-129).
const PROBE_STREAM_BULK: usize = 1 << 20;

/// An open stream session's rx tail (the producer's position: it moves with every arrival)
/// and tx tail (the app's own writes: this process's line).
fn tails(s: &Session) -> Option<(u32, u32)> {
    let f = s.fifos.as_ref()?;
    (s.state == State::Ready && !s.is_dgram()).then(|| {
        (
            f.rx.fifo().shared().tail.load(Acquire),
            f.tx.fifo().shared().tail.load(Relaxed),
        )
    })
}

/// Deliver up to `out.len()` events of epoll session `vep`.
fn collect(ss: &mut Sessions, vep: u32, out: &mut [(Events, u64)]) -> usize {
    let mut n = 0;
    while n < out.len() {
        let Some(i) = ss.epoll.pop_ready(vep) else {
            break;
        };
        let Some(s) = ss.get_mut(i) else {
            continue;
        };
        let now = readiness(s);
        // edge-triggered members only: level-triggered ones re-read readiness instead
        let tails =
            s.ep.as_ref()
                .filter(|r| r.events.intersects(Events::ET))
                .and_then(|_| tails(s));
        let tail = tails.map(|(rx, _)| rx);
        let Some(reg) =
            s.ep.as_mut()
                .filter(|r| r.vep == vep && !r.pending.is_empty())
        else {
            continue;
        };
        let edge = reg.events.intersects(Events::ET);
        let mut bits = if edge {
            reg.pending
        } else {
            reg.mask(now) | (reg.pending & Events::ALWAYS)
        };
        reg.pending = Events::NONE;
        if edge && bits.intersects(Events::IN) && tail.is_some() {
            // an edge per arrival: none for bytes an earlier EPOLLIN covered
            if reg.edge_tail == tail {
                bits = bits.without(Events::IN);
            }
            reg.edge_tail = tail;
            reg.edge_tx = tails.map(|(_, tx)| tx);
        }
        if bits.intersects(Events::IN) {
            // the app reads now: the next wait finds out afresh whether bytes stream in
            reg.probe_next = None;
        }
        if bits.is_empty() {
            continue;
        }
        out[n] = (bits, reg.data);
        n += 1;
        if reg.events.intersects(Events::ONESHOT) {
            reg.events = Events::NONE;
            reg.more_accepts = 0;
        } else if !edge {
            ss.epoll.push_lt(vep, i);
            if bits.intersects(Events::IN) {
                ss.epoll.mark_hot(vep, i);
            }
        } else if tail.is_some() {
            if bits.intersects(Events::IN) {
                ss.epoll.mark_hot(vep, i);
            }
        } else if reg.more_accepts > 0 {
            // one EPOLLIN per queued accept (as upstream), never more than are queued: this
            // one is delivered, the next goes to the back of the queue
            let queued = s.accept_q.len().saturating_sub(1);
            reg.more_accepts = reg.more_accepts.min(queued as u32);
            if reg.more_accepts > 0 {
                reg.more_accepts -= 1;
                reg.pending = Events::IN;
                ss.epoll.requeue(vep, i);
            }
        }
    }
    n
}

/// vppcom_epoll_wait: `wait_ms` 0 polls, negative waits forever (-2: only queued events).
/// Once VPP detached the worker for good (no re-attach), a wait with nothing to deliver fails
/// with ENOTCONN instead of sleeping for events that cannot come; while the app re-attaches,
/// it waits on (`wait::until_back`).
pub fn wait(w: &Worker, vep_sh: u32, out: &mut [(Events, u64)], wait_ms: f64) -> Result<usize> {
    let mut ss = w.sessions.lock();
    let vep = ss.lookup(w.index, vep_sh)?;
    if !ss.get(vep).is_some_and(|s| s.is_vep) {
        return Err(Error::Inval);
    }
    ss.multiplexed = true;
    if wait_ms == -2.0 {
        return Ok(collect(&mut ss, vep, out));
    }
    // as upstream, only a non-negative time bounds the wait (NaN too waits forever); +inf
    // and other times too long for a Duration mean forever as well
    let timeout = (wait_ms >= 0.0)
        .then(|| Duration::try_from_secs_f64(wait_ms / 1e3).ok())
        .flatten();
    // edge-triggered members learn of new bytes only through VPP's events: a held has_event
    // is cleared now rather than when the spin ends (see `Sessions::hold_rx`)
    ss.release_held_rx();
    recheck_lt(&mut ss, vep);
    let mut n = 0;
    let naps = Naps::AtMost(EPOLL_NAP);
    let mut first = true;
    match wait::until_back(w, &mut ss, timeout, naps, |ss| {
        probe_hot(ss, vep, std::mem::take(&mut first));
        n = collect(ss, vep, out);
        n > 0
    }) {
        Wake::Done | Wake::TimedOut => Ok(n),
        Wake::Detached => Err(Error::NotConn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(vep: u32, events: Events) -> Registration {
        Registration {
            vep,
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

    /// A table with an epoll session and one member registered for `events`: (table, vep,
    /// member).
    fn member(events: Events) -> (Sessions, u32, u32) {
        let mut ss = Sessions::default();
        let vep = ss.alloc(Session::new_vep()).unwrap();
        let i = ss.alloc(Session::new(0, true)).unwrap();
        ss.get_mut(i).unwrap().ep = Some(reg(vep, events));
        (ss, vep, i)
    }

    #[test]
    fn notify_queues_a_session_once_and_merges_bits() {
        let (mut ss, vep, i) = member(Events::IN | Events::OUT | Events::ET);
        ss.notify(i, Events::IN);
        ss.notify(i, Events::OUT);
        let mut out = [(Events::NONE, 0); 4];
        assert_eq!(collect(&mut ss, vep, &mut out), 1);
        assert_eq!(out[0].0, Events::IN | Events::OUT);
        assert_eq!(
            collect(&mut ss, vep, &mut out),
            0,
            "edge-triggered: delivered once"
        );
    }

    fn look(tail: u32, tx: u32, queued: usize, first: bool) -> EdgeLook {
        EdgeLook {
            tail,
            tx,
            queued,
            size: 4 << 20,
            first,
        }
    }

    /// An edge-triggered member last reported readable at rx tail `tail` and tx tail `tx`.
    fn reported_at(tail: u32, tx: u32) -> Registration {
        let mut r = reg(1, Events::IN | Events::ET);
        (r.edge_tail, r.edge_tx) = (Some(tail), Some(tx));
        r
    }

    #[test]
    fn a_request_is_reported_once_it_settles_and_looked_at_closely() {
        let mut r = reported_at(100, 50);
        let t0 = Instant::now();
        // the first look finds nothing new; the request lands while the wait spins
        assert!(!edge_due(&mut r, t0, look(100, 50, 0, true)));
        assert!(!edge_due(&mut r, t0, look(164, 50, 64, false)));
        assert_eq!(r.probe_next, None, "no stream: every look counts");
        assert!(edge_due(
            &mut r,
            t0 + PROBE_SETTLE,
            look(164, 50, 64, false)
        ));
        // it landed while the app answered the last one (tx moved): still no stream
        let mut r = reported_at(100, 50);
        assert!(!edge_due(&mut r, t0, look(164, 114, 64, true)));
        assert_eq!(r.probe_next, None);
    }

    #[test]
    fn a_stream_is_looked_at_every_stream_look_and_reported_in_bulk_or_when_it_pauses() {
        let mut r = reported_at(0, 50);
        let t0 = Instant::now();
        // bytes came in while the app handled the last batch, and it wrote nothing
        assert!(!edge_due(&mut r, t0, look(8192, 50, 8192, true)));
        assert_eq!(r.probe_next, Some(t0 + PROBE_STREAM_LOOK));
        // more came by the next look: still a stream, the next look later again
        let t1 = t0 + PROBE_STREAM_LOOK;
        assert!(!edge_due(&mut r, t1, look(20_000, 50, 20_000, false)));
        assert_eq!(r.probe_next, Some(t1 + PROBE_STREAM_LOOK));
        // a stream's bulk is bigger than a member's first bytes
        let t2 = t1 + PROBE_STREAM_LOOK;
        assert!(!edge_due(&mut r, t2, look(90_000, 50, PROBE_BULK, false)));
        // or: nothing more came since the last look (the writer paused)
        let mut paused = r;
        let t3 = t2 + PROBE_STREAM_LOOK;
        assert!(edge_due(
            &mut paused,
            t3,
            look(90_000, 50, PROBE_BULK, false)
        ));
        // a small fifo's stream is reported at half the fifo
        let mut small = r;
        let half = EdgeLook {
            size: 256 << 10,
            ..look(200_000, 50, 128 << 10, false)
        };
        assert!(edge_due(&mut small, t3, half));
        // bulk: reported at once
        assert!(!edge_due(
            &mut r,
            t3,
            look(600_000, 50, PROBE_STREAM_BULK / 2, false)
        ));
        let t4 = t3 + PROBE_STREAM_LOOK;
        assert!(edge_due(
            &mut r,
            t4,
            look(1_200_000, 50, PROBE_STREAM_BULK, false)
        ));
    }

    #[test]
    fn delivering_in_ends_the_stream_pace() {
        let (mut ss, vep, i) = member(Events::IN | Events::ET);
        ss.get_mut(i).unwrap().ep.as_mut().unwrap().probe_next =
            Some(Instant::now() + Duration::from_secs(1));
        ss.notify(i, Events::IN);
        let mut out = [(Events::NONE, 0); 4];
        assert_eq!(collect(&mut ss, vep, &mut out), 1);
        let r = ss.get(i).unwrap().ep.unwrap();
        assert_eq!(r.probe_next, None);
    }

    #[test]
    fn oneshot_disables_after_one_delivery() {
        let (mut ss, vep, i) = member(Events::IN | Events::ONESHOT | Events::ET);
        ss.notify(i, Events::IN);
        let mut out = [(Events::NONE, 0); 4];
        assert_eq!(collect(&mut ss, vep, &mut out), 1);
        ss.notify(i, Events::IN);
        assert_eq!(collect(&mut ss, vep, &mut out), 0);
    }
}
