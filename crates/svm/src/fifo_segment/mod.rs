//! The fifo segment header (fsh) and its slices, as VPP v26.06 lays them out for a 64-byte cache
//! line, and [`FifoSegment`], a validated view of them.
//!
//! This module owns: the `#[repr(C)]` layouts of `fifo_segment_header_t` and
//! `fifo_segment_slice_t`; laying out a fresh segment the way `fifo_segment_init` does (for the
//! test peer); the bump carve on `byte_index` and the `reserve` carve message queues use; the
//! chunk free lists and VPP's chunk allocation policy ([`alloc`]). Fifo header allocation in a
//! segment lives with the fifos (`fifo/alloc.rs`), chunk headers below both (`chunk.rs`), so
//! the fifo segment imports neither fifos nor their allocation. Every offset read from shared
//! memory is untrusted and is turned into a reference only through [`Segment::at`].
// Shared memory / fds: typed references to bounds-checked structs in shared memory.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8};

use crate::chunk::{ChunkRef, SvmFifoChunk};
use crate::segment::{Result, Segment, SvmError, FSH_SIZE, SLICE_SIZE};
use crate::shared::{shared_ref, Shared};

mod alloc;

/// Number of chunk size classes (4 KiB .. 4 MiB).
pub const FS_CHUNK_VEC_LEN: usize = 11;
/// log2 of the smallest chunk (and smallest fifo).
pub const FS_MIN_LOG2_CHUNK_SZ: u32 = 12;
/// Smallest chunk data length.
pub const FS_MIN_CHUNK_SZ: u32 = 1 << FS_MIN_LOG2_CHUNK_SZ;
/// Largest chunk data length (class 10).
pub const FS_MAX_CHUNK_SZ: u32 = 1 << 22;
/// Largest fifo VPP creates (2 GiB).
pub const FIFO_SEGMENT_MAX_FIFO_SIZE: u64 = 2 << 30;
/// How many chunks or fifo headers one carve produces.
pub const FIFO_SEGMENT_ALLOC_BATCH_SIZE: u32 = 32;
/// Size of a chunk header; data follows directly.
pub const CHUNK_HDR_SIZE: u64 = 24;

/// Free-list head: bits 0..47 hold the first chunk's fsh offset, bits 48..63 an ABA tag.
pub const FL_HEAD_MASK: u64 = 0xFFFF_FFFF_FFFF;
pub const FL_TAG_MASK: u64 = 0xFFFF_0000_0000_0000;
pub const FL_TAG_INC: u64 = 1 << 48;

/// `fifo_segment_header_t` (64-byte cache line build): 128 bytes.
#[repr(C, align(64))]
pub struct FifoSegmentHeader {
    /// Bytes sitting in chunk free lists (all slices).
    pub n_cached_bytes: AtomicU64,
    pub n_active_fifos: AtomicU32,
    /// Bytes carved for things other than fifos (header, slices, message queues).
    pub n_reserved_bytes: AtomicU32,
    pub max_log2_fifo_size: AtomicU32,
    pub n_slices: AtomicU8,
    pub pct_first_alloc: AtomicU8,
    pub n_mqs: AtomicU8,
    _pad0: [AtomicU8; 41],
    /// Next free byte, fsh-relative.
    pub byte_index: AtomicU64,
    pub max_byte_index: AtomicU64,
    /// First byte after the header and slices.
    pub start_byte_index: AtomicU64,
    _pad1: [AtomicU8; 40],
}

/// `fifo_segment_slice_t`: 192 bytes, one per VPP thread.
#[repr(C, align(64))]
pub struct FifoSegmentSlice {
    /// Tagged free-list heads, one per chunk size class.
    pub free_chunks: [AtomicU64; FS_CHUNK_VEC_LEN],
    /// Free `svm_fifo_shared_t` headers (VPP side only, not atomic in VPP).
    pub free_fifos: AtomicU64,
    pub n_fl_chunk_bytes: AtomicU64,
    pub virtual_mem: AtomicU64,
    pub num_chunks: [AtomicU32; FS_CHUNK_VEC_LEN],
    _pad: [AtomicU8; 36],
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<FifoSegmentHeader>() as u64 == FSH_SIZE);
    assert!(align_of::<FifoSegmentHeader>() == 64);
    assert!(offset_of!(FifoSegmentHeader, n_active_fifos) == 8);
    assert!(offset_of!(FifoSegmentHeader, n_reserved_bytes) == 12);
    assert!(offset_of!(FifoSegmentHeader, max_log2_fifo_size) == 16);
    assert!(offset_of!(FifoSegmentHeader, n_slices) == 20);
    assert!(offset_of!(FifoSegmentHeader, pct_first_alloc) == 21);
    assert!(offset_of!(FifoSegmentHeader, n_mqs) == 22);
    assert!(offset_of!(FifoSegmentHeader, byte_index) == 64);
    assert!(offset_of!(FifoSegmentHeader, max_byte_index) == 72);
    assert!(offset_of!(FifoSegmentHeader, start_byte_index) == 80);
    assert!(size_of::<FifoSegmentSlice>() as u64 == SLICE_SIZE);
    assert!(align_of::<FifoSegmentSlice>() == 64);
    assert!(offset_of!(FifoSegmentSlice, free_fifos) == 88);
    assert!(offset_of!(FifoSegmentSlice, n_fl_chunk_bytes) == 96);
    assert!(offset_of!(FifoSegmentSlice, virtual_mem) == 104);
    assert!(offset_of!(FifoSegmentSlice, num_chunks) == 112);
};

