//! Errors produced while decoding (and, rarely, encoding) wire images.
//!
//! Every decoder in this crate reports what it was parsing and what it found,
//! so a log line is enough to tell a truncated message from a version mismatch.

use std::fmt;

/// Why a received byte image could not be turned into a typed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer is shorter than the message layout.
    Short {
        /// Message or structure being decoded.
        what: &'static str,
        /// Bytes the layout needs.
        need: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// The buffer must have an exact size (sapi datagrams) and does not.
    WrongSize {
        /// Message or structure being decoded.
        what: &'static str,
        /// Exact size required.
        need: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// A field that selects among known values holds an unknown one.
    BadValue {
        /// Message or structure being decoded.
        what: &'static str,
        /// Field name.
        field: &'static str,
        /// Value found on the wire.
        value: u64,
    },
    /// The sapi `type` byte is not a message this crate understands.
    UnknownSapiType(u8),
    /// The session event type byte is outside `session_evt_type_t`.
    UnknownEventType(u8),
    /// The event type is known but has no app-visible control message
    /// (IO events, or events VPP only uses internally).
    NotCtrlMsg(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short { what, need, got } => {
                write!(f, "{what}: need {need} bytes, got {got}")
            }
            Self::WrongSize { what, need, got } => {
                write!(f, "{what}: need exactly {need} bytes, got {got}")
            }
            Self::BadValue { what, field, value } => {
                write!(f, "{what}: unknown {field} value {value}")
            }
            Self::UnknownSapiType(t) => {
                write!(f, "sapi: unknown message type {t} (expected 1..=7)")
            }
            Self::UnknownEventType(t) => {
                write!(f, "session event: unknown type {t} (expected 0..=38)")
            }
            Self::NotCtrlMsg(t) => {
                write!(
                    f,
                    "session event type {t} carries no app-visible control message"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// The output buffer handed to an encoder is too small for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes the message needs.
    pub need: usize,
    /// Bytes available.
    pub got: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "encode: need {} bytes of output, got {}",
            self.need, self.got
        )
    }
}

impl std::error::Error for BufferTooSmall {}
