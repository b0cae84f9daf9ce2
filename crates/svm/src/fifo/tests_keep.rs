//! A consumer that keeps consumed chunks ([`Fifo::keeping`]): the bytes it reads are the bytes
//! written, it keeps no more than [`Fifo::kept_bytes`] (plus the chunk the cut falls in)
//! behind the head, the segment's accounting holds throughout, and [`Fifo::release_kept`]
//! leaves the fifo as a consumer that keeps nothing would have.

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
    ) {
        let seg = new_seg(8 << 20);
        let fs = FifoSegment::init(&seg, 1).unwrap();
        let f = fs.alloc_fifo(0, 256 << 10).unwrap();
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
