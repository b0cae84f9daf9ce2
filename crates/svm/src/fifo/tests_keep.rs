//! A consumer that keeps consumed chunks ([`Fifo::keeping`]): the bytes it reads are the bytes
//! written, it keeps no more than [`Fifo::kept_bytes`] (plus the chunk the cut falls in)
//! behind the head, the segment's accounting holds throughout, and [`Fifo::release_kept`]
//! leaves the fifo as a consumer that keeps nothing would have. And a producer that grows by
//! whole steps ([`Fifo::growing_whole`]).

use super::tests::{check_accounting, jump, new_seg, pattern};
use super::*;
use crate::fifo_segment::FifoSegment;

/// Bytes linked in chunks that end at or before the head (what the consumer kept).
fn kept(f: &Fifo) -> u64 {
    let head = f.shr.head.load(Relaxed);
    let mut c = f.fs.chunk(f.shr.start_chunk.load(Relaxed)).unwrap();
    let mut n = 0u64;
    while pos_geq(head, c.end()) && c.next() != 0 {
        n += u64::from(c.len);
        c = f.fs.chunk(c.next()).unwrap();
    }
    n
}

#[test]
fn keeps_up_to_1_mib_behind_the_head_and_releases_it_when_idle() {
    let seg = new_seg(16 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 4 << 20).unwrap();
    let cons = f.keeping(true);
    assert_eq!(cons.kept_bytes(), KEEP_MAX, "4 MiB: capped");
    assert_eq!(cons.kept_idle_bytes(), 1 << 20, "4 MiB: a quarter");
    let small_seg = new_seg(4 << 20);
    let small_fs = FifoSegment::init(&small_seg, 1).unwrap();
    let small = small_fs.alloc_fifo(0, 256 << 10).unwrap().keeping(true);
    assert_eq!(small.kept_bytes(), 256 << 10, "256 KiB: the whole fifo");
    assert_eq!(small.kept_idle_bytes(), 64 << 10, "256 KiB: a quarter");
    let (mut wr, mut rd) = (0usize, 0usize);
    let mut buf = vec![0u8; 100_000];
    for _ in 0..200 {
        wr += f.enqueue(&pattern(wr, 70_000)).unwrap();
        while rd < wr {
            let n = cons.dequeue(&mut buf).unwrap();
            assert_eq!(&buf[..n], &pattern(rd, n)[..]);
            rd += n;
        }
        // at most the kept bytes plus the chunk the cut fell in (chunks are <= 512 KiB here)
        assert!(kept(&f) <= u64::from(cons.kept_bytes()) + (512 << 10));
        check_accounting(&fs, &[f]);
    }
    assert!(
        kept(&f) >= u64::from(cons.kept_bytes()),
        "kept {}",
        kept(&f)
    );
    cons.release_kept().unwrap();
    assert_eq!(kept(&f), 0);
    assert_eq!(
        f.chunk_list().unwrap().0,
        1,
        "only the chunk holding the head is left"
    );
    check_accounting(&fs, &[f]);
    // a consumer that keeps nothing releases at once, and release_kept does nothing
    wr += f.enqueue(&pattern(wr, 90_000)).unwrap();
    while rd < wr {
        rd += f.dequeue(&mut buf).unwrap();
    }
    assert_eq!(kept(&f), 0);
    f.release_kept().unwrap();
    check_accounting(&fs, &[f]);
}

/// A reader that left bytes queued trims what it keeps to a quarter of the fifo; one that
/// drains keeps up to the whole fifo.
#[test]
fn trim_leaves_a_quarter_of_the_fifo() {
    let seg = new_seg(16 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 1 << 20).unwrap();
    let cons = f.keeping(true);
    let (mut wr, mut rd) = (0usize, 0usize);
    let mut buf = vec![0u8; 64 << 10];
    // 3 MiB through, each write read back whole: the fifo drains every time
    while wr < 3 << 20 {
        wr += f.enqueue(&pattern(wr, 64 << 10)).unwrap();
        while rd < wr {
            let n = cons.dequeue(&mut buf).unwrap();
            assert_eq!(&buf[..n], &pattern(rd, n)[..]);
            rd += n;
        }
    }
    assert!(
        kept(&f) >= 768 << 10,
        "a draining reader keeps ~1 MiB: {}",
        kept(&f)
    );
    check_accounting(&fs, &[f]);
    // now a read that leaves bytes queued
    wr += f.enqueue(&pattern(wr, 128 << 10)).unwrap();
    let n = cons.dequeue(&mut buf).unwrap();
    assert_eq!(&buf[..n], &pattern(rd, n)[..]);
    rd += n;
    assert!(rd < wr);
    cons.trim_kept().unwrap();
    // a quarter, plus the chunk the cut fell in (chunks are <= 256 KiB here)
    assert!(
        kept(&f) <= (256 << 10) + (256 << 10),
        "trimmed to {}",
        kept(&f)
    );
    check_accounting(&fs, &[f]);
    while rd < wr {
        let n = cons.dequeue(&mut buf).unwrap();
        assert_eq!(&buf[..n], &pattern(rd, n)[..]);
        rd += n;
    }
    cons.release_kept().unwrap();
    assert_eq!(kept(&f), 0);
    check_accounting(&fs, &[f]);
}

