//! Reading and writing stream sessions through their fifos, with VPP's notification protocol:
//! has_event on rx is cleared only when drained (then re-checked), TX events go to VPP only
//! when has_event on tx goes 0 -> 1, and dequeue notifications follow the producer's want bits.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use vcl_codec::event::EventType;
use vcl_svm::fifo::notify::SVM_FIFO_WANT_DEQ_NOTIF;
use vcl_svm::fifo::Fifo;
use vcl_svm::sync::MutexGuard;

use super::ops::lookup;
use crate::error::{Error, Result};
use crate::table::{Events, Fifos, Session, Sessions, State};
use crate::wait::{self, Naps};
use crate::worker::Worker;

/// Ready or peer-closing: the states in which fifos can be used; a connectionless UDP listener
/// too (upstream's `vcl_session_is_open`; only read/free_segments reach here with one, reads
/// and writes take the dgram paths first).
fn is_open(s: &Session) -> bool {
    matches!(s.state, State::Ready | State::VppClosing)
        || (s.state == State::Listen && super::dgram::is_cl(s))
}

/// Set by the LD_PRELOAD shim: it does every wait itself and clears held flags before it
/// sleeps (`api::set_caller_waits`).
static CALLER_WAITS: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_caller_waits() {
    CALLER_WAITS.store(true, Relaxed);
}

/// Whether a drained session keeps has_event set until a waiter sleeps (`Sessions::hold_rx`):
/// blocking sessions (their waits are ours), and all sessions when the caller does the waiting.
fn holds(s: &Session) -> bool {
    !s.nonblocking || CALLER_WAITS.load(Relaxed)
}

fn closed_error(s: &Session) -> Error {
    if s.state == State::Reset {
        Error::ConnReset
    } else {
        Error::NotConn
    }
}

/// What a read on an empty, closing session returns: 0 (EOF) or ECONNRESET.
fn closing_result(s: &Session) -> Option<Result<usize>> {
    match s.state {
        State::VppClosing if s.vpp_gone => Some(Err(Error::ConnReset)),
        State::VppClosing => Some(Ok(0)),
        State::Reset => Some(Err(Error::ConnReset)),
        _ => None,
    }
}

fn fifo_err(e: vcl_svm::SvmError) -> Error {
    tracing::error!("fifo: {e}");
    Error::ConnReset
}

/// The open session `sh` names, with its fifos. A session still connecting gets one look at
/// the app mq first, so a busy non-blocking loop that never waits still sees CONNECTED.
fn open_session(
    w: &Worker,
    ss: &mut vcl_svm::sync::MutexGuard<'_, Sessions>,
    sh: u32,
) -> Result<(u32, Fifos)> {
    let i = lookup(w, ss, sh)?;
    if ss.get(i).is_some_and(|s| s.state == State::Connecting) {
        w.drain(ss);
    }
    open_fifos(w, ss, sh)
}

fn open_fifos(w: &Worker, ss: &Sessions, sh: u32) -> Result<(u32, Fifos)> {
    let i = lookup(w, ss, sh)?;
    let s = ss.get(i).expect("looked up");
    if s.is_vep {
        return Err(Error::BadFd);
    }
    match (&s.fifos, is_open(s)) {
        (Some(f), true) => Ok((i, f.clone())),
        _ => Err(closed_error(s)),
    }
}

