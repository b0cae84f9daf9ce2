//! A fifo validated once and owning (a share of) its segment, for holders that outlive any
//! borrow — a session keeps one per fifo. Building a [`Fifo`] view from it costs nothing on the
//! data path: the header's place was bounds-checked once, and every fifo operation validates
//! the positions and chunks it reads.
// Shared memory / fds: keeps validated pointers into a mapped segment (Send/Sync, deref).
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::Arc;

use super::{Fifo, PosCache, SvmFifoShared};
use crate::fifo_segment::{FifoSegment, FifoSegmentHeader, FifoSegmentInfo};
use crate::segment::{Result, Segment};

/// A validated fifo in a segment kept mapped by the handle.
#[derive(Clone)]
pub struct FifoHandle {
    seg: Arc<Segment>,
    fsh: NonNull<FifoSegmentHeader>,
    shr: NonNull<SvmFifoShared>,
    info: FifoSegmentInfo,
    off: u64,
    /// This end's view of the other end, shared by the handle's clones (every move of this
    /// end goes through one of them, which keeps the cache usable: see `cache.rs`).
    cache: Arc<PosCache>,
    /// Views consume as [`Fifo::keeping`] does.
    keep: bool,
    /// Views grow the fifo as [`Fifo::growing_whole`] does.
    whole: bool,
}

// The pointers target shared memory made of atomics only, kept mapped by the Arc, so the
// handle is as thread-safe as the `&Segment`-based views, which are Send and Sync.
// SAFETY: see above.
unsafe impl Send for FifoHandle {}
// SAFETY: as above: shared access goes through atomic cells only.
unsafe impl Sync for FifoHandle {}

impl FifoHandle {
    /// Validate the segment header and the place of the fifo at `off` (in bounds, aligned) and
    /// keep them. The fifo's own header is not read here: an app holding many idle sessions
    /// would otherwise fault in a page of each fifo's neighbourhood at connect (read faults on
    /// a shared mapping also map the already-present pages around them), which upstream's VCL
    /// does not. Its size, positions and chunks are validated by each operation that uses them.
    pub fn new(seg: Arc<Segment>, off: u64) -> Result<FifoHandle> {
        let fs = FifoSegment::attach(&seg)?;
        let f = Fifo::view(fs, off)?;
        let fsh = NonNull::from(fs.header());
        let shr = NonNull::from(f.shared());
        let info = fs.info();
        Ok(FifoHandle {
            seg,
            fsh,
            shr,
            info,
            off,
            cache: Arc::new(PosCache::new()),
            keep: false,
            whole: false,
        })
    }

    /// The fifo, to operate on.
    #[inline]
    pub fn fifo(&self) -> Fifo<'_> {
        // SAFETY: as for `shr` in `shared`: derived through `Segment::at` from the mapping
        // `self.seg` keeps alive, and made of atomics.
        let fsh = unsafe { self.fsh.as_ref() };
        Fifo::from_parts(
            FifoSegment::from_checked(&self.seg, fsh, self.info),
            self.shared(),
            self.off,
        )
        .with_cache(&self.cache)
        .keeping(self.keep)
        .growing_whole(self.whole)
    }

    /// The same handle, whose views consume as [`Fifo::keeping`] does: for the app's reading
    /// end of a stream.
    pub fn keeping_consumed(self) -> FifoHandle {
        FifoHandle { keep: true, ..self }
    }

    /// The same handle, whose views grow the fifo as [`Fifo::growing_whole`] does: for the
    /// app's writing end.
    pub fn growing_whole(self) -> FifoHandle {
        FifoHandle {
            whole: true,
            ..self
        }
    }

    /// The fifo's shared header.
    #[inline]
    fn shared(&self) -> &SvmFifoShared {
        // SAFETY: the pointer was derived through `Segment::at` (bounds and alignment checked)
        // from the mapping `self.seg` keeps alive for at least `&self`'s lifetime, and its
        // target consists of atomics, valid for any bytes the peer writes.
        unsafe { self.shr.as_ref() }
    }

    /// [`Fifo::set_event`] without building a view.
    #[inline]
    pub fn set_event(&self) -> bool {
        self.shared().signals.set_event()
    }

    /// Whether the producer asked for any dequeue notification ([`Fifo::want_deq_ntf`] is not
    /// 0), without building a view: a reader looks on every read.
    #[inline]
    pub fn wants_deq_ntf(&self) -> bool {
        self.shared()
            .signals
            .want_deq_ntf
            .load(std::sync::atomic::Ordering::Acquire)
            != 0
    }

    /// The segment the fifo lives in.
    pub fn segment(&self) -> &Arc<Segment> {
        &self.seg
    }

    /// fsh offset of the fifo.
    pub fn offset(&self) -> u64 {
        self.off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_sees_what_a_fresh_attach_sees() {
        let seg = Arc::new(Segment::create("h", 4 << 20, 8192).unwrap());
        let fs = FifoSegment::init(&seg, 1).unwrap();
        let f = fs.alloc_fifo(0, 64 << 10).unwrap();
        let off = f.offset();
        let h = FifoHandle::new(seg.clone(), off).unwrap();
        assert_eq!(h.fifo().enqueue(b"hello").unwrap(), 5);
        let again = Fifo::attach(FifoSegment::attach(&seg).unwrap(), off).unwrap();
        let mut b = [0u8; 5];
        assert_eq!(again.dequeue(&mut b).unwrap(), 5);
        assert_eq!(&b, b"hello");
        assert_eq!(h.fifo().max_dequeue(), 0);
        assert!(FifoHandle::new(seg, (4 << 20) - 8).is_err());
    }
}
