//! Delivery of queued worker events to app message queues, as session_input.c
//! `app_worker_flush_events_inline` does on each VPP thread: try-lock the app mq (100 × 1 µs),
//! stop at the first event whose ring is full and mark the worker congested, and for
//! APP_ADD_SEGMENT send the memfd with SEND_FDS on the worker's socket before enqueueing the mq
//! message (`mq_send_add_segment_sapi_cb` → `app_wrk_send_ctrl_evt_fd`). A failed fd send force
//! detaches the app. VPP never blocks on an app mq
//! (docs/wire.md#vpp-never-blocks-on-an-app-mq).
//!
//! Session events are built from the session as it is at flush time, with the mq callbacks of
//! session_api.c (`mq_send_session_accepted_cb`, `mq_send_session_connected_cb`,
//! `mq_send_session_disconnected_cb`, `mq_send_session_reset_cb`, `mq_send_session_cleanup_cb`,
//! `mq_send_io_rx_event`, `mq_send_io_tx_event`): see [`deliver`].

use std::time::Duration;

use vcl_codec::event::EventType;
use vcl_codec::msg::{
    Accepted, AddSegment, CleanupType, Connected, CtrlMsg, DelSegment, SessionHandleMsg,
};
use vcl_codec::sapi::{fd_flags, SapiMsg};
use vcl_svm::fdpass;
use vcl_svm::mq::SendMode;
use vcl_svm::SvmError;

use crate::log::{Dir, MsgKind};
use crate::vpp::kinds::{Kind, Quic};
use crate::vpp::segments::Mq;
use crate::vpp::sessions::{SessState, Session};
use crate::vpp::state::{State, WrkEvt, INVALID};

/// Events handled per worker per round (`n_evts = 128`).
const FLUSH_BATCH: usize = 128;
/// `mq_try_lock`: attempts and pause between them.
const TRY_LOCK_ATTEMPTS: u32 = 100;
const TRY_LOCK_PAUSE: Duration = Duration::from_micros(1);

/// Whether the mq has room for one more message on `ring` (`svm_msg_q_or_ring_is_full`).
pub fn has_room(mq: &Mq, ring: u32) -> bool {
    let ring_full = match (mq.ring_len(ring), mq.ring_cfg(ring)) {
        (Some(n), Some(c)) => n >= c.nitems,
        _ => true,
    };
    !mq.is_full() && !ring_full
}

/// Enqueue a ctrl message without blocking for long: try-lock up to 100 times. Room was
/// checked by the caller and only this (locked) state produces into app mqs, so a failure
/// means the app held the mutex the whole time.
pub fn mq_send_ctrl(mq: &Mq, msg: &CtrlMsg) -> Result<(), SvmError> {
    let mut body = [0u8; vcl_codec::msg::CTRL_MSG_MAX_LEN];
    let n = vcl_codec::msg::try_encode_ctrl(msg, &mut body)
        .map_err(|_| SvmError::Os("ctrl msg encode", libc::EMSGSIZE))?;
    let ty = msg.evt_type().as_u8();
    let mut last = Err(SvmError::Full);
    for _ in 0..TRY_LOCK_ATTEMPTS {
        last = mq.send_ctrl(ty, &body[..n], SendMode::Try);
        if !matches!(last, Err(SvmError::Full)) {
            break;
        }
        std::thread::sleep(TRY_LOCK_PAUSE);
    }
    last
}

fn ctrl_msg_for(st: &State, evt: &WrkEvt) -> Option<CtrlMsg> {
    Some(match evt {
        WrkEvt::AddSegment(h) => {
            let (name, size) = segment_name_size(st, *h);
            let mut segment_name = [0u8; 128];
            let len = name.len().min(127);
            segment_name[..len].copy_from_slice(&name.as_bytes()[..len]);
            CtrlMsg::AppAddSegment(AddSegment {
                client_index: 0,
                context: 0,
                fd_flags: fd_flags::MEMFD_SEGMENT,
                segment_size: size as u32,
                segment_name,
                segment_handle: *h,
            })
        }
        WrkEvt::DelSegment(h) => CtrlMsg::AppDelSegment(DelSegment {
            client_index: 0,
            context: 0,
            segment_handle: *h,
        }),
        WrkEvt::Msg(m) => (**m).clone(),
        _ => return None,
    })
}

