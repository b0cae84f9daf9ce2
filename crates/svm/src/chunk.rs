//! Fifo chunks (`svm_fifo_chunk_t`): the unit both fifos and the fifo segment's free lists are
//! made of, and fifo position arithmetic. Below both `fifo` and `fifo_segment`, so neither has
//! to import the other for it.
// Shared memory: the chunk header is a `Shared` struct read in place.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::copy::copy_bytes;
use crate::segment::{Result, Segment};
use crate::shared::{shared_ref, Shared};

/// `svm_fifo_chunk_t` header (24 bytes); `length` data bytes follow.
#[repr(C)]
pub struct SvmFifoChunk {
    /// Absolute fifo position of data[0].
    pub start_byte: AtomicU32,
    pub length: AtomicU32,
    /// fsh offset of the next chunk, 0 = none.
    pub next: AtomicU64,
    /// VPP-private rbtree nodes; 0 (RBTREE_TNIL) in any chunk we link.
    pub enq_rb_index: AtomicU32,
    pub deq_rb_index: AtomicU32,
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<SvmFifoChunk>() == 24 && align_of::<SvmFifoChunk>() == 8);
    assert!(offset_of!(SvmFifoChunk, length) == 4);
    assert!(offset_of!(SvmFifoChunk, next) == 8);
    assert!(offset_of!(SvmFifoChunk, enq_rb_index) == 16);
    assert!(offset_of!(SvmFifoChunk, deq_rb_index) == 20);
};

// SAFETY: all fields are atomic integers.
unsafe impl Shared for SvmFifoChunk {}

#[inline]
pub(crate) fn chunk_hdr(seg: &Segment, off: u64) -> Result<&SvmFifoChunk> {
    shared_ref(seg, off)
}

/// `a < b` on wrapping fifo positions.
#[inline]
pub fn pos_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a > b` on wrapping fifo positions.
#[inline]
pub fn pos_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// `a >= b` on wrapping fifo positions.
#[inline]
pub fn pos_geq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// A chunk whose offset, alignment and length were validated; `len` is the length as read at
/// validation and bounds every access to `data`, whatever the peer writes later.
#[derive(Clone, Copy)]
pub struct ChunkRef<'a> {
    pub off: u64,
    pub hdr: &'a SvmFifoChunk,
    pub(crate) data: *mut u8,
    pub len: u32,
}

impl ChunkRef<'_> {
    #[inline]
    pub fn start(&self) -> u32 {
        self.hdr.start_byte.load(Relaxed)
    }

    #[inline]
    pub fn end(&self) -> u32 {
        self.start().wrapping_add(self.len)
    }

    #[inline]
    pub fn includes(&self, pos: u32) -> bool {
        let s = self.start();
        pos_geq(pos, s) && pos_lt(pos, s.wrapping_add(self.len))
    }

    /// Copy `src` into this chunk's data at byte `at`; false (nothing copied) if it does not
    /// fit in this one chunk. For small blobs an app places in a chunk (ext configs).
    pub fn write_at(&self, at: usize, src: &[u8]) -> bool {
        if at
            .checked_add(src.len())
            .is_none_or(|end| end > self.len as usize)
        {
            return false;
        }
        // `data .. data + len` was bounds-checked when the chunk was validated.
        // SAFETY: `at + src.len() <= len` (above); `copy_bytes` tolerates a peer's writes.
        unsafe { copy_bytes(src.as_ptr(), self.data.add(at), src.len()) };
        true
    }

    /// Copy this chunk's data from byte `at` into `dst`; false (nothing copied) if out of it.
    pub fn read_at(&self, at: usize, dst: &mut [u8]) -> bool {
        if at
            .checked_add(dst.len())
            .is_none_or(|end| end > self.len as usize)
        {
            return false;
        }
        // SAFETY: as in `write_at`, with source and destination swapped.
        unsafe { copy_bytes(self.data.add(at), dst.as_mut_ptr(), dst.len()) };
        true
    }

    #[inline]
    pub(crate) fn next(&self) -> u64 {
        self.hdr.next.load(Acquire)
    }
}
