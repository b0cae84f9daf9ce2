//! Session events: the `session_evt_type_t` values and the 18-byte
//! `session_event_t` element of the IO ring (see session_types.h).
//!
//! IO events (types 0..=4) are whole ring-0 elements carrying a session index
//! at +2. Control events (types >= 5) use 256-byte ring-1 elements whose
//! message body starts at +2; [`crate::msg`] encodes those bodies.

use crate::error::DecodeError;
use crate::wire::Reader;

/// Size of `session_event_t` (packed) and of an IO ring element.
pub const SESSION_EVENT_LEN: usize = 18;
/// Offset of the event payload (session index / message body) in an element.
pub const EVENT_DATA_OFFSET: usize = 2;

macro_rules! event_types {
    ($( $var:ident = $val:literal, $name:literal; )*) => {
        /// `session_evt_type_t` (one byte on the wire).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum EventType {
            $(
                #[doc = concat!("`", $name, "` = ", stringify!($val))]
                $var = $val,
            )*
        }

        impl EventType {
            /// Every type in wire order.
            pub const ALL: &'static [EventType] = &[$(EventType::$var,)*];

            /// Parses the wire byte; values VPP does not define are errors.
            pub fn from_u8(v: u8) -> Result<Self, DecodeError> {
                match v {
                    $( $val => Ok(Self::$var), )*
                    other => Err(DecodeError::UnknownEventType(other)),
                }
            }

            /// VPP's symbol for the type.
            pub fn name(self) -> &'static str {
                match self {
                    $( Self::$var => $name, )*
                }
            }
        }
    };
}

event_types! {
    IoRx = 0, "SESSION_IO_EVT_RX";
    IoTx = 1, "SESSION_IO_EVT_TX";
    IoTxFlush = 2, "SESSION_IO_EVT_TX_FLUSH";
    IoBuiltinRx = 3, "SESSION_IO_EVT_BUILTIN_RX";
    IoTxMain = 4, "SESSION_IO_EVT_TX_MAIN";
    Rpc = 5, "SESSION_CTRL_EVT_RPC";
    HalfClose = 6, "SESSION_CTRL_EVT_HALF_CLOSE";
    Close = 7, "SESSION_CTRL_EVT_CLOSE";
    Reset = 8, "SESSION_CTRL_EVT_RESET";
    Bound = 9, "SESSION_CTRL_EVT_BOUND";
    UnlistenReply = 10, "SESSION_CTRL_EVT_UNLISTEN_REPLY";
    Accepted = 11, "SESSION_CTRL_EVT_ACCEPTED";
    AcceptedReply = 12, "SESSION_CTRL_EVT_ACCEPTED_REPLY";
    Connected = 13, "SESSION_CTRL_EVT_CONNECTED";
    Disconnected = 14, "SESSION_CTRL_EVT_DISCONNECTED";
    DisconnectedReply = 15, "SESSION_CTRL_EVT_DISCONNECTED_REPLY";
    ResetReply = 16, "SESSION_CTRL_EVT_RESET_REPLY";
    ReqWorkerUpdate = 17, "SESSION_CTRL_EVT_REQ_WORKER_UPDATE";
    WorkerUpdate = 18, "SESSION_CTRL_EVT_WORKER_UPDATE";
    WorkerUpdateReply = 19, "SESSION_CTRL_EVT_WORKER_UPDATE_REPLY";
    Shutdown = 20, "SESSION_CTRL_EVT_SHUTDOWN";
    Disconnect = 21, "SESSION_CTRL_EVT_DISCONNECT";
    Connect = 22, "SESSION_CTRL_EVT_CONNECT";
    ConnectUri = 23, "SESSION_CTRL_EVT_CONNECT_URI";
    Listen = 24, "SESSION_CTRL_EVT_LISTEN";
    ListenUri = 25, "SESSION_CTRL_EVT_LISTEN_URI";
    Unlisten = 26, "SESSION_CTRL_EVT_UNLISTEN";
    AppDetach = 27, "SESSION_CTRL_EVT_APP_DETACH";
    AppAddSegment = 28, "SESSION_CTRL_EVT_APP_ADD_SEGMENT";
    AppDelSegment = 29, "SESSION_CTRL_EVT_APP_DEL_SEGMENT";
    Migrated = 30, "SESSION_CTRL_EVT_MIGRATED";
    Cleanup = 31, "SESSION_CTRL_EVT_CLEANUP";
    AppWrkRpc = 32, "SESSION_CTRL_EVT_APP_WRK_RPC";
    TransportAttr = 33, "SESSION_CTRL_EVT_TRANSPORT_ATTR";
    TransportAttrReply = 34, "SESSION_CTRL_EVT_TRANSPORT_ATTR_REPLY";
    TransportClosed = 35, "SESSION_CTRL_EVT_TRANSPORT_CLOSED";
    HalfCleanup = 36, "SESSION_CTRL_EVT_HALF_CLEANUP";
    ConnectStream = 37, "SESSION_CTRL_EVT_CONNECT_STREAM";
    Terminate = 38, "SESSION_CTRL_EVT_TERMINATE";
}