fn segment_name_size(st: &State, h: u64) -> (String, u64) {
    // The CT client encoding (`client_wrk << 56`) sits above the 24-bit sm index.
    let sm = ((h >> 32) & 0xff_ffff) as u32;
    st.sms
        .get(sm)
        .and_then(|m| m.segments.get(h as u32))
        .map(|s| (s.name.clone(), s.seg.len() as u64))
        .unwrap_or_default()
}

/// Send SEND_FDS with the segment's memfd on the worker's socket (`app_wrk_send_fd`).
fn send_segment_fd(st: &mut State, wrk: u32, h: u64) -> bool {
    let Some(handle) = st.wrks.get(wrk).map(|w| w.api_client_index) else {
        return false;
    };
    let sm = ((h >> 32) & 0xff_ffff) as u32;
    let seg_fd = st
        .sms
        .get(sm)
        .and_then(|m| m.segments.get(h as u32))
        .map(|s| s.seg.fd());
    let (Some(sock_fd), Some(seg_fd)) = (st.sock_fd_of_handle(handle), seg_fd) else {
        return false;
    };
    if let Some(d) = st.faults.reply_delay {
        std::thread::sleep(d);
    }
    let bytes = SapiMsg::SendFds.encode();
    for _ in 0..st.faults.unsolicited_fds {
        let _ = fdpass::send_with_fds(sock_fd, &bytes, &[seg_fd]);
    }
    let fds = vec![seg_fd; 1 + st.faults.extra_fds.min(fdpass::MAX_FDS as u32 - 1) as usize];
    match fdpass::send_with_fds(sock_fd, &bytes, &fds) {
        Ok(_) => {
            st.note(Dir::Tx, MsgKind::Sapi(5), handle & 0xffff);
            true
        }
        Err(e) => {
            tracing::error!(%e, wrk, "SEND_FDS failed");
            false
        }
    }
}

/// Outcome of flushing one worker.
enum Flush {
    Done,
    Congested,
    ForceDetach(u32),
}

fn flush_worker(st: &mut State, wrk: u32, thread: u8) -> Flush {
    let t = usize::from(thread);
    for _ in 0..FLUSH_BATCH {
        let Some(w) = st.wrks.get(wrk) else {
            return Flush::Done;
        };
        let app = w.app_index;
        let Some(evt) = w.evts.get(t).and_then(|q| q.front()).cloned() else {
            return Flush::Done;
        };
        let Some(mq) = w.mq.as_ref().map(|m| &m.mq) else {
            // No app mq (it did not fit): VPP would fault here; we drop the event.
            tracing::error!(wrk, ?evt, "worker has no app mq; event dropped");
            pop(st, wrk, t);
            continue;
        };
        if !has_room(mq, evt.ring()) {
            return Flush::Congested;
        }
        let Some(msg) = ctrl_msg_for(st, &evt) else {
            match crate::events::deliver(st, wrk, thread, &evt) {
                Err(SvmError::Full) => return Flush::Congested,
                Err(e) => tracing::error!(%e, wrk, "app mq send failed; event dropped"),
                Ok(()) => {}
            }
            pop(st, wrk, t);
            continue;
        };
        if let WrkEvt::AddSegment(h) = evt {
            if !send_segment_fd(st, wrk, h) {
                return Flush::ForceDetach(app);
            }
        }
        let Some(mq) = st.wrks.get(wrk).and_then(|w| w.mq.as_ref()) else {
            return Flush::Done;
        };
        // After an fd went out the message must follow; wait briefly for the lock if needed.
        let r = match mq_send_ctrl(&mq.mq, &msg) {
            Err(SvmError::Full) if matches!(evt, WrkEvt::AddSegment(_)) => {
                let mut body = [0u8; vcl_codec::msg::CTRL_MSG_MAX_LEN];
                let n = vcl_codec::msg::encode_ctrl(&msg, &mut body);
                let ty = msg.evt_type().as_u8();
                mq.mq.send_ctrl(
                    ty,
                    &body[..n],
                    SendMode::BlockFor(Duration::from_millis(50)),
                )
            }
            r => r,
        };
        match r {
            Ok(()) => {
                st.note(Dir::Tx, MsgKind::Mq(msg.evt_type().as_u8()), wrk);
                pop(st, wrk, t);
            }
            Err(SvmError::Full) => return Flush::Congested,
            Err(e) => {
                tracing::error!(%e, wrk, "app mq send failed; event dropped");
                pop(st, wrk, t);
            }
        }
    }
    Flush::Done
}

