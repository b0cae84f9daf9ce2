//! What one end of a fifo last saw of the other end's position, in process memory.
//!
//! The producer reads the consumer's head (and the consumer the producer's tail) from a cache
//! line the other side keeps writing, so each such read is a cross-core miss. Positions only
//! move forward, so a value seen earlier is a safe under-estimate: the producer's free space
//! computed from an old head is never more than the real free space, and the consumer's byte
//! count from an old tail never more than what is really queued (and those bytes were published
//! by the release store it acquired then). Each end re-reads the shared value only when its
//! cached view cannot satisfy the current operation.
//!
//! Positions are u32 and wrap, so "earlier" is only meaningful while this end's own position
//! stays within a fifo size of the cached value. An entry therefore also records this end's own
//! position after the last operation that used or refreshed it, and is used only while the own
//! position is still exactly that: any move made without this cache (another view of the fifo,
//! a handle with its own cache) discards it. Without that, a consumer whose head had moved 3 GiB
//! past a cached tail through other views took the wrapped difference (~1 GiB) for queued bytes
//! and read past the chunk list (issue 11: the cut-through stream example was reset).

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::Fifo;
use crate::fifo_segment::{corrupt_with, FIFO_SEGMENT_MAX_FIFO_SIZE};
use crate::segment::Result;

/// Marks a stored position as valid (a fresh cache has seen nothing yet).
const SEEN: u64 = 1 << 32;

/// One end's view: the other end's position (with [`SEEN`]) and this end's own position when
/// the view was last used or refreshed.
#[derive(Debug, Default)]
struct View {
    other: AtomicU64,
    own: AtomicU32,
}

impl View {
    const fn new() -> View {
        View {
            other: AtomicU64::new(0),
            own: AtomicU32::new(0),
        }
    }

    /// The other end's cached position, if this end is still where it was when it was kept.
    #[inline]
    fn get(&self, own: u32) -> Option<u32> {
        let v = self.other.load(Relaxed);
        (v & SEEN != 0 && self.own.load(Relaxed) == own).then_some(v as u32)
    }

    #[inline]
    fn set(&self, other: u32, own: u32) {
        self.other.store(SEEN | u64::from(other), Relaxed);
        self.own.store(own, Relaxed);
    }

    /// This end moved to `own` through this view (after using or refreshing it).
    #[inline]
    fn moved(&self, own: u32) {
        self.own.store(own, Relaxed);
    }
}

/// A fifo end's cached view of the other end's position (see the module docs). Relaxed
/// atomics only so a view can be shared with `&`; one end of a fifo is used by one thread at
/// a time, and a stale value is harmless by construction.
#[derive(Debug, Default)]
pub struct PosCache {
    /// Producer's view of head (own position: tail).
    head: View,
    /// Consumer's view of tail (own position: head).
    tail: View,
    /// The fifo's size as first seen by the fast paths (0: not yet). VPP sets a fifo's size
    /// when it allocates the fifo and never changes it for a VCL app's fifos (only an app may
    /// resize its own, see docs/wire.md#fifos), and the size shares its cache line with
    /// has_event, which the other side keeps writing: re-reading it on every operation was a
    /// cache miss per write. A wrong size cannot take an operation outside its chunks, whose
    /// bounds are checked on every operation.
    size: AtomicU32,
}

impl Clone for PosCache {
    /// A clone starts with nothing cached.
    fn clone(&self) -> Self {
        PosCache::new()
    }
}

impl PosCache {
    pub const fn new() -> PosCache {
        PosCache {
            head: View::new(),
            tail: View::new(),
            size: AtomicU32::new(0),
        }
    }
}