/// Index of the IO ring (18-byte elements) in a session mq.
pub const IO_RING: usize = 0;
/// Index of the control ring (256-byte elements) in a session mq.
pub const CTRL_RING: usize = 1;

impl EventType {
    /// Wire byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// IO events travel as bare 18-byte elements on ring 0.
    pub fn is_io(self) -> bool {
        (self as u8) < EventType::Rpc as u8
    }

    /// The mq ring an event of this type is allocated from.
    pub fn ring(self) -> usize {
        if self.is_io() {
            IO_RING
        } else {
            CTRL_RING
        }
    }
}

/// One `session_event_t` (18 B, packed): type, `postponed` and 16 bytes of
/// union payload, kept raw so any member can be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEvent {
    /// Event type.
    pub event_type: EventType,
    /// VCL-private byte; VPP-produced IO events leave garbage here.
    pub postponed: u8,
    /// Union payload at +2.
    pub data: [u8; 16],
}

impl SessionEvent {
    /// An IO event naming `session_index` (an app session index towards the
    /// app, a VPP session index towards VPP).
    pub fn io(event_type: EventType, session_index: u32) -> Self {
        let mut data = [0u8; 16];
        data[..4].copy_from_slice(&session_index.to_le_bytes());
        Self {
            event_type,
            postponed: 0,
            data,
        }
    }

    /// An event carrying a full 64-bit session handle at +2.
    pub fn with_handle(event_type: EventType, session_handle: u64) -> Self {
        let mut data = [0u8; 16];
        data[..8].copy_from_slice(&session_handle.to_le_bytes());
        Self {
            event_type,
            postponed: 0,
            data,
        }
    }

    /// `session_index` member (u32 at +2).
    pub fn session_index(&self) -> u32 {
        let [a, b, c, d, ..] = self.data;
        u32::from_le_bytes([a, b, c, d])
    }

    /// `session_handle` member (u64 at +2).
    pub fn session_handle(&self) -> u64 {
        let [a, b, c, d, e, f, g, h, ..] = self.data;
        u64::from_le_bytes([a, b, c, d, e, f, g, h])
    }

    /// The 18-byte element.
    pub fn encode(&self) -> [u8; SESSION_EVENT_LEN] {
        let mut out = [0u8; SESSION_EVENT_LEN];
        out[0] = self.event_type.as_u8();
        out[1] = self.postponed;
        out[EVENT_DATA_OFFSET..].copy_from_slice(&self.data);
        out
    }

    /// Parses the first 18 bytes of `buf` (a ring element may be longer).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let r = Reader::new(buf, SESSION_EVENT_LEN, "session event")?;
        Ok(Self {
            event_type: EventType::from_u8(r.u8(0)?)?,
            postponed: r.u8(1)?,
            data: r.array(EVENT_DATA_OFFSET)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_match_session_evt_type_t() {
        assert_eq!(EventType::ALL.len(), 39);
        for (i, t) in EventType::ALL.iter().enumerate() {
            assert_eq!(t.as_u8() as usize, i);
            assert_eq!(EventType::from_u8(i as u8).unwrap(), *t);
        }
        assert_eq!(EventType::Accepted as u8, 11);
        assert_eq!(EventType::Cleanup as u8, 31);
        assert_eq!(EventType::Terminate as u8, 38);
        assert_eq!(
            EventType::from_u8(39),
            Err(DecodeError::UnknownEventType(39))
        );
        assert!(EventType::IoTxMain.is_io() && !EventType::Rpc.is_io());
        assert_eq!(EventType::Bound.ring(), CTRL_RING);
        assert_eq!(EventType::Bound.name(), "SESSION_CTRL_EVT_BOUND");
    }

    #[test]
    fn io_event_image() {
        let e = SessionEvent::io(EventType::IoTx, 0x0102_0304);
        let b = e.encode();
        assert_eq!(b.len(), 18);
        assert_eq!(&b[..6], &[1, 0, 4, 3, 2, 1]);
        assert!(b[6..].iter().all(|&c| c == 0));
        assert_eq!(
            SessionEvent::decode(&b).unwrap().session_index(),
            0x0102_0304
        );
        let h = SessionEvent::with_handle(EventType::IoRx, 0x0000_0002_0000_0009);
        assert_eq!(h.session_handle(), 0x2_0000_0009);
        assert_eq!(h.session_index(), 9);
    }

    #[test]
    fn short_and_unknown() {
        assert_eq!(
            SessionEvent::decode(&[0u8; 17]).unwrap_err().to_string(),
            "session event: need 18 bytes, got 17"
        );
        let mut b = [0u8; 18];
        b[0] = 200;
        assert_eq!(
            SessionEvent::decode(&b),
            Err(DecodeError::UnknownEventType(200))
        );
    }

    proptest! {
        #[test]
        fn roundtrip(t in 0u8..39, postponed: u8, data: [u8; 16]) {
            let e = SessionEvent { event_type: EventType::from_u8(t).unwrap(), postponed, data };
            prop_assert_eq!(SessionEvent::decode(&e.encode()).unwrap(), e);
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = SessionEvent::decode(&b);
        }
    }
}
