//! Fifo headers, VPP's side: allocation from a slice's `free_fifos` list (carved 32 at a time),
//! fifo initialisation (`svm_fifo_init`) and release; and, either side's, the producer's growth
//! by new chunks (by VPP's step, or whole ones: [`Fifo::growing_whole`]), the consumer's
//! release of consumed chunks to the slice's free lists, and how long a keeping consumer holds
//! them first ([`Fifo::keeping`]). The app never allocates fifos; the test peer does, with
//! exactly VPP's policy, so the app sees VPP-shaped segments.
//!
//! `free_fifos` is not atomic in VPP (each slice is only touched by its own VPP thread); we use
//! relaxed atomics with the same single-writer assumption.
// Shared memory / fds: zeroes freshly carved fifo memory.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering::{Relaxed, Release};

use super::{pos_geq, pos_gt, pos_lt, walk_cap, ChunkRef, Fifo, SvmFifoShared};
use crate::fifo_segment::{
    corrupt, corrupt_with, FifoSegment, FifoSegmentSlice, FIFO_SEGMENT_ALLOC_BATCH_SIZE,
};
use crate::segment::{Result, SvmError};
use crate::shared::shared_ref;

const FIFO_HDR_SIZE: u64 = std::mem::size_of::<SvmFifoShared>() as u64;

/// The largest `min_alloc` VPP sets (and the largest whole step, [`Fifo::growing_whole`]).
pub const MIN_ALLOC_MAX: u32 = 64 << 10;

/// Smallest growth step of a fifo of `size` bytes: size/8 above 32 KiB, else 4 KiB; at most
/// [`MIN_ALLOC_MAX`].
pub fn min_alloc_for(size: u32) -> u32 {
    let m = if size > 32 << 10 { size >> 3 } else { 4096 };
    m.min(MIN_ALLOC_MAX)
}

impl<'a> FifoSegment<'a> {
    fn zero(&self, off: u64, len: u64) -> Result<()> {
        let p = self.seg.at(off, len as usize, 1)?;
        // SAFETY: `at` checked `off .. off + len` lies in the mapping; the bytes are a fifo header
        // we own (carved or popped from our slice's list) and zero is valid for all its atomics.
        unsafe { std::ptr::write_bytes(p, 0, len as usize) };
        Ok(())
    }

    /// Carve `batch` zeroed fifo headers (64-byte aligned) onto the slice's `free_fifos` list.
    fn carve_fifo_hdr_batch(&self, fss: &FifoSegmentSlice, batch: u32) -> Result<bool> {
        if batch == 0 {
            return Ok(false);
        }
        let Some(start) = self.carve(FIFO_HDR_SIZE * u64::from(batch), 64) else {
            return Ok(false);
        };
        self.zero(start, FIFO_HDR_SIZE * u64::from(batch))?;
        let mut head = 0u64;
        for i in 0..u64::from(batch) {
            let off = start + i * FIFO_HDR_SIZE;
            let shr: &SvmFifoShared = shared_ref(self.seg, off)?;
            shr.next.store(head, Relaxed);
            head = off;
        }
        let first: &SvmFifoShared = shared_ref(self.seg, start)?;
        first.next.store(fss.free_fifos.load(Relaxed), Relaxed);
        fss.free_fifos.store(head, Relaxed);
        Ok(true)
    }

    /// Take a zeroed fifo header from the slice, carving a batch when the list is empty.
    fn pop_fifo_hdr(&self, fss: &FifoSegmentSlice) -> Result<Option<u64>> {
        if fss.free_fifos.load(Relaxed) == 0
            && !self.carve_fifo_hdr_batch(fss, FIFO_SEGMENT_ALLOC_BATCH_SIZE)?
        {
            return Ok(None);
        }
        let off = fss.free_fifos.load(Relaxed);
        let shr: &SvmFifoShared = shared_ref(self.seg, off)?;
        fss.free_fifos.store(shr.next.load(Relaxed), Relaxed);
        self.zero(off, FIFO_HDR_SIZE)?;
        Ok(Some(off))
    }

    fn push_fifo_hdr(&self, fss: &FifoSegmentSlice, off: u64, shr: &SvmFifoShared) {
        shr.next.store(fss.free_fifos.load(Relaxed), Relaxed);
        fss.free_fifos.store(off, Relaxed);
    }

    /// Carve `batch` fifo headers ahead of time (`fifo_segment_prealloc_fifo_hdrs`).
    pub fn prealloc_fifo_hdrs(&self, slice_index: u32, batch: u32) -> Result<bool> {
        self.carve_fifo_hdr_batch(self.slice(slice_index)?, batch)
    }