/// Make sure session `i` has bytes to read: Ok(None) when it has, Ok(Some(0)) at end of
/// stream, Err for would-block, reset or not connected. Blocking sessions wait.
fn ensure_readable(
    w: &Worker,
    ss: &mut vcl_svm::sync::MutexGuard<'_, Sessions>,
    i: u32,
    f: &Fifos,
) -> Result<Option<usize>> {
    if f.rx.fifo().max_dequeue_cons() > 0 {
        return Ok(None);
    }
    if ss.get(i).expect("open").shut_rd {
        return Ok(Some(0));
    }
    let s = ss.get(i).ok_or(Error::BadFd)?;
    let nonblocking = s.nonblocking;
    if holds(s) {
        // cleared only when a waiter is about to sleep (see `Sessions::hold_rx`)
        ss.hold_rx(i);
    } else {
        f.rx_sig.fifo().unset_event();
    }
    // See a close or reset VPP already queued, even in a busy non-blocking loop.
    w.drain(ss);
    let readable = |ss: &Sessions| {
        ss.get(i)
            .is_none_or(|s| s.rx_ready() > 0 || closing_result(s).is_some() || !is_open(s))
    };
    if !readable(ss) {
        if nonblocking {
            return Err(Error::Again);
        }
        wait::until(w, ss, None, Naps::Backoff, |ss| readable(ss));
    }
    let s = ss.get(i).ok_or(Error::BadFd)?;
    if s.rx_ready() > 0 {
        return Ok(None);
    }
    match closing_result(s) {
        Some(r) => r.map(Some),
        None => Err(closed_error(s)),
    }
}

/// An open session's fifos, borrowed (the fast paths: no clone).
fn open_ref(s: &Session) -> Option<&Fifos> {
    match &s.fifos {
        Some(f) if !s.is_vep && is_open(s) => Some(f),
        _ => None,
    }
}

/// Read's fast path: an open stream session with bytes queued (what the general path does in
/// that case, without cloning the fifo handles). None: take the general path.
#[inline(always)]
fn read_ready(
    w: &Worker,
    ss: &mut MutexGuard<'_, Sessions>,
    i: u32,
    buf: &mut [u8],
    peek: bool,
) -> Option<Result<usize>> {
    let multiplexed = ss.multiplexed;
    let s = ss.get_mut(i)?;
    if s.is_dgram() {
        return None;
    }
    // (the cached tail answers when it covers the whole buffer)
    let target = buf.len();
    let queued = open_ref(s)?
        .rx
        .fifo()
        .max_dequeue_cons_for(u32::try_from(target).unwrap_or(u32::MAX));
    // a blocking read in a stream lets the bytes gather first (see COALESCE_WAIT); an empty
    // fifo ends the stream
    if !multiplexed && !s.nonblocking {
        let streaming = std::mem::replace(&mut s.rx_streaming, queued > 0);
        if streaming && queued > 0 && (queued as usize) < target {
            coalesce(ss, i, target);
        }
    }
    if queued == 0 {
        return None;
    }
    // (looked up again: the table was unlocked while bytes gathered)
    let f = open_ref(ss.get(i)?)?;
    let rx = f.rx.fifo();
    let r = if peek {
        rx.peek(0, buf)
    } else {
        rx.dequeue(buf)
    };
    let n = match r {
        Ok(n) => n,
        Err(e) => return Some(Err(fifo_err(e))),
    };
    let next = after_read(w, ss, i, f, &rx, n as u32, peek);
    next.apply(ss, i);
    Some(Ok(n))
}

/// A blocking read that finds fewer bytes than it could take, in a stream (the previous read
/// found bytes already queued too), first lets them gather for up to [`COALESCE_WAIT`] (never
/// more than the busy-poll ceiling; not at all with busy-poll off) or until the caller's whole
/// buffer, or half the fifo, is queued. A reader that takes every write as it lands keeps the
/// fifo's tail and freshly written data lines moving between its core and the writer's: a
/// stream of 1 KiB writes ran at 0.4x upstream's, whose reader sleeps until VPP's event and
/// then reads in bulk (upstream's wait is VPP's loop, hundreds of µs). How rarely it reads
/// matters as much as that it waits: on a Zen 4 host (1 MiB L2), reading at 256 KiB or every
/// 13 µs ran 1 KiB writes at ~83 Gbit/s, waiting 100 µs (up to a 1 MiB buffer) at ~127-143
/// (docs/benchmarking.md, "Reader batches"). Half the fifo at most, so the writer never finds
/// it full while the reader waits. A read that finds the fifo empty (a request/response
/// exchange) never waits longer than it must, nor does any read of a worker whose app waits
/// on several sessions at once (epoll, select, poll): those sessions would wait with it (VPP's
/// `vcl_test_server`, blocking sessions in one epoll loop, fell from ~92 to ~57 Gbit/s with 10
/// sessions over cut-through).
const COALESCE_WAIT: Duration = Duration::from_micros(100);
/// How often the waiting reader looks at the fifo: each look reads the line the writer stores
/// its tail to, so rarely (1 KiB writes, same runs: a look every 25 µs 127-132 Gbit/s, every
/// 50 µs 136-137, one look at the end of the wait 140-143). A look that finds no new bytes
/// ends the wait: the writer has paused, and a stream that stalls costs its reader one look,
/// not the whole wait.
const COALESCE_LOOK: Duration = Duration::from_micros(50);

