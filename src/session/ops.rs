//! Session control operations (create, bind, listen, accept, connect, shutdown, close,
//! terminate) and the messages they send to VPP.

use std::time::Duration;

use vcl_codec::msg::{Connect, CtrlMsg, Listen, TransportProto, Unlisten};
use vcl_codec::session_error::{SESSION_E_ALREADY_LISTENING, SESSION_E_REFUSED};

use vcl_svm::sync::MutexGuard;

use crate::error::{Error, Result};
use crate::table::{handle, Endpoint, Fifos, Session, Sessions, State};
use crate::wait::{self, Naps};
use crate::worker::{HandleMsg, ReplyKind, Worker};

/// The session a handle names on this worker (EBADFD if none, or closed by the app).
pub fn lookup(w: &Worker, ss: &Sessions, sh: u32) -> Result<u32> {
    ss.lookup(w.index, sh)
}

fn transport_proto(p: u8) -> Result<TransportProto> {
    TransportProto::from_u8(p).ok_or(Error::AfNoSupport)
}

/// vppcom_session_create. Like upstream, any protocol number makes a session; an unknown one
/// fails at listen/connect (README, "differs on purpose", says how).
pub fn create(w: &Worker, proto: u8, nonblocking: bool) -> Result<u32> {
    let mut ss = w.sessions.lock();
    let index = ss
        .alloc(Session::new(proto, nonblocking))
        .ok_or(Error::NoMem)?;
    tracing::debug!("worker {}: created session {index}", w.index);
    Ok(handle(w.index, index))
}

/// vppcom_session_bind: remember the local endpoint (VPP learns it at listen/connect). As
/// upstream, binding a UDP session also listens (connectionless unless
/// VPPCOM_ATTR_SET_CONNECTED came first).
pub fn bind(w: &Worker, sh: u32, ep: Endpoint) -> Result<()> {
    let mut ss = w.sessions.lock();
    let i = lookup(w, &ss, sh)?;
    let s = ss.get_mut(i).expect("looked up");
    if s.is_vep {
        return Err(Error::BadFd);
    }
    s.lcl = ep;
    if s.proto == PROTO_UDP {
        drop(ss);
        return listen(w, sh, crate::app::session_timeout());
    }
    Ok(())
}

/// VPPCOM_PROTO_UDP.
const PROTO_UDP: u8 = 1;

/// vppcom_session_listen: LISTEN on the ctrl mq, then wait for BOUND (always blocking).
pub fn listen(w: &Worker, sh: u32, timeout: Duration) -> Result<()> {
    let mut ss = w.sessions.lock();
    let i = lookup(w, &ss, sh)?;
    let s = ss.get_mut(i).expect("looked up");
    if s.is_vep {
        return Err(Error::BadFd);
    }
    if s.state == State::Listen {
        return Ok(());
    }
    let ext_config = super::place_ext_config(w, s);
    let msg = listen_msg(w, i, s, ext_config)?;
    s.state = State::Binding;
    w.send_ctrl(w.conn().vpp.ctrl, &msg)?;
    let done = wait::until(w, &mut ss, Some(timeout), Naps::Backoff, |ss| {
        ss.get(i).is_none_or(|s| s.state != State::Binding)
    })
    .is_done();
    let s = ss.get_mut(i).ok_or(Error::BadFd)?;
    match s.state {
        State::Listen => Ok(()),
        _ if !done => Err(Error::TimedOut),
        _ if s.vpp_error == SESSION_E_ALREADY_LISTENING => Err(Error::AddrInUse),
        _ => {
            tracing::debug!(
                "listen refused: {}",
                vcl_codec::session_error::session_error_str(s.vpp_error)
            );
            Err(Error::ConnRefused)
        }
    }
}

fn listen_msg(w: &Worker, i: u32, s: &Session, ext_config: u64) -> Result<CtrlMsg> {
    let conn = w.conn();
    Ok(CtrlMsg::Listen(Listen {
        client_index: conn.api_client_handle,
        context: i,
        wrk_index: conn.vpp_wrk_index,
        vrf: 0,
        port: s.lcl.port,
        proto: transport_proto(s.proto)?,
        is_ip4: s.lcl.is_ip4,
        ip: s.lcl.ip,
        // a UDP listener with VPPCOM_ATTR_SET_CONNECTED accepts one session per peer;
        // without, it is connectionless (docs/wire.md#datagram-framing)
        flags: u8::from(s.attr.connected),
        ext_config,
        dscp: s.attr.dscp,
    }))
}

