//! Several threads allocate and release chunks of one slice concurrently (pops, multi-chunk
//! lists, batch carves, pushes). Each thread stamps the chunks it holds and checks the stamp
//! before releasing them, so a chunk handed to two owners at once is caught; at the end every
//! carved chunk must be on a free list exactly once and the byte counters must agree.
// unsafe here: writes and reads tags straight into shared fifo memory.
#![allow(unsafe_code)]

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Barrier;

use vcl_svm::fifo_segment::{fl_size, FifoSegment, FL_HEAD_MASK, FS_CHUNK_VEC_LEN};
use vcl_svm::Segment;

const THREADS: u64 = 4;
const ROUNDS: u32 = if cfg!(debug_assertions) {
    30_000
} else {
    400_000
};

/// Allocate `n` bytes, stamp every chunk of the list with `tag`; returns the list head.
fn take(fs: &FifoSegment, n: u32, tag: u64) -> Option<u64> {
    let first = fs.alloc_chunk(0, n).unwrap()?;
    let mut off = first.off;
    while off != 0 {
        let c = fs.chunk(off).unwrap();
        c.hdr.start_byte.store(tag as u32, Relaxed);
        let p = fs.segment().at(off + 24, 8, 8).unwrap();
        // SAFETY: `at` checked bounds and alignment of these 8 data bytes of a chunk we own.
        unsafe { (p as *mut u64).write_volatile(tag) };
        off = c.hdr.next.load(Relaxed);
    }
    Some(first.off)
}

/// Check the stamps of a list we own, then give it back.
fn give(fs: &FifoSegment, first: u64, tag: u64) {
    let mut off = first;
    while off != 0 {
        let c = fs.chunk(off).unwrap();
        let p = fs.segment().at(off + 24, 8, 8).unwrap();
        // SAFETY: as in `take`; the chunk is still ours.
        let seen = unsafe { (p as *const u64).read_volatile() };
        assert_eq!(seen, tag, "chunk at {off} was handed out twice");
        assert_eq!(c.hdr.start_byte.load(Relaxed), tag as u32);
        off = c.hdr.next.load(Relaxed);
    }
    fs.collect_chunks(0, first).unwrap();
}

/// Returns how many allocations succeeded.
fn worker(fs: FifoSegment, t: u64) -> u32 {
    let mut ok = 0;
    let mut held: Vec<(u64, u64)> = Vec::new();
    let mut x = t.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for round in 0..ROUNDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = match x % 8 {
            0..=3 => 4096,
            4 | 5 => 1 + (x >> 8) as u32 % 20_000,
            6 => 1 + (x >> 8) as u32 % 200_000,
            _ => 16384,
        };
        let tag = (t << 40) | u64::from(round);
        if let Some(first) = take(&fs, size, tag) {
            held.push((first, tag));
            ok += 1;
        }
        if held.len() > 6 || (x >> 20) % 3 == 0 {
            let i = (x >> 24) as usize % held.len().max(1);
            if i < held.len() {
                let (first, tag) = held.swap_remove(i);
                give(&fs, first, tag);
            }
        }
    }
    for (first, tag) in held {
        give(&fs, first, tag);
    }
    ok
}

#[test]
fn concurrent_pops_and_pushes_lose_and_duplicate_nothing() {
    let seg = Segment::create("fifo-stress", 48 << 20, 8192).unwrap();
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let barrier = Barrier::new(THREADS as usize);
    let ok: u32 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    worker(fs, t + 1)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(
        ok > ROUNDS * THREADS as u32 / 2,
        "only {ok} allocations succeeded"
    );
    let fss = fs.slice(0).unwrap();
    let mut seen = HashSet::new();
    let mut listed = 0u64;
    for fl in 0..FS_CHUNK_VEC_LEN {
        let mut off = fss.free_chunks[fl].load(Relaxed) & FL_HEAD_MASK;
        let mut n = 0u32;
        while off != 0 {
            assert!(
                seen.insert(off),
                "chunk at {off} is on the free lists twice"
            );
            let c = fs.chunk(off).unwrap();
            assert_eq!(c.len, fl_size(fl), "chunk at {off} on the wrong list");
            off = c.hdr.next.load(Relaxed);
            n += 1;
        }
        assert_eq!(
            n,
            fss.num_chunks[fl].load(Relaxed),
            "chunks lost from list {fl}"
        );
        listed += u64::from(n) * u64::from(fl_size(fl));
    }
    assert_eq!(fs.cached_bytes(), listed);
    assert_eq!(fss.n_fl_chunk_bytes.load(Relaxed), listed);
}
