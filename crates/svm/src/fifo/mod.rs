//! Shared fifos (`svm_fifo_shared_t` + chunk lists) of VPP v26.06, usable from either end.
//!
//! This module owns the `#[repr(C)]` layouts of `svm_fifo_shared_t` and
//! `svm_fifo_signals_t`, and [`Fifo`], a handle that implements the single-producer /
//! single-consumer algorithms: enqueue with lazy growth from the segment's slice free lists,
//! dequeue / drop with release of consumed chunks, peek. Zero-copy segments and datagram framing
//! live in [`segs`], the notification flags in [`notify`], fifo header allocation in a segment
//! (VPP's side: the test peer's) and chunk release in `alloc`, the common case of enqueue and
//! dequeue as one inlined straight line in `fast`; chunk headers in the crate's `chunk` module.
//!
//! Every chunk offset read from shared memory (start, end, head, tail chunk, next) is validated
//! through [`FifoSegment::chunk`] before use; list walks are bounded; a malformed fifo yields
//! [`SvmError::Corrupt`], never undefined behaviour, a panic or a hang. The hot paths take no
//! lock and allocate nothing.
// Shared memory / fds: copies bytes in and out of chunks in shared memory; marks shared structs
// `Shared`.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8};

pub use crate::chunk::{pos_geq, pos_gt, pos_lt, ChunkRef, SvmFifoChunk};
use crate::copy::copy_bytes;
use crate::fifo_segment::{corrupt_with, FifoSegment, FIFO_SEGMENT_MAX_FIFO_SIZE};
use crate::segment::{Result, SvmError};
use crate::shared::shared_ref;
use crate::shared::Shared;

mod alloc;
mod cache;
mod fast;
mod handle;
pub mod notify;
pub mod segs;

pub use alloc::KEEP_MAX;
pub use cache::PosCache;
pub use handle::FifoHandle;
pub use segs::{FifoSeg, SessionDgramHdr, SESSION_CONN_HDR_LEN};

/// `svm_fifo_signals_t` (24 bytes at `svm_fifo_shared_t + 40`).
#[repr(C)]
pub struct SvmFifoSignals {
    pub has_event: AtomicU32,
    pub want_deq_ntf: AtomicU32,
    pub has_deq_ntf: AtomicU32,
    pub n_subscribers: AtomicU8,
    pub subscribers: [AtomicU8; 7],
    pub deq_thresh: AtomicU32,
}

/// `svm_fifo_shared_t` (192 bytes, three cache lines: shared, consumer, producer).
#[repr(C, align(64))]
pub struct SvmFifoShared {
    pub start_chunk: AtomicU64,
    pub end_chunk: AtomicU64,
    pub min_alloc: AtomicU32,
    pub size: AtomicU32,
    pub slice_index: AtomicU8,
    _pad0: [AtomicU8; 7],
    /// Free-list link (VPP side).
    pub next: AtomicU64,
    pub signals: SvmFifoSignals,
    pub head_chunk: AtomicU64,
    pub head: AtomicU32,
    _pad1: [AtomicU8; 52],
    pub tail_chunk: AtomicU64,
    pub tail: AtomicU32,
    _pad2: [AtomicU8; 52],
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<SvmFifoSignals>() == 24 && align_of::<SvmFifoSignals>() == 4);
    assert!(offset_of!(SvmFifoSignals, want_deq_ntf) == 4);
    assert!(offset_of!(SvmFifoSignals, has_deq_ntf) == 8);
    assert!(offset_of!(SvmFifoSignals, n_subscribers) == 12);
    assert!(offset_of!(SvmFifoSignals, subscribers) == 13);
    assert!(offset_of!(SvmFifoSignals, deq_thresh) == 20);
    assert!(size_of::<SvmFifoShared>() == 192 && align_of::<SvmFifoShared>() == 64);
    assert!(offset_of!(SvmFifoShared, end_chunk) == 8);
    assert!(offset_of!(SvmFifoShared, min_alloc) == 16);
    assert!(offset_of!(SvmFifoShared, size) == 20);
    assert!(offset_of!(SvmFifoShared, slice_index) == 24);
    assert!(offset_of!(SvmFifoShared, next) == 32);
    assert!(offset_of!(SvmFifoShared, signals) == 40);
    assert!(offset_of!(SvmFifoShared, head_chunk) == 64);
    assert!(offset_of!(SvmFifoShared, head) == 72);
    assert!(offset_of!(SvmFifoShared, tail_chunk) == 128);
    assert!(offset_of!(SvmFifoShared, tail) == 136);
};

