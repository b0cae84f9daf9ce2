//! Fifo throughput: one producer thread and one consumer thread stream through a 1 MiB fifo
//! (grown lazily from a 4 KiB first chunk, chunks recycled through the slice free lists) with
//! 64 B, 1 KiB and 64 KiB operations. Each figure is compared with a plain single-threaded
//! memcpy loop of the same size measured in the same run (a fifo transfer costs two copies).
//!
//! Run: `cargo bench -p vcl-svm --bench fifo`

use std::hint::black_box;
use std::time::Instant;

use vcl_svm::fifo::Fifo;
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

fn produce(f: Fifo, size: usize, total: u64) {
    let src = vec![0x5au8; size];
    let mut sent = 0u64;
    while sent < total {
        match f.enqueue(&src) {
            Ok(n) => sent += n as u64,
            Err(SvmError::Full) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn consume(f: Fifo, size: usize, total: u64) -> u64 {
    let mut dst = vec![0u8; size];
    let (mut got, mut sum) = (0u64, 0u64);
    while got < total {
        match f.dequeue(&mut dst) {
            Ok(n) => {
                got += n as u64;
                sum = sum.wrapping_add(u64::from(dst[n - 1]));
            }
            Err(SvmError::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
    sum
}

/// GB/s through the fifo with one producer and one consumer thread.
fn fifo_rate(size: usize) -> f64 {
    let seg = Segment::create("fifo-bench", 64 << 20, 8192).unwrap();
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, FIFO_SIZE).unwrap();
    let total = volume(size);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| produce(f, size, total));
        black_box(consume(f, size, total));
    });
    total as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// GB/s of a plain memcpy of `size` bytes into rotating places of a fifo-sized buffer.
fn memcpy_rate(size: usize) -> f64 {
    let src = vec![0x5au8; size];
    let mut ring = vec![0u8; FIFO_SIZE as usize];
    let total = volume(size);
    let slots = FIFO_SIZE as usize / size;
    let start = Instant::now();
    let mut done = 0u64;
    let mut i = 0usize;
    while done < total {
        let at = (i % slots) * size;
        ring[at..at + size].copy_from_slice(black_box(&src));
        black_box(&mut ring);
        done += size as u64;
        i += 1;
    }
    total as f64 / start.elapsed().as_secs_f64() / 1e9
}

fn main() {
    println!(
        "{:>8} {:>12} {:>12} {:>8}",
        "op size", "fifo GB/s", "memcpy GB/s", "ratio"
    );
    for size in [64usize, 1024, 64 << 10] {
        let m = memcpy_rate(size);
        let f = fifo_rate(size);
        println!("{size:>8} {f:>12.2} {m:>12.2} {:>8.2}", f / m);
    }
}
