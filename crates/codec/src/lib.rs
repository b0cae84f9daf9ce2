//! Wire codec for the VPP v26.06 session layer as seen by an application
//! (VCL): plain Rust values to and from the exact byte images VPP uses.
//!
//! This crate owns layouts and values only — no sockets, shared memory or
//! queues. Modules:
//! * [`sapi`]: `app_sapi_msg_t` datagrams (attach, workers, cert/keys),
//!   attach options and flag constants.
//! * [`event`]: `session_evt_type_t` and the 18-byte `session_event_t`.
//! * [`msg`]: every app-visible session control message and [`msg::CtrlMsg`].
//! * [`ext_cfg`]: the ext-config blob referenced by LISTEN/CONNECT.
//! * [`dgram`]: the 47-byte datagram header inside fifos.
//! * [`session_error`]: `SESSION_E_*` codes with names and explanations.
//!
//! Decoders check lengths before reading, reject unknown enum values with a
//! [`DecodeError`] naming what was expected, and never panic. Integers are
//! little-endian (x86_64/aarch64 host order); ports are host-order `u16`
//! fields converted to network order on the wire; IP addresses are kept as
//! raw network-order bytes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dgram;
pub mod error;
pub mod event;
pub mod ext_cfg;
pub mod msg;
pub mod sapi;
pub mod session_error;
pub mod wire;

pub use error::{BufferTooSmall, DecodeError};
pub use event::{EventType, SessionEvent};
pub use msg::{decode_ctrl, encode_ctrl, CtrlMsg};
pub use sapi::SapiMsg;
pub use session_error::session_error_str;
pub use wire::WireMsg;