/// [`COALESCE_WAIT`]: let session `i`'s bytes gather until `target` are queued (at most half
/// the fifo), with the table unlocked.
#[inline(never)]
fn coalesce(ss: &mut MutexGuard<'_, Sessions>, i: u32, target: usize) {
    let wait = COALESCE_WAIT.min(Duration::from_micros(u64::from(wait::ceiling_us())));
    if wait.is_zero() {
        return;
    }
    let Some(f) = ss.get(i).and_then(|s| s.fifos.clone()) else {
        return;
    };
    MutexGuard::unlocked(ss, || {
        let rx = f.rx.fifo();
        let target = target.min(rx.size() as usize / 2);
        let end = Instant::now() + wait;
        let mut seen = rx.max_dequeue_cons() as usize;
        while seen < target {
            // spin (no shared line touched) until the next look
            let mut now = Instant::now();
            let look = (now + COALESCE_LOOK).min(end);
            while now < look {
                for _ in 0..16 {
                    std::hint::spin_loop();
                }
                now = Instant::now();
            }
            let queued = rx.max_dequeue_cons() as usize;
            // time is up, or the writer paused: read what is there
            if now >= end || queued == seen {
                break;
            }
            seen = queued;
        }
    });
}

/// vppcom_session_read (and peek). Inlined into the C entry point: the fast path (one lookup;
/// a stream session with bytes queued) runs in the caller's frame, the rest in
/// [`read_general`].
#[inline(always)]
pub fn read(w: &Worker, sh: u32, buf: &mut [u8], peek: bool) -> Result<usize> {
    let mut ss = w.sessions.lock();
    // a handle that names nothing open takes the general path, which reports why
    if let Ok(i) = lookup(w, &ss, sh) {
        if let Some(r) = read_ready(w, &mut ss, i, buf, peek) {
            return r;
        }
    }
    read_general(w, ss, sh, buf, peek)
}

/// [`read`] when the fast path does not apply: datagrams, an empty fifo (wait, EOF or
/// EAGAIN), and every error.
#[inline(never)]
fn read_general(
    w: &Worker,
    mut ss: MutexGuard<'_, Sessions>,
    sh: u32,
    buf: &mut [u8],
    peek: bool,
) -> Result<usize> {
    if let Ok(i) = lookup(w, &ss, sh) {
        if ss.get(i).is_some_and(|s| s.is_dgram() && !s.is_vep) {
            return super::dgram::read(w, ss, sh, buf, peek);
        }
    }
    let (i, f) = open_session(w, &mut ss, sh)?;
    if let Some(n) = ensure_readable(w, &mut ss, i, &f)? {
        return Ok(n);
    }
    let rx = f.rx.fifo();
    let n = if peek {
        rx.peek(0, buf).map_err(fifo_err)?
    } else {
        rx.dequeue(buf).map_err(fifo_err)?
    };
    after_read(w, &ss, i, &f, &rx, n as u32, peek).apply(&mut ss, i);
    Ok(n)
}

