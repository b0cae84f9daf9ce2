//! The common case of enqueue and dequeue as one straight line, inlined into
//! [`Fifo::enqueue`] / [`Fifo::dequeue`]: the whole operation fits in the chunk that already
//! holds the position (no growth, no chunk released, no list walk). Every check of the full
//! path is made (fifo size, distance between the positions, chunk place and length, position
//! inside the chunk), but a failed one builds no error: the operation falls back to the full
//! path, which checks everything again and reports what is wrong. Profiled on the fifo
//! micro-benchmark, the full path spent most of its time not copying but moving
//! `Result<ChunkRef, SvmError>`s through out-of-line calls and re-validating the same chunk.
//!
//! What the other end and VPP see is unchanged: the same stores in the same order (tail or
//! head last, release); a dequeue that stays in its chunk leaves `head_chunk` as it was (the
//! full path stores the same value there).
// Shared memory / fds: copies bytes in and out of chunks in shared memory.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering::{Relaxed, Release};

use super::Fifo;
use crate::copy::copy_bytes;
use crate::fifo_segment::FIFO_SEGMENT_MAX_FIFO_SIZE;

impl Fifo<'_> {
    /// Write all of `src` if it fits in the free space and in the tail chunk; `None` (nothing
    /// written) otherwise.
    #[inline(always)]
    pub(super) fn enqueue_quick(&self, src: &[u8]) -> Option<usize> {
        let want = u32::try_from(src.len()).ok().filter(|&w| w != 0)?;
        let tail = self.shr.tail.load(Relaxed);
        let size = self.quick_size()?;
        let used = tail.wrapping_sub(self.prod_head(tail, size, want));
        if used > size || size - used < want {
            return None;
        }
        let tc = self.fs.chunk_quick(self.shr.tail_chunk.load(Relaxed))?;
        // tail inside the chunk and the write ending at or before its end (chunks are at most
        // 4 MiB, so the wrapped difference is the distance into the chunk)
        let at = tail.wrapping_sub(tc.start());
        if at >= tc.len || tc.len - at < want {
            return None;
        }
        // SAFETY: `tc.data .. + tc.len` was bounds-checked by `chunk_quick` and
        // `at + want <= tc.len`; `copy_bytes` tolerates a peer touching the same bytes.
        // SAFETY: see above.
        unsafe { copy_bytes(src.as_ptr(), tc.data.add(at as usize), src.len()) };
        // a write that fills the chunk leaves the tail at the start of the next one (maybe 0)
        let new_tc = if tc.len - at == want {
            tc.next()
        } else {
            tc.off
        };
        let tail = tail.wrapping_add(want);
        self.shr.tail_chunk.store(new_tc, Relaxed);
        self.shr.tail.store(tail, Release);
        self.prod_moved(tail, None);
        Some(want as usize)
    }

    /// Read up to `dst.len()` bytes if some are queued and the head stays inside the head
    /// chunk, which is the start chunk or the consumer keeps consumed chunks (nothing to
    /// release either way); `None` (nothing read) otherwise.
    #[inline(always)]
    pub(super) fn dequeue_quick(&self, dst: &mut [u8]) -> Option<usize> {
        let want = u32::try_from(dst.len()).ok().filter(|&w| w != 0)?;
        let head = self.shr.head.load(Relaxed);
        let used = self.cons_tail(head, want).wrapping_sub(head);
        if used == 0 || u64::from(used) > FIFO_SEGMENT_MAX_FIFO_SIZE {
            return None;
        }
        let len = used.min(want);
        let c = self.fs.chunk_quick(self.shr.head_chunk.load(Relaxed))?;
        let at = head.wrapping_sub(c.start());
        // (a keeping consumer releases when the head leaves a chunk: not while it stays in one)
        if at >= c.len
            || c.len - at <= len
            || (!self.keep && c.off != self.shr.start_chunk.load(Relaxed))
        {
            return None;
        }
        // SAFETY: as in `enqueue_quick`, with source and destination swapped; `len <=
        // dst.len()`.
        // SAFETY: see above.
        unsafe { copy_bytes(c.data.add(at as usize), dst.as_mut_ptr(), len as usize) };
        let head = head.wrapping_add(len);
        self.shr.head.store(head, Release);
        self.cons_moved(head, None);
        Some(len as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use proptest::prelude::*;

    use super::super::tests::jump;
    use super::super::PosCache;
    use super::*;
    use crate::fifo_segment::FifoSegment;
    use crate::{Segment, SvmError};

    /// What the other end and VPP can see of a fifo, chunk offsets as positions.
    fn visible(f: &Fifo) -> [u32; 6] {
        let start_of = |off: u64| match off {
            0 => u32::MAX,
            off => f.fs.chunk(off).unwrap().start(),
        };
        [
            f.shr.head.load(Relaxed),
            f.shr.tail.load(Relaxed),
            start_of(f.shr.head_chunk.load(Relaxed)),
            start_of(f.shr.tail_chunk.load(Relaxed)),
            start_of(f.shr.start_chunk.load(Relaxed)),
            start_of(f.shr.end_chunk.load(Relaxed)),
        ]
    }

    proptest! {
        /// The same operations on two fifos, one through `enqueue`/`dequeue` (fast path when
        /// it applies, with or without cached positions), the other through the full path
        /// only: same results, same bytes, same positions and chunk pointers, across chunk
        /// ends, growth, release and the u32 wrap of the positions.
        #[test]
        fn fast_and_full_paths_agree(
            start in prop_oneof![Just(0u32), Just(u32::MAX - 5000), any::<u32>()],
            cached in any::<bool>(),
            ops in prop::collection::vec((any::<bool>(), prop_oneof![1..100u32, 1..9000u32]), 1..300),
        ) {
            let seg = Segment::create("fifo-fast", 8 << 20, 8192).unwrap();
            let fs = FifoSegment::init(&seg, 1).unwrap();
            let (a, b) = (fs.alloc_fifo(0, 16 << 10).unwrap(), fs.alloc_fifo(0, 16 << 10).unwrap());
            jump(&a, start);
            jump(&b, start);
            let ca = PosCache::new();
            let a = if cached { a.with_cache(&ca) } else { a };
            let (mut sent, mut got_a, mut got_b) = (0u32, Vec::new(), Vec::new());
            for (enq, n) in ops {
                if enq {
                    let src: Vec<u8> = (sent..sent + n).map(|i| (i % 251) as u8).collect();
                    let (ra, rb) = (a.enqueue(&src), b.enqueue_full(&src));
                    prop_assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
                    sent += *ra.as_ref().unwrap_or(&0) as u32;
                } else {
                    let (mut da, mut db) = (vec![0u8; n as usize], vec![0u8; n as usize]);
                    let (ra, rb) = (a.dequeue(&mut da), b.dequeue_full(&mut db));
                    prop_assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
                    if let Ok(k) = ra {
                        got_a.extend_from_slice(&da[..k]);
                        got_b.extend_from_slice(&db[..k]);
                    }
                }
                prop_assert_eq!(visible(&a), visible(&b));
            }
            prop_assert_eq!(&got_a, &got_b);
            let want: Vec<u8> = (0..got_a.len() as u32).map(|i| (i % 251) as u8).collect();
            prop_assert_eq!(got_a, want);
        }
    }

    /// A fast path that finds something wrong leaves it to the full path, which reports it.
    #[test]
    fn fast_paths_leave_corruption_to_the_full_path() {
        let seg = Segment::create("fifo-fast-bad", 4 << 20, 8192).unwrap();
        let fs = FifoSegment::init(&seg, 1).unwrap();
        let f = fs.alloc_fifo(0, 64 << 10).unwrap();
        f.enqueue(&[1u8; 100]).unwrap();
        let corrupt = |r: Result<usize, SvmError>| matches!(r, Err(SvmError::Corrupt(_)));
        // a chunk length that is not a power of two (the only chunk: head and tail chunk)
        let c = fs.chunk(f.shr.tail_chunk.load(Relaxed)).unwrap();
        let len = c.hdr.length.load(Relaxed);
        c.hdr.length.store(len + 1, Relaxed);
        assert_eq!(f.enqueue_quick(&[2u8; 10]), None);
        assert!(corrupt(f.enqueue(&[2u8; 10])));
        assert_eq!(f.dequeue_quick(&mut [0u8; 10]), None);
        assert!(corrupt(f.dequeue(&mut [0u8; 10])));
        c.hdr.length.store(len, Relaxed);
        // a fifo size beyond what a segment allows
        let size = f.shr.size.load(Relaxed);
        f.shr.size.store(u32::MAX, Relaxed);
        assert_eq!(f.enqueue_quick(&[2u8; 10]), None);
        assert!(corrupt(f.enqueue(&[2u8; 10])));
        f.shr.size.store(size, Relaxed);
        // a tail chunk that does not hold the tail
        let start = c.start();
        c.hdr.start_byte.store(start.wrapping_add(1 << 20), Relaxed);
        assert_eq!(f.enqueue_quick(&[2u8; 10]), None);
        assert!(f.enqueue(&[2u8; 10]).is_err());
        assert_eq!(f.dequeue_quick(&mut [0u8; 10]), None);
        assert!(f.dequeue(&mut [0u8; 10]).is_err());
        c.hdr.start_byte.store(start, Relaxed);
        // tail behind head
        let head = f.shr.head.load(Relaxed);
        f.shr
            .head
            .store(f.shr.tail.load(Relaxed).wrapping_add(1), Relaxed);
        assert_eq!(f.dequeue_quick(&mut [0u8; 10]), None);
        assert!(corrupt(f.dequeue(&mut [0u8; 10])));
        f.shr.head.store(head, Relaxed);
        // all good again: both fast paths apply
        assert_eq!(f.enqueue_quick(&[2u8; 10]), Some(10));
        assert_eq!(f.dequeue_quick(&mut [0u8; 110]), Some(110));
    }
}
