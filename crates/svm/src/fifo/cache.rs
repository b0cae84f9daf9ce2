//! What one end of a fifo last saw of the other end's position, in process memory.
//!
//! The producer reads the consumer's head (and the consumer the producer's tail) from a cache
//! line the other side keeps writing, so each such read is a cross-core miss. Positions only
//! move forward, so a value seen earlier is a safe under-estimate: the producer's free space
//! computed from an old head is never more than the real free space, and the consumer's byte
//! count from an old tail never more than what is really queued (and those bytes were published
//! by the release store it acquired then). Each end re-reads the shared value only when its
//! cached view cannot satisfy the current operation.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed};

use super::Fifo;
use crate::fifo_segment::{corrupt, FIFO_SEGMENT_MAX_FIFO_SIZE};
use crate::segment::Result;

/// Marks a stored position as valid (a fresh cache has seen nothing yet).
const SEEN: u64 = 1 << 32;

/// A fifo end's cached view of the other end's position (see the module docs). Relaxed
/// atomics only so a view can be shared with `&`; one end of a fifo is used by one thread at
/// a time, and a stale value is harmless by construction.
#[derive(Debug, Default)]
pub struct PosCache {
    /// Producer's view of head.
    head: AtomicU64,
    /// Consumer's view of tail.
    tail: AtomicU64,
}

impl Clone for PosCache {
    /// A clone starts with nothing cached.
    fn clone(&self) -> Self {
        PosCache::new()
    }
}

fn get(a: &AtomicU64) -> Option<u32> {
    let v = a.load(Relaxed);
    (v & SEEN != 0).then_some(v as u32)
}

impl PosCache {
    pub const fn new() -> PosCache {
        PosCache {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
        }
    }

    pub(crate) fn head(&self) -> Option<u32> {
        get(&self.head)
    }

    pub(crate) fn set_head(&self, head: u32) {
        self.head.store(SEEN | u64::from(head), Relaxed);
    }

    pub(crate) fn tail(&self) -> Option<u32> {
        get(&self.tail)
    }

    pub(crate) fn set_tail(&self, tail: u32) {
        self.tail.store(SEEN | u64::from(tail), Relaxed);
    }
}

impl Fifo<'_> {
    /// Producer view: own tail relaxed, peer's head acquire. Returns (head, tail, size).
    pub(super) fn load_prod(&self) -> Result<(u32, u32, u32)> {
        let tail = self.shr.tail.load(Relaxed);
        let head = self.shr.head.load(Acquire);
        Ok((head, tail, self.size_checked()?))
    }

    /// [`Self::load_prod`] for a write of `want` bytes: the cached head when it leaves room.
    pub(super) fn load_prod_for(&self, want: u32) -> Result<(u32, u32, u32)> {
        let Some(cache) = self.cache else {
            return self.load_prod();
        };
        let tail = self.shr.tail.load(Relaxed);
        let size = self.size_checked()?;
        if let Some(head) = cache.head() {
            let used = tail.wrapping_sub(head);
            if used <= size && size - used >= want {
                return Ok((head, tail, size));
            }
        }
        let head = self.shr.head.load(Acquire);
        cache.set_head(head);
        Ok((head, tail, size))
    }

    /// [`Self::load_cons`] for a read of `want` bytes: the cached tail when it covers them.
    pub(super) fn load_cons_for(&self, want: u32) -> Result<(u32, u32, u32)> {
        let Some(cache) = self.cache else {
            return self.load_cons();
        };
        if let Some(tail) = cache.tail() {
            let head = self.shr.head.load(Relaxed);
            let used = tail.wrapping_sub(head);
            if used >= want && u64::from(used) <= FIFO_SEGMENT_MAX_FIFO_SIZE {
                return Ok((head, tail, used));
            }
        }
        let r = self.load_cons()?;
        cache.set_tail(r.1);
        Ok(r)
    }

    /// Consumer view: own head relaxed, peer's tail acquire. Returns (head, tail, used).
    pub(super) fn load_cons(&self) -> Result<(u32, u32, u32)> {
        let head = self.shr.head.load(Relaxed);
        let tail = self.shr.tail.load(Acquire);
        let used = tail.wrapping_sub(head);
        if u64::from(used) > FIFO_SEGMENT_MAX_FIFO_SIZE {
            return Err(corrupt(format!(
                "fifo at {}: tail {tail} behind head {head}",
                self.off
            )));
        }
        Ok((head, tail, used))
    }
}
