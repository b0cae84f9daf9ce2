//! One producer thread and one consumer thread stream through a growing fifo (1 MiB, grown in
//! chunks on demand and shrunk as they are consumed, as the library's cut-through streams do),
//! each end keeping its cached view of the other's position ([`PosCache`]) across operations.
//! Every byte read is checked against the byte the producer wrote at that
//! stream position, and no operation may report a corrupt fifo.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use vcl_svm::fifo::PosCache;
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::{Segment, SvmError};

/// The byte at stream position `p`.
fn byte_at(p: u64) -> u8 {
    (p ^ (p >> 8).wrapping_mul(31) ^ (p >> 20)) as u8
}

/// Stream for `dur` (or `bytes`, whichever comes first) with `wsz`-byte writes and
/// `rsz`-byte reads; returns the bytes moved.
fn stream(wsz: usize, rsz: usize, dur: Duration, bytes: u64) -> u64 {
    let seg = Segment::create("fifo-spsc", 64 << 20, 8192).unwrap();
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 1 << 20).unwrap();
    // `stop` asks the producer to stop; `finished` says its last enqueue is done (the consumer
    // may only conclude "all read" after that: an enqueue begun before `stop` still lands)
    let (stop, finished) = (AtomicBool::new(false), AtomicBool::new(false));
    let deadline = Instant::now() + dur;
    let (pc, cc) = (PosCache::new(), PosCache::new());
    std::thread::scope(|s| {
        let prod = f.with_cache(&pc);
        let (stop, finished) = (&stop, &finished);
        let p = s.spawn(move || {
            let mut buf = vec![0u8; wsz];
            let mut sent = 0u64;
            while !stop.load(Relaxed) && sent < bytes {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = byte_at(sent + i as u64);
                }
                match prod.enqueue(&buf) {
                    Ok(n) => sent += n as u64,
                    Err(SvmError::Full) => std::thread::yield_now(),
                    Err(e) => panic!("producer at {sent}: {e}"),
                }
            }
            stop.store(true, SeqCst);
            finished.store(true, SeqCst);
            sent
        });
        let cons = f.with_cache(&cc);
        let mut buf = vec![0u8; rsz];
        let mut got = 0u64;
        loop {
            match cons.dequeue(&mut buf) {
                Ok(n) => {
                    for (i, &b) in buf[..n].iter().enumerate() {
                        let at = got + i as u64;
                        assert_eq!(b, byte_at(at), "wrong byte at stream position {at}");
                    }
                    got += n as u64;
                }
                Err(SvmError::Empty) if finished.load(SeqCst) && f.max_dequeue() == 0 => break,
                Err(SvmError::Empty) => std::thread::yield_now(),
                Err(e) => {
                    stop.store(true, SeqCst);
                    panic!("consumer at {got}: {e}");
                }
            }
            if Instant::now() > deadline {
                stop.store(true, SeqCst);
            }
        }
        assert_eq!(got, p.join().unwrap());
        got
    })
}

#[test]
fn big_reads_of_a_growing_fifo_with_cached_positions() {
    // reads of the whole fifo size, as a reader with a 1 MiB buffer does
    let n = stream(64 << 10, 1 << 20, secs(2), 8 << 30);
    assert!(n > 0);
}

#[test]
fn small_writes_and_reads_with_cached_positions() {
    let n = stream(1000, 3000, secs(1), 8 << 30);
    assert!(n > 0);
}

/// `dflt` seconds, or FIFO_SPSC_SECS from the environment (longer soak runs).
fn secs(dflt: u64) -> Duration {
    let s = std::env::var("FIFO_SPSC_SECS")
        .ok()
        .and_then(|v| v.parse().ok());
    Duration::from_secs(s.unwrap_or(dflt))
}
