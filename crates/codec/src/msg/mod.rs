//! Session control messages carried on ring 1 of the session message queues,
//! in both directions, and the [`CtrlMsg`] enum that ties each one to its
//! event type so either side (the library or a test peer playing VPP) can
//! send and receive any of them.
//!
//! A ring-1 element is 256 bytes: `session_event_t` header (type byte, a
//! `postponed` byte) then the message body from offset 2. [`encode_ctrl`] /
//! [`decode_ctrl`] work on the body; [`encode_ctrl_element`] /
//! [`decode_ctrl_element`] on whole elements.

pub mod common;
pub mod segment;
pub mod to_app;
pub mod to_vpp;

pub use common::*;
pub use segment::*;
pub use to_app::*;
pub use to_vpp::*;

use crate::error::{BufferTooSmall, DecodeError};
use crate::event::{EventType, EVENT_DATA_OFFSET};
use crate::wire::WireMsg;

/// Ring-1 element size.
pub const CTRL_EVT_ELT_LEN: usize = 256;
/// Room for a message body in a ring-1 element.
pub const CTRL_MSG_ROOM: usize = CTRL_EVT_ELT_LEN - EVENT_DATA_OFFSET;
/// Largest body this crate encodes (APP_ADD_SEGMENT).
pub const CTRL_MSG_MAX_LEN: usize = AddSegment::LEN;
/// VPP's `SESSION_CTRL_MSG_MAX_SIZE` (asserted for listen/connect).
pub const SESSION_CTRL_MSG_MAX_SIZE: usize = 86;

// VPP asserts the same bounds at build time; so do we.
const _: () = assert!(Listen::LEN <= SESSION_CTRL_MSG_MAX_SIZE);
const _: () = assert!(Connect::LEN <= SESSION_CTRL_MSG_MAX_SIZE);
const _: () = assert!(CTRL_MSG_MAX_LEN <= CTRL_MSG_ROOM);

