//! Fifo throughput: one producer thread and one consumer thread stream through a 1 MiB fifo
//! (grown lazily from a 4 KiB first chunk, chunks recycled through the slice free lists) with
//! 64 B, 1 KiB and 64 KiB operations. Each figure is compared with a plain single-threaded
//! memcpy loop of the same size measured in the same run (a fifo transfer costs two copies).
//!
//! A side that finds the fifo full (empty) spins briefly, then yields its CPU: on a loaded
//! machine with fewer free cores than threads, a pure spin burns whole timeslices while the
//! other side is descheduled and the figure measures the scheduler, not the fifo. The
//! single-thread column (enqueue then dequeue in one thread, no waiting at all) is the per-op
//! cost alone.
//!
//! Run: `cargo bench -p vcl-svm --bench fifo` (`FIFO_BENCH_ROUNDS=N`: best of N runs each;
//! `FIFO_BENCH_SIZES=64,1024`: only these op sizes; `FIFO_BENCH_KEEP=0`: the cached consumer
//! releases consumed chunks at once)

use std::hint::black_box;
use std::time::Instant;

use vcl_svm::fifo::{Fifo, PosCache};
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::{Segment, SvmError};

const FIFO_SIZE: u32 = 1 << 20;

fn volume(size: usize) -> u64 {
    match size {
        64 => 128 << 20,
        1024 => 1 << 30,
        _ => 4 << 30,
    }
}

/// Wait for the other side: spin a little, then give the CPU away.
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn produce(f: Fifo, size: usize, total: u64) {
    let src = vec![0x5au8; size];
    let mut sent = 0u64;
    let mut spins = 0;
    while sent < total {
        match f.enqueue(&src) {
            Ok(n) => {
                sent += n as u64;
                spins = 0;
            }
            Err(SvmError::Full) => backoff(&mut spins),
            Err(e) => panic!("{e}"),
        }
    }
}

fn consume(f: Fifo, size: usize, total: u64) -> u64 {
    let mut dst = vec![0u8; size];
    let (mut got, mut sum) = (0u64, 0u64);
    let mut spins = 0;
    while got < total {
        match f.dequeue(&mut dst) {
            Ok(n) => {
                got += n as u64;
                sum = sum.wrapping_add(u64::from(dst[n - 1]));
                spins = 0;
            }
            Err(SvmError::Empty) => backoff(&mut spins),
            Err(e) => panic!("{e}"),
        }
    }
    sum
}

/// Whether the cached consumer keeps consumed chunks a while, as the library's reader does
/// (`Fifo::keeping`); `FIFO_BENCH_KEEP=0` turns it off to compare.
fn keep() -> bool {
    std::env::var("FIFO_BENCH_KEEP").map_or(true, |v| v != "0")
}

/// GB/s through the fifo with one producer and one consumer thread; `cached`: each end keeps
/// its view of the other's position and the consumer keeps consumed chunks (as a session's
/// `FifoHandle` does).
fn fifo_rate(size: usize, cached: bool) -> f64 {
    let seg = Segment::create("fifo-bench", 64 << 20, 8192).unwrap();
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, FIFO_SIZE).unwrap();
    let total = volume(size);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            let c = PosCache::new();
            produce(if cached { f.with_cache(&c) } else { f }, size, total)
        });
        let c = PosCache::new();
        black_box(consume(
            if cached {
                f.with_cache(&c).keeping(keep())
            } else {
                f
            },
            size,
            total,
        ));
    });
    total as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// GB/s through the fifo in one thread: enqueue `size` bytes, dequeue them, repeat (the fifo
/// never fills, never waits: per-op cost only); and the best ns for one enqueue plus one dequeue
/// over batches of 256 (a loaded machine only ever adds to it).
fn fifo_rate_1t(size: usize) -> (f64, f64) {
    let seg = Segment::create("fifo-bench-1t", 64 << 20, 8192).unwrap();
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, FIFO_SIZE).unwrap();
    let src = vec![0x5au8; size];
    let mut dst = vec![0u8; size];
    let total = volume(size) / 4;
    let start = Instant::now();
    let mut done = 0u64;
    let mut best = f64::MAX;
    while done < total {
        let t = Instant::now();
        for _ in 0..256 {
            let n = f.enqueue(black_box(&src)).unwrap();
            let m = f.dequeue(&mut dst).unwrap();
            assert_eq!(n, m);
            black_box(&mut dst);
            done += n as u64;
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / 256.0);
    }
    (total as f64 / start.elapsed().as_secs_f64() / 1e9, best)
}

/// GB/s of a plain memcpy of `size` bytes into rotating places of a fifo-sized buffer. The
/// source sits half a page from the buffer modulo 4 KiB: glibc's `rep movsb` runs ~15x slower
/// when the destination is 1-31 bytes past the source modulo 4 KiB (docs/benchmarking.md,
/// "Copies"), and an allocation that happened to land there made the baseline 2 GB/s.
fn memcpy_rate(size: usize) -> f64 {
    let mut ring = vec![0u8; FIFO_SIZE as usize];
    let room = vec![0x5au8; size + 4096];
    let skew = (ring.as_ptr() as usize)
        .wrapping_sub(2048)
        .wrapping_sub(room.as_ptr() as usize)
        & 4095;
    let src = &room[skew..skew + size];
    let total = volume(size);
    let slots = FIFO_SIZE as usize / size;
    let start = Instant::now();
    let mut done = 0u64;
    let mut i = 0usize;
    while done < total {
        let at = (i % slots) * size;
        ring[at..at + size].copy_from_slice(black_box(src));
        black_box(&mut ring);
        done += size as u64;
        i += 1;
    }
    total as f64 / start.elapsed().as_secs_f64() / 1e9
}

fn main() {
    // FIFO_BENCH_ROUNDS=N: every figure is the best of N runs, the columns interleaved (a loaded
    // machine only ever slows a run down)
    let rounds: u32 = std::env::var("FIFO_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    println!(
        "{:>8} {:>12} {:>8} {:>12} {:>8} {:>12} {:>8}",
        "op size", "memcpy GB/s", "", "fifo GB/s", "ratio", "uncached", "ratio"
    );
    // FIFO_BENCH_SIZES=64,1024: only these op sizes (to profile one)
    let sizes: Vec<usize> = std::env::var("FIFO_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![64, 1024, 64 << 10]);
    for size in sizes {
        let (mut m, mut f, mut u, mut f1, mut ns) = (0f64, 0f64, 0f64, 0f64, f64::MAX);
        for _ in 0..rounds {
            m = m.max(memcpy_rate(size));
            f = f.max(fifo_rate(size, true));
            u = u.max(fifo_rate(size, false));
            let (r, b) = fifo_rate_1t(size);
            f1 = f1.max(r);
            ns = ns.min(b);
        }
        println!(
            "{size:>8} {m:>12.2} {:>8} {f:>12.2} {:>8.2} {u:>12.2} {:>8.2}   1-thread {f1:.2} ({:.2}), best {ns:.0} ns/pair",
            "",
            f / m,
            u / m,
            f1 / m
        );
    }
}
