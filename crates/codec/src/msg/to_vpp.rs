//! Control messages the app sends to VPP (docs/wire.md#control-messages). All are packed
//! except APP_DETACH; offsets are from the message start (ring element + 2).
//! Verified against application_interface.h (`session_*_msg_t`).

use super::common::{Ip46, TransportAttr, TransportProto};
use crate::error::DecodeError;
use crate::wire::{Reader, WireMsg, Writer};

/// LISTEN (24), `session_listen_msg_t`, 46 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// api_client_handle.
    pub client_index: u32,
    /// App cookie echoed in BOUND; also stamped into connectionless fifos.
    pub context: u32,
    /// VPP worker (wrk_map_index).
    pub wrk_index: u32,
    /// Used directly as the fib index.
    pub vrf: u32,
    /// Local port, host order.
    pub port: u16,
    /// Transport.
    pub proto: TransportProto,
    /// Address family.
    pub is_ip4: bool,
    /// Local address.
    pub ip: Ip46,
    /// `cfg_flags`.
    pub flags: u8,
    /// Seg-offset of an ext-config chunk in the VPP mqs segment, 0 = none.
    pub ext_config: u64,
    /// DSCP.
    pub dscp: u8,
}

impl WireMsg for Listen {
    const NAME: &'static str = "listen";
    const LEN: usize = 46;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u32(4, self.context);
        w.u32(8, self.wrk_index);
        w.u32(12, self.vrf);
        w.u16_be(16, self.port);
        w.u8(18, self.proto as u8);
        w.bool(19, self.is_ip4);
        w.bytes(20, &self.ip.0);
        w.u8(36, self.flags);
        w.u64(37, self.ext_config);
        w.u8(45, self.dscp);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            context: r.u32(4)?,
            wrk_index: r.u32(8)?,
            vrf: r.u32(12)?,
            port: r.u16_be(16)?,
            proto: TransportProto::read(r, 18)?,
            is_ip4: r.bool(19)?,
            ip: Ip46(r.array(20)?),
            flags: r.u8(36)?,
            ext_config: r.u64(37)?,
            dscp: r.u8(45)?,
        })
    }
}

/// LISTEN_URI (25) / CONNECT_URI (23), 64 B. Not used by VCL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriMsg {
    /// api_client_handle.
    pub client_index: u32,
    /// App cookie.
    pub context: u32,
    /// NUL-padded URI.
    pub uri: [u8; 56],
}

impl WireMsg for UriMsg {
    const NAME: &'static str = "uri msg";
    const LEN: usize = 64;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u32(4, self.context);
        w.bytes(8, &self.uri);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            context: r.u32(4)?,
            uri: r.array(8)?,
        })
    }
}

/// UNLISTEN (26), 20 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unlisten {
    /// api_client_handle.
    pub client_index: u32,
    /// Echoed in UNLISTEN_REPLY (VCL: its worker index).
    pub context: u32,
    /// VPP worker.
    pub wrk_index: u32,
    /// Listener handle.
    pub handle: u64,
}

impl WireMsg for Unlisten {
    const NAME: &'static str = "unlisten";
    const LEN: usize = 20;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u32(4, self.context);
        w.u32(8, self.wrk_index);
        w.u64(12, self.handle);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            context: r.u32(4)?,
            wrk_index: r.u32(8)?,
            handle: r.u64(12)?,
        })
    }
}

/// ACCEPTED_REPLY (12), 20 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcceptedReply {
    /// Must equal ACCEPTED.context (the app index).
    pub context: u32,
    /// 0 accepts; anything else makes VPP drop the session silently.
    pub retval: i32,
    /// Session handle from ACCEPTED.
    pub handle: u64,
    /// Index VPP stamps into the fifos; later IO events carry it.
    pub app_session_index: u32,
}

impl WireMsg for AcceptedReply {
    const NAME: &'static str = "accepted reply";
    const LEN: usize = 20;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.context);
        w.i32(4, self.retval);
        w.u64(8, self.handle);
        w.u32(16, self.app_session_index);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            context: r.u32(0)?,
            retval: r.i32(4)?,
            handle: r.u64(8)?,
            app_session_index: r.u32(16)?,
        })
    }
}

/// CONNECT (22) and CONNECT_STREAM (37), `session_connect_msg_t`, 77 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect {
    /// api_client_handle.
    pub client_index: u32,
    /// App cookie echoed in CONNECTED and stamped into the fifos.
    pub context: u32,
    /// VPP worker.
    pub wrk_index: u32,
    /// Peer fib index.
    pub vrf: u32,
    /// Remote port, host order.
    pub port: u16,
    /// Local port, host order (0 = any).
    pub lcl_port: u16,
    /// Transport.
    pub proto: TransportProto,
    /// Address family.
    pub is_ip4: bool,
    /// Remote address.
    pub ip: Ip46,
    /// Local address.
    pub lcl_ip: Ip46,
    /// Parent session for streams; VCL sends ~0 otherwise.
    pub parent_handle: u64,
    /// Legacy, ignored by VPP.
    pub ckpair_index: u32,
    /// Legacy, ignored by VPP (raw byte, not validated).
    pub crypto_engine: u8,
    /// `cfg_flags`.
    pub flags: u8,
    /// DSCP.
    pub dscp: u8,
    /// Ext-config chunk seg-offset, 0 = none.
    pub ext_config: u64,
}

