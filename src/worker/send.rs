//! Messages from a worker to VPP's per-thread queues: control messages, IO events, and the
//! session messages built on them.

use std::sync::Arc;
use std::time::Duration;

use vcl_codec::event::EventType;
use vcl_codec::msg::{Accepted, AcceptedReply, CtrlMsg, SessionHandleMsg, SessionReplyMsg};
use vcl_svm::mq::{MsgQueue, SendMode};
use vcl_svm::{Segment, SvmError};

use super::{VppMqs, Worker};
use crate::error::{Error, Result};
use crate::table::{FifoRef, Fifos};

/// How long a send waits for room in a full VPP queue before giving up.
const SEND_WAIT: Duration = Duration::from_secs(1);

/// Messages that name a session by its VPP handle.
pub enum HandleMsg {
    Disconnect,
    Shutdown,
    Terminate,
}

/// Acknowledgements of a close VPP started.
pub enum ReplyKind {
    Disconnected,
    Reset,
}

impl VppMqs {
    /// Send a control message to VPP thread `thread`'s queue (waits up to 1 s for room).
    pub(crate) fn send_ctrl(&self, thread: usize, msg: &CtrlMsg) -> Result<()> {
        let mut buf = [0u8; 254];
        let n = vcl_codec::msg::try_encode_ctrl(msg, &mut buf).map_err(|_| Error::Inval)?;
        let mq: &MsgQueue<Arc<Segment>> = self.mqs.get(thread).ok_or(Error::Inval)?;
        mq.send_ctrl(
            msg.evt_type().as_u8(),
            &buf[..n],
            SendMode::BlockFor(SEND_WAIT),
        )
        .map_err(|e| {
            tracing::error!("vpp mq {thread}: {e}");
            Error::NoMem
        })
    }
}

impl Worker {
    /// Send a control message to VPP thread `thread`'s queue.
    /// Nothing is sent once detached: VPP's queues may be full for good (a close must not
    /// wait for room each).
    pub(crate) fn send_ctrl(&self, thread: usize, msg: &CtrlMsg) -> Result<()> {
        if self.known_detached() {
            return Err(Error::NotConn);
        }
        self.conn().vpp.send_ctrl(thread, msg)
    }

    /// An IO event (TX, RX deq notification, ...) for VPP's session `vpp_handle`.
    /// False when it could not be sent (detached, or VPP's queue stayed full).
    pub(crate) fn send_io(&self, thread: usize, t: EventType, vpp_handle: u64) -> bool {
        tracing::trace!(thread, ?t, vpp_handle, "io event to vpp");
        if self.known_detached() {
            return false;
        }
        let conn = self.conn();
        let Some(mq) = conn.vpp.mqs.get(thread) else {
            return false;
        };
        // As upstream (SVM_Q_WAIT), an IO event is never dropped while VPP lives: a dropped TX
        // or dequeue notification stalls its session for good. A full or locked queue is
        // retried every SEND_WAIT until it takes the event or the worker is found detached.
        let mut warned = false;
        loop {
            match mq.send_io(t.as_u8(), vpp_handle as u32, SendMode::BlockFor(SEND_WAIT)) {
                Ok(_) => return true,
                Err(
                    SvmError::Full | SvmError::Os(_, libc::ETIMEDOUT | libc::EBUSY | libc::EAGAIN),
                ) if !self.is_detached() => {
                    if !std::mem::replace(&mut warned, true) {
                        tracing::warn!("vpp mq {thread}: full for {SEND_WAIT:?}; still sending");
                    }
                }
                Err(e) => {
                    tracing::error!("vpp mq {thread}: io event not sent: {e}");
                    return false;
                }
            }
        }
    }

    pub(crate) fn send_handle_msg(&self, thread: usize, vpp_handle: u64, kind: HandleMsg) {
        let m = SessionHandleMsg {
            client_index: self.conn().api_client_handle,
            context: 0,
            handle: vpp_handle,
        };
        let msg = match kind {
            HandleMsg::Disconnect => CtrlMsg::Disconnect(m),
            HandleMsg::Shutdown => CtrlMsg::Shutdown(m),
            HandleMsg::Terminate => CtrlMsg::Terminate(m),
        };
        let _ = self.send_ctrl(thread, &msg);
    }

