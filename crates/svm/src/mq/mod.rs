//! VPP v26.06 message queues (`svm_msg_q`) in shared memory, usable from either side.
//!
//! This module owns the byte layout of a message queue (an 8-byte header, a queue of 8-byte
//! `{ring, element}` references guarded by a process-shared robust pthread mutex + condvar, and
//! one or more rings of fixed-size elements), its initialisation (VPP's side: the test peer lays
//! queues out), attachment with validation of everything read, the multi-producer enqueue, the
//! lock-free single-consumer dequeue, waiting (condvar or eventfd), and the discovery of VPP's
//! per-thread queues in the "vpp mqs" segment.
//!
//! Every queue lives at an fsh-relative offset of a [`Segment`]; all of its memory is reached
//! through one [`Segment::at`] translation of the whole validated extent, and every index read back
//! from shared memory (heads, tails, slot contents) is checked against the geometry cached at
//! attach time before it is used. A hostile peer can make operations fail with
//! [`SvmError::Corrupt`] (or hold the shared mutex forever), but cannot make us read or write
//! outside the queue or panic.
//!
//! Layout of a queue at offset `o` (x86_64 glibc):
//!
//! | offset | what |
//! |---|---|
//! | o + 0 | `n_rings` u32, pad u32 |
//! | o + 8 | queue header (112 B): mutex, condvar, head, tail, cursize, maxsize, elsize=8 |
//! | o + 120 | `maxsize` × 8-byte message slots |
//! | then | ring k: 20-byte header then `nitems × elsize` bytes, ring k+1 right after |

use std::ops::Deref;

use crate::segment::{Result, Segment, SvmError};

mod consumer;
mod discover;
mod layout;
#[cfg(test)]
mod layout_doc;
mod queue;
mod sync;
#[cfg(test)]
mod tests;

pub use consumer::{Consumer, Event};
pub use discover::{discover_vpp_mqs, vpp_mq_offsets};
pub use layout::{
    MsgQRingShared, MsgQShared, MsgQSharedQueue, MsgSlot, QUEUE_HDR_SIZE, QUEUE_OFFSET,
    RING_HDR_SIZE, SHARED_HDR_SIZE, SLOT_SIZE,
};
pub use queue::{MsgQueue, SendMode};

/// Size of a `session_event_t` (packed): the element size of IO-event rings.
pub const SESSION_EVENT_SIZE: u32 = 18;
/// Element size of control-event rings.
pub const CTRL_EVENT_SIZE: u32 = 256;
/// Offset of the payload (session index, message struct) inside an element.
pub const EVENT_PAYLOAD_OFFSET: usize = 2;
/// Ring of IO events (18-byte elements) in session-layer queues.
pub const IO_RING: u32 = 0;
/// Ring of control events (256-byte elements) in session-layer queues.
pub const CTRL_RING: u32 = 1;

/// Most rings a queue may have (VPP's session queues have 2).
pub const MAX_RINGS: u32 = 16;
/// Largest ring element we accept (VPP uses 18 and 256); bounds the consumer's stack copy.
pub const MAX_ELT_SIZE: u32 = 4096;
/// Smallest ring element: room for the event type and the byte VPP calls `postponed`.
pub const MIN_ELT_SIZE: u32 = 2;
/// Most message slots or ring elements we accept (VPP's defaults are 2048).
pub const MAX_NITEMS: u32 = 1 << 22;

/// Default length of VPP's per-thread queues (`session { wrk-mq-length }` can only raise it).
pub const VPP_WRK_MQ_LENGTH: u32 = 2048;
/// VCL's default `event-queue-size` for the app queue.
pub const DEFAULT_APP_EVT_Q_SIZE: u32 = 2048;

/// Shape of one ring: how many elements of how many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingCfg {
    pub nitems: u32,
    pub elsize: u32,
}

/// Shape of a whole queue: number of message slots and the rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqConfig {
    pub q_nitems: u32,
    pub rings: Vec<RingCfg>,
}