/// Enqueue an IO event without blocking for long (try-lock up to 100 times).
pub fn mq_send_io(mq: &Mq, ty: u8, session_index: u32) -> Result<(), SvmError> {
    let mut last = Err(SvmError::Full);
    for _ in 0..TRY_LOCK_ATTEMPTS {
        last = mq.send_io(ty, session_index, SendMode::Try);
        if !matches!(last, Err(SvmError::Full)) {
            break;
        }
        std::thread::sleep(TRY_LOCK_PAUSE);
    }
    last
}

fn pop(st: &mut State, wrk: u32, t: usize) {
    if let Some(q) = st.wrks.get_mut(wrk).and_then(|w| w.evts.get_mut(t)) {
        q.pop_front();
    }
}

/// Flush one worker's events queued on `thread` now (session_input.c
/// `app_wrk_flush_wrk_events`, which the listen handler calls before releasing the barrier).
pub fn flush_worker_now(st: &mut State, wrk: u32, thread: u8) {
    let res = flush_worker(st, wrk, thread);
    if let Some(c) = st
        .wrks
        .get_mut(wrk)
        .and_then(|w| w.congested.get_mut(usize::from(thread)))
    {
        *c = matches!(res, Flush::Congested);
    }
    if let Flush::ForceDetach(app) = res {
        st.force_detach(app);
    }
}

/// Flush every worker's events queued on `thread` (session_input.c
/// `session_wrk_flush_events`). Workers left congested are retried on the next round.
pub fn flush_thread(st: &mut State, thread: u8) {
    let t = usize::from(thread);
    let pending: Vec<u32> = st
        .wrks
        .iter()
        .filter(|(_, w)| w.evts.get(t).is_some_and(|q| !q.is_empty()))
        .map(|(i, _)| i)
        .collect();
    for wrk in pending {
        let res = flush_worker(st, wrk, thread);
        if let Some(w) = st.wrks.get_mut(wrk) {
            if let Some(c) = w.congested.get_mut(t) {
                *c = matches!(res, Flush::Congested);
            }
        }
        if let Flush::ForceDetach(app) = res {
            st.force_detach(app);
        }
    }
}

/// Name of an event type for logs.
pub fn evt_name(ty: u8) -> &'static str {
    EventType::from_u8(ty)
        .map(|e| e.name())
        .unwrap_or("unknown")
}

// Session events: what each queued event becomes on the app mq.

/// What to put on the mq.
enum Out {
    Ctrl(CtrlMsg),
    Io(EventType, u32),
}

fn sess_at(st: &State, thread: u8, si: u32) -> Option<&Session> {
    st.sessions.pools.get(usize::from(thread))?.get(si)
}

