//! Events VPP sends to the app about sessions: IO (rx data, tx space) and control (bound,
//! accepted, connected, disconnected, reset, cleanup, migrated). Every index and handle in them
//! is checked against the worker's tables; an event naming nothing we know is logged and dropped.

use libc::{EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP};
use vcl_codec::event::EventType;
use vcl_codec::msg::{decode_ctrl, Bound, CleanupType, Connected, CtrlMsg, Migrated};
use vcl_codec::session_error::{SESSION_E_INVALID, SESSION_E_NONE};

use super::{rx_ready, Endpoint, FifoRef, Fifos, Sessions, State};
use crate::epoll;
use crate::worker::Worker;

/// Handle one message from the app mq (segment events were already taken by the worker).
pub fn handle_event(w: &Worker, ss: &mut Sessions, t: u8, payload: &[u8]) {
    if t == EventType::IoRx.as_u8() || t == EventType::IoTx.as_u8() {
        let Some(b) = payload.get(..4) else { return };
        let si = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        io_event(ss, t == EventType::IoRx.as_u8(), si);
        return;
    }
    let msg = match decode_ctrl(t, payload) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("worker {}: dropped event: {e}", w.index);
            return;
        }
    };
    tracing::debug!(worker = w.index, ?msg, "vpp event");
    match msg {
        CtrlMsg::Bound(m) => bound(w, ss, &m),
        CtrlMsg::Accepted(m) => match ss.index_of_vpp(m.listener_handle) {
            Some(li) if ss.get(li).is_some_and(|l| l.state == State::Listen) => {
                let l = ss.get_mut(li).expect("checked");
                l.accept_q.push_back(m);
                epoll::notify(ss, li, EPOLLIN as u32);
            }
            _ => {
                tracing::warn!("accepted on unknown listener {:#x}", m.listener_handle);
                super::ops::accepted_reply(w, &m, SESSION_E_INVALID, 0);
            }
        },
        CtrlMsg::Connected(m) => connected(w, ss, &m),
        CtrlMsg::Disconnected(m) => peer_closed(w, ss, m.handle, false),
        CtrlMsg::Reset(m) => peer_closed(w, ss, m.handle, true),
        CtrlMsg::Cleanup(m) => cleanup(w, ss, m.handle, m.cleanup_type),
        CtrlMsg::UnlistenReply(m) => {
            if let Some(i) = ss.index_of_vpp(m.handle) {
                if ss.get(i).is_some_and(|s| s.state == State::AppClosed) {
                    ss.free(i);
                }
            }
        }
        CtrlMsg::Migrated(m) => migrated(w, ss, &m),
        CtrlMsg::TransportAttrReply(m) => crate::session::attr::on_transport_attr_reply(ss, &m),
        other => tracing::debug!("worker {}: ignored {other:?}", w.index),
    }
}

fn io_event(ss: &mut Sessions, is_rx: bool, si: u32) {
    tracing::trace!(si, is_rx, "vpp io event");
    let Some(s) = ss.get(si) else {
        tracing::debug!("io event for unknown session {si}");
        return;
    };
    if is_rx {
        // VPP checks has_event before it sends, not atomically with its enqueue: the app may
        // already have read what an RX event announces. An empty fifo here means a stale event:
        // clear has_event (else VPP never signals again) and drop the event unless data came.
        if let Some(f) = s.fifos.as_ref() {
            if rx_ready(s) == 0 {
                if let Ok(sig) = f.rx_sig.get() {
                    sig.unset_event();
                }
                if rx_ready(s) == 0 {
                    return;
                }
            }
        }
        epoll::notify(ss, si, EPOLLIN as u32);
    } else {
        // VPP dequeued: acknowledge, so the next deq notification can come, then report space.
        if let Some(f) = s.fifos.as_ref().and_then(|f| f.tx_sig.get().ok()) {
            f.reset_has_deq_ntf();
        }
        epoll::notify(ss, si, EPOLLOUT as u32);
    }
}

fn ep_from(is_ip4: bool, ip: vcl_codec::msg::Ip46, port: u16) -> Endpoint {
    Endpoint { is_ip4, ip, port }
}

fn bound(w: &Worker, ss: &mut Sessions, m: &Bound) {
    let Some(s) = ss.get_mut(m.context) else {
        tracing::warn!("bound for unknown session {}", m.context);
        return;
    };
    if m.retval != SESSION_E_NONE {
        s.vpp_error = m.retval;
        s.state = State::Detached;
        return;
    }
    s.lcl = ep_from(m.lcl_is_ip4, m.lcl_ip, m.lcl_port);
    s.state = State::Listen;
    let _ = w;
    ss.bind_vpp(m.context, m.handle);
}

/// The session's VPP thread, if VPP named one we have.
pub fn thread_of(w: &Worker, mq_index: u32) -> Option<usize> {
    let t = mq_index as usize;
    (t < w.vpp.mqs.len()).then_some(t)
}

/// Fifos named by an ACCEPTED or CONNECTED message, in segments we map.
pub fn fifos_of(w: &Worker, seg: u64, rx: u64, tx: u64) -> Option<(FifoRef, FifoRef)> {
    let s = w.segment(seg)?;
    let rx = FifoRef::new(s.clone(), rx).ok()?;
    let tx = FifoRef::new(s, tx).ok()?;
    Some((rx, tx))
}