impl WireMsg for Connect {
    const NAME: &'static str = "connect";
    const LEN: usize = 77;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u32(4, self.context);
        w.u32(8, self.wrk_index);
        w.u32(12, self.vrf);
        w.u16_be(16, self.port);
        w.u16_be(18, self.lcl_port);
        w.u8(20, self.proto as u8);
        w.bool(21, self.is_ip4);
        w.bytes(22, &self.ip.0);
        w.bytes(38, &self.lcl_ip.0);
        w.u64(54, self.parent_handle);
        w.u32(62, self.ckpair_index);
        w.u8(66, self.crypto_engine);
        w.u8(67, self.flags);
        w.u8(68, self.dscp);
        w.u64(69, self.ext_config);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            context: r.u32(4)?,
            wrk_index: r.u32(8)?,
            vrf: r.u32(12)?,
            port: r.u16_be(16)?,
            lcl_port: r.u16_be(18)?,
            proto: TransportProto::read(r, 20)?,
            is_ip4: r.bool(21)?,
            ip: Ip46(r.array(22)?),
            lcl_ip: Ip46(r.array(38)?),
            parent_handle: r.u64(54)?,
            ckpair_index: r.u32(62)?,
            crypto_engine: r.u8(66)?,
            flags: r.u8(67)?,
            dscp: r.u8(68)?,
            ext_config: r.u64(69)?,
        })
    }
}

/// The 16-byte {client_index, context, handle} layout shared by SHUTDOWN
/// (20), DISCONNECT (21), TERMINATE (38) towards VPP and DISCONNECTED (14),
/// RESET (8) towards the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionHandleMsg {
    /// api_client_handle (0 from VPP).
    pub client_index: u32,
    /// 0 from the app; VPP puts the api client index in DISCONNECTED/RESET.
    pub context: u32,
    /// Session handle.
    pub handle: u64,
}

impl WireMsg for SessionHandleMsg {
    const NAME: &'static str = "session close msg";
    const LEN: usize = 16;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u32(4, self.context);
        w.u64(8, self.handle);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            context: r.u32(4)?,
            handle: r.u64(8)?,
        })
    }
}

/// The 16-byte {context, retval, handle} layout of DISCONNECTED_REPLY (15)
/// and RESET_REPLY (16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionReplyMsg {
    /// App → VPP: the api_client_handle (VPP finds the app by it).
    pub context: u32,
    /// Result.
    pub retval: i32,
    /// Session handle.
    pub handle: u64,
}

impl WireMsg for SessionReplyMsg {
    const NAME: &'static str = "session close reply";
    const LEN: usize = 16;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.context);
        w.i32(4, self.retval);
        w.u64(8, self.handle);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            context: r.u32(0)?,
            retval: r.i32(4)?,
            handle: r.u64(8)?,
        })
    }
}

/// WORKER_UPDATE (18), 16 B. Worker indices are u16 on purpose in VPP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerUpdate {
    /// api_client_handle.
    pub client_index: u32,
    /// Target VPP worker.
    pub wrk_index: u16,
    /// Requesting VPP worker.
    pub req_wrk_index: u16,
    /// Session handle.
    pub handle: u64,
}

impl WireMsg for WorkerUpdate {
    const NAME: &'static str = "worker update";
    const LEN: usize = 16;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u16(4, self.wrk_index);
        w.u16(6, self.req_wrk_index);
        w.u64(8, self.handle);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            wrk_index: r.u16(4)?,
            req_wrk_index: r.u16(6)?,
            handle: r.u64(8)?,
        })
    }
}

/// APP_DETACH (27), natural layout, 8 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppDetach {
    /// api_client_handle of the worker detaching.
    pub client_index: u32,
    /// App cookie.
    pub context: u32,
}

impl WireMsg for AppDetach {
    const NAME: &'static str = "app detach";
    const LEN: usize = 8;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u32(4, self.context);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            context: r.u32(4)?,
        })
    }
}

/// APP_WRK_RPC (32), 72 B; VPP relays only `data` to the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppWrkRpc {
    /// api_client_handle.
    pub client_index: u32,
    /// Destination VPP worker.
    pub wrk_index: u32,
    /// Opaque payload.
    pub data: [u8; 64],
}

impl WireMsg for AppWrkRpc {
    const NAME: &'static str = "app wrk rpc";
    const LEN: usize = 72;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u32(4, self.wrk_index);
        w.bytes(8, &self.data);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            wrk_index: r.u32(4)?,
            data: r.array(8)?,
        })
    }
}

/// TRANSPORT_ATTR (33), 53 B: a get/set request from the app, or an
/// unsolicited attribute from VPP (same layout both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportAttrMsg {
    /// api_client_handle (app → VPP).
    pub client_index: u32,
    /// Session handle.
    pub handle: u64,
    /// Attribute.
    pub attr: TransportAttr,
    /// Get (true) or set.
    pub is_get: bool,
}

impl WireMsg for TransportAttrMsg {
    const NAME: &'static str = "transport attr";
    const LEN: usize = 53;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u64(4, self.handle);
        self.attr.put(w, 12);
        w.bool(52, self.is_get);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            handle: r.u64(4)?,
            attr: TransportAttr::get(r, 12)?,
            is_get: r.bool(52)?,
        })
    }
}