// SAFETY: every field is an atomic integer or an array of AtomicU8 padding.
unsafe impl Shared for FifoSegmentHeader {}
// SAFETY: as above.
unsafe impl Shared for FifoSegmentSlice {}

#[cold]
pub(crate) fn corrupt(msg: String) -> SvmError {
    SvmError::Corrupt(msg)
}

/// [`corrupt`] with the message formatted out of line: the checks on the fifo fast paths stay
/// a compare and a (never taken) branch, without the formatting code and its stack space.
#[cold]
#[inline(never)]
pub(crate) fn corrupt_with(msg: impl FnOnce() -> String) -> SvmError {
    SvmError::Corrupt(msg())
}

/// Free-list index of a size: 0 below 4 KiB, else ceil(log2(size)) − 12 capped at 10.
pub fn fl_index(size: u32) -> usize {
    if size < FS_MIN_CHUNK_SZ {
        return 0;
    }
    let ceil_log2 = 32 - (size - 1).leading_zeros();
    ((ceil_log2 - FS_MIN_LOG2_CHUNK_SZ) as usize).min(FS_CHUNK_VEC_LEN - 1)
}

/// Data length of chunks in free list `fl`.
pub fn fl_size(fl: usize) -> u32 {
    FS_MIN_CHUNK_SZ << fl
}

/// The header values a [`FifoSegment`] validated at attach (they never change afterwards).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FifoSegmentInfo {
    n_slices: u8,
    max_byte_index: u64,
    start_byte_index: u64,
}

/// A validated view of a fifo segment header. Cheap to copy; borrows the [`Segment`].
#[derive(Clone, Copy)]
pub struct FifoSegment<'a> {
    pub(crate) seg: &'a Segment,
    pub(crate) fsh: &'a FifoSegmentHeader,
    pub(crate) n_slices: u8,
    /// Cached at attach: never trust a later, larger value from shared memory.
    pub(crate) max_byte_index: u64,
    pub(crate) start_byte_index: u64,
}

impl std::fmt::Debug for FifoSegment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FifoSegment")
            .field("n_slices", &self.n_slices)
            .field("max_byte_index", &self.max_byte_index)
            .field("byte_index", &self.fsh.byte_index.load(Relaxed))
            .finish()
    }
}

impl<'a> FifoSegment<'a> {
    /// Lay out a fresh fifo segment header in `seg` (created with [`Segment::create`]) the way
    /// VPP's `fifo_segment_init` does. VPP's segment managers then set `pct_first_alloc`, and the
    /// mqs segment sets `n_mqs`: see [`FifoSegment::set_pct_first_alloc`] and
    /// [`FifoSegment::set_n_mqs`].
    pub fn init(seg: &'a Segment, n_slices: u8) -> Result<Self> {
        let n_slices = n_slices.max(1);
        let slices_sz = SLICE_SIZE * u64::from(n_slices);
        let hdr_sz = FSH_SIZE + slices_sz;
        let seg_sz = seg.fsh_span();
        if seg.fsh_offset() == 0 || hdr_sz >= seg_sz {
            return Err(corrupt_with(|| {
                format!(
                    "no room for a fifo segment header with {n_slices} slices in {seg_sz} bytes"
                )
            }));
        }
        let p = seg.at(0, hdr_sz as usize, 64)?;
        // SAFETY: `at` checked the header and slices lie inside the mapping; nobody else uses a
        // segment that is being laid out, and zero bytes are valid for every atomic field.
        unsafe { std::ptr::write_bytes(p, 0, hdr_sz as usize) };
        let fsh: &FifoSegmentHeader = shared_ref(seg, 0)?;
        fsh.byte_index.store(hdr_sz, Relaxed);
        fsh.max_byte_index.store(seg_sz, Relaxed);
        fsh.n_slices.store(n_slices, Relaxed);
        let max_fifo = ((seg_sz - slices_sz) / 2).min(FIFO_SEGMENT_MAX_FIFO_SIZE);
        fsh.max_log2_fifo_size
            .store(63 - max_fifo.leading_zeros(), Relaxed);
        fsh.n_cached_bytes.store(0, Relaxed);
        fsh.n_reserved_bytes.store(hdr_sz as u32, Relaxed);
        fsh.start_byte_index.store(hdr_sz, Release);
        Ok(FifoSegment {
            seg,
            fsh,
            n_slices,
            max_byte_index: seg_sz,
            start_byte_index: hdr_sz,
        })
    }