fn connected(w: &Worker, ss: &mut Sessions, m: &Connected) {
    let Some(s) = ss.get_mut(m.context) else {
        tracing::warn!("connected for unknown session {}", m.context);
        return;
    };
    if s.state != State::Connecting && s.state != State::AppClosed {
        tracing::warn!("connected for session {} in state {:?}", m.context, s.state);
        return;
    }
    if m.retval != SESSION_E_NONE {
        s.vpp_error = m.retval;
        s.state = State::Detached;
        epoll::notify(ss, m.context, (EPOLLOUT | EPOLLHUP) as u32);
        return;
    }
    let fifos = match fifos_of(w, m.segment_handle, m.server_rx_fifo, m.server_tx_fifo) {
        Some((rx, tx)) if m.ct_rx_fifo != 0 => {
            fifos_of(w, m.ct_segment_handle, m.ct_rx_fifo, m.ct_tx_fifo).map(|(crx, ctx)| Fifos {
                rx: crx,
                tx: ctx,
                rx_sig: rx,
                tx_sig: tx,
            })
        }
        Some((rx, tx)) => Some(Fifos::plain(rx, tx)),
        None => None,
    };
    let (Some(fifos), Some(thread)) = (fifos, thread_of(w, m.mq_index)) else {
        tracing::error!("connected session {}: fifos or mq not usable", m.context);
        s.vpp_error = SESSION_E_INVALID;
        s.state = State::Detached;
        super::ops::send_handle_msg(w, 0, m.handle, super::ops::HandleMsg::Disconnect);
        return;
    };
    let app_closed = s.state == State::AppClosed;
    s.fifos = Some(fifos);
    s.vpp_thread = thread;
    s.lcl = ep_from(m.lcl.is_ip4, m.lcl.ip, m.lcl.port);
    s.state = if app_closed {
        State::AppClosed
    } else {
        State::Ready
    };
    ss.bind_vpp(m.context, m.handle);
    if app_closed {
        super::ops::send_handle_msg(w, thread, m.handle, super::ops::HandleMsg::Disconnect);
    } else {
        epoll::notify(ss, m.context, EPOLLOUT as u32);
    }
}

fn peer_closed(w: &Worker, ss: &mut Sessions, handle: u64, reset: bool) {
    let Some(i) = ss.index_of_vpp(handle) else {
        mark_queued_accept(ss, handle, reset);
        return;
    };
    let s = ss.get_mut(i).expect("indexed");
    match s.state {
        State::AppClosed | State::Detached => return,
        _ if reset => {
            s.state = State::Reset;
            s.shut_rd = true;
            s.shut_wr = true;
        }
        State::Ready | State::Connecting => s.state = State::VppClosing,
        _ => {}
    }
    let _ = w;
    let ev = if reset {
        EPOLLERR | EPOLLHUP
    } else {
        EPOLLIN | EPOLLRDHUP | EPOLLHUP
    };
    epoll::notify(ss, i, ev as u32);
}

/// A close for a session still waiting in a listener's accept queue: the app accepts it
/// later into the closing (or reset) state.
fn mark_queued_accept(ss: &mut Sessions, handle: u64, reset: bool) {
    let queued = ss
        .slab
        .iter()
        .any(|(_, s)| s.accept_q.iter().any(|m| m.handle == handle));
    if queued {
        ss.early_close.insert(handle, reset);
    } else {
        tracing::debug!("close for unknown session handle {handle:#x}");
    }
}

fn cleanup(w: &Worker, ss: &mut Sessions, handle: u64, ty: CleanupType) {
    let Some(i) = ss.index_of_vpp(handle) else {
        return;
    };
    let s = ss.get_mut(i).expect("indexed");
    if ty == CleanupType::Transport {
        let reply = match s.state {
            State::VppClosing => Some(super::ops::ReplyKind::Disconnected),
            State::Reset => Some(super::ops::ReplyKind::Reset),
            _ => None,
        };
        if let Some(k) = reply {
            let thread = s.vpp_thread;
            super::ops::send_reply(w, thread, handle, k);
        }
        return;
    }
    if s.state == State::AppClosed {
        ss.free(i);
    } else {
        s.state = State::Detached;
        ss.by_vpp.remove(&handle);
        epoll::notify(ss, i, (EPOLLHUP | EPOLLERR) as u32);
    }
}

fn migrated(w: &Worker, ss: &mut Sessions, m: &Migrated) {
    let (Some(i), Some(t)) = (ss.index_of_vpp(m.handle), thread_of(w, m.vpp_thread_index)) else {
        return;
    };
    ss.by_vpp.remove(&m.handle);
    ss.bind_vpp(i, m.new_handle);
    let s = ss.get_mut(i).expect("indexed");
    s.vpp_thread = t;
    let resend = s
        .fifos
        .as_ref()
        .and_then(|f| f.tx_sig.get().ok())
        .is_some_and(|f| f.has_event());
    if resend {
        super::ops::send_io(w, t, EventType::IoTx, m.new_handle);
    }
}