impl MqConfig {
    /// VPP's per-thread queue for a configured `wrk-mq-length` (0 = default): `L = max(2048, N)`
    /// slots, ring 0 of `L` IO events, ring 1 of `L/2` control events.
    pub fn vpp_thread(wrk_mq_length: u32) -> MqConfig {
        let l = wrk_mq_length.max(VPP_WRK_MQ_LENGTH);
        MqConfig {
            q_nitems: l,
            rings: vec![
                RingCfg {
                    nitems: l,
                    elsize: SESSION_EVENT_SIZE,
                },
                RingCfg {
                    nitems: l >> 1,
                    elsize: CTRL_EVENT_SIZE,
                },
            ],
        }
    }

    /// The app queue VPP creates for an `evt_q_size` of `e`: `e` slots, ring 0 of `e` IO events,
    /// ring 1 of `max(16, e/16)` control events.
    pub fn app(e: u32) -> MqConfig {
        MqConfig {
            q_nitems: e,
            rings: vec![
                RingCfg {
                    nitems: e,
                    elsize: SESSION_EVENT_SIZE,
                },
                RingCfg {
                    nitems: (e >> 4).max(16),
                    elsize: CTRL_EVENT_SIZE,
                },
            ],
        }
    }

    /// A private rx queue (app-owned "rx mqs" segment, one per VPP thread, always with an
    /// eventfd): `L = max(e, 128)` slots, ring 0 of `L` IO events, ring 1 of `L/2` control events.
    pub fn private_rx(e: u32) -> MqConfig {
        let l = e.max(128);
        MqConfig {
            q_nitems: l,
            rings: vec![
                RingCfg {
                    nitems: l,
                    elsize: SESSION_EVENT_SIZE,
                },
                RingCfg {
                    nitems: l >> 1,
                    elsize: CTRL_EVENT_SIZE,
                },
            ],
        }
    }

    /// Bytes this queue occupies (see [`size_for`]).
    pub fn size(&self) -> usize {
        size_for(self.q_nitems, &self.rings)
    }

    /// Refuse shapes we would refuse to attach to.
    pub(crate) fn check(&self) -> Result<()> {
        check_nitems("q_nitems", self.q_nitems)?;
        if self.rings.is_empty() || self.rings.len() > MAX_RINGS as usize {
            return Err(SvmError::Corrupt(format!(
                "n_rings expected 1..={MAX_RINGS}, got {}",
                self.rings.len()
            )));
        }
        for (i, r) in self.rings.iter().enumerate() {
            check_ring(i, r)?;
        }
        Ok(())
    }
}

pub(crate) fn check_nitems(what: &str, n: u32) -> Result<()> {
    if n == 0 || n > MAX_NITEMS {
        return Err(SvmError::Corrupt(format!(
            "{what} expected 1..={MAX_NITEMS}, got {n}"
        )));
    }
    Ok(())
}

pub(crate) fn check_ring(i: usize, r: &RingCfg) -> Result<()> {
    check_nitems(&format!("ring {i} nitems"), r.nitems)?;
    if r.elsize < MIN_ELT_SIZE || r.elsize > MAX_ELT_SIZE {
        return Err(SvmError::Corrupt(format!(
            "ring {i} elsize expected {MIN_ELT_SIZE}..={MAX_ELT_SIZE}, got {}",
            r.elsize
        )));
    }
    Ok(())
}

/// Bytes a queue of `q_nitems` slots and these rings occupies:
/// `8 + 112 + 8·q_nitems + Σ(20 + nitems·elsize)`. Saturates instead of overflowing, so an
/// absurd shape yields a size no segment can hold.
pub fn size_for(q_nitems: u32, rings: &[RingCfg]) -> usize {
    let mut total = (SHARED_HDR_SIZE + QUEUE_HDR_SIZE) as u64 + SLOT_SIZE as u64 * q_nitems as u64;
    for r in rings {
        let ring = RING_HDR_SIZE as u64 + r.nitems as u64 * r.elsize as u64;
        total = total.saturating_add(ring);
    }
    usize::try_from(total).unwrap_or(usize::MAX)
}

/// A queue handle over a borrowed segment (tests, short-lived use).
pub type MsgQueueRef<'a> = MsgQueue<&'a Segment>;

/// Anything that keeps a [`Segment`] alive and derefs to it: `&Segment`, `Arc<Segment>`, ….
pub trait SegmentRef: Deref<Target = Segment> {}
impl<T: Deref<Target = Segment>> SegmentRef for T {}
