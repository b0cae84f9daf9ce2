//! Chunk free lists of a slice and VPP v26.06's chunk allocation policy.
//!
//! Free lists are lock-free stacks shared by VPP's threads and the app: the head word carries a
//! 16-bit ABA tag in bits 48..63 that every push and pop increments. Pops and pushes use a
//! strong CAS (release on success, acquire on failure) after an acquire load. Fresh chunks are
//! carved in batches with a CAS on `byte_index`. Counters follow VPP: `n_fl_chunk_bytes` relaxed,
//! `n_cached_bytes` release, `num_chunks` statistics only.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{
    corrupt_with, fl_index, fl_size, FifoSegment, FifoSegmentSlice, CHUNK_HDR_SIZE,
    FIFO_SEGMENT_ALLOC_BATCH_SIZE, FL_HEAD_MASK, FL_TAG_INC, FL_TAG_MASK, FS_CHUNK_VEC_LEN,
    FS_MIN_CHUNK_SZ,
};
use crate::chunk::ChunkRef;
use crate::segment::Result;

impl<'a> FifoSegment<'a> {
    /// Pop one chunk from free list `fl`. Does not touch the byte counters (callers do).
    pub(crate) fn fl_pop(&self, fss: &FifoSegmentSlice, fl: usize) -> Result<Option<ChunkRef<'a>>> {
        let head = &fss.free_chunks[fl];
        let mut old = head.load(Acquire);
        loop {
            let off = old & FL_HEAD_MASK;
            if off == 0 {
                return Ok(None);
            }
            let c = self.chunk(off)?;
            let next = c.hdr.next.load(Relaxed);
            if c.len != fl_size(fl) || next > FL_HEAD_MASK {
                // Another thread may have popped and reused `c` since our load; only a head that
                // is still the same proves the list itself is bad.
                let now = head.load(Acquire);
                if now == old {
                    return Err(corrupt_with(|| {
                        format!(
                            "free list {fl}: chunk at {off} has length {} and next {next:#x}",
                            c.len
                        )
                    }));
                }
                old = now;
                continue;
            }
            let new = next + (old.wrapping_add(FL_TAG_INC) & FL_TAG_MASK);
            match head.compare_exchange(old, new, Release, Acquire) {
                Ok(_) => {
                    c.hdr.next.store(0, Relaxed);
                    return Ok(Some(c));
                }
                Err(now) => old = now,
            }
        }
    }

    /// Push the list `first ..= last` (already linked through `next`) onto free list `fl`.
    pub(crate) fn fl_push_list(
        &self,
        fss: &FifoSegmentSlice,
        fl: usize,
        first: u64,
        last: &ChunkRef<'a>,
    ) {
        let head = &fss.free_chunks[fl];
        let mut old = head.load(Acquire);
        loop {
            last.hdr.next.store(old & FL_HEAD_MASK, Relaxed);
            let new = first + (old.wrapping_add(FL_TAG_INC) & FL_TAG_MASK);
            match head.compare_exchange(old, new, Release, Acquire) {
                Ok(_) => return,
                Err(now) => old = now,
            }
        }
    }

    /// Push one chunk onto the free list of its size class; returns that class's size.
    pub(crate) fn fl_push(&self, fss: &FifoSegmentSlice, c: &ChunkRef<'a>) -> u32 {
        let fl = fl_index(c.len);
        self.fl_push_list(fss, fl, c.off, c);
        fl_size(fl)
    }

    /// Account bytes taken from the free lists.
    fn fl_bytes_sub(&self, fss: &FifoSegmentSlice, n: u64) {
        fss.n_fl_chunk_bytes.fetch_sub(n, Relaxed);
        self.fsh.n_cached_bytes.fetch_sub(n, Release);
    }

    /// Account bytes returned to the free lists.
    fn fl_bytes_add(&self, fss: &FifoSegmentSlice, n: u64) {
        fss.n_fl_chunk_bytes.fetch_add(n, Relaxed);
        self.fsh.n_cached_bytes.fetch_add(n, Release);
    }

    /// Carve `batch` fresh chunks of class `fl` and push them onto free list `fl`.
    pub(crate) fn carve_chunk_batch(
        &self,
        fss: &FifoSegmentSlice,
        fl: usize,
        batch: u32,
    ) -> Result<bool> {
        if batch == 0 {
            // VPP would carve nothing and then empty the list; refuse instead.
            return Ok(false);
        }
        let size = fl_size(fl);
        let stride = CHUNK_HDR_SIZE + u64::from(size);
        let Some(start) = self.carve(stride * u64::from(batch), 8) else {
            return Ok(false);
        };
        let mut prev = 0u64;
        for j in 0..u64::from(batch) {
            let off = start + j * stride;
            let hdr = crate::chunk::chunk_hdr(self.seg, off)?;
            hdr.start_byte.store(0, Relaxed);
            hdr.length.store(size, Relaxed);
            hdr.next.store(prev, Relaxed);
            prev = off;
        }
        let last = self.chunk(start)?;
        self.fl_push_list(fss, fl, prev, &last);
        fss.num_chunks[fl].fetch_add(batch, Relaxed);
        self.fl_bytes_add(fss, u64::from(batch) * u64::from(size));
        Ok(true)
    }

    /// Return a validated list of chunks (`first`, linked by `next`, `n` chunks) to the slice's
    /// free lists, one push per chunk, and credit the byte counters.
    pub(crate) fn collect_n(&self, fss: &FifoSegmentSlice, first: u64, n: u32) -> Result<()> {
        let mut off = first;
        let mut total = 0u64;
        for _ in 0..n {
            let c = self.chunk(off)?;
            off = c.hdr.next.load(Acquire);
            total += u64::from(self.fl_push(fss, &c));
        }
        self.fl_bytes_add(fss, total);
        Ok(())
    }

    /// Return a chunk list ending with `next == 0` to slice `slice_index`. The whole list is
    /// checked first (bounded walk), so a corrupt list is refused without side effects.
    pub fn collect_chunks(&self, slice_index: u32, first: u64) -> Result<()> {
        let fss = self.slice(slice_index)?;
        let cap = self.max_byte_index / u64::from(FS_MIN_CHUNK_SZ) + 1;
        let mut n = 0u32;
        let mut off = first;
        while off != 0 {
            if u64::from(n) >= cap {
                return Err(corrupt_with(|| {
                    format!("chunk list at {first} does not end")
                }));
            }
            off = self.chunk(off)?.hdr.next.load(Acquire);
            n += 1;
        }
        self.collect_n(fss, first, n)
    }

    /// Allocate at least `data_bytes` of chunk space from slice `slice_index`, possibly as a
    /// linked list of several chunks (last `next == 0`). `Ok(None)` when memory is exhausted.
    pub fn alloc_chunk(&self, slice_index: u32, data_bytes: u32) -> Result<Option<ChunkRef<'a>>> {
        let fss = self.slice(slice_index)?;
        let fl = fl_index(data_bytes);
        let size = fl_size(fl);
        if data_bytes <= size {
            if let Some(c) = self.fl_pop(fss, fl)? {
                self.fl_bytes_sub(fss, u64::from(size));
                return Ok(Some(c));
            }
        }
        self.alloc_chunk_slow(fss, fl, data_bytes)
    }

    /// Free lists did not have one chunk of the class: try a multi-chunk from the lists, then a
    /// carve of a batch of the class, then 4 KiB chunks — in VPP's order.
    fn alloc_chunk_slow(
        &self,
        fss: &FifoSegmentSlice,
        fl: usize,
        data_bytes: u32,
    ) -> Result<Option<ChunkRef<'a>>> {
        let n_free = self.free_bytes();
        let size = fl_size(fl);
        let fl_bytes = || fss.n_fl_chunk_bytes.load(Relaxed);
        if data_bytes > size && u64::from(data_bytes) <= fl_bytes() {
            if let Some(c) = self.alloc_multi_chunk(fss, data_bytes)? {
                return Ok(Some(c));
            }
        }
        if u64::from(size) <= n_free {
            let batch = if u64::from(size) * u64::from(FIFO_SEGMENT_ALLOC_BATCH_SIZE) <= n_free {
                FIFO_SEGMENT_ALLOC_BATCH_SIZE
            } else {
                1
            };
            if self.carve_chunk_batch(fss, fl, batch)? && data_bytes <= size {
                if let Some(c) = self.fl_pop(fss, fl)? {
                    self.fl_bytes_sub(fss, u64::from(size));
                    return Ok(Some(c));
                }
            }
        }
        // Fall back to a multi-chunk close to what was asked for.
        if u64::from(data_bytes) <= fl_bytes() {
            if let Some(c) = self.alloc_multi_chunk(fss, data_bytes)? {
                return Ok(Some(c));
            }
            let batch = (n_free / u64::from(FS_MIN_CHUNK_SZ)).min(u64::from(u32::MAX)) as u32;
            if !self.carve_chunk_batch(fss, 0, batch)? {
                return Ok(None);
            }
        }
        if u64::from(data_bytes) <= fl_bytes().wrapping_add(n_free) {
            let min = u64::from(FS_MIN_CHUNK_SZ);
            if n_free < min {
                return Ok(None);
            }
            // VPP computes this in wrapping uword arithmetic truncated to u32.
            let batch = (u64::from(data_bytes).wrapping_sub(fl_bytes()) / min) as u32;
            let batch = batch
                .wrapping_add(1)
                .min((n_free / min).min(u64::from(u32::MAX)) as u32);
            if !self.carve_chunk_batch(fss, 0, batch)? {
                return Ok(None);
            }
            return self.alloc_multi_chunk(fss, data_bytes);
        }
        Ok(None)
    }

    /// Build a chunk list of at least `data_bytes` from the free lists, starting one class below
    /// the request and moving to smaller classes; as a last resort one chunk a class above.
    fn alloc_multi_chunk(
        &self,
        fss: &FifoSegmentSlice,
        data_bytes: u32,
    ) -> Result<Option<ChunkRef<'a>>> {
        let mut fl = fl_index(data_bytes);
        let mut size = fl_size(fl);
        if fl > 0 && data_bytes <= size {
            fl -= 1;
            size >>= 1;
        }
        let mut req = data_bytes;
        let mut first: Option<ChunkRef<'a>> = None;
        let (mut n_alloc, mut n_chunks) = (0u64, 0u32);
        while req > 0 {
            if let Some(c) = self.fl_pop(fss, fl)? {
                c.hdr.next.store(first.map_or(0, |f| f.off), Relaxed);
                first = Some(c);
                n_alloc += u64::from(size);
                n_chunks += 1;
                req -= size.min(req);
                continue;
            }
            if fl > 0 {
                fl -= 1;
                size >>= 1;
                continue;
            }
            // Not enough small chunks: give back what we took, try one larger chunk.
            if let Some(f) = first {
                self.push_back_list(fss, f, n_chunks)?;
            }
            let up = fl_index(data_bytes) + 1;
            if up >= FS_CHUNK_VEC_LEN {
                return Ok(None);
            }
            let Some(c) = self.fl_pop(fss, up)? else {
                return Ok(None);
            };
            self.fl_bytes_sub(fss, u64::from(fl_size(up)));
            return Ok(Some(c));
        }
        self.fl_bytes_sub(fss, n_alloc);
        Ok(first)
    }

    /// Undo a partial multi-chunk: push each chunk back to its class (counters were not yet
    /// debited). We built the list, but a corrupt free list can hand out one chunk twice and
    /// make it cyclic, so the walk is bounded by the number of chunks popped.
    fn push_back_list(&self, fss: &FifoSegmentSlice, first: ChunkRef<'a>, n: u32) -> Result<()> {
        let mut cur = first;
        for i in 0..n {
            let next = cur.hdr.next.load(Relaxed);
            self.fl_push(fss, &cur);
            if next == 0 || i + 1 == n {
                break;
            }
            cur = self.chunk(next)?;
        }
        Ok(())
    }

    /// Carve `batch` chunks of `chunk_size` into slice `slice_index` ahead of time
    /// (`fifo_segment_prealloc_fifo_chunks`).
    pub fn prealloc_chunks(&self, slice_index: u32, chunk_size: u32, batch: u32) -> Result<bool> {
        let max = 1u64 << self.fsh.max_log2_fifo_size.load(Relaxed).min(40);
        if chunk_size < FS_MIN_CHUNK_SZ || u64::from(chunk_size) > max {
            return Ok(false);
        }
        let fss = self.slice(slice_index)?;
        self.carve_chunk_batch(fss, fl_index(chunk_size), batch)
    }
}
