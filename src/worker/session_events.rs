//! Events VPP sends to the app about sessions: IO (rx data, tx space) and control (bound,
//! accepted, connected, disconnected, reset, cleanup, migrated), applied to the worker's
//! session table. Readiness is recorded in the table ([`Sessions::notify`]), so nothing here
//! calls up into epoll. Every index and handle in them is checked against the table; an event
//! naming nothing we know is logged and dropped. Sequences: docs/wire.md#session-events.

use vcl_codec::event::EventType;
use vcl_codec::msg::{decode_ctrl, Bound, CleanupType, Connected, CtrlMsg, Migrated, Unlisten};
use vcl_codec::session_error::{SESSION_E_INVALID, SESSION_E_NONE};

use super::{HandleMsg, ReplyKind, Worker};
use crate::table::{Endpoint, Events, Fifos, Sessions, State};

/// VPPCOM_PROTO_UDP.
const PROTO_UDP: u8 = 1;

impl Worker {
    /// Apply every message queued on the app mq now to `ss`; returns how many. Also where
    /// a detach (socket hang-up, probed at most every ms; a corrupt mq) reaches the sessions.
    pub(crate) fn drain(&self, ss: &mut Sessions) -> usize {
        let mut total = 0;
        while !self.known_detached() {
            match self.drain_mq(|t, p| handle_event(self, ss, t, p)) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        if self.probe_detached() {
            self.apply_detach(ss);
        }
        total
    }
}

/// Handle one message from the app mq (segment events were already taken by the worker).
fn handle_event(w: &Worker, ss: &mut Sessions, t: u8, payload: &[u8]) {
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
            Some(li) if crate::session::accepts(ss, li) => {
                let l = ss.get_mut(li).expect("checked");
                l.accept_q.push_back(m);
                ss.notify_accept(li);
            }
            _ => {
                tracing::warn!("accepted on unknown listener {:#x}", m.listener_handle);
                w.accepted_reply(&m, SESSION_E_INVALID, 0);
            }
        },
        CtrlMsg::Connected(m) => connected(w, ss, &m),
        CtrlMsg::Disconnected(m) => peer_closed(ss, m.handle, false),
        CtrlMsg::Reset(m) => peer_closed(ss, m.handle, true),
        CtrlMsg::Cleanup(m) => cleanup(w, ss, m.handle, m.cleanup_type),
        CtrlMsg::UnlistenReply(m) => {
            if let Some(i) = ss.index_of_vpp(m.handle) {
                if ss.get(i).is_some_and(|s| s.state == State::AppClosed) {
                    ss.free(i);
                }
            }
        }
        CtrlMsg::Migrated(m) => migrated(w, ss, &m),
        CtrlMsg::TransportAttrReply(m) => ss.transport_attr_reply(&m),
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
            if s.rx_ready() == 0 {
                f.rx_sig.fifo().unset_event();
                if s.rx_ready() == 0 {
                    return;
                }
            }
        }
        ss.notify(si, Events::IN);
    } else {
        // VPP dequeued: acknowledge, so the next deq notification can come, then report space.
        if let Some(f) = s.fifos.as_ref() {
            f.tx_sig.fifo().reset_has_deq_ntf();
        }
        ss.notify(si, Events::OUT);
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
    if s.state == State::AppClosed {
        // closed while binding: the handle stays dead; VPP's listener goes (freed on
        // UNLISTEN_REPLY)
        if m.retval != SESSION_E_NONE {
            ss.free(m.context);
            return;
        }
        ss.bind_vpp(m.context, m.handle);
        let msg = CtrlMsg::Unlisten(Unlisten {
            client_index: w.conn().api_client_handle,
            context: w.index,
            wrk_index: w.conn().vpp_wrk_index,
            handle: m.handle,
        });
        let _ = w.send_ctrl(w.conn().vpp.ctrl, &msg);
        return;
    }
    if s.state != State::Binding {
        tracing::warn!("bound for session {} in state {:?}", m.context, s.state);
        return;
    }
    s.relisten_pending = false;
    if m.retval != SESSION_E_NONE {
        s.vpp_error = m.retval;
        s.state = State::Detached;
        return;
    }
    s.lcl = ep_from(m.lcl_is_ip4, m.lcl_ip, m.lcl_port);
    if s.proto == PROTO_UDP && !s.attr.connected {
        // connectionless: this worker's fifos and VPP session come with BOUND
        let fifos = w.fifos_of(m.segment_handle, m.rx_fifo, m.tx_fifo);
        let (Some((rx, tx)), Some(t)) = (fifos, w.thread_of(m.mq_index)) else {
            tracing::error!("bound session {}: cl fifos or mq not usable", m.context);
            s.vpp_error = SESSION_E_INVALID;
            s.state = State::Detached;
            return;
        };
        s.fifos = Some(Fifos::plain(rx, tx));
        s.vpp_thread = t;
        s.cl_vpp_handle = Some(m.cl_sh_handle);
    }
    s.state = State::Listen;
    ss.bind_vpp(m.context, m.handle);
    if ss.get(m.context).is_some_and(|s| s.fifos.is_some()) {
        ss.notify(m.context, Events::OUT);
    }
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
    if m.retval != SESSION_E_NONE && s.state == State::AppClosed {
        ss.free(m.context); // closed while connecting; nothing to tell VPP
        return;
    }
    if m.retval != SESSION_E_NONE {
        // as upstream, VPP's reason (a failed TLS handshake, a missing ext config, ...) is
        // only logged: the app sees ECONNREFUSED
        tracing::error!(
            "session {}: connect failed: {}",
            m.context,
            vcl_codec::session_error::session_error_str(m.retval)
        );
        s.vpp_error = m.retval;
        s.state = State::Detached;
        ss.notify(m.context, Events::OUT | Events::HUP);
        return;
    }
    let (Some(fifos), Some(thread)) = (w.connected_fifos(m), w.thread_of(m.mq_index)) else {
        tracing::error!("connected session {}: fifos or mq not usable", m.context);
        s.vpp_error = SESSION_E_INVALID;
        s.state = State::Detached;
        w.send_handle_msg(0, m.handle, HandleMsg::Disconnect);
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
        w.send_handle_msg(thread, m.handle, HandleMsg::Disconnect);
    } else {
        ss.notify(m.context, Events::OUT);
    }
}