/// After a re-attach or fork: LISTEN again for every listener VPP forgot or that is the
/// parent's (same session, so the app's handle stays valid; `only`: just that session index),
/// then wait (up to `timeout`) for VPP's BOUNDs. Returns how many listen again.
pub(crate) fn relisten(
    w: &Worker,
    ss: &mut MutexGuard<'_, Sessions>,
    timeout: Duration,
    only: Option<u32>,
) -> usize {
    let lost: Vec<u32> = ss
        .slab
        .iter()
        .filter(|(i, _)| only.is_none_or(|o| o as usize == *i))
        .filter(|(_, s)| s.relisten && s.state == State::Detached)
        .map(|(i, _)| i as u32)
        .collect();
    let mut sent = Vec::new();
    for i in lost {
        let Some(s) = ss.get_mut(i) else { continue };
        s.relisten = false;
        s.failure_taken = false;
        // a TLS listener's ext config went with its first LISTEN (freed once sent, as upstream
        // does): it listens again without one
        let Ok(msg) = listen_msg(w, i, s, 0) else {
            continue;
        };
        s.state = State::Binding;
        s.relisten_pending = true;
        match w.send_ctrl(w.conn().vpp.ctrl, &msg) {
            Ok(()) => sent.push(i),
            Err(e) => {
                tracing::warn!("worker {}: listener {i} not listened again: {e}", w.index);
                s.state = State::Detached;
            }
        }
    }
    let binding = |ss: &Sessions, i: u32| ss.get(i).is_some_and(|s| s.state == State::Binding);
    wait::until(w, ss, Some(timeout), Naps::Backoff, |ss| {
        !sent.iter().any(|&i| binding(ss, i))
    });
    let mut n = 0;
    for &i in &sent {
        match ss.get(i).map(|s| (s.state, s.vpp_error)) {
            Some((State::Listen, _)) => n += 1,
            Some((state, err)) => tracing::warn!(
                "worker {}: listener {i} not listened again: {state:?}, {}",
                w.index,
                vcl_codec::session_error::session_error_str(err)
            ),
            None => {}
        }
    }
    n
}

/// An accept on a session that does not accept (now): EBADFD, as upstream. A listener VPP
/// lost, waiting to listen again, has now reported its failure (see `failure_taken`).
fn take_failure(ss: &mut Sessions, li: u32) -> Error {
    if let Some(l) = ss
        .get_mut(li)
        .filter(|l| l.relisten && l.state == State::Detached)
    {
        l.failure_taken = true;
    }
    Error::BadFd
}

