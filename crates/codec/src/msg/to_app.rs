//! Control messages VPP sends to the app (docs/wire.md#control-messages), packed; offsets from
//! the message start (ring element + 2). Verified against
//! application_interface.h (`session_*_msg_t`).

use super::common::{CleanupType, Ip46, TransportAttr, TransportEndpoint};
use crate::error::DecodeError;
use crate::wire::{Reader, WireMsg, Writer};

/// BOUND (9), `session_bound_msg_t`, 79 B: the listen reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bound {
    /// LISTEN.context.
    pub context: u32,
    /// Listener handle.
    pub handle: u64,
    /// Per-thread connectionless listener handle.
    pub cl_sh_handle: u64,
    /// 0 or a negative `SESSION_E_*`.
    pub retval: i32,
    /// Address family of `lcl_ip`.
    pub lcl_is_ip4: bool,
    /// Bound address.
    pub lcl_ip: Ip46,
    /// Bound port, host order.
    pub lcl_port: u16,
    /// Fifo seg-offsets (connectionless listeners only).
    pub rx_fifo: u64,
    /// See `rx_fifo`.
    pub tx_fifo: u64,
    /// Mq seg-offset in the VPP mqs segment.
    pub vpp_evt_q: u64,
    /// Segment holding the fifos.
    pub segment_handle: u64,
    /// VPP thread of `vpp_evt_q`.
    pub mq_index: u32,
}

impl WireMsg for Bound {
    const NAME: &'static str = "bound";
    const LEN: usize = 79;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.context);
        w.u64(4, self.handle);
        w.u64(12, self.cl_sh_handle);
        w.i32(20, self.retval);
        w.bool(24, self.lcl_is_ip4);
        w.bytes(25, &self.lcl_ip.0);
        w.u16_be(41, self.lcl_port);
        w.u64(43, self.rx_fifo);
        w.u64(51, self.tx_fifo);
        w.u64(59, self.vpp_evt_q);
        w.u64(67, self.segment_handle);
        w.u32(75, self.mq_index);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            context: r.u32(0)?,
            handle: r.u64(4)?,
            cl_sh_handle: r.u64(12)?,
            retval: r.i32(20)?,
            lcl_is_ip4: r.bool(24)?,
            lcl_ip: Ip46(r.array(25)?),
            lcl_port: r.u16_be(41)?,
            rx_fifo: r.u64(43)?,
            tx_fifo: r.u64(51)?,
            vpp_evt_q: r.u64(59)?,
            segment_handle: r.u64(67)?,
            mq_index: r.u32(75)?,
        })
    }
}

/// UNLISTEN_REPLY (10), 16 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnlistenReply {
    /// UNLISTEN.context.
    pub context: u32,
    /// Listener handle.
    pub handle: u64,
    /// Result.
    pub retval: i32,
}

impl WireMsg for UnlistenReply {
    const NAME: &'static str = "unlisten reply";
    const LEN: usize = 16;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.context);
        w.u64(4, self.handle);
        w.i32(12, self.retval);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            context: r.u32(0)?,
            handle: r.u64(4)?,
            retval: r.i32(12)?,
        })
    }
}

/// ACCEPTED (11), `session_accepted_msg_t`, 120 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accepted {
    /// App index; must be echoed in ACCEPTED_REPLY.context.
    pub context: u32,
    /// Listener that accepted.
    pub listener_handle: u64,
    /// New session.
    pub handle: u64,
    /// Fifo seg-offsets.
    pub server_rx_fifo: u64,
    /// See `server_rx_fifo`.
    pub server_tx_fifo: u64,
    /// Segment holding the fifos.
    pub segment_handle: u64,
    /// Mq seg-offset in the VPP mqs segment.
    pub vpp_event_queue_address: u64,
    /// Session thread.
    pub mq_index: u32,
    /// Local endpoint.
    pub lcl: TransportEndpoint,
    /// Remote endpoint.
    pub rmt: TransportEndpoint,
    /// `session_flags`.
    pub flags: u16,
    /// Original destination address (network order) for redirected sessions.
    pub original_dst_ip4: [u8; 4],
    /// Original destination port, host order.
    pub original_dst_port: u16,
}