    /// View the fifo segment header of a mapped segment, checking that it is self-consistent.
    pub fn attach(seg: &'a Segment) -> Result<Self> {
        if seg.fsh_offset() == 0 {
            return Err(corrupt("segment has no fifo segment header".into()));
        }
        let fsh: &FifoSegmentHeader = shared_ref(seg, 0)?;
        let n_slices = fsh.n_slices.load(Acquire);
        let start = fsh.start_byte_index.load(Acquire);
        let max = fsh.max_byte_index.load(Acquire);
        if n_slices == 0 || start != FSH_SIZE + SLICE_SIZE * u64::from(n_slices) {
            return Err(corrupt_with(|| {
                format!("fsh has {n_slices} slices and start_byte_index {start}")
            }));
        }
        if max > seg.fsh_span() || max <= start {
            return Err(corrupt_with(|| {
                format!(
                    "fsh max_byte_index {max} outside {start}..={}",
                    seg.fsh_span()
                )
            }));
        }
        Ok(FifoSegment {
            seg,
            fsh,
            n_slices,
            max_byte_index: max,
            start_byte_index: start,
        })
    }

    pub fn segment(&self) -> &'a Segment {
        self.seg
    }

    /// What [`FifoSegment::attach`] validated, to rebuild the view cheaply later.
    pub fn info(&self) -> FifoSegmentInfo {
        FifoSegmentInfo {
            n_slices: self.n_slices,
            max_byte_index: self.max_byte_index,
            start_byte_index: self.start_byte_index,
        }
    }

    /// Rebuild a view from an earlier attach of the same segment: the header's place is
    /// bounds-checked again, its values are taken from `info` (validated then) rather than
    /// re-read, which is what keeps this cheap on the data path.
    /// [`FifoSegment::from_info`] with the header reference already checked.
    #[inline]
    pub(crate) fn from_checked(
        seg: &'a Segment,
        fsh: &'a FifoSegmentHeader,
        info: FifoSegmentInfo,
    ) -> Self {
        FifoSegment {
            seg,
            fsh,
            n_slices: info.n_slices,
            max_byte_index: info.max_byte_index,
            start_byte_index: info.start_byte_index,
        }
    }

    pub fn from_info(seg: &'a Segment, info: FifoSegmentInfo) -> Result<Self> {
        let fsh: &FifoSegmentHeader = shared_ref(seg, 0)?;
        Ok(FifoSegment {
            seg,
            fsh,
            n_slices: info.n_slices,
            max_byte_index: info.max_byte_index,
            start_byte_index: info.start_byte_index,
        })
    }

    pub fn header(&self) -> &'a FifoSegmentHeader {
        self.fsh
    }

    pub fn n_slices(&self) -> u8 {
        self.n_slices
    }

    /// End of usable space (fsh-relative), as cached at attach.
    pub fn max_byte_index(&self) -> u64 {
        self.max_byte_index
    }

    pub fn set_pct_first_alloc(&self, pct: u8) {
        self.fsh.pct_first_alloc.store(pct, Relaxed);
    }

    pub fn set_n_mqs(&self, n: u8) {
        self.fsh.n_mqs.store(n, Relaxed);
    }

    /// Slice `i`, refusing indices at or beyond the number of slices.
    pub fn slice(&self, i: u32) -> Result<&'a FifoSegmentSlice> {
        if i >= u32::from(self.n_slices) {
            return Err(corrupt_with(|| {
                format!("slice index {i} >= {} slices", self.n_slices)
            }));
        }
        shared_ref(self.seg, FSH_SIZE + SLICE_SIZE * u64::from(i))
    }

    /// Validate a chunk at an untrusted fsh offset: in the carved area, aligned, with a
    /// power-of-two length in 4 KiB..=4 MiB whose data also lies in the segment.
    #[inline]
    pub fn chunk(&self, off: u64) -> Result<ChunkRef<'a>> {
        match self.chunk_quick(off) {
            Some(c) => Ok(c),
            None => Err(self.chunk_err(off)),
        }
    }

    /// [`FifoSegment::chunk`]'s checks without building an error (`None` if one fails): for
    /// the fifo fast paths, which leave anything unusual to the reporting path.
    #[inline(always)]
    pub(crate) fn chunk_quick(&self, off: u64) -> Option<ChunkRef<'a>> {
        if off < self.start_byte_index || off >= self.max_byte_index {
            return None;
        }
        let hdr: &SvmFifoChunk = crate::shared::shared_ref_quick(self.seg, off)?;
        let len = hdr.length.load(Relaxed);
        if !len.is_power_of_two() || !(FS_MIN_CHUNK_SZ..=FS_MAX_CHUNK_SZ).contains(&len) {
            return None;
        }
        let data = self.seg.at_quick(off + CHUNK_HDR_SIZE, len as usize, 1)?;
        Some(ChunkRef {
            off,
            hdr,
            data,
            len,
        })
    }

    /// Why [`FifoSegment::chunk_quick`] refused `off` (checked again: the peer may have
    /// changed the length meanwhile).
    #[cold]
    #[inline(never)]
    fn chunk_err(&self, off: u64) -> SvmError {
        if off < self.start_byte_index || off >= self.max_byte_index {
            return corrupt_with(|| {
                format!(
                    "chunk offset {off} outside {}..{}",
                    self.start_byte_index, self.max_byte_index
                )
            });
        }
        let hdr: &SvmFifoChunk = match crate::chunk::chunk_hdr(self.seg, off) {
            Ok(h) => h,
            Err(e) => return e,
        };
        let len = hdr.length.load(Relaxed);
        if !len.is_power_of_two() || !(FS_MIN_CHUNK_SZ..=FS_MAX_CHUNK_SZ).contains(&len) {
            return corrupt_with(|| format!("chunk at {off} has length {len}"));
        }
        if let Err(e) = self.seg.at(off + CHUNK_HDR_SIZE, len as usize, 1) {
            return e;
        }
        corrupt_with(|| format!("chunk at {off} changed while it was checked"))
    }

    /// Carve `size` bytes aligned to `align` (a power of two) from the segment's free space by
    /// advancing `byte_index` with a CAS; `None` when the segment is exhausted.
    pub fn carve(&self, size: u64, align: u64) -> Option<u64> {
        let round = |v: u64| v.checked_add(align - 1).map(|v| v & !(align - 1));
        let size = round(size)?;
        let mut cur = self.fsh.byte_index.load(Relaxed);
        loop {
            let start = round(cur)?;
            let end = start.checked_add(size)?;
            if end >= self.max_byte_index || start < self.start_byte_index {
                return None;
            }
            match self
                .fsh
                .byte_index
                .compare_exchange_weak(cur, end, Acquire, Relaxed)
            {
                Ok(_) => return Some(start),
                Err(now) => cur = now,
            }
        }
    }

    /// Carve space for something that is not a fifo (a message queue) and account it in
    /// `n_reserved_bytes`, as `fifo_segment_msg_q_alloc` does. VPP carves mqs with 8-byte
    /// alignment back to back right after the slices, so peers find them at
    /// `start_byte_index + i * size`.
    pub fn reserve(&self, size: u64, align: u64) -> Result<u64> {
        if !align.is_power_of_two() || size > u64::from(u32::MAX) {
            return Err(corrupt_with(|| {
                format!("cannot reserve {size} bytes aligned {align}")
            }));
        }
        let off = self.carve(size, align).ok_or(SvmError::Full)?;
        self.fsh.n_reserved_bytes.fetch_add(size as u32, Relaxed);
        Ok(off)
    }

    /// Bytes not yet carved.
    pub fn free_bytes(&self) -> u64 {
        self.max_byte_index
            .saturating_sub(self.fsh.byte_index.load(Relaxed))
    }

    /// Bytes in chunk free lists, all slices.
    pub fn cached_bytes(&self) -> u64 {
        self.fsh.n_cached_bytes.load(Relaxed)
    }

    /// Sum of the slices' `n_fl_chunk_bytes`.
    pub fn fl_chunk_bytes(&self) -> u64 {
        (0..u32::from(self.n_slices))
            .filter_map(|i| self.slice(i).ok())
            .map(|s| s.n_fl_chunk_bytes.load(Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    pub fn n_active_fifos(&self) -> u32 {
        self.fsh.n_active_fifos.load(Relaxed)
    }

    /// Count chunks on free list `fl` of `slice` (a bounded walk; diagnostics and tests).
    pub fn num_free_chunks(&self, slice: u32, fl: usize) -> Result<u32> {
        let fss = self.slice(slice)?;
        let head = fss
            .free_chunks
            .get(fl)
            .ok_or_else(|| corrupt_with(|| format!("free list {fl}")))?;
        let mut off = head.load(Acquire) & FL_HEAD_MASK;
        let mut n = 0u32;
        while off != 0 {
            if u64::from(n) > self.max_byte_index / u64::from(FS_MIN_CHUNK_SZ) {
                return Err(corrupt_with(|| {
                    format!("free list {fl} of slice {slice} loops")
                }));
            }
            off = self.chunk(off)?.hdr.next.load(Relaxed);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