impl Fifo<'_> {
    /// The size for the fast paths: the cached one, else the shared one when plausible
    /// (then cached). None: leave the operation to the full path.
    #[inline(always)]
    pub(super) fn quick_size(&self) -> Option<u32> {
        if let Some(c) = self.cache {
            let size = c.size.load(Relaxed);
            if size != 0 {
                return Some(size);
            }
        }
        let size = self.shr.size.load(Relaxed);
        if size == 0 || u64::from(size) > FIFO_SEGMENT_MAX_FIFO_SIZE {
            return None;
        }
        if let Some(c) = self.cache {
            c.size.store(size, Relaxed);
        }
        Some(size)
    }

    /// Producer view: own tail relaxed, peer's head acquire. Returns (head, tail, size).
    pub(super) fn load_prod(&self) -> Result<(u32, u32, u32)> {
        let tail = self.shr.tail.load(Relaxed);
        let head = self.shr.head.load(Acquire);
        Ok((head, tail, self.size_checked()?))
    }

    /// [`Self::load_prod`] for a write of `want` bytes: the cached head when it leaves room.
    pub(super) fn load_prod_for(&self, want: u32) -> Result<(u32, u32, u32)> {
        let tail = self.shr.tail.load(Relaxed);
        let size = self.size_checked()?;
        Ok((self.prod_head(tail, size, want), tail, size))
    }

    /// The producer's head for a write of `want` bytes at `tail`: the cached one when it
    /// leaves room (never more room than the real head), else the shared one (acquire).
    #[inline(always)]
    pub(super) fn prod_head(&self, tail: u32, size: u32, want: u32) -> u32 {
        let Some(cache) = self.cache else {
            return self.shr.head.load(Acquire);
        };
        if let Some(head) = cache.head.get(tail) {
            let used = tail.wrapping_sub(head);
            if used <= size && size - used >= want {
                return head;
            }
        }
        let head = self.shr.head.load(Acquire);
        cache.head.set(head, tail);
        head
    }

    /// [`Self::load_cons`] for a read of `want` bytes: the cached tail when it covers them.
    pub(super) fn load_cons_for(&self, want: u32) -> Result<(u32, u32, u32)> {
        if self.cache.is_none() {
            return self.load_cons();
        }
        let head = self.shr.head.load(Relaxed);
        let tail = self.cons_tail(head, want);
        let used = tail.wrapping_sub(head);
        if u64::from(used) > FIFO_SEGMENT_MAX_FIFO_SIZE {
            return Err(corrupt_with(|| {
                format!("fifo at {}: tail {tail} behind head {head}", self.off)
            }));
        }
        Ok((head, tail, used))
    }

    /// The consumer's tail for a read of `want` bytes at `head`: the cached one when it covers
    /// them (never more bytes than really queued), else the shared one (acquire). The caller
    /// still checks the distance from head.
    #[inline(always)]
    pub(super) fn cons_tail(&self, head: u32, want: u32) -> u32 {
        let Some(cache) = self.cache else {
            return self.shr.tail.load(Acquire);
        };
        if let Some(tail) = cache.tail.get(head) {
            let used = tail.wrapping_sub(head);
            if used >= want && u64::from(used) <= FIFO_SEGMENT_MAX_FIFO_SIZE {
                return tail;
            }
        }
        let tail = self.shr.tail.load(Acquire);
        cache.tail.set(tail, head);
        tail
    }

    /// Consumer: bytes queued, at least `want` of them answered from the cached tail when it
    /// covers them (no read of the line the producer keeps writing), else from the shared tail.
    /// An under-estimate at most; an implausible distance is for the operation that follows
    /// to report.
    #[inline]
    pub fn max_dequeue_cons_for(&self, want: u32) -> u32 {
        let head = self.shr.head.load(Relaxed);
        self.cons_tail(head, want).wrapping_sub(head)
    }

    /// Consumer: nothing queued ([`Fifo::max_dequeue_cons`] is 0). A cached tail ahead of head
    /// answers "no" without reading the shared tail; "yes" always comes from the shared one
    /// (a cached view covering one byte is a byte really queued).
    #[inline]
    pub fn is_empty_cons(&self) -> bool {
        self.max_dequeue_cons_for(1) == 0
    }

    /// The producer moved its tail to `tail` after [`Self::load_prod_for`] (or after reading
    /// the real `head` itself): the cached head stays usable (the write stayed within the room
    /// it left).
    #[inline]
    pub(super) fn prod_moved(&self, tail: u32, head: Option<u32>) {
        if let Some(c) = self.cache {
            match head {
                Some(h) => c.head.set(h, tail),
                None => c.head.moved(tail),
            }
        }
    }

    /// The consumer moved its head to `head` after [`Self::load_cons_for`] (or after reading
    /// the real `tail` itself): the cached tail stays usable (head did not pass it).
    #[inline]
    pub(super) fn cons_moved(&self, head: u32, tail: Option<u32>) {
        if let Some(c) = self.cache {
            match tail {
                Some(t) => c.tail.set(t, head),
                None => c.tail.moved(head),
            }
        }
    }

    /// Consumer view: own head relaxed, peer's tail acquire. Returns (head, tail, used).
    pub(super) fn load_cons(&self) -> Result<(u32, u32, u32)> {
        let head = self.shr.head.load(Relaxed);
        let tail = self.shr.tail.load(Acquire);
        let used = tail.wrapping_sub(head);
        if u64::from(used) > FIFO_SEGMENT_MAX_FIFO_SIZE {
            return Err(corrupt_with(|| {
                format!("fifo at {}: tail {tail} behind head {head}", self.off)
            }));
        }
        Ok((head, tail, used))
    }
}
