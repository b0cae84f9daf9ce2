//! The peer's message log: every sapi datagram and mq message it receives or sends, as
//! (direction, kind, connection/worker) entries tests can inspect, mirrored to tracing at debug
//! level.

use std::collections::VecDeque;

/// Which way a message went, seen from the peer (VPP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// app → peer
    Rx,
    /// peer → app
    Tx,
}

/// What kind of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgKind {
    /// A sapi datagram of this `type` byte (for received datagrams, the byte as read).
    Sapi(u8),
    /// The cert/key payload datagram following ADD_DEL_CERT_KEY.
    CertKeyPayload,
    /// A datagram of the wrong size (received) — the length is recorded.
    Malformed(usize),
    /// A session event of this type on an mq (ring 0 or 1).
    Mq(u8),
    /// The connection was closed (by the app, or by the peer when sent).
    Close,
}

/// One log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    pub dir: Dir,
    pub kind: MsgKind,
    /// Socket index (sapi) or VPP thread (mq rx) or global app worker index (mq tx).
    pub ctx: u32,
}

/// Bounded log; the oldest entries fall off.
#[derive(Debug)]
pub struct MsgLog {
    cap: usize,
    entries: VecDeque<LogEntry>,
}

impl MsgLog {
    pub fn new(cap: usize) -> MsgLog {
        MsgLog {
            cap: cap.max(1),
            entries: VecDeque::new(),
        }
    }

    pub fn push(&mut self, dir: Dir, kind: MsgKind, ctx: u32) {
        tracing::debug!(?dir, ?kind, ctx, "msg");
        if self.entries.len() == self.cap {
            self.entries.pop_front();
        }
        self.entries.push_back(LogEntry { dir, kind, ctx });
    }

    pub fn snapshot(&self) -> Vec<LogEntry> {
        self.entries.iter().copied().collect()
    }
}