macro_rules! ctrl_msgs {
    ($( $(#[$doc:meta])* $var:ident($ty:ty) = $evt:ident; )*) => {
        /// Any app-visible session control message, tagged by event type.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum CtrlMsg {
            $( $(#[$doc])* $var($ty), )*
        }

        impl CtrlMsg {
            /// Event type this message travels under.
            pub fn evt_type(&self) -> EventType {
                match self {
                    $( Self::$var(_) => EventType::$evt, )*
                }
            }

            /// Body size on the wire.
            pub fn wire_len(&self) -> usize {
                match self {
                    $( Self::$var(_) => <$ty as WireMsg>::LEN, )*
                }
            }

            fn encode_body(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
                match self {
                    $( Self::$var(m) => m.encode_into(out), )*
                }
            }

            fn decode_body(evt: EventType, payload: &[u8]) -> Result<Self, DecodeError> {
                match evt {
                    $( EventType::$evt => Ok(Self::$var(<$ty>::decode(payload)?)), )*
                    other => Err(DecodeError::NotCtrlMsg(other.as_u8())),
                }
            }
        }
    };
}

ctrl_msgs! {
    /// LISTEN (24), app → VPP.
    Listen(Listen) = Listen;
    /// LISTEN_URI (25), app → VPP.
    ListenUri(UriMsg) = ListenUri;
    /// BOUND (9), VPP → app.
    Bound(Bound) = Bound;
    /// UNLISTEN (26), app → VPP.
    Unlisten(Unlisten) = Unlisten;
    /// UNLISTEN_REPLY (10), VPP → app.
    UnlistenReply(UnlistenReply) = UnlistenReply;
    /// ACCEPTED (11), VPP → app.
    Accepted(Accepted) = Accepted;
    /// ACCEPTED_REPLY (12), app → VPP.
    AcceptedReply(AcceptedReply) = AcceptedReply;
    /// CONNECT (22), app → VPP.
    Connect(Connect) = Connect;
    /// CONNECT_URI (23), app → VPP.
    ConnectUri(UriMsg) = ConnectUri;
    /// CONNECT_STREAM (37), app → VPP; same layout as CONNECT.
    ConnectStream(Connect) = ConnectStream;
    /// CONNECTED (13), VPP → app.
    Connected(Connected) = Connected;
    /// SHUTDOWN (20), app → VPP.
    Shutdown(SessionHandleMsg) = Shutdown;
    /// DISCONNECT (21), app → VPP.
    Disconnect(SessionHandleMsg) = Disconnect;
    /// TERMINATE (38), app → VPP.
    Terminate(SessionHandleMsg) = Terminate;
    /// DISCONNECTED (14), VPP → app (peer closed).
    Disconnected(SessionHandleMsg) = Disconnected;
    /// RESET (8), VPP → app.
    Reset(SessionHandleMsg) = Reset;
    /// DISCONNECTED_REPLY (15), app → VPP (and VPP → app after an app-sent 14).
    DisconnectedReply(SessionReplyMsg) = DisconnectedReply;
    /// RESET_REPLY (16), app → VPP.
    ResetReply(SessionReplyMsg) = ResetReply;
    /// REQ_WORKER_UPDATE (17), VPP → app.
    ReqWorkerUpdate(ReqWorkerUpdate) = ReqWorkerUpdate;
    /// WORKER_UPDATE (18), app → VPP.
    WorkerUpdate(WorkerUpdate) = WorkerUpdate;
    /// WORKER_UPDATE_REPLY (19), VPP → app.
    WorkerUpdateReply(WorkerUpdateReply) = WorkerUpdateReply;
    /// APP_DETACH (27), app → VPP.
    AppDetach(AppDetach) = AppDetach;
    /// APP_ADD_SEGMENT (28), VPP → app.
    AppAddSegment(AddSegment) = AppAddSegment;
    /// APP_DEL_SEGMENT (29), VPP → app.
    AppDelSegment(DelSegment) = AppDelSegment;
    /// MIGRATED (30), VPP → app.
    Migrated(Migrated) = Migrated;
    /// CLEANUP (31), VPP → app.
    Cleanup(Cleanup) = Cleanup;
    /// APP_WRK_RPC (32), app → VPP → app.
    AppWrkRpc(AppWrkRpc) = AppWrkRpc;
    /// TRANSPORT_ATTR (33), both directions.
    TransportAttr(TransportAttrMsg) = TransportAttr;
    /// TRANSPORT_ATTR_REPLY (34), VPP → app.
    TransportAttrReply(TransportAttrReply) = TransportAttrReply;
}

/// Writes the body of `msg` to the front of `out` and returns its length.
///
/// # Panics
/// If `out` is shorter than `msg.wire_len()` (at most [`CTRL_MSG_MAX_LEN`];
/// a ring-1 element body always fits). Use [`try_encode_ctrl`] otherwise.
pub fn encode_ctrl(msg: &CtrlMsg, out: &mut [u8]) -> usize {
    match try_encode_ctrl(msg, out) {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    }
}

/// Fallible [`encode_ctrl`].
pub fn try_encode_ctrl(msg: &CtrlMsg, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    msg.encode_body(out)
}

/// Decodes a message body of event type `evt_type`. `payload` starts at
/// element offset 2 and may be longer than the message (the rest of the ring
/// element); it must hold at least the message size.
pub fn decode_ctrl(evt_type: u8, payload: &[u8]) -> Result<CtrlMsg, DecodeError> {
    CtrlMsg::decode_body(EventType::from_u8(evt_type)?, payload)
}

/// Fills a whole ring-1 element the way VPP's producers do: the 18-byte
/// event header zeroed, the type byte set, the body from offset 2. Bytes past
/// the body are left untouched. Returns the number of bytes written.
pub fn encode_ctrl_element(msg: &CtrlMsg, elt: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let need = (EVENT_DATA_OFFSET + msg.wire_len()).max(crate::event::SESSION_EVENT_LEN);
    if elt.len() < need {
        return Err(BufferTooSmall {
            need,
            got: elt.len(),
        });
    }
    elt[..crate::event::SESSION_EVENT_LEN].fill(0);
    elt[0] = msg.evt_type().as_u8();
    try_encode_ctrl(msg, &mut elt[EVENT_DATA_OFFSET..])?;
    Ok(need)
}

/// Decodes a whole ring-1 element (type byte at 0, body at 2).
pub fn decode_ctrl_element(elt: &[u8]) -> Result<CtrlMsg, DecodeError> {
    let ty = *elt.first().ok_or(DecodeError::Short {
        what: "ctrl event element",
        need: 1,
        got: 0,
    })?;
    decode_ctrl(ty, elt.get(EVENT_DATA_OFFSET..).unwrap_or_default())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_images;
#[cfg(test)]
mod tests_prop;