/// vppcom_session_read_segments: pointers into the rx fifo (at most 2), nothing consumed.
pub fn read_segments(
    w: &Worker,
    sh: u32,
    out: &mut [(*mut u8, u32); 2],
    max_bytes: u32,
) -> Result<usize> {
    let mut ss = w.sessions.lock();
    let (i, f) = open_session(w, &mut ss, sh)?;
    if let Some(n) = ensure_readable(w, &mut ss, i, &f)? {
        return Ok(n);
    }
    let rx = f.rx.fifo();
    let mut segs: [vcl_svm::fifo::FifoSeg<'_>; 2] = Default::default();
    let (n_segs, bytes) = match rx.segments(0, &mut segs, max_bytes) {
        Ok(r) => r,
        Err(vcl_svm::SvmError::Empty) => return Err(Error::Again),
        Err(e) => return Err(fifo_err(e)),
    };
    for (o, s) in out.iter_mut().zip(segs.iter().take(n_segs)) {
        *o = (s.as_ptr(), s.len() as u32);
    }
    Ok(bytes as usize)
}

/// vppcom_session_free_segments: consume what read_segments showed.
pub fn free_segments(w: &Worker, sh: u32, n_bytes: u32) -> Result<()> {
    let mut ss = w.sessions.lock();
    let (i, f) = open_session(w, &mut ss, sh)?;
    let rx = f.rx.fifo();
    let n = match rx.dequeue_drop(n_bytes) {
        // nothing was shown to free (an app's mistake, not a broken fifo: no error log)
        Err(vcl_svm::SvmError::Empty) => return Ok(()),
        r => r.map_err(fifo_err)?,
    };
    after_read(w, &ss, i, &f, &rx, n as u32, false).apply(&mut ss, i);
    Ok(())
}

/// What a read leaves to do on the session table (after its borrow of the fifos ends).
#[must_use]
enum AfterRead {
    Nothing,
    /// A blocking session was drained: keep has_event set (see `Sessions::hold_rx`).
    Hold,
    /// A non-blocking session was drained and has_event cleared (`renotify`: bytes raced in):
    /// its kept chunks go back later (see `Sessions::keep_rx`).
    Drained {
        renotify: bool,
    },
}

impl AfterRead {
    #[inline]
    fn apply(self, ss: &mut Sessions, i: u32) {
        match self {
            AfterRead::Nothing => {}
            AfterRead::Hold => ss.hold_rx(i),
            AfterRead::Drained { renotify } => {
                ss.keep_rx(i);
                if renotify {
                    ss.notify(i, Events::IN);
                }
            }
        }
    }
}

/// Clear has_event when drained (re-checking for a race) — or, for a blocking session, hold
/// it — and send a dequeue notification if the producer asked for one.
#[inline(always)]
fn after_read(
    w: &Worker,
    ss: &Sessions,
    i: u32,
    f: &Fifos,
    rx: &Fifo<'_>,
    n: u32,
    peek: bool,
) -> AfterRead {
    let mut next = AfterRead::Nothing;
    if rx.is_empty_cons() {
        if ss.get(i).is_some_and(holds) {
            next = AfterRead::Hold;
        } else {
            next = AfterRead::Drained {
                renotify: f.clear_rx_event(),
            };
        }
    } else {
        // bytes left queued: this session joins no bounded list of drained ones, so it keeps
        // no more than a quarter of its fifo (a bad chunk list shows at the next dequeue)
        let _ = rx.trim_kept();
    }
    if peek || n == 0 || !f.rx_sig.wants_deq_ntf() {
        return next;
    }
    let sig = f.rx_sig.fifo();
    if rx.needs_deq_ntf_signalled_by(&sig, n) {
        sig.clear_deq_ntf();
        if let Some(s) = ss.get(i) {
            w.send_io(s.vpp_thread, EventType::IoRx, s.vpp_handle);
        }
    }
    next
}

/// Enqueue into an open session's tx fifo, then TX (or TX_FLUSH) if has_event was 0.
fn enqueue_and_signal(
    w: &Worker,
    s: &Session,
    f: &Fifos,
    buf: &[u8],
    flush: bool,
) -> Result<usize> {
    let r = f.tx.fifo().enqueue(buf);
    signal_tx(w, s, f, flush);
    match r {
        Ok(n) => Ok(n),
        Err(vcl_svm::SvmError::Full) => Err(Error::Again),
        Err(e) => Err(fifo_err(e)),
    }
}

/// TX (or TX_FLUSH) to VPP if has_event was 0.
#[inline]
fn signal_tx(w: &Worker, s: &Session, f: &Fifos, flush: bool) {
    if f.tx_sig.set_event() {
        let et = if flush {
            EventType::IoTxFlush
        } else {
            EventType::IoTx
        };
        if !w.send_io(s.vpp_thread, et, s.vpp_handle) {
            // VPP's queue stayed full: with has_event left set no later write would signal
            // again and VPP would never hear of these bytes; the next write tries again
            f.tx_sig.fifo().unset_event();
        }
    }
}

/// vppcom_session_write / write_msg: enqueue, then TX (or TX_FLUSH) if has_event was 0.
///
/// Inlined into the C entry point: the fast path (one lookup; an open stream session,
/// writable, with room in the fifo; no clone of the fifo handles) runs in the caller's frame,
/// everything else in [`write_general`]. The enqueue itself finds out whether there is room (a
/// separate look would read the consumer's position twice per write); a full fifo takes the
/// general path.
#[inline(always)]
pub fn write(w: &Worker, sh: u32, buf: &[u8], flush: bool) -> Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    let ss = w.sessions.lock();
    if let Some(s) = lookup(w, &ss, sh).ok().and_then(|i| ss.get(i)) {
        if let Some(f) = open_ref(s).filter(|_| !s.shut_wr && !s.vpp_gone && !s.is_dgram()) {
            match f.tx.fifo().enqueue(buf) {
                Ok(n) => {
                    signal_tx(w, s, f, flush);
                    return Ok(n);
                }
                Err(vcl_svm::SvmError::Full) => {}
                Err(e) => return Err(fifo_err(e)),
            }
        }
    }
    write_general(w, ss, sh, buf, flush)
}

