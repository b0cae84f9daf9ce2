//! Datagram sessions (UDP, DTLS: [`Session::is_dgram`]): every datagram crosses the fifos as
//! VPP's 47-byte `session_dgram_hdr_t` followed by its payload (docs/wire.md#datagram-framing).
//! One read returns one datagram: a short buffer gets its first bytes and the rest of that
//! datagram is dropped (upstream's `app_recv_dgram_raw`); a write queues one whole datagram or
//! nothing. A UDP session that is not connected (a connectionless listener, upstream's
//! `vcl_session_is_cl`) uses the fifos VPP attached to its BOUND and signals TX_MAIN; each read
//! records the sender, which recvfrom reports and the next write answers (`transport.rmt`).

use std::time::Duration;

use vcl_codec::event::EventType;
use vcl_codec::msg::Ip46;
use vcl_svm::fifo::notify::SVM_FIFO_WANT_DEQ_NOTIF;
use vcl_svm::fifo::segs::{SessionDgramHdr, SESSION_CONN_HDR_LEN};

use crate::error::{Error, Result};
use crate::table::{Endpoint, Events, Fifos, Session, Sessions, State};
use crate::wait::{self, Naps};
use crate::worker::Worker;

type Guard<'a> = vcl_svm::sync::MutexGuard<'a, Sessions>;

/// VPPCOM_PROTO_UDP.
const PROTO_UDP: u8 = 1;
/// Largest UDP payload an IPv4 / IPv6 packet carries (65535 minus the IP and UDP headers).
pub(crate) const MAX_UDP4: u32 = 65_507;
pub(crate) const MAX_UDP6: u32 = 65_527;
const HDR: u32 = SESSION_CONN_HDR_LEN as u32;

/// A UDP session not connected to one peer (upstream's `vcl_session_is_cl`).
pub(crate) fn is_cl(s: &Session) -> bool {
    s.proto == PROTO_UDP && !s.attr.connected
}

/// Whether the session's fifos carry datagrams now: connected and ready (or peer-closing), or
/// a connectionless listener with its fifos (upstream's `vcl_session_is_open`).
fn is_open(s: &Session) -> bool {
    s.fifos.is_some()
        && (matches!(s.state, State::Ready | State::VppClosing)
            || (s.state == State::Listen && is_cl(s)))
}

fn closed_error(s: &Session) -> Error {
    if s.state == State::Reset {
        Error::ConnReset
    } else {
        Error::NotConn
    }
}

fn fifo_err(e: vcl_svm::SvmError) -> Error {
    tracing::error!("dgram fifo: {e}");
    Error::ConnReset
}

/// The largest payload one write may carry: what the tx fifo can ever hold next to its header,
/// and no more than an IP packet carries. Upstream has no such check: a bigger blocking write
/// waits forever for space that never comes (README, "differs on purpose").
pub(crate) fn max_dgram(s: &Session) -> u32 {
    let fifo = s
        .fifos
        .as_ref()
        .map_or(0, |f| f.tx.fifo().size().saturating_sub(HDR));
    let ip = if s.rmt.is_ip4 || s.lcl.is_ip4 {
        MAX_UDP4
    } else {
        MAX_UDP6
    };
    fifo.min(ip)
}

/// The VPP handle the fifos' IO events name: a connectionless listener's per-worker session
/// (BOUND's cl_sh_handle), else the session's own.
fn io_handle(s: &Session) -> u64 {
    s.cl_vpp_handle.unwrap_or(s.vpp_handle)
}

/// Length of the whole datagram at the head of `s`'s rx fifo (None if not all of it is there).
pub(crate) fn next_dgram_len(s: &Session) -> Option<u32> {
    let rx = s.fifos.as_ref()?.rx.fifo();
    let max_deq = rx.max_dequeue_cons();
    if max_deq <= HDR {
        return None;
    }
    let mut ph = [0u8; 8];
    if !matches!(rx.peek(0, &mut ph), Ok(8)) {
        return None;
    }
    let len = u32::from_ne_bytes([ph[0], ph[1], ph[2], ph[3]]);
    (u64::from(len) + u64::from(HDR) <= u64::from(max_deq)).then_some(len)
}

