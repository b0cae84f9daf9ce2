//! One emulated VPP thread: the only consumer of that thread's mq in the vpp mqs segment. Each
//! round it drains the mq, dispatches every message under the state lock (VPP's barrier), then
//! flushes events queued for app workers on this thread, then waits on the mq's condvar (apps
//! broadcast it when the queue goes non-empty) for a short while.
//!
//! The dispatch `match` hands session messages to their handlers (`session::listen`,
//! `session::api`): LISTEN, UNLISTEN, CONNECT, ACCEPTED_REPLY, DISCONNECT, SHUTDOWN,
//! TERMINATE, DISCONNECTED_REPLY, RESET_REPLY, APP_DETACH and the IO events; anything else is
//! logged and ignored.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use vcl_codec::event::EventType;
use vcl_codec::msg::{decode_ctrl_element, CtrlMsg};
use vcl_svm::mq::{Event, IO_RING};

use crate::events::{evt_name, flush_thread};
use crate::log::{Dir, MsgKind};
use crate::shared::Shared;
use crate::vpp::state::State;

/// Longest sleep between rounds: bounds the delay of events queued from outside (tests).
const IDLE_WAIT: Duration = Duration::from_millis(2);
/// Messages taken per round (VPP's session queue node handles batches too).
const BATCH: usize = 64;

/// Body of VPP thread `t`.
pub fn run(shared: Arc<Shared>, t: u8) {
    let Some(q) = shared.vpp_mqs.mqs.get(usize::from(t)) else {
        return;
    };
    let mut consumer = match q.consumer() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%e, thread = t, "cannot consume vpp mq");
            return;
        }
    };
    let lag = shared.lock().faults.mq_lag;
    while !shared.stop.load(Ordering::Acquire) {
        if let Some(d) = lag.filter(|_| !q.is_empty()) {
            std::thread::sleep(d);
        }
        {
            let mut st = shared.lock();
            if let Err(e) = consumer.dequeue(BATCH, |e| dispatch(&mut st, t, e)) {
                // A hostile app can corrupt the queue; keep serving the others.
                tracing::error!(%e, thread = t, "vpp mq corrupt");
            }
            flush_thread(&mut st, t);
        }
        if let Err(e) = consumer.wait(IDLE_WAIT) {
            tracing::error!(%e, thread = t, "vpp mq wait failed");
            std::thread::sleep(IDLE_WAIT);
        }
    }
}

/// Handle one message VPP thread `t` took from its mq.
fn dispatch(st: &mut State, t: u8, e: Event<'_>) {
    let ty = e.event_type();
    st.note(Dir::Rx, MsgKind::Mq(ty), u32::from(t));
    if e.ring == IO_RING {
        st.mq_io(t, ty, e.session_index());
        return;
    }
    let msg = decode_ctrl_element(e.data);
    if let (Some(d), Ok(CtrlMsg::Listen(_) | CtrlMsg::Connect(_))) = (st.faults.ctrl_delay, &msg) {
        tracing::warn!(?d, "fault: LISTEN/CONNECT handled late");
        std::thread::sleep(d);
    }
    match msg {
        Ok(CtrlMsg::AppDetach(m)) => {
            st.app_detach(m.client_index);
        }
        Ok(CtrlMsg::Listen(m)) => st.mq_listen(m),
        Ok(CtrlMsg::Unlisten(m)) => st.mq_unlisten(m),
        Ok(CtrlMsg::Connect(m)) => st.mq_connect(t, m),
        Ok(CtrlMsg::ConnectStream(m)) => st.mq_connect_stream(t, m),
        Ok(CtrlMsg::AcceptedReply(m)) => st.mq_accepted_reply(m),
        Ok(CtrlMsg::Disconnect(m)) => st.mq_close(EventType::Disconnect, m),
        Ok(CtrlMsg::Shutdown(m)) => st.mq_close(EventType::Shutdown, m),
        Ok(CtrlMsg::Terminate(m)) => st.mq_close(EventType::Terminate, m),
        Ok(CtrlMsg::DisconnectedReply(m)) => st.mq_close_reply(EventType::DisconnectedReply, m),
        Ok(CtrlMsg::ResetReply(m)) => st.mq_close_reply(EventType::ResetReply, m),
        Ok(m) => tracing::debug!(
            thread = t,
            evt = evt_name(ty),
            ?m,
            "ctrl event not emulated"
        ),
        Err(err) => tracing::debug!(thread = t, ty, %err, "undecodable ctrl event ignored"),
    }
}