/// [`write`] when the fast path does not apply: datagrams, a full fifo (wait or EAGAIN), and
/// every error.
#[inline(never)]
fn write_general(
    w: &Worker,
    mut ss: MutexGuard<'_, Sessions>,
    sh: u32,
    buf: &[u8],
    flush: bool,
) -> Result<usize> {
    if let Some(s) = lookup(w, &ss, sh).ok().and_then(|i| ss.get(i)) {
        if s.is_dgram() && !s.is_vep {
            return super::dgram::write(w, ss, sh, buf, flush);
        }
    }
    let (i, f) = open_session(w, &mut ss, sh)?;
    let s = ss.get(i).expect("open");
    if s.shut_wr || s.vpp_gone {
        return Err(Error::Pipe);
    }
    let tx = f.tx.fifo();
    if tx.max_enqueue_prod() == 0 {
        if s.nonblocking {
            // a busy loop on a full fifo must still see VPP go away
            w.drain(&mut ss);
            let gone = ss.get(i).is_none_or(|s| s.vpp_gone);
            return Err(if gone { Error::Pipe } else { Error::Again });
        }
        let writable = |ss: &Sessions| {
            ss.get(i)
                .is_none_or(|s| !matches!(s.state, State::Ready) || s.tx_space() > 0)
        };
        loop {
            f.tx_sig.fifo().add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
            let timeout = Some(std::time::Duration::from_millis(100));
            match wait::until(w, &mut ss, timeout, Naps::Backoff, |ss| writable(ss)) {
                wait::Wake::Done => break,
                wait::Wake::TimedOut => {}
                // nothing will drain the fifo any more
                wait::Wake::Detached => return Err(Error::Pipe),
            }
        }
        let s = ss.get(i).ok_or(Error::BadFd)?;
        if s.vpp_gone {
            return Err(Error::Pipe);
        }
        if !is_open(s) || s.state == State::VppClosing && s.tx_space() == 0 {
            return Err(closed_error(s));
        }
    }
    let s = ss.get(i).ok_or(Error::BadFd)?;
    enqueue_and_signal(w, s, &f, buf, flush)
}