/// `mq_send_session_accepted_cb`.
fn accepted_msg(st: &State, s: &Session) -> CtrlMsg {
    let app = st.wrks.get(s.app_wrk).map_or(INVALID, |w| w.app_index);
    let listener_handle = st
        .sess(s.listener_handle)
        .and_then(|ls| st.sessions.listeners.get(ls.al))
        .map_or(s.listener_handle, |al| al.ls_handle);
    let mut m = Accepted {
        context: app,
        listener_handle,
        handle: s.handle(),
        server_rx_fifo: s.rx.as_ref().map_or(0, |f| f.off),
        server_tx_fifo: s.tx.as_ref().map_or(0, |f| f.off),
        segment_handle: s.rx.as_ref().map_or(u64::MAX, |f| f.seg_handle),
        vpp_event_queue_address: st.vpp_mq_offsets[usize::from(s.thread)],
        mq_index: u32::from(s.thread),
        flags: 0,
        ..Default::default()
    };
    if let Kind::Ct(c) = &s.kind {
        if let Quic::Stream { unidir, .. } = c.quic {
            m.flags = vcl_codec::msg::session_flags::STREAM;
            if unidir {
                m.flags |= vcl_codec::msg::session_flags::UNIDIRECTIONAL;
            }
        }
    }
    if s.is_ct() {
        // Only rmt.is_ip4, rmt.port (0: docs/wire.md#cut-through-accepted) and lcl.port are filled.
        m.rmt.is_ip4 = s.lcl.is_ip4;
        m.rmt.port = 0;
        m.lcl.port = s.lcl.port;
    } else {
        m.lcl = s.lcl;
        m.rmt = s.rmt;
    }
    CtrlMsg::Accepted(m)
}

/// `mq_send_session_connected_cb` for a successful connect.
fn connected_msg(st: &State, s: &Session) -> CtrlMsg {
    let mut m = Connected {
        context: s.app_session_index,
        retval: 0,
        handle: s.handle(),
        server_rx_fifo: s.rx.as_ref().map_or(0, |f| f.off),
        server_tx_fifo: s.tx.as_ref().map_or(0, |f| f.off),
        segment_handle: s.rx.as_ref().map_or(u64::MAX, |f| f.seg_handle),
        vpp_event_queue_address: st.vpp_mq_offsets[usize::from(s.thread)],
        mq_index: u32::from(s.thread),
        ..Default::default()
    };
    match &s.kind {
        Kind::Ct(ct) => {
            m.lcl.port = s.lcl.port;
            m.lcl.is_ip4 = s.lcl.is_ip4;
            if let Some((srx, stx)) = &ct.fifos {
                // ct_rx = the server's tx fifo, ct_tx = the server's rx fifo.
                m.ct_rx_fifo = stx.off;
                m.ct_tx_fifo = srx.off;
                m.ct_segment_handle = ct.client_seg_handle;
            }
        }
        _ => m.lcl = s.lcl,
    }
    CtrlMsg::Connected(m)
}

fn close_msg(st: &State, s: &Session) -> SessionHandleMsg {
    SessionHandleMsg {
        client_index: 0,
        context: st.wrks.get(s.app_wrk).map_or(0, |w| w.api_client_index),
        handle: s.handle(),
    }
}