proptest::proptest! {
    /// Any mix of writes and keeping or plain reads, near the u32 wrap, in a fifo small enough
    /// to grow and shrink all the time: every byte read is the byte written, and the chunk
    /// accounting holds.
    #[test]
    fn keeping_consumer_reads_what_was_written(
        start in proptest::prelude::prop_oneof![
            proptest::prelude::Just(0u32),
            proptest::prelude::Just(u32::MAX - 70_000),
        ],
        ops in proptest::collection::vec((0u8..4, 1usize..40_000), 1..150),
        whole in proptest::prelude::any::<bool>(),
    ) {
        let seg = new_seg(8 << 20);
        let fs = FifoSegment::init(&seg, 1).unwrap();
        let f = fs.alloc_fifo(0, 256 << 10).unwrap().growing_whole(whole);
        jump(&f, start);
        let cons = f.keeping(true);
        let (mut wr, mut rd) = (0usize, 0usize);
        let mut buf = vec![0u8; 40_000];
        for (op, n) in ops {
            match op {
                0 | 1 => {
                    if let Ok(k) = f.enqueue(&pattern(wr, n)) {
                        wr += k;
                    }
                }
                2 => {
                    if let Ok(k) = cons.dequeue(&mut buf[..n]) {
                        proptest::prop_assert_eq!(&buf[..k], &pattern(rd, k)[..]);
                        rd += k;
                    }
                }
                _ => cons.release_kept().unwrap(),
            }
            proptest::prop_assert_eq!(f.max_dequeue() as usize, wr - rd);
            check_accounting(&fs, &[f]);
        }
    }
}

/// Bytes linked from the head's chunk to the end (what holds queued bytes and room ahead).
fn ahead(f: &Fifo) -> u64 {
    let mut c = f.fs.chunk(f.shr.head_chunk.load(Relaxed)).unwrap();
    let mut n = u64::from(c.len);
    while c.next() != 0 {
        c = f.fs.chunk(c.next()).unwrap();
        n += u64::from(c.len);
    }
    n
}

/// A fifo kept nearly full (a lagging reader): 1 KiB read, 1 KiB written, many times. With
/// VPP's step every growth is the smallest chunk; with whole steps it is min_alloc, and the
/// chunks ahead of the head never exceed the size by more than that.
#[test]
fn whole_steps_grow_a_nearly_full_fifo_by_min_alloc() {
    let end_len = |whole: bool| {
        let seg = new_seg(8 << 20);
        let fs = FifoSegment::init(&seg, 1).unwrap();
        let f = fs.alloc_fifo(0, 256 << 10).unwrap();
        let prod = f.growing_whole(whole);
        let step = f.shr.min_alloc.load(Relaxed);
        assert_eq!(step, 32 << 10);
        let (mut wr, mut rd) = (0usize, 0usize);
        while let Ok(n) = prod.enqueue(&pattern(wr, 1024)) {
            wr += n;
        }
        let mut buf = vec![0u8; 1024];
        let mut ends = Vec::new();
        for _ in 0..2000 {
            let n = f.dequeue(&mut buf).unwrap();
            assert_eq!(&buf[..n], &pattern(rd, n)[..]);
            rd += n;
            wr += prod.enqueue(&pattern(wr, 1024)).unwrap();
            assert!(
                ahead(&f) <= (256 << 10) + u64::from(step) + 4096,
                "{}",
                ahead(&f)
            );
            ends.push(f.fs.chunk(f.shr.end_chunk.load(Relaxed)).unwrap().len);
            check_accounting(&fs, &[f]);
        }
        ends.into_iter().min().unwrap()
    };
    assert_eq!(end_len(false), 4096, "VPP's step: the smallest chunk");
    assert_eq!(end_len(true), 32 << 10, "whole steps");
}

/// When the segment has no room for a whole step, the producer grows by VPP's.
#[test]
fn whole_steps_fall_back_to_vpps_step_when_the_segment_is_short() {
    let seg = new_seg(8 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 256 << 10).unwrap();
    // full by VPP's steps (the chunks hold exactly the size), then 8 KiB read
    let mut wr = 0usize;
    while let Ok(n) = f.enqueue(&pattern(wr, 1024)) {
        wr += n;
    }
    assert_eq!(wr, 256 << 10);
    let mut buf = vec![0u8; 8192];
    assert_eq!(f.dequeue(&mut buf).unwrap(), 8192);
    // the segment keeps less than a whole step (32 KiB) for anyone else
    let left = || fs.free_bytes() + fs.cached_bytes();
    let mut hog = 0;
    for size in [64 << 10, 32 << 10, 16 << 10, 8 << 10, 4 << 10] {
        while left() >= 28 << 10 && fs.alloc_chunk(0, size).unwrap().is_some() {
            hog += 1;
        }
    }
    assert!(hog > 0 && left() >= 8192, "{} bytes left", left());
    // refilling those 8 KiB needs a chunk: a whole step does not fit, VPP's step does
    let whole = f.growing_whole(true);
    for _ in 0..8 {
        assert_eq!(whole.enqueue(&pattern(wr, 1024)).unwrap(), 1024);
        wr += 1024;
    }
    let end = f.fs.chunk(f.shr.end_chunk.load(Relaxed)).unwrap();
    assert!(end.len < 32 << 10, "end chunk {}", end.len);
    let mut out = vec![0u8; wr - 8192];
    assert_eq!(f.dequeue(&mut out).unwrap(), wr - 8192);
    assert_eq!(out, pattern(8192, wr - 8192));
}

/// A whole step is at most 64 KiB (what VPP ever sets), whatever `min_alloc` the shared header
/// claims: a bogus one cannot make the writer take a chunk the size of the fifo.
#[test]
fn whole_steps_are_capped_whatever_min_alloc_says() {
    let seg = new_seg(32 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 4 << 20).unwrap().growing_whole(true);
    f.shr.min_alloc.store(4 << 20, Relaxed);
    let mut wr = 0usize;
    for _ in 0..100 {
        wr += f.enqueue(&pattern(wr, 1024)).unwrap();
    }
    let end = f.fs.chunk(f.shr.end_chunk.load(Relaxed)).unwrap();
    assert_eq!(end.len, 64 << 10);
    check_accounting(&fs, &[f]);
}