fn peer_closed(ss: &mut Sessions, handle: u64, reset: bool) {
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
    let ev = if reset {
        Events::ERR | Events::HUP
    } else {
        Events::IN | Events::RDHUP | Events::HUP
    };
    ss.notify(i, ev);
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
            State::VppClosing => Some(ReplyKind::Disconnected),
            State::Reset => Some(ReplyKind::Reset),
            _ => None,
        };
        if let Some(k) = reply {
            let thread = s.vpp_thread;
            w.send_reply(thread, handle, k);
        }
        return;
    }
    if s.state == State::AppClosed {
        ss.free(i);
    } else {
        s.state = State::Detached;
        ss.by_vpp.remove(&handle);
        ss.notify(i, Events::HUP | Events::ERR);
    }
}

/// A session moved to another VPP thread (v26.06 sends it for connected UDP sessions whose
/// first datagram arrived on another thread): same fifos, new handle and thread.
fn migrated(w: &Worker, ss: &mut Sessions, m: &Migrated) {
    let (Some(i), Some(t)) = (ss.index_of_vpp(m.handle), w.thread_of(m.vpp_thread_index)) else {
        tracing::debug!("migrated: unknown handle {:#x} or thread", m.handle);
        return;
    };
    if m.segment_handle != u64::MAX && w.segment(m.segment_handle).is_none() {
        tracing::warn!(
            "migrated session {i}: segment {:#x} not mapped",
            m.segment_handle
        );
        if let Some(s) = ss.get_mut(i) {
            s.state = State::Detached;
        }
        return;
    }
    ss.by_vpp.remove(&m.handle);
    ss.bind_vpp(i, m.new_handle);
    let s = ss.get_mut(i).expect("indexed");
    s.vpp_thread = t;
    let resend = s
        .fifos
        .as_ref()
        .is_some_and(|f| f.tx_sig.fifo().has_event());
    if resend {
        w.send_io(t, EventType::IoTx, m.new_handle);
    }
}