    /// Allocate and initialise a fifo of `data_bytes` in slice `slice_index`, like
    /// `fifo_segment_alloc_fifo_w_slice`: the first chunk holds max(pct_first_alloc% of the size,
    /// 4 KiB); the fifo grows lazily. `Full` when the segment has no memory.
    pub fn alloc_fifo(&self, slice_index: u32, data_bytes: u32) -> Result<Fifo<'a>> {
        let max_log2 = self.fsh.max_log2_fifo_size.load(Relaxed).min(40);
        if u64::from(data_bytes) > 1u64 << max_log2 {
            return Err(SvmError::Full);
        }
        let fss = self.slice(slice_index)?;
        let pct = u32::from(self.fsh.pct_first_alloc.load(Relaxed));
        let min_size = (pct.wrapping_mul(data_bytes) / 100).max(4096);
        let Some(off) = self.pop_fifo_hdr(fss)? else {
            return Err(SvmError::Full);
        };
        let shr: &'a SvmFifoShared = shared_ref(self.seg, off)?;
        let Some(c) = self.alloc_chunk(slice_index, min_size)? else {
            self.push_fifo_hdr(fss, off, shr);
            return Err(SvmError::Full);
        };
        shr.start_chunk.store(c.off, Relaxed);
        shr.slice_index.store(slice_index as u8, Relaxed);
        let f = Fifo::from_parts(*self, shr, off);
        self.init_fifo(&f, data_bytes)?;
        self.fsh.n_active_fifos.fetch_add(1, Release);
        fss.virtual_mem.fetch_add(u64::from(data_bytes), Relaxed);
        Ok(f)
    }

    /// `svm_fifo_init`: set size and min_alloc, reset positions to 0, point head/tail chunks at
    /// the start chunk, number the chunks' start bytes and set end_chunk to the last one.
    pub fn init_fifo(&self, f: &Fifo<'a>, size: u32) -> Result<()> {
        let shr = f.shared();
        shr.size.store(size, Relaxed);
        shr.head.store(0, Relaxed);
        shr.tail.store(0, Relaxed);
        let start = shr.start_chunk.load(Relaxed);
        shr.head_chunk.store(start, Relaxed);
        shr.tail_chunk.store(start, Relaxed);
        shr.min_alloc.store(min_alloc_for(size), Relaxed);
        let cap = self.max_byte_index / 4096 + 1;
        let Some(last) = self.number_chunks(self.chunk(start)?, 0, cap)? else {
            return Err(corrupt_with(|| {
                format!("fifo at {}: chunk list does not end", f.offset())
            }));
        };
        shr.end_chunk.store(last.off, Release);
        Ok(())
    }

    /// Number a chunk list from `c` on: start bytes from `pos`, rb-tree indices reset. The
    /// last chunk, or `None` when `cap` chunks did not reach the end (a corrupt free list made
    /// the list cyclic).
    fn number_chunks(
        &self,
        mut c: ChunkRef<'a>,
        mut pos: u32,
        cap: u64,
    ) -> Result<Option<ChunkRef<'a>>> {
        for _ in 0..cap {
            c.hdr.start_byte.store(pos, Relaxed);
            c.hdr.enq_rb_index.store(0, Relaxed);
            c.hdr.deq_rb_index.store(0, Relaxed);
            pos = pos.wrapping_add(c.len);
            let next = c.hdr.next.load(Relaxed);
            if next == 0 {
                return Ok(Some(c));
            }
            c = self.chunk(next)?;
        }
        Ok(None)
    }

    /// Release a fifo: its chunks go back to the slice's free lists, its header to `free_fifos`.
    pub fn free_fifo(&self, f: Fifo<'a>) -> Result<()> {
        let shr = f.shared();
        let slice_index = u32::from(shr.slice_index.load(Relaxed));
        let fss = self.slice(slice_index)?;
        self.collect_chunks(slice_index, shr.start_chunk.load(Relaxed))?;
        for p in [
            &shr.start_chunk,
            &shr.end_chunk,
            &shr.head_chunk,
            &shr.tail_chunk,
        ] {
            p.store(0, Relaxed);
        }
        self.push_fifo_hdr(fss, f.offset(), shr);
        fss.virtual_mem
            .fetch_sub(u64::from(shr.size.load(Relaxed)), Relaxed);
        self.fsh.n_active_fifos.fetch_sub(1, Release);
        Ok(())
    }
}