impl WireMsg for Accepted {
    const NAME: &'static str = "accepted";
    const LEN: usize = 120;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.context);
        w.u64(4, self.listener_handle);
        w.u64(12, self.handle);
        w.u64(20, self.server_rx_fifo);
        w.u64(28, self.server_tx_fifo);
        w.u64(36, self.segment_handle);
        w.u64(44, self.vpp_event_queue_address);
        w.u32(52, self.mq_index);
        self.lcl.put(w, 56);
        self.rmt.put(w, 84);
        w.u16(112, self.flags);
        w.bytes(114, &self.original_dst_ip4);
        w.u16_be(118, self.original_dst_port);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            context: r.u32(0)?,
            listener_handle: r.u64(4)?,
            handle: r.u64(12)?,
            server_rx_fifo: r.u64(20)?,
            server_tx_fifo: r.u64(28)?,
            segment_handle: r.u64(36)?,
            vpp_event_queue_address: r.u64(44)?,
            mq_index: r.u32(52)?,
            lcl: TransportEndpoint::get(r, 56)?,
            rmt: TransportEndpoint::get(r, 84)?,
            flags: r.u16(112)?,
            original_dst_ip4: r.array(114)?,
            original_dst_port: r.u16_be(118)?,
        })
    }
}

/// CONNECTED (13), `session_connected_msg_t`, 104 B. On failure only
/// `context` and `retval` are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Connected {
    /// CONNECT.context.
    pub context: u32,
    /// 0 or a negative `SESSION_E_*`.
    pub retval: i32,
    /// New session.
    pub handle: u64,
    /// Fifo seg-offsets.
    pub server_rx_fifo: u64,
    /// See `server_rx_fifo`.
    pub server_tx_fifo: u64,
    /// Segment holding the fifos.
    pub segment_handle: u64,
    /// Cut-through fifo seg-offsets.
    pub ct_rx_fifo: u64,
    /// See `ct_rx_fifo`.
    pub ct_tx_fifo: u64,
    /// Cut-through segment.
    pub ct_segment_handle: u64,
    /// Mq seg-offset in the VPP mqs segment.
    pub vpp_event_queue_address: u64,
    /// Local endpoint.
    pub lcl: TransportEndpoint,
    /// Session thread.
    pub mq_index: u32,
}

impl WireMsg for Connected {
    const NAME: &'static str = "connected";
    const LEN: usize = 104;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.context);
        w.i32(4, self.retval);
        w.u64(8, self.handle);
        w.u64(16, self.server_rx_fifo);
        w.u64(24, self.server_tx_fifo);
        w.u64(32, self.segment_handle);
        w.u64(40, self.ct_rx_fifo);
        w.u64(48, self.ct_tx_fifo);
        w.u64(56, self.ct_segment_handle);
        w.u64(64, self.vpp_event_queue_address);
        self.lcl.put(w, 72);
        w.u32(100, self.mq_index);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            context: r.u32(0)?,
            retval: r.i32(4)?,
            handle: r.u64(8)?,
            server_rx_fifo: r.u64(16)?,
            server_tx_fifo: r.u64(24)?,
            segment_handle: r.u64(32)?,
            ct_rx_fifo: r.u64(40)?,
            ct_tx_fifo: r.u64(48)?,
            ct_segment_handle: r.u64(56)?,
            vpp_event_queue_address: r.u64(64)?,
            lcl: TransportEndpoint::get(r, 72)?,
            mq_index: r.u32(100)?,
        })
    }
}