/// vppcom_session_accept: take the next ACCEPTED of a listener (waiting if blocking).
pub fn accept(w: &Worker, ls: u32, nonblocking_child: bool) -> Result<(u32, Endpoint)> {
    let mut ss = w.sessions.lock();
    let li = lookup(w, &ss, ls)?;
    let l = ss.get(li).expect("looked up");
    if l.state == State::Detached && l.relisten && l.failure_taken && crate::worker::reattaches() {
        // VPP is away and the failure was reported: wait for the listener to listen again
        if l.nonblocking {
            return Err(Error::Again);
        }
        wait::until_back(w, &mut ss, None, Naps::Backoff, |ss| {
            ss.get(li).is_none_or(|l| l.state != State::Detached)
        });
    }
    let l = ss.get(li).ok_or(Error::BadFd)?;
    if l.state == State::Binding && l.relisten_pending {
        // listening again after a re-attach or fork: VPP's BOUND is on its way
        if l.nonblocking {
            return Err(Error::Again);
        }
        wait::until(w, &mut ss, None, Naps::Backoff, |ss| {
            ss.get(li).is_none_or(|l| l.state != State::Binding)
        });
    }
    // a listener, or a QUIC connection (its streams)
    if !super::accepts(&ss, li) {
        return Err(take_failure(&mut ss, li));
    }
    let l = ss.get(li).expect("looked up");
    if l.accept_q.is_empty() {
        if l.nonblocking {
            w.drain(&mut ss);
        } else {
            wait::until(w, &mut ss, None, Naps::Backoff, |ss| {
                ss.get(li).is_none_or(|l| !l.accept_q.is_empty()) || !super::accepts(ss, li)
            });
        }
    }
    if !super::accepts(&ss, li) {
        return Err(take_failure(&mut ss, li));
    }
    let l = ss.get_mut(li).ok_or(Error::BadFd)?;
    let Some(m) = l.accept_q.pop_front() else {
        return Err(Error::Again);
    };
    let proto = l.proto;
    let connected = l.attr.connected;
    let (fifos, thread) = match (
        w.fifos_of(m.segment_handle, m.server_rx_fifo, m.server_tx_fifo),
        w.thread_of(m.mq_index),
    ) {
        (Some((rx, tx)), Some(t)) => (Fifos::plain(rx, tx), t),
        _ => {
            let why = w.fifos_refusal(
                m.segment_handle,
                m.server_rx_fifo,
                m.server_tx_fifo,
                m.mq_index,
            );
            tracing::error!(
                "accepted session {:#x}: fifos or mq not usable: {why}",
                m.handle
            );
            w.accepted_reply(&m, vcl_codec::session_error::SESSION_E_INVALID, 0);
            return Err(Error::ConnAborted);
        }
    };
    let mut s = Session::new(proto, nonblocking_child);
    s.attr.connected = connected;
    s.stream = m.flags & vcl_codec::msg::session_flags::STREAM != 0;
    // a QUIC stream the peer opened one-way (upstream's VCL_SESSION_VPP_F_UNIDIRECTIONAL)
    s.attr.unidirectional = m.flags & vcl_codec::msg::session_flags::UNIDIRECTIONAL != 0;
    s.fifos = Some(fifos);
    s.vpp_thread = thread;
    s.listener = li;
    s.lcl = Endpoint {
        is_ip4: m.lcl.is_ip4,
        ip: m.lcl.ip,
        port: m.lcl.port,
    };
    s.rmt = Endpoint {
        is_ip4: m.rmt.is_ip4,
        ip: m.rmt.ip,
        port: m.rmt.port,
    };
    s.state = match ss.early_close.remove(&m.handle) {
        Some(true) => State::Reset,
        Some(false) => State::VppClosing,
        None => State::Ready,
    };
    let Some(index) = ss.alloc(s) else {
        w.accepted_reply(&m, SESSION_E_REFUSED, 0);
        return Err(Error::NoMem);
    };
    ss.bind_vpp(index, m.handle);
    if let Some(l) = ss.get_mut(li) {
        l.n_accepted += 1;
    }
    w.accepted_reply(&m, 0, index);
    let rmt = ss.get(index).expect("just added").rmt;
    tracing::debug!(
        "worker {}: accepted session {index} ({:#x})",
        w.index,
        m.handle
    );
    Ok((handle(w.index, index), rmt))
}

/// vppcom_session_connect: CONNECT on the ctrl mq; blocking sessions wait for CONNECTED.
pub fn connect(w: &Worker, sh: u32, rmt: Endpoint, timeout: Duration) -> Result<()> {
    let mut ss = w.sessions.lock();
    let i = lookup(w, &ss, sh)?;
    let s = ss.get_mut(i).expect("looked up");
    match s.state {
        _ if s.is_vep => return Err(Error::BadFd),
        State::Ready | State::VppClosing => return Ok(()),
        State::Connecting => return Err(Error::InProgress),
        // a new attempt after a failed one, as upstream allows
        State::Closed | State::Detached => s.vpp_error = 0,
        _ => return Err(Error::BadFd),
    }
    s.rmt = rmt;
    let ext_config = super::place_ext_config(w, s);
    s.attr.connected = true;
    let msg = CtrlMsg::Connect(Connect {
        client_index: w.conn().api_client_handle,
        context: i,
        wrk_index: w.conn().vpp_wrk_index,
        vrf: 0,
        port: rmt.port,
        lcl_port: s.lcl.port,
        proto: transport_proto(s.proto)?,
        is_ip4: rmt.is_ip4,
        ip: rmt.ip,
        lcl_ip: s.lcl.ip,
        parent_handle: u64::MAX,
        ckpair_index: 0,
        crypto_engine: 0,
        // Upstream sets CONNECTED on every connect; VPP reads it for UDP only
        // (docs/wire.md#session-events).
        flags: 1,
        dscp: s.attr.dscp,
        ext_config,
    });
    s.state = State::Connecting;
    let nonblocking = s.nonblocking;
    w.send_ctrl(w.conn().vpp.ctrl, &msg)?;
    if nonblocking {
        return Err(Error::InProgress);
    }
    let done = wait::until(w, &mut ss, Some(timeout), Naps::Backoff, |ss| {
        ss.get(i).is_none_or(|s| s.state != State::Connecting)
    })
    .is_done();
    match ss.get(i).map(|s| (s.state, s.vpp_error)) {
        Some((State::Ready, _)) => Ok(()),
        _ if !done => Err(Error::TimedOut),
        Some((_, e)) if e == SESSION_E_ALREADY_LISTENING => Err(Error::AddrInUse),
        _ => Err(Error::ConnRefused),
    }
}

