//! Fifo throughput: one producer thread and one consumer thread stream through a 1 MiB fifo
//! (grown lazily from a 4 KiB first chunk, chunks recycled through the slice free lists) with
//! 64 B, 1 KiB and 64 KiB operations. Each figure is compared with a plain single-threaded
//! memcpy loop of the same size measured in the same run (a fifo transfer costs two copies).
//!
//! Two things besides the fifo decide a two-thread figure, so the bench shows both:
//!
//! - **Where the consumer puts what it reads.** Into consecutive places of a fifo-sized buffer
//!   (as the memcpy baseline writes, and as an app that keeps what it reads), or into one
//!   op-size buffer. With the fixed buffer the consumer's cache holds nothing but the ring, so
//!   every line the producer writes is one the consumer's core still holds and must give up:
//!   on some machines that hand-over, not the fifo, sets the rate (docs/benchmarking.md,
//!   "Fifo micro-benchmark").
//! - **The machine's core-to-core cost.** The `ring` column runs the plainest ring two threads
//!   can share (head and tail on their own cache lines, no chunks, no checks) with the same
//!   size, ops, memory kind, buffers and CPUs: what any ring reaches here. `fifo/ring` is the
//!   fifo's share of it.
//!
//! The threads are pinned to two CPUs (the first two this process may use): unpinned, the
//! scheduler sometimes runs both on one CPU, and the figure measures it, not the fifo. A side
//! that finds the fifo full (empty) spins briefly, then yields its CPU. The one-thread row
//! (enqueue then dequeue in one thread, no waiting at all) is the per-op cost alone.
//!
//! Run: `cargo bench -p vcl-svm --bench fifo`. `FIFO_BENCH_ROUNDS=N`: best of N runs each;
//! `FIFO_BENCH_SIZES=64,1024`: only these op sizes; `FIFO_BENCH_KEEP=0`: the cached consumer
//! releases consumed chunks at once; `FIFO_BENCH_WHOLE=0`: the cached producer grows by VPP's
//! step; `FIFO_BENCH_CPUS=2,3` (or `none`): where the two threads run (the consumer on the
//! first).
// The reference ring: two threads share a raw byte range, handed over by head and tail stores.
#![allow(unsafe_code)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
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

/// Where the consumer copies each op to.
#[derive(Clone, Copy, PartialEq)]
enum Sink {
    /// Consecutive places of a fifo-sized buffer, wrapping.
    Rotating,
    /// One op-size buffer.
    Fixed,
}

/// The consumer's destination: an op-size window into a buffer.
struct Dest {
    buf: Vec<u8>,
    at: usize,
    size: usize,
    sink: Sink,
}

impl Dest {
    fn new(size: usize, sink: Sink) -> Dest {
        let len = if sink == Sink::Rotating {
            FIFO_SIZE as usize
        } else {
            size
        };
        Dest {
            buf: vec![0; len],
            at: 0,
            size,
            sink,
        }
    }

    fn window(&mut self) -> &mut [u8] {
        &mut self.buf[self.at..self.at + self.size]
    }

    /// A full op landed: the next one goes after it (the sizes divide the buffer).
    fn advance(&mut self) {
        if self.sink == Sink::Rotating {
            self.at = (self.at + self.size) % self.buf.len();
        }
    }
}

/// The two CPUs for the consumer and the producer: `FIFO_BENCH_CPUS`, else the first two this
/// process may use; `None` when there are fewer than two or `FIFO_BENCH_CPUS=none`.
fn cpus() -> Option<[usize; 2]> {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    if let Ok(v) = std::env::var("FIFO_BENCH_CPUS") {
        let l: Vec<usize> = v.split(',').filter_map(|s| s.trim().parse().ok()).collect();
        return (l.len() == 2).then(|| [l[0], l[1]]);
    }
    let set = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let mut l = (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false));
    Some([l.next()?, l.next()?])
}

/// Pin the calling thread to `cpu` (if any).
fn pin(cpu: Option<usize>) {
    use nix::sched::{sched_setaffinity, CpuSet};
    let Some(cpu) = cpu else { return };
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        // not fatal: the figure is then as the scheduler places the threads
        let _ = sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

/// GB/s of `total` bytes moved by a consumer and a producer thread, each pinned.
fn two_threads(
    total: u64,
    cpus: Option<[usize; 2]>,
    consume: impl FnOnce() -> u64 + Send,
    produce: impl FnOnce() + Send,
) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            pin(cpus.map(|c| c[1]));
            produce();
        });
        s.spawn(move || {
            pin(cpus.map(|c| c[0]));
            black_box(consume());
        });
    });
    total as f64 / start.elapsed().as_secs_f64() / 1e9
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