// SAFETY: all fields are atomic integers (padding included).
unsafe impl Shared for SvmFifoShared {}

/// Error codes of `svm_fifo_err_t`, for callers that need VPP's numbers.
pub const SVM_FIFO_EFULL: i32 = -2;
pub const SVM_FIFO_EEMPTY: i32 = -3;
pub const SVM_FIFO_EGROW: i32 = -4;

/// Cap on chunk-list walks: a legit list holds at most ~2× the fifo size in ≥ 4 KiB chunks.
fn walk_cap(size: u32) -> u32 {
    (size >> 11) + 2048
}

/// Handle on one shared fifo. Copyable; every operation re-reads shared state.
#[derive(Clone, Copy)]
pub struct Fifo<'a> {
    fs: FifoSegment<'a>,
    shr: &'a SvmFifoShared,
    off: u64,
    /// This end's cached view of the other end (enqueue/dequeue only), when the holder keeps one.
    cache: Option<&'a PosCache>,
    /// As consumer, keep recently consumed chunks linked for a while ([`Fifo::keeping`]).
    keep: bool,
    /// As producer, grow by a whole `min_alloc` ([`Fifo::growing_whole`]).
    whole: bool,
}

impl std::fmt::Debug for Fifo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fifo")
            .field("off", &self.off)
            .field("size", &self.shr.size.load(Relaxed))
            .field("head", &self.shr.head.load(Relaxed))
            .field("tail", &self.shr.tail.load(Relaxed))
            .finish()
    }
}

impl<'a> Fifo<'a> {
    /// Attach to the fifo header at fsh offset `off` (from a CONNECTED/ACCEPTED message):
    /// in bounds, 64-byte aligned, sane size, slice index within the segment's slices.
    pub fn attach(fs: FifoSegment<'a>, off: u64) -> Result<Self> {
        let shr: &SvmFifoShared = shared_ref(fs.segment(), off)?;
        let f = Fifo {
            fs,
            shr,
            off,
            cache: None,
            keep: false,
            whole: false,
        };
        f.size_checked()?;
        f.slice_index()?;
        Ok(f)
    }

    /// A fifo [`Fifo::attach`] accepted before: only its place is checked again (bounds and
    /// alignment). Every operation still validates the size, positions and chunks it uses.
    pub fn view(fs: FifoSegment<'a>, off: u64) -> Result<Self> {
        let shr: &SvmFifoShared = shared_ref(fs.segment(), off)?;
        Ok(Fifo {
            fs,
            shr,
            off,
            cache: None,
            keep: false,
            whole: false,
        })
    }

    #[inline]
    pub(crate) fn from_parts(fs: FifoSegment<'a>, shr: &'a SvmFifoShared, off: u64) -> Self {
        Fifo {
            fs,
            shr,
            off,
            cache: None,
            keep: false,
            whole: false,
        }
    }

    /// The same fifo, with enqueue and dequeue reading the other end's position through
    /// `cache` (kept by whoever holds this end across operations; see [`PosCache`]).
    #[inline]
    pub fn with_cache(self, cache: &'a PosCache) -> Fifo<'a> {
        Fifo {
            cache: Some(cache),
            ..self
        }
    }

    /// fsh offset of the shared header (what VPP sends as the fifo address).
    pub fn offset(&self) -> u64 {
        self.off
    }

    pub fn shared(&self) -> &'a SvmFifoShared {
        self.shr
    }

