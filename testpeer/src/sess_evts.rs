//! Delivery of session events to an app mq, built from the session as it is at flush time:
//! session_input.c `app_worker_flush_events_inline` with the mq callbacks of session_api.c
//! (`mq_send_session_accepted_cb`, `mq_send_session_connected_cb`,
//! `mq_send_session_disconnected_cb`, `mq_send_session_reset_cb`, `mq_send_session_cleanup_cb`,
//! `mq_send_io_rx_event`, `mq_send_io_tx_event`).

use vcl_codec::event::EventType;
use vcl_codec::msg::{Accepted, CleanupType, Connected, CtrlMsg, SessionHandleMsg};
use vcl_svm::SvmError;

use crate::events::{mq_send_ctrl, mq_send_io};
use crate::log::{Dir, MsgKind};
use crate::session::{Kind, SessState, Session};
use crate::state::{State, WrkEvt, INVALID};

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
    if s.is_ct() {
        // Only rmt.is_ip4, rmt.port (0 for CT, ERRATA O9) and lcl.port are filled.
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
            if rx.with(|f| f.has_event()).unwrap_or(true) {
                return None;
            }
            rx.with(|f| f.set_event());
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
                    rx.with(|f| f.unset_event());
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