/// CLEANUP (31), 9 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleanup {
    /// Session handle.
    pub handle: u64,
    /// What was freed.
    pub cleanup_type: CleanupType,
}

impl WireMsg for Cleanup {
    const NAME: &'static str = "cleanup";
    const LEN: usize = 9;
    fn put(&self, w: &mut Writer<'_>) {
        w.u64(0, self.handle);
        w.u8(8, self.cleanup_type as u8);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        let cleanup_type = match r.u8(8)? {
            0 => CleanupType::Transport,
            1 => CleanupType::Session,
            other => return Err(r.bad("cleanup type", other.into())),
        };
        Ok(Self {
            handle: r.u64(0)?,
            cleanup_type,
        })
    }
}

/// MIGRATED (30), 36 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Migrated {
    /// Mq seg-offset of the new thread.
    pub vpp_evt_q: u64,
    /// Old session handle.
    pub handle: u64,
    /// New session handle.
    pub new_handle: u64,
    /// ~0 = unchanged (always, in v26.06).
    pub segment_handle: u64,
    /// New VPP thread (mq index).
    pub vpp_thread_index: u32,
}

impl WireMsg for Migrated {
    const NAME: &'static str = "migrated";
    const LEN: usize = 36;
    fn put(&self, w: &mut Writer<'_>) {
        w.u64(0, self.vpp_evt_q);
        w.u64(8, self.handle);
        w.u64(16, self.new_handle);
        w.u64(24, self.segment_handle);
        w.u32(32, self.vpp_thread_index);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            vpp_evt_q: r.u64(0)?,
            handle: r.u64(8)?,
            new_handle: r.u64(16)?,
            segment_handle: r.u64(24)?,
            vpp_thread_index: r.u32(32)?,
        })
    }
}

/// REQ_WORKER_UPDATE (17), 8 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReqWorkerUpdate {
    /// Session handle.
    pub session_handle: u64,
}

impl WireMsg for ReqWorkerUpdate {
    const NAME: &'static str = "req worker update";
    const LEN: usize = 8;
    fn put(&self, w: &mut Writer<'_>) {
        w.u64(0, self.session_handle);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            session_handle: r.u64(0)?,
        })
    }
}

/// WORKER_UPDATE_REPLY (19), 32 B: new fifos in the new owner's segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerUpdateReply {
    /// Session handle.
    pub handle: u64,
    /// Fifo seg-offsets.
    pub rx_fifo: u64,
    /// See `rx_fifo`.
    pub tx_fifo: u64,
    /// Segment holding the fifos.
    pub segment_handle: u64,
}

impl WireMsg for WorkerUpdateReply {
    const NAME: &'static str = "worker update reply";
    const LEN: usize = 32;
    fn put(&self, w: &mut Writer<'_>) {
        w.u64(0, self.handle);
        w.u64(8, self.rx_fifo);
        w.u64(16, self.tx_fifo);
        w.u64(24, self.segment_handle);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            handle: r.u64(0)?,
            rx_fifo: r.u64(8)?,
            tx_fifo: r.u64(16)?,
            segment_handle: r.u64(24)?,
        })
    }
}

/// TRANSPORT_ATTR_REPLY (34), 53 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportAttrReply {
    /// Result.
    pub retval: i32,
    /// Session handle.
    pub handle: u64,
    /// Attribute (value filled in for a get).
    pub attr: TransportAttr,
    /// Echo of the request.
    pub is_get: bool,
}

impl WireMsg for TransportAttrReply {
    const NAME: &'static str = "transport attr reply";
    const LEN: usize = 53;
    fn put(&self, w: &mut Writer<'_>) {
        w.i32(0, self.retval);
        w.u64(4, self.handle);
        self.attr.put(w, 12);
        w.bool(52, self.is_get);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            retval: r.i32(0)?,
            handle: r.u64(4)?,
            attr: TransportAttr::get(r, 12)?,
            is_get: r.bool(52)?,
        })
    }
}