/// Epoll readiness of an open datagram session: IN while a whole datagram is queued, OUT while
/// a datagram of the largest size a write accepts fits.
pub(crate) fn readiness(s: &Session) -> Events {
    let mut ev = Events::NONE;
    if next_dgram_len(s).is_some() {
        ev |= Events::IN;
    }
    let need = HDR + max_dgram(s);
    if !s.shut_wr && s.tx_space() >= need {
        ev |= Events::OUT;
    } else if !s.shut_wr {
        // ask VPP for a TX event once it has dequeued enough for a whole datagram
        if let Some(f) = s.fifos.as_ref() {
            // only when not armed yet: VPP reads these on every dequeue, a busy select or
            // epoll loop rewriting them would keep stealing its cache line
            let sig = f.tx_sig.fifo();
            if sig.deq_thresh() != need {
                sig.set_deq_thresh(need);
            }
            if sig.want_deq_ntf() & SVM_FIFO_WANT_DEQ_NOTIF == 0 {
                sig.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
            }
        }
    }
    ev
}

fn ep_of(ip: [u8; 16], port_net: u16, is_ip4: bool) -> Endpoint {
    Endpoint {
        is_ip4,
        ip: Ip46(ip),
        port: u16::from_be(port_net),
    }
}

/// Read one datagram (vppcom_session_read / peek / recvfrom on a datagram session).
pub(crate) fn read(
    w: &Worker,
    mut ss: Guard<'_>,
    sh: u32,
    buf: &mut [u8],
    peek: bool,
) -> Result<usize> {
    let i = ss.lookup(w.index, sh)?;
    if let Some(r) = read_queued(w, &mut ss, i, buf, peek) {
        return r;
    }
    if ss.get(i).is_some_and(|s| s.state == State::Connecting) {
        w.drain(&mut ss);
    }
    let s = ss.get(i).ok_or(Error::BadFd)?;
    if !is_open(s) {
        return Err(closed_error(s));
    }
    if s.shut_rd && next_dgram_len(s).is_none() {
        return Ok(0);
    }
    let f = s.fifos.clone().expect("open");
    loop {
        if let Some(got) = f.rx.fifo().dequeue_dgram(buf, peek).map_err(fifo_err)? {
            return Ok(finish_read(w, &mut ss, i, got, peek));
        }
        f.rx_sig.fifo().unset_event();
        w.drain(&mut ss);
        let s = ss.get(i).ok_or(Error::BadFd)?;
        if next_dgram_len(s).is_some() {
            continue;
        }
        if s.state == State::VppClosing {
            return if s.vpp_gone {
                Err(Error::ConnReset)
            } else {
                Ok(0)
            };
        }
        if !is_open(s) {
            return Err(closed_error(s));
        }
        if s.nonblocking {
            return Err(Error::Again);
        }
        wait::until(w, &mut ss, None, Naps::Backoff, |ss| {
            ss.get(i).is_none_or(|s| {
                let waitable = s.state == State::Ready || s.state == State::Listen && is_cl(s);
                next_dgram_len(s).is_some() || !waitable
            })
        });
    }
}

/// Read's common case: an open session with a whole datagram queued, read without cloning
/// the fifo handles (a per-datagram cost). None: take the general path.
fn read_queued(
    w: &Worker,
    ss: &mut Sessions,
    i: u32,
    buf: &mut [u8],
    peek: bool,
) -> Option<Result<usize>> {
    let s = ss.get(i)?;
    let f = s.fifos.as_ref().filter(|_| is_open(s))?;
    match f.rx.fifo().dequeue_dgram(buf, peek) {
        Ok(Some(got)) => Some(Ok(finish_read(w, ss, i, got, peek))),
        Ok(None) => None,
        Err(e) => Some(Err(fifo_err(e))),
    }
}