/// vppcom_session_shutdown.
pub fn shutdown(w: &Worker, sh: u32, how: i32) -> Result<()> {
    let mut ss = w.sessions.lock();
    let i = lookup(w, &ss, sh)?;
    let s = ss.get_mut(i).expect("looked up");
    if s.state == State::Listen || s.is_vep {
        return Err(Error::BadFd);
    }
    if how == libc::SHUT_RD || how == libc::SHUT_RDWR {
        s.shut_rd = true;
        if how == libc::SHUT_RD {
            return Ok(());
        }
    }
    s.shut_wr = true;
    if s.state == State::Ready {
        w.send_handle_msg(s.vpp_thread, s.vpp_handle, HandleMsg::Shutdown);
    }
    Ok(())
}

/// vppcom_session_terminate: abort the connection (RESET_REPLY if VPP already reset it). As
/// upstream, the session stays (state closed) until the app closes it; listeners are refused.
pub fn terminate(w: &Worker, sh: u32) -> Result<()> {
    let mut ss = w.sessions.lock();
    let i = lookup(w, &ss, sh)?;
    let s = ss.get_mut(i).expect("looked up");
    let (h, t) = (s.vpp_handle, s.vpp_thread);
    match s.state {
        _ if s.is_vep => return Err(Error::BadFd),
        State::Listen | State::Binding => return Err(Error::BadFd),
        // no VPP session yet (or any more): nothing to abort
        State::Closed | State::Connecting | State::Detached => return Ok(()),
        State::Reset => w.send_reply(t, h, ReplyKind::Reset),
        _ => w.send_handle_msg(t, h, HandleMsg::Terminate),
    }
    s.state = State::Closed;
    Ok(())
}

/// vppcom_session_close.
pub fn close(w: &Worker, sh: u32) -> Result<()> {
    let mut ss = w.sessions.lock();
    let i = lookup(w, &ss, sh)?;
    // after VPP died nothing is sent (its queues may be locked or full for good)
    if w.probe_detached() {
        w.apply_detach(&mut ss);
    }
    let detached = ss.detached;
    let s = ss.get_mut(i).expect("looked up");
    s.ep = None;
    if s.is_vep {
        ss.close_vep(i);
        ss.free(i);
        return Ok(());
    }
    let (h, t) = (s.vpp_handle, s.vpp_thread);
    let listener = s.listener;
    match s.state {
        // once detached VPP will never clean up: free now, send nothing
        _ if detached => {
            ss.free(i);
            return Ok(());
        }
        State::Closed | State::Detached => {
            ss.free(i);
            return Ok(());
        }
        State::Listen => return unlisten(w, &mut ss, i),
        State::Binding | State::Connecting => {}
        State::VppClosing => w.send_reply(t, h, ReplyKind::Disconnected),
        State::Reset => w.send_reply(t, h, ReplyKind::Reset),
        _ => w.send_handle_msg(t, h, HandleMsg::Disconnect),
    }
    s.state = State::AppClosed;
    if let Some(l) = ss.get_mut(listener) {
        l.n_accepted = l.n_accepted.saturating_sub(1);
    }
    Ok(())
}

/// Close a listener: refuse what was never accepted, then UNLISTEN; freed on UNLISTEN_REPLY.
fn unlisten(w: &Worker, ss: &mut Sessions, i: u32) -> Result<()> {
    let s = ss.get_mut(i).expect("listener");
    for m in std::mem::take(&mut s.accept_q) {
        w.accepted_reply(&m, SESSION_E_REFUSED, 0);
    }
    s.state = State::AppClosed;
    let msg = CtrlMsg::Unlisten(Unlisten {
        client_index: w.conn().api_client_handle,
        context: w.index,
        wrk_index: w.conn().vpp_wrk_index,
        handle: s.vpp_handle,
    });
    w.send_ctrl(w.conn().vpp.ctrl, &msg)
}