    /// DISCONNECTED_REPLY / RESET_REPLY: VPP finds the app by the api client handle in context.
    pub(crate) fn send_reply(&self, thread: usize, vpp_handle: u64, kind: ReplyKind) {
        let m = SessionReplyMsg {
            context: self.conn().api_client_handle,
            retval: 0,
            handle: vpp_handle,
        };
        let msg = match kind {
            ReplyKind::Disconnected => CtrlMsg::DisconnectedReply(m),
            ReplyKind::Reset => CtrlMsg::ResetReply(m),
        };
        let _ = self.send_ctrl(thread, &msg);
    }

    /// ACCEPTED_REPLY on the accepted session's queue; context is ACCEPTED's (the app index).
    pub(crate) fn accepted_reply(&self, m: &Accepted, retval: i32, app_session_index: u32) {
        let thread = self.thread_of(m.mq_index).unwrap_or(self.conn().vpp.ctrl);
        let reply = CtrlMsg::AcceptedReply(AcceptedReply {
            context: m.context,
            retval,
            handle: m.handle,
            app_session_index,
        });
        let _ = self.send_ctrl(thread, &reply);
    }

    /// The VPP thread queue a message names, if we have it.
    pub(crate) fn thread_of(&self, mq_index: u32) -> Option<usize> {
        let t = mq_index as usize;
        (t < self.conn().vpp.mqs.len()).then_some(t)
    }

    /// Fifos named by an ACCEPTED or CONNECTED message, in segments we map; the app reads the
    /// first, keeping consumed chunks a while (see [`FifoRef::keeping_consumed`]), and writes
    /// the second, growing it by whole steps ([`FifoRef::growing_whole`]).
    pub(crate) fn fifos_of(&self, seg: u64, rx: u64, tx: u64) -> Option<(FifoRef, FifoRef)> {
        let s = self.segment(seg)?;
        let rx = FifoRef::new(s.clone(), rx).ok()?.keeping_consumed();
        let tx = FifoRef::new(s, tx).ok()?.growing_whole();
        Some((rx, tx))
    }

    /// Why [`Self::fifos_of`] or [`Self::thread_of`] refused what a message named: for the log
    /// (what was expected, what arrived).
    pub(crate) fn fifos_refusal(&self, seg: u64, rx: u64, tx: u64, mq_index: u32) -> String {
        let n_mqs = self.conn().vpp.mqs.len();
        if mq_index as usize >= n_mqs {
            return format!("mq index {mq_index}, VPP has {n_mqs} thread queues");
        }
        let Some(s) = self.segment(seg) else {
            return format!("segment {seg:#x} is not mapped by this worker");
        };
        for (what, off) in [("rx", rx), ("tx", tx)] {
            if let Err(e) = FifoRef::new(s.clone(), off) {
                return format!("{what} fifo at {off:#x} of segment {seg:#x}: {e}");
            }
        }
        "usable on a second look (a segment added meanwhile)".into()
    }

    /// Fifos for a CONNECTED session: cut-through sessions move data through the `ct_*` fifos
    /// and signal through the server's (see docs/wire.md#cut-through).
    pub(crate) fn connected_fifos(&self, m: &vcl_codec::msg::Connected) -> Option<Fifos> {
        let (rx, tx) = self.fifos_of(m.segment_handle, m.server_rx_fifo, m.server_tx_fifo)?;
        if m.ct_rx_fifo == 0 {
            return Some(Fifos::plain(rx, tx));
        }
        let (crx, ctx) = self.fifos_of(m.ct_segment_handle, m.ct_rx_fifo, m.ct_tx_fifo)?;
        Some(Fifos {
            rx: crx,
            tx: ctx,
            rx_sig: rx,
            tx_sig: tx,
        })
    }
}