/// After a datagram was read: the session's transport takes the header's addresses (as
/// upstream's), has_event is cleared when drained (re-checked for a race), and a dequeue
/// notification goes to VPP when it asked for one. Returns the bytes read.
fn finish_read(
    w: &Worker,
    ss: &mut Sessions,
    i: u32,
    (hdr, n): (SessionDgramHdr, usize),
    peek: bool,
) -> usize {
    let Some(s) = ss.get_mut(i) else { return n };
    s.rmt = ep_of(hdr.rmt_ip, hdr.rmt_port, hdr.is_ip4 != 0);
    s.lcl = ep_of(hdr.lcl_ip, hdr.lcl_port, hdr.is_ip4 != 0);
    let Some(f) = s.fifos.as_ref() else { return n };
    let rx = f.rx.fifo();
    let sig = f.rx_sig.fifo();
    let drained = rx.max_dequeue_cons() == 0;
    if drained {
        // datagram readers do not hold has_event: release the kept chunks at each drain
        f.release_kept();
    }
    let renotify = drained && f.clear_rx_event();
    if !peek && rx.needs_deq_ntf_signalled_by(&sig, hdr.data_length + HDR) {
        sig.clear_deq_ntf();
        w.send_io(s.vpp_thread, EventType::IoRx, io_handle(s));
    }
    if renotify {
        ss.notify(i, Events::IN);
    }
    n
}

/// Write `buf` as one datagram to the session's current remote (vppcom_session_write /
/// write_msg / sendto on a datagram session).
pub(crate) fn write(
    w: &Worker,
    mut ss: Guard<'_>,
    sh: u32,
    buf: &[u8],
    flush: bool,
) -> Result<usize> {
    let i = ss.lookup(w.index, sh)?;
    // the common case: open, writable and room for the datagram (no clone of the fifo handles)
    let s = ss.get(i).ok_or(Error::BadFd)?;
    if let Some(f) = s.fifos.as_ref() {
        let ok = is_open(s) && !s.shut_wr && !s.vpp_gone;
        if ok && buf.len() as u64 <= u64::from(max_dgram(s)) {
            match enqueue(w, s, f, buf, flush) {
                Err(Error::Again) => {} // no room: the general path waits or says so
                r => return r,
            }
        }
    }
    if ss.get(i).is_some_and(|s| s.state == State::Connecting) {
        w.drain(&mut ss);
    }
    let s = ss.get(i).ok_or(Error::BadFd)?;
    if !is_open(s) {
        return Err(closed_error(s));
    }
    if s.shut_wr || s.vpp_gone {
        return Err(Error::Pipe);
    }
    let n = buf.len() as u64;
    if n > u64::from(max_dgram(s)) {
        return Err(Error::Errno(libc::EMSGSIZE));
    }
    let f = s.fifos.clone().expect("open");
    let fits = |s: &Session| u64::from(s.tx_space()) >= n + u64::from(HDR);
    if !fits(s) {
        if s.nonblocking {
            return Err(Error::Again);
        }
        loop {
            f.tx_sig.fifo().add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
            let timeout = Some(std::time::Duration::from_millis(100));
            let r = wait::until(w, &mut ss, timeout, Naps::Backoff, |ss| {
                ss.get(i)
                    .is_none_or(|s| !is_open(s) || s.vpp_gone || fits(s))
            });
            match r {
                wait::Wake::Done => break,
                wait::Wake::TimedOut => {}
                wait::Wake::Detached => return Err(Error::Pipe),
            }
        }
        let s = ss.get(i).ok_or(Error::BadFd)?;
        if s.vpp_gone {
            return Err(Error::Pipe);
        }
        if !is_open(s) {
            return Err(closed_error(s));
        }
    }
    let s = ss.get(i).ok_or(Error::BadFd)?;
    enqueue(w, s, &f, buf, flush)
}