/// Most consumed bytes a [`Fifo::keeping`] consumer keeps linked behind the head. A released
/// chunk should have left the reader's L2 (1 MiB per core on the Zen 4 host measured), and
/// every byte the reader takes from the fifo it also writes into its own buffer, so a kept
/// half-L2 (512 KiB, the former cap) was still partly in it. Over a real VPP, cut-through,
/// near CPUs, 4 MB fifos: 1 KiB writes ~154 Gbit/s against ~135 with 512 KiB, 64 KiB ~253
/// against ~209; 2 MiB gave no more than 1 MiB (docs/benchmarking.md, "Chunk reuse").
pub const KEEP_MAX: u32 = 1 << 20;

impl<'a> Fifo<'a> {
    /// The same fifo, whose consumer releases a consumed chunk only once it lies
    /// [`Fifo::kept_bytes`] behind the head, instead of as soon as the head leaves it.
    ///
    /// The slice's chunk free lists are stacks: a chunk the consumer releases is the next one
    /// the producer grows the fifo with. Released at once, that chunk's lines are still in the
    /// consumer's cache, so every line the producer writes must first be taken from the other
    /// core, and a stream cycles through two or three chunks. Kept until it is [`KEEP_MAX`]
    /// behind, a released chunk has left the consumer's L2 and comes from the shared cache: a
    /// 64 KiB stream through the fifo benchmark ran at ~12.5 GB/s released at once and ~24
    /// GB/s kept (docs/benchmarking.md, "Chunk reuse"). The consumer releases what it keeps
    /// when it goes idle ([`Fifo::release_kept`]); nothing of VPP's reads the chunks before
    /// the head.
    #[inline]
    pub fn keeping(self, keep: bool) -> Fifo<'a> {
        Fifo { keep, ..self }
    }

    /// The same fifo, whose enqueues grow it by a whole `min_alloc` (an eighth of the size, at
    /// most 64 KiB), or by VPP's step when the segment has no room for that. VPP's producer
    /// steps by what is left of the size when that is less than `min_alloc`, so that the
    /// chunks never hold more than the size; a fifo whose reader lags stays nearly full and
    /// then grows 4 KiB at a time, a chunk change every few writes and a free-list pop and
    /// push per chunk on either side. Whole steps let the chunks reach at most `min_alloc`
    /// past the size; nothing of VPP's, as consumer, relies on that bound (docs/wire.md,
    /// "Chunks past the tail"). For the app's writing ends; the test peer, as VPP, keeps
    /// VPP's step.
    #[inline]
    pub fn growing_whole(self, whole: bool) -> Fifo<'a> {
        Fifo { whole, ..self }
    }

    /// How far behind the head a [`Fifo::keeping`] consumer keeps consumed chunks while it
    /// reads: the fifo's size, at most [`KEEP_MAX`]. A reader that leaves bytes queued trims
    /// that to [`Fifo::kept_idle_bytes`] ([`Fifo::trim_kept`]); one that drains the fifo keeps
    /// it until its app's library gives the chunks back (a few sessions per worker at most).
    /// With a 1 MiB fifo (VCL's default), a whole fifo's worth is what puts a released chunk
    /// out of the reader's L2: cut-through 64 KiB writes ran at 105-112 Gbit/s keeping 1 MiB,
    /// 64-65 keeping half and 55-64 keeping a quarter (docs/benchmarking.md, "Chunk reuse").
    #[inline]
    pub fn kept_bytes(&self) -> u32 {
        self.keep_limits(self.size()).1
    }

    /// What a [`Fifo::keeping`] consumer that left bytes queued keeps behind the head: a
    /// quarter of the fifo, at most [`KEEP_MAX`], so such a fifo holds at most 25% more chunk
    /// memory however many sessions are in that state.
    #[inline]
    pub fn kept_idle_bytes(&self) -> u32 {
        self.keep_limits(self.size()).0
    }

    /// ([`Fifo::kept_idle_bytes`], [`Fifo::kept_bytes`]) of a fifo of `size` bytes.
    #[inline]
    fn keep_limits(&self, size: u32) -> (u32, u32) {
        if self.keep {
            ((size / 4).min(KEEP_MAX), size.min(KEEP_MAX))
        } else {
            (0, 0)
        }
    }

    /// Consumer: give back the consumed chunks more than [`Fifo::kept_idle_bytes`] behind the
    /// head (after a read that left bytes queued).
    pub fn trim_kept(&self) -> Result<()> {
        // after every read that leaves bytes queued: one load of the size, whose line the
        // writer keeps dirtying (both are 0 for a consumer that keeps nothing)
        let (idle, kept) = self.keep_limits(self.size());
        if idle < kept {
            self.release_before(self.shr.head.load(Relaxed).wrapping_sub(idle))?;
        }
        Ok(())
    }

    /// Consumer: whether a dequeue that began in chunk `c` and moved the head to `head` may
    /// have something to release. Nothing while the head stays in its chunk when that is the
    /// start chunk, or any chunk of a consumer that keeps consumed ones (it releases when the
    /// head leaves one).
    #[inline]
    pub(super) fn leaves(&self, c: &ChunkRef<'_>, head: u32) -> bool {
        !(pos_lt(head, c.end()) && (self.keep || c.off == self.shr.start_chunk.load(Relaxed)))
    }

    /// Consumer: when `head` (less what a [`Fifo::keeping`] consumer keeps) has moved past the
    /// first chunk, unlink the chunks before the one holding it (never the last one) and push
    /// them onto the slice's free lists. Returns whether the start chunk was inspected past its
    /// end.
    pub(super) fn release_consumed(&self, head: u32) -> Result<bool> {
        self.release_before(head.wrapping_sub(self.kept_bytes()))
    }

    /// Consumer: release every consumed chunk a [`Fifo::keeping`] consumer kept, as a consumer
    /// that keeps none would have (call it when the reader goes idle).
    pub fn release_kept(&self) -> Result<()> {
        if self.keep {
            self.release_before(self.shr.head.load(Relaxed))?;
        }
        Ok(())
    }

    /// [`Fifo::release_consumed`] up to the chunk holding `head`.
    fn release_before(&self, head: u32) -> Result<bool> {
        let start = self.fs.chunk(self.shr.start_chunk.load(Relaxed))?;
        if !pos_geq(head, start.end()) {
            return Ok(false);
        }
        let mut c = start;
        let mut prev: Option<ChunkRef<'a>> = None;
        let mut n = 0u32;
        loop {
            let next = c.next();
            if next == 0 {
                break;
            }
            if n >= walk_cap(self.size()) {
                return Err(corrupt_with(|| {
                    format!("fifo at {}: chunk list too long", self.off)
                }));
            }
            prev = Some(c);
            c = self.next_chunk(&c, next)?;
            n += 1;
            if c.includes(head) {
                break;
            }
        }
        let Some(prev) = prev else { return Ok(true) };
        prev.hdr.next.store(0, Relaxed);
        self.shr.start_chunk.store(c.off, Relaxed);
        let fss = self.fs.slice(self.slice_index()?)?;
        self.fs.collect_n(fss, start.off, n)?;
        Ok(true)
    }

    /// Producer: make room for `len` bytes past `tail` by linking new chunks after end_chunk.
    /// `Ok(false)` when the segment has no memory.
    pub(super) fn grow(
        &self,
        head: u32,
        tail: u32,
        len: u32,
        end: ChunkRef<'a>,
        size: u32,
    ) -> Result<bool> {
        let free_alloced = end.end().wrapping_sub(tail);
        if pos_gt(tail, end.end()) {
            return Err(corrupt_with(|| {
                format!("fifo at {}: tail {tail} past end chunk", self.off)
            }));
        }
        let need = len.wrapping_sub(free_alloced);
        // VPP's step: min_alloc, or what is left of the size when that is less; a whole step
        // (`growing_whole`) is min_alloc (at most 64 KiB, as VPP sets it, whatever the shared
        // word says), VPP's when the segment has no room for it
        let step = self.shr.min_alloc.load(Relaxed).min(size);
        let vpp = step
            .min(size.saturating_sub(tail.wrapping_sub(head)))
            .max(need);
        let slice = self.slice_index()?;
        let mut want = if self.whole {
            step.min(MIN_ALLOC_MAX).max(need)
        } else {
            vpp
        };
        let mut got = self.fs.alloc_chunk(slice, want)?;
        if got.is_none() && vpp < want {
            want = vpp;
            got = self.fs.alloc_chunk(slice, want)?;
        }
        let Some(first) = got else {
            return Ok(false);
        };
        // A legit allocation is one chunk or a multi-chunk of about `want` bytes in >= 4 KiB
        // chunks; a longer list means a corrupt free list made it cyclic.
        let cap = u64::from(want >> 12) + 16;
        let Some(last) = self.fs.number_chunks(first, end.end(), cap)? else {
            return Err(corrupt("allocated chunk list does not end".into()));
        };
        // Release: the consumer that follows end.next must see the start bytes.
        end.hdr.next.store(first.off, Release);
        self.shr.end_chunk.store(last.off, Relaxed);
        if self.shr.tail_chunk.load(Relaxed) == 0 {
            self.shr.tail_chunk.store(first.off, Relaxed);
        }
        Ok(true)
    }
}