/// Build the message for `evt` (None: nothing to send), with the side effects VPP has before
/// the message is enqueued.
fn prepare(st: &mut State, thread: u8, evt: &WrkEvt) -> Option<Out> {
    let si = match evt {
        WrkEvt::Accepted(si)
        | WrkEvt::Connected(si)
        | WrkEvt::Disconnected(si)
        | WrkEvt::Reset(si)
        | WrkEvt::Cleanup(si, _)
        | WrkEvt::IoRx(si)
        | WrkEvt::IoTx(si) => *si,
        _ => return None,
    };
    let h = (u64::from(thread) << 32) | u64::from(si);
    let s = sess_at(st, thread, si)?;
    match evt {
        WrkEvt::Accepted(_) => Some(Out::Ctrl(accepted_msg(st, s))),
        WrkEvt::Connected(_) => Some(Out::Ctrl(connected_msg(st, s))),
        WrkEvt::Disconnected(_) | WrkEvt::Reset(_) => {
            let app_closed = s.app_closed;
            let m = close_msg(st, s);
            if let Some(s) = st.sess_mut(h) {
                s.rx_ready = false;
            }
            // An app that already closed gets no close notification.
            if app_closed {
                return None;
            }
            Some(Out::Ctrl(if matches!(evt, WrkEvt::Reset(_)) {
                CtrlMsg::Reset(m)
            } else {
                CtrlMsg::Disconnected(m)
            }))
        }
        WrkEvt::Cleanup(_, ty) => {
            // "Notification enqueued before session was refused by app"
            if s.app_wrk == INVALID {
                return None;
            }
            // Transport cleanups only propagate if the transport was deleted.
            if *ty == CleanupType::Transport && s.state != SessState::TransportDeleted {
                return None;
            }
            Some(Out::Ctrl(CtrlMsg::Cleanup(vcl_codec::msg::Cleanup {
                handle: s.handle(),
                cleanup_type: *ty,
            })))
        }
        WrkEvt::IoRx(_) => {
            let (ready, asi) = (s.rx_ready, s.app_session_index);
            let rx = s.rx.clone();
            if let Some(s) = st.sess_mut(h) {
                s.rx_evt = false;
            }
            // App is unaware of the session, or closing notification provided.
            if !ready {
                return None;
            }
            let rx = rx?;
            if rx.fifo().has_event() {
                return None;
            }
            rx.fifo().set_event();
            Some(Out::Io(EventType::IoRx, asi))
        }
        WrkEvt::IoTx(_) => Some(Out::Io(EventType::IoTx, s.app_session_index)),
        _ => None,
    }
}

/// What follows a delivered (or skipped) event.
fn post(st: &mut State, thread: u8, evt: &WrkEvt) {
    match evt {
        WrkEvt::Connected(si) => {
            if let Some(s) = st
                .sessions
                .pools
                .get_mut(usize::from(thread))
                .and_then(|p| p.get_mut(*si))
            {
                s.rx_ready = true;
            }
        }
        WrkEvt::Cleanup(si, CleanupType::Session) => {
            st.session_cleanup((u64::from(thread) << 32) | u64::from(*si));
        }
        _ => {}
    }
}

/// Deliver session event `evt` to worker `wrk`'s app mq (room on its ring was checked).
/// `Full` means retry later (the event stays queued).
pub fn deliver(st: &mut State, wrk: u32, thread: u8, evt: &WrkEvt) -> Result<(), SvmError> {
    let out = prepare(st, thread, evt);
    if let Some(out) = out {
        let Some(mq) = st.wrks.get(wrk).and_then(|w| w.mq.as_ref()) else {
            return Ok(());
        };
        let (r, ty) = match &out {
            Out::Ctrl(m) => (mq_send_ctrl(&mq.mq, m), m.evt_type().as_u8()),
            Out::Io(ty, si) => (mq_send_io(&mq.mq, ty.as_u8(), *si), ty.as_u8()),
        };
        if let Err(e) = r {
            if let (Out::Io(EventType::IoRx, _), WrkEvt::IoRx(si)) = (&out, evt) {
                // Undo: the event was not sent.
                let h = (u64::from(thread) << 32) | u64::from(*si);
                if let Some(rx) = st.sess(h).and_then(|s| s.rx.clone()) {
                    rx.fifo().unset_event();
                }
                if let Some(s) = st.sess_mut(h) {
                    s.rx_evt = true;
                }
            }
            return Err(e);
        }
        st.note(Dir::Tx, MsgKind::Mq(ty), wrk);
    }
    post(st, thread, evt);
    Ok(())
}