/// Queue `buf` as one datagram to the session's current remote, then TX (TX_FLUSH; TX_MAIN for
/// a connectionless session) if has_event was 0. `Again` when it does not fit.
fn enqueue(w: &Worker, s: &Session, f: &Fifos, buf: &[u8], flush: bool) -> Result<usize> {
    let hdr = SessionDgramHdr {
        rmt_ip: s.rmt.ip.0,
        lcl_ip: s.lcl.ip.0,
        rmt_port: s.rmt.port.to_be(),
        lcl_port: s.lcl.port.to_be(),
        is_ip4: u8::from(s.rmt.is_ip4),
        ..Default::default()
    };
    let n = match f.tx.fifo().enqueue_dgram(&hdr, &[buf]) {
        Ok(n) => n,
        Err(vcl_svm::SvmError::Full) => return Err(Error::Again),
        Err(e) => return Err(fifo_err(e)),
    };
    // Connectionless sessions transmit from VPP's main thread (TX_MAIN); DTLS and connected
    // UDP use their session's thread.
    let et = match (is_cl(s), flush) {
        (true, _) => EventType::IoTxMain,
        (false, true) => EventType::IoTxFlush,
        (false, false) => EventType::IoTx,
    };
    let sig = f.tx_sig.fifo();
    if sig.set_event() && !w.send_io(s.vpp_thread, et, io_handle(s)) {
        // VPP's queue stayed full: with has_event left set no later write would signal again
        sig.unset_event();
    }
    Ok(n)
}

/// sendto with an address: only connectionless UDP sessions take one (else EINVAL, upstream);
/// it becomes the session's remote, and a session VPP does not know yet is bound first by a
/// LISTEN on its local endpoint, learnt first by a connect when it has no address (upstream).
pub(crate) fn set_remote(w: &Worker, sh: u32, rmt: Endpoint) -> Result<()> {
    let mut ss = w.sessions.lock();
    let i = ss.lookup(w.index, sh)?;
    let s = ss.get_mut(i).expect("looked up");
    if !is_cl(s) || s.is_vep {
        return Err(Error::Inval);
    }
    s.rmt = rmt;
    let closed = s.state == State::Closed;
    if closed {
        let learn = rmt.port == 0 || s.lcl.ip == Ip46::ZERO;
        drop(ss);
        let timeout = crate::app::session_timeout();
        if learn {
            learn_local(w, sh, i, rmt, timeout)?;
        }
        super::ops::listen(w, sh, timeout)?;
        // LISTEN's BOUND recorded the bound address; the remote stays the one asked for
        let mut ss = w.sessions.lock();
        if let Some(s) = ss.get_mut(i) {
            s.rmt = rmt;
        }
    }
    Ok(())
}

/// Upstream's way to give an unbound connectionless session a local address VPP accepts:
/// connect it to `rmt` (VPP picks the local address and port), disconnect, and listen on what
/// CONNECTED reported (vppcom_session_sendto).
fn learn_local(w: &Worker, sh: u32, i: u32, rmt: Endpoint, timeout: Duration) -> Result<()> {
    let nonblocking = {
        let mut ss = w.sessions.lock();
        let s = ss.get_mut(i).ok_or(Error::BadFd)?;
        std::mem::replace(&mut s.nonblocking, false)
    };
    let r = super::ops::connect(w, sh, rmt, timeout);
    let mut ss = w.sessions.lock();
    let s = ss.get_mut(i).ok_or(Error::BadFd)?;
    s.nonblocking = nonblocking;
    r?;
    let (t, h) = (s.vpp_thread, s.vpp_handle);
    w.send_handle_msg(t, h, crate::worker::HandleMsg::Disconnect);
    wait::until(w, &mut ss, Some(timeout), Naps::Backoff, |ss| {
        ss.get(i).is_none_or(|s| s.state == State::Detached)
    });
    let s = ss.get_mut(i).ok_or(Error::BadFd)?;
    if s.state != State::Detached {
        return Err(Error::TimedOut);
    }
    // back to a fresh, connectionless session bound where VPP put it
    s.state = State::Closed;
    s.fifos = None;
    s.vpp_handle = u64::MAX;
    s.attr.connected = false;
    s.vpp_error = 0;
    s.rmt = rmt;
    Ok(())
}