fn consume(f: Fifo, mut dst: Dest, total: u64) -> u64 {
    let (mut got, mut sum) = (0u64, 0u64);
    let mut spins = 0;
    while got < total {
        let w = dst.window();
        match f.dequeue(w) {
            Ok(n) => {
                got += n as u64;
                sum = sum.wrapping_add(u64::from(w[n - 1]));
                // the producer writes whole ops into a fifo they divide, so reads are whole
                dst.advance();
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

/// Whether the cached producer grows the fifo by whole steps, as the library's writer does
/// (`Fifo::growing_whole`); `FIFO_BENCH_WHOLE=0` gives VPP's step to compare.
fn whole() -> bool {
    std::env::var("FIFO_BENCH_WHOLE").map_or(true, |v| v != "0")
}

/// GB/s through the fifo with one producer and one consumer thread; `cached`: each end keeps
/// its view of the other's position, the consumer keeps consumed chunks and the producer grows
/// by whole steps (as a session's `FifoHandle`s do).
fn fifo_rate(size: usize, cached: bool, sink: Sink, cpus: Option<[usize; 2]>) -> f64 {
    let seg = Segment::create("fifo-bench", 64 << 20, 8192).unwrap();
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, FIFO_SIZE).unwrap();
    let total = volume(size);
    // each end's cache on its own thread's stack: side by side here they shared a cache line,
    // which both ends write on every operation (a session's caches are its own thread's)
    two_threads(
        total,
        cpus,
        move || {
            let c = PosCache::new();
            let f = if cached {
                f.with_cache(&c).keeping(keep())
            } else {
                f
            };
            consume(f, Dest::new(size, sink), total)
        },
        move || {
            let c = PosCache::new();
            // as the library's writing end (`FIFO_BENCH_WHOLE=0`: VPP's growth step)
            let f = f.growing_whole(cached && whole());
            produce(if cached { f.with_cache(&c) } else { f }, size, total)
        },
    )
}

/// A position on a cache line (128 bytes: the adjacent-line prefetcher pairs lines) of its own.
#[repr(C, align(128))]
struct Line(AtomicU32);

/// The reference ring's positions; its bytes are `FIFO_SIZE` of a memfd segment (past its
/// headers), the memory a fifo lives in.
struct Ring<'a> {
    seg: &'a Segment,
    head: Line,
    tail: Line,
}

impl Ring<'_> {
    fn data(&self) -> *mut u8 {
        self.seg.at(4096, FIFO_SIZE as usize, 64).unwrap()
    }

    /// Write ops of `size` bytes (which divides `FIFO_SIZE`, so an op never wraps).
    fn produce(&self, size: usize, total: u64) {
        let (data, src, n) = (self.data(), vec![0x5au8; size], size as u32);
        let (mut tail, mut head, mut sent, mut spins) = (0u32, 0u32, 0u64, 0);
        while sent < total {
            if FIFO_SIZE - tail.wrapping_sub(head) < n {
                head = self.head.0.load(Ordering::Acquire);
                if FIFO_SIZE - tail.wrapping_sub(head) < n {
                    backoff(&mut spins);
                    continue;
                }
            }
            let at = (tail % FIFO_SIZE) as usize;
            // `at + size <= FIFO_SIZE` (size divides it), inside the range `data` vouched for;
            // those bytes are free space the consumer does not read until the release store of
            // `tail` below publishes them.
            // SAFETY: see above.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(at), size) };
            tail = tail.wrapping_add(n);
            self.tail.0.store(tail, Ordering::Release);
            sent += u64::from(n);
            spins = 0;
        }
    }

    /// Read ops of `size` bytes into `dst`.
    fn consume(&self, mut dst: Dest, total: u64) -> u64 {
        let (data, n) = (self.data(), dst.size as u32);
        let (mut head, mut tail, mut got, mut sum, mut spins) = (0u32, 0u32, 0u64, 0u64, 0);
        while got < total {
            if tail.wrapping_sub(head) < n {
                tail = self.tail.0.load(Ordering::Acquire);
                if tail.wrapping_sub(head) < n {
                    backoff(&mut spins);
                    continue;
                }
            }
            let at = (head % FIFO_SIZE) as usize;
            let w = dst.window();
            // `at + size <= FIFO_SIZE` as in `produce`; the acquire load of `tail` made these
            // bytes visible, and the producer does not write them again until the release
            // store of `head` below frees them.
            // SAFETY: see above.
            unsafe { std::ptr::copy_nonoverlapping(data.add(at), w.as_mut_ptr(), w.len()) };
            sum = sum.wrapping_add(u64::from(w[w.len() - 1]));
            dst.advance();
            head = head.wrapping_add(n);
            self.head.0.store(head, Ordering::Release);
            got += u64::from(n);
            spins = 0;
        }
        sum
    }
}

/// GB/s through the reference ring, as [`fifo_rate`] with the same buffers and CPUs.
fn ring_rate(size: usize, sink: Sink, cpus: Option<[usize; 2]>) -> f64 {
    let seg = Segment::create("ring-bench", 4 << 20, 8192).unwrap();
    let ring = Ring {
        seg: &seg,
        head: Line(AtomicU32::new(0)),
        tail: Line(AtomicU32::new(0)),
    };
    let total = volume(size);
    let r = &ring;
    two_threads(
        total,
        cpus,
        move || r.consume(Dest::new(size, sink), total),
        move || r.produce(size, total),
    )
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

/// Best of `rounds` of each figure for one op size, the runs interleaved (a loaded machine only
/// ever slows a run down).
#[derive(Default)]
struct Best {
    memcpy: f64,
    /// fifo and ring, consumer into a rotating buffer and into a fixed one
    fifo: [f64; 2],
    ring: [f64; 2],
    uncached: f64,
    one_thread: f64,
    pair_ns: f64,
}

fn measure(size: usize, rounds: u32, cpus: Option<[usize; 2]>) -> Best {
    let mut b = Best {
        pair_ns: f64::MAX,
        ..Best::default()
    };
    for _ in 0..rounds {
        b.memcpy = b.memcpy.max(memcpy_rate(size));
        for (i, sink) in [Sink::Rotating, Sink::Fixed].into_iter().enumerate() {
            b.fifo[i] = b.fifo[i].max(fifo_rate(size, true, sink, cpus));
            b.ring[i] = b.ring[i].max(ring_rate(size, sink, cpus));
        }
        b.uncached = b.uncached.max(fifo_rate(size, false, Sink::Rotating, cpus));
        let (r, ns) = fifo_rate_1t(size);
        b.one_thread = b.one_thread.max(r);
        b.pair_ns = b.pair_ns.min(ns);
    }
    b
}

fn main() {
    let rounds: u32 = std::env::var("FIFO_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let sizes: Vec<usize> = std::env::var("FIFO_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![64, 1024, 64 << 10]);
    let cpus = cpus();
    match cpus {
        Some([c, p]) => println!("consumer on CPU {c}, producer on CPU {p}; best of {rounds}"),
        None => println!("threads not pinned; best of {rounds}"),
    }
    for size in sizes {
        let b = measure(size, rounds, cpus);
        let m = b.memcpy;
        println!("\n{size} B ops: memcpy {m:.2} GB/s");
        println!(
            "  {:<36} {:>9} {:>6} {:>9} {:>6} {:>9}",
            "two threads, consumer copies into",
            "fifo GB/s",
            "ratio",
            "ring GB/s",
            "ratio",
            "fifo/ring"
        );
        for (i, what) in ["a rotating 1 MiB buffer", "one op-size buffer"]
            .iter()
            .enumerate()
        {
            let (f, r) = (b.fifo[i], b.ring[i]);
            println!(
                "  {what:<36} {f:>9.2} {:>6.2} {r:>9.2} {:>6.2} {:>9.2}",
                f / m,
                r / m,
                f / r
            );
        }
        let u = b.uncached;
        println!(
            "  {:<36} {u:>9.2} {:>6.2}",
            "rotating, positions uncached, no keep",
            u / m
        );
        println!(
            "  {:<36} {:>9.2} {:>6.2}   best {:.0} ns a pair",
            "one thread, enqueue then dequeue",
            b.one_thread,
            b.one_thread / m,
            b.pair_ns
        );
    }
}