    pub fn segment(&self) -> FifoSegment<'a> {
        self.fs
    }

    /// Logical capacity in bytes.
    pub fn size(&self) -> u32 {
        self.shr.size.load(Relaxed)
    }

    fn size_checked(&self) -> Result<u32> {
        let size = self.size();
        if u64::from(size) > FIFO_SEGMENT_MAX_FIFO_SIZE {
            return Err(corrupt_with(|| {
                format!("fifo at {} has size {size}", self.off)
            }));
        }
        Ok(size)
    }

    fn slice_index(&self) -> Result<u32> {
        let s = u32::from(self.shr.slice_index.load(Relaxed));
        if s >= u32::from(self.fs.n_slices()) {
            return Err(corrupt_with(|| {
                format!("fifo at {} has slice index {s}", self.off)
            }));
        }
        Ok(s)
    }

    /// Bytes queued, both indices loaded with acquire (`svm_fifo_max_dequeue`).
    pub fn max_dequeue(&self) -> u32 {
        let tail = self.shr.tail.load(Acquire);
        tail.wrapping_sub(self.shr.head.load(Acquire))
    }

    /// Bytes queued, consumer view.
    #[inline]
    pub fn max_dequeue_cons(&self) -> u32 {
        self.shr
            .tail
            .load(Acquire)
            .wrapping_sub(self.shr.head.load(Relaxed))
    }

    /// Bytes queued, producer view.
    pub fn max_dequeue_prod(&self) -> u32 {
        self.shr
            .tail
            .load(Relaxed)
            .wrapping_sub(self.shr.head.load(Acquire))
    }

    /// Free space, both indices acquire (`svm_fifo_max_enqueue`). A fifo whose size was shrunk
    /// below its content reports 0 rather than wrapping.
    pub fn max_enqueue(&self) -> u32 {
        let tail = self.shr.tail.load(Acquire);
        let used = tail.wrapping_sub(self.shr.head.load(Acquire));
        self.size().saturating_sub(used)
    }

    /// Free space, producer view.
    pub fn max_enqueue_prod(&self) -> u32 {
        self.size().saturating_sub(self.max_dequeue_prod())
    }

    /// Follow `prev.next` (already loaded as `next`), checking continuity of positions.
    fn next_chunk(&self, prev: &ChunkRef<'a>, next: u64) -> Result<ChunkRef<'a>> {
        if next == 0 {
            return Err(corrupt_with(|| {
                format!("fifo at {}: chunk list ends early", self.off)
            }));
        }
        let c = self.fs.chunk(next)?;
        if c.start() != prev.end() {
            return Err(corrupt_with(|| {
                format!(
                    "fifo at {}: chunk at {next} starts at {}, expected {}",
                    self.off,
                    c.start(),
                    prev.end()
                )
            }));
        }
        Ok(c)
    }

    /// Walk from `from` to the chunk holding `pos` (bounded).
    fn walk_to(&self, from: ChunkRef<'a>, pos: u32) -> Result<ChunkRef<'a>> {
        let mut c = from;
        for _ in 0..walk_cap(self.size()) {
            if c.includes(pos) {
                return Ok(c);
            }
            c = self.next_chunk(&c, c.next())?;
        }
        Err(corrupt_with(|| {
            format!("fifo at {}: chunk list too long", self.off)
        }))
    }

    /// Consumer: the chunk holding `pos`, starting from head_chunk when it is usable.
    fn cons_chunk_for(&self, head: u32, pos: u32) -> Result<ChunkRef<'a>> {
        let hc = self.shr.head_chunk.load(Relaxed);
        if hc != 0 {
            if let Ok(c) = self.fs.chunk(hc) {
                if c.includes(head) {
                    return self.walk_to(c, pos);
                }
            }
        }
        let start = self.fs.chunk(self.shr.start_chunk.load(Relaxed))?;
        self.walk_to(start, pos)
    }

    /// Copy `src` into the chunk list from `c` (holding `pos`). Returns the offset of the chunk
    /// that holds `pos + len` — the next chunk (maybe 0) when the copy ends exactly at a chunk end.
    fn copy_in(&self, mut c: ChunkRef<'a>, pos: u32, src: &[u8]) -> Result<u64> {
        let mut at = pos.wrapping_sub(c.start());
        if at >= c.len {
            return Err(corrupt_with(|| {
                format!("fifo at {}: position {pos} not in its chunk", self.off)
            }));
        }
        let mut done = 0usize;
        loop {
            let n = ((c.len - at) as usize).min(src.len() - done);
            // `c.data .. + c.len` was bounds-checked by `FifoSegment::chunk`.
            // SAFETY: `at + n <= c.len` and `src[done..done + n]` is in bounds (above).
            unsafe { copy_bytes(src.as_ptr().add(done), c.data.add(at as usize), n) };
            done += n;
            if at as usize + n < c.len as usize {
                return Ok(c.off);
            }
            let next = c.next();
            if done == src.len() {
                return Ok(next);
            }
            c = self.next_chunk(&c, next)?;
            at = 0;
        }
    }

    /// Copy out of the chunk list from `c` (holding `pos`) into `dst`; returns like [`copy_in`].
    fn copy_out(&self, mut c: ChunkRef<'a>, pos: u32, dst: &mut [u8]) -> Result<u64> {
        let mut at = pos.wrapping_sub(c.start());
        if at >= c.len {
            return Err(corrupt_with(|| {
                format!("fifo at {}: position {pos} not in its chunk", self.off)
            }));
        }
        let mut done = 0usize;
        loop {
            let n = ((c.len - at) as usize).min(dst.len() - done);
            // SAFETY: as in `copy_in`, with source and destination swapped.
            unsafe { copy_bytes(c.data.add(at as usize), dst.as_mut_ptr().add(done), n) };
            done += n;
            if at as usize + n < c.len as usize {
                return Ok(c.off);
            }
            let next = c.next();
            if done == dst.len() {
                return Ok(next);
            }
            c = self.next_chunk(&c, next)?;
            at = 0;
        }
    }

    /// Producer: the length that can be written now (after growing if needed).
    fn prepare_write(
        &self,
        head: u32,
        tail: u32,
        len: u32,
        size: u32,
        partial: bool,
    ) -> Result<u32> {
        let end = self.fs.chunk(self.shr.end_chunk.load(Relaxed))?;
        if !pos_gt(tail.wrapping_add(len), end.end()) || self.grow(head, tail, len, end, size)? {
            return Ok(len);
        }
        if !partial {
            return Err(SvmError::Full);
        }
        let avail = end.end().wrapping_sub(tail);
        if avail == 0 {
            return Err(SvmError::Full);
        }
        if avail > len {
            return Err(corrupt_with(|| {
                format!("fifo at {}: tail {tail} past end chunk", self.off)
            }));
        }
        Ok(avail)
    }

    /// The producer's tail chunk, which must hold `tail`.
    fn tail_chunk(&self, tail: u32) -> Result<ChunkRef<'a>> {
        let c = self.fs.chunk(self.shr.tail_chunk.load(Relaxed))?;
        if !c.includes(tail) {
            return Err(corrupt_with(|| {
                format!("fifo at {}: tail chunk misses {tail}", self.off)
            }));
        }
        Ok(c)
    }

    /// Enqueue up to `src.len()` bytes; returns how many were written. `Full` when there is no
    /// space (SVM_FIFO_EFULL) or the segment cannot grow the fifo (SVM_FIFO_EGROW).
    #[inline]
    pub fn enqueue(&self, src: &[u8]) -> Result<usize> {
        match self.enqueue_quick(src) {
            Some(n) => Ok(n),
            None => self.enqueue_full(src),
        }
    }

    #[inline(never)]
    fn enqueue_full(&self, src: &[u8]) -> Result<usize> {
        let want = u32::try_from(src.len()).unwrap_or(u32::MAX);
        let (head, tail, size) = self.load_prod_for(want)?;
        let free = size.saturating_sub(tail.wrapping_sub(head));
        if free == 0 {
            return Err(SvmError::Full);
        }
        let len = free.min(want);
        if len == 0 {
            return Ok(0);
        }
        // Fast path: the bytes fit in the tail chunk (validated here), so no growth check
        // against end_chunk is needed (the tail chunk never ends past end_chunk). The tail
        // chunk is 0 after a write that ended exactly at the end of the last chunk.
        let fast = match self.shr.tail_chunk.load(Relaxed) {
            0 => None,
            off => self
                .fs
                .chunk(off)
                .ok()
                .filter(|c| c.includes(tail) && !pos_gt(tail.wrapping_add(len), c.end())),
        };
        let (len, tc) = match fast {
            Some(tc) => (len, tc),
            None => {
                // growth sizes itself from the real head, not the cached one
                let (head, _, _) = self.load_prod()?;
                let len = self.prepare_write(head, tail, len, size, true)?;
                (len, self.tail_chunk(tail)?)
            }
        };
        let new_tc = self.copy_in(tc, tail, &src[..len as usize])?;
        self.shr.tail_chunk.store(new_tc, Relaxed);
        self.shr.tail.store(tail.wrapping_add(len), Release);
        self.prod_moved(tail.wrapping_add(len), None);
        Ok(len as usize)
    }

    /// Dequeue up to `dst.len()` bytes, releasing fully consumed chunks to the slice.
    #[inline]
    pub fn dequeue(&self, dst: &mut [u8]) -> Result<usize> {
        match self.dequeue_quick(dst) {
            Some(n) => Ok(n),
            None => self.dequeue_full(dst),
        }
    }

    #[inline(never)]
    fn dequeue_full(&self, dst: &mut [u8]) -> Result<usize> {
        let want = u32::try_from(dst.len()).unwrap_or(u32::MAX);
        let (head, _, used) = self.load_cons_for(want.max(1))?;
        if used == 0 {
            return Err(SvmError::Empty);
        }
        let len = used.min(want);
        if len == 0 {
            return Ok(0);
        }
        let c = self.cons_chunk_for(head, head)?;
        let new_hc = self.copy_out(c, head, &mut dst[..len as usize])?;
        self.shr.head_chunk.store(new_hc, Relaxed);
        let head = head.wrapping_add(len);
        if self.leaves(&c, head) {
            self.release_consumed(head)?;
        }
        self.shr.head.store(head, Release);
        self.cons_moved(head, None);
        Ok(len as usize)
    }

    /// Copy up to `dst.len()` bytes starting `offset` bytes after head, without consuming.
    /// Returns 0 when `offset` is at or beyond the data, `Empty` when the fifo is empty.
    pub fn peek(&self, offset: u32, dst: &mut [u8]) -> Result<usize> {
        let (head, _, used) = self.load_cons()?;
        if used <= offset {
            return if offset == 0 {
                Err(SvmError::Empty)
            } else {
                Ok(0)
            };
        }
        let len = (used - offset).min(u32::try_from(dst.len()).unwrap_or(u32::MAX));
        if len == 0 {
            return Ok(0);
        }
        let pos = head.wrapping_add(offset);
        let c = self.cons_chunk_for(head, pos)?;
        self.copy_out(c, pos, &mut dst[..len as usize])?;
        Ok(len as usize)
    }

    /// Discard up to `len` bytes (`svm_fifo_dequeue_drop`); returns how many were dropped.
    pub fn dequeue_drop(&self, len: u32) -> Result<usize> {
        let (head, tail, used) = self.load_cons()?;
        if used == 0 {
            return Err(SvmError::Empty);
        }
        let n = used.min(len);
        let head = head.wrapping_add(n);
        if self.release_consumed(head)? {
            let start = self.fs.chunk(self.shr.start_chunk.load(Relaxed))?;
            let hc = if start.includes(head) { start.off } else { 0 };
            self.shr.head_chunk.store(hc, Relaxed);
        }
        self.shr.head.store(head, Release);
        self.cons_moved(head, Some(tail));
        Ok(n as usize)
    }

    /// Discard everything queued.
    pub fn dequeue_drop_all(&self) -> Result<()> {
        match self.dequeue_drop(u32::MAX) {
            Ok(_) | Err(SvmError::Empty) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Number of chunks and data bytes linked from start_chunk (`svm_fifo_n_chunks`; a bounded
    /// walk for diagnostics: only meaningful while neither end is moving).
    pub fn chunk_list(&self) -> Result<(u32, u64)> {
        let mut c = self.fs.chunk(self.shr.start_chunk.load(Relaxed))?;
        let (mut n, mut bytes) = (1u32, u64::from(c.len));
        loop {
            let next = c.next();
            if next == 0 {
                return Ok((n, bytes));
            }
            if n >= walk_cap(self.size()) {
                return Err(corrupt_with(|| {
                    format!("fifo at {}: chunk list too long", self.off)
                }));
            }
            c = self.next_chunk(&c, next)?;
            n += 1;
            bytes += u64::from(c.len);
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_keep;
