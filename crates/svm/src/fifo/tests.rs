// Shared memory / fds: reads the zero-copy views it tests.
#![allow(unsafe_code)]
use std::sync::atomic::Ordering::Relaxed;

use super::notify::*;
use super::*;
use crate::fifo_segment::{fl_size, FS_CHUNK_VEC_LEN};
use crate::Segment;

pub(super) fn new_seg(size: u64) -> Segment {
    Segment::create("fifo-test", size, 8192).unwrap()
}

pub(super) fn pattern(start: usize, n: usize) -> Vec<u8> {
    (start..start + n)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect()
}

/// Carved chunk bytes == cached bytes + bytes linked in `fifos`, and the counters agree.
pub(super) fn check_accounting(fs: &FifoSegment, fifos: &[Fifo]) {
    let fss = fs.slice(0).unwrap();
    let carved: u64 = (0..FS_CHUNK_VEC_LEN)
        .map(|i| u64::from(fss.num_chunks[i].load(Relaxed)) * u64::from(fl_size(i)))
        .sum();
    let listed: u64 = (0..FS_CHUNK_VEC_LEN)
        .map(|i| u64::from(fs.num_free_chunks(0, i).unwrap()) * u64::from(fl_size(i)))
        .sum();
    let in_fifos: u64 = fifos.iter().map(|f| f.chunk_list().unwrap().1).sum();
    assert_eq!(fs.cached_bytes(), listed);
    assert_eq!(fs.fl_chunk_bytes(), listed);
    assert_eq!(carved, listed + in_fifos);
}

#[test]
fn growth_across_chunks_and_release_to_free_lists() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 64 << 10).unwrap();
    assert_eq!(f.chunk_list().unwrap(), (1, 4096));
    let data = pattern(0, 30_000);
    assert_eq!(f.enqueue(&data).unwrap(), 30_000);
    let (n, bytes) = f.chunk_list().unwrap();
    assert!(n >= 2 && bytes >= 30_000, "{n} chunks {bytes} bytes");
    check_accounting(&fs, &[f]);
    let mut out = vec![0u8; 30_000];
    assert_eq!(f.dequeue(&mut out[..3000]).unwrap(), 3000);
    assert_eq!(f.dequeue(&mut out[3000..]).unwrap(), 27_000);
    assert_eq!(out, data);
    // every chunk but the last went back to the free lists
    assert_eq!(f.chunk_list().unwrap().0, 1);
    check_accounting(&fs, &[f]);
    assert_eq!(f.dequeue(&mut out), Err(SvmError::Empty));
}

#[test]
fn stream_until_full_then_drain_many_times() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 40_000).unwrap();
    let (mut wr, mut rd) = (0usize, 0usize);
    let mut buf = vec![0u8; 7777];
    for round in 0..50 {
        loop {
            match f.enqueue(&pattern(wr, 5000)) {
                Ok(n) => wr += n,
                Err(SvmError::Full) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(f.max_enqueue(), 0);
        assert_eq!(f.max_dequeue() as usize, wr - rd);
        let take = if round % 2 == 0 {
            wr - rd
        } else {
            (wr - rd) / 3
        };
        let mut left = take;
        while left > 0 {
            let n = f.dequeue(&mut buf[..left.min(7777)]).unwrap();
            assert_eq!(&buf[..n], &pattern(rd, n)[..]);
            rd += n;
            left -= n;
        }
        check_accounting(&fs, &[f]);
    }
}

#[test]
fn positions_wrap_around_u32() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 16384).unwrap();
    let shr = f.shared();
    let start = fs.chunk(shr.start_chunk.load(Relaxed)).unwrap();
    let base = u32::MAX - 6000;
    start.hdr.start_byte.store(base, Relaxed);
    shr.head.store(base, Relaxed);
    shr.tail.store(base, Relaxed);
    let (mut wr, mut rd) = (0, 0);
    let mut buf = vec![0u8; 5000];
    for _ in 0..40 {
        wr += f.enqueue(&pattern(wr, 9000)).unwrap();
        let n = f.dequeue(&mut buf).unwrap();
        assert_eq!(&buf[..n], &pattern(rd, n)[..]);
        rd += n;
    }
    assert!(shr.head.load(Relaxed) < base, "head wrapped");
    check_accounting(&fs, &[f]);
}

#[test]
fn peek_drop_and_segments() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 64 << 10).unwrap();
    assert_eq!(f.peek(0, &mut [0u8; 4]), Err(SvmError::Empty));
    let data = pattern(0, 20_000);
    f.enqueue(&data).unwrap();
    let mut buf = vec![0u8; 9000];
    assert_eq!(f.peek(5000, &mut buf).unwrap(), 9000);
    assert_eq!(&buf[..], &data[5000..14_000]);
    assert_eq!(f.peek(20_000, &mut buf).unwrap(), 0);
    assert_eq!(f.peek(19_000, &mut buf).unwrap(), 1000);
    let mut segs = [FifoSeg::default(); 4];
    let (n, bytes) = f.segments(100, &mut segs, 15_000).unwrap();
    assert_eq!(bytes, 15_000);
    assert!(n >= 2);
    let mut joined = Vec::new();
    for s in &segs[..n] {
        // SAFETY: nothing writes between head and tail while the test holds the slices.
        joined.extend_from_slice(unsafe { s.as_slice() });
    }
    assert_eq!(&joined[..], &data[100..15_100]);
    assert_eq!(f.dequeue_drop(4100).unwrap(), 4100);
    f.peek(0, &mut buf[..10]).unwrap();
    assert_eq!(&buf[..10], &data[4100..4110]);
    assert_eq!(f.dequeue_drop(1 << 30).unwrap(), 15_900);
    assert_eq!(f.dequeue_drop(1), Err(SvmError::Empty));
    assert_eq!(f.segments(0, &mut segs, 10), Err(SvmError::Empty));
    check_accounting(&fs, &[f]);
}

#[test]
fn gather_enqueue_partial_and_all_or_nothing() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 10_000).unwrap();
    let a = pattern(0, 6000);
    let b = pattern(6000, 6000);
    assert_eq!(f.enqueue_segments(&[&a, &b], false), Err(SvmError::Full));
    assert_eq!(f.max_dequeue(), 0);
    assert_eq!(f.enqueue_segments(&[&a, &b], true).unwrap(), 10_000);
    let mut out = vec![0u8; 10_000];
    f.dequeue(&mut out).unwrap();
    assert_eq!(&out[..6000], &a[..]);
    assert_eq!(&out[6000..], &b[..4000]);
}

#[test]
fn datagrams_round_trip_and_truncate() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 8192).unwrap();
    let hdr = SessionDgramHdr {
        rmt_ip: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        rmt_port: 0x3412,
        lcl_port: 0x5000,
        is_ip4: 1,
        gso_size: 0,
        ..Default::default()
    };
    assert_eq!(hdr.to_bytes().len(), 47);
    let p1 = pattern(0, 3000);
    assert_eq!(
        f.enqueue_dgram(&hdr, &[&p1[..1000], &p1[1000..]]).unwrap(),
        3000
    );
    assert_eq!(f.enqueue_dgram(&hdr, &[&p1]).unwrap(), 3000);
    // 8192 - 2 * 3047 = 2098 free: a 2100-byte datagram does not fit at all
    assert_eq!(f.enqueue_dgram(&hdr, &[&p1[..2100]]), Err(SvmError::Full));
    assert_eq!(f.max_dequeue(), 6094);
    let mut buf = vec![0u8; 5000];
    let (h, n) = f.dequeue_dgram(&mut buf, true).unwrap().unwrap();
    assert_eq!(
        (h.data_length, h.rmt_port, h.is_ip4, n),
        (3000, 0x3412, 1, 3000)
    );
    assert_eq!(f.max_dequeue(), 6094, "peek consumes nothing");
    let (_, n) = f.dequeue_dgram(&mut buf[..100], false).unwrap().unwrap();
    assert_eq!(&buf[..n], &p1[..100]);
    assert_eq!(f.max_dequeue(), 3047, "the rest of the datagram is dropped");
    // a lone zero-length datagram is not readable (docs/wire.md#datagrams)
    f.dequeue_dgram(&mut buf, false).unwrap().unwrap();
    f.enqueue_dgram(&hdr, &[]).unwrap();
    assert_eq!(f.dequeue_dgram(&mut buf, false).unwrap(), None);
}

#[test]
fn datagrams_across_growing_chunks() {
    // A fifo that starts with one 4 KiB chunk and grows: datagrams of many sizes straddle chunk
    // ends (header and payload split anywhere); reads, peeks and truncating reads interleave
    // with writes; every byte comes back in order and consumed chunks go back to the slice.
    let seg = new_seg(8 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 64 << 10).unwrap();
    let hdr = SessionDgramHdr {
        rmt_port: 7,
        is_ip4: 1,
        ..Default::default()
    };
    let (mut sent, mut got) = (0usize, 0usize);
    let mut queued = std::collections::VecDeque::new();
    let mut buf = vec![0u8; 4000];
    for round in 0..4000usize {
        let len = (round * 769) % 3001;
        let p = pattern(sent, len);
        match f.enqueue_dgram(&hdr, &[&p]) {
            Ok(n) => {
                assert_eq!(n, len);
                queued.push_back(p);
                sent += len;
            }
            Err(SvmError::Full) => assert!(f.max_enqueue_prod() < (len + 47) as u32),
            Err(e) => panic!("{e}"),
        }
        // drain about as fast as we write, sometimes more (to empty), sometimes less
        for k in 0..(round % 3) {
            let Some(want) = queued.front() else { break };
            let want = want.clone();
            let room = match (round + k) % 5 {
                0 => want.len() / 2, // truncate
                _ => buf.len(),
            };
            let (h, n) = f.dequeue_dgram(&mut buf, true).unwrap().unwrap();
            assert_eq!((h.data_length as usize, n), (want.len(), want.len()));
            assert_eq!(&buf[..n], &want[..], "peek at round {round}");
            let (h, n) = f.dequeue_dgram(&mut buf[..room], false).unwrap().unwrap();
            assert_eq!((h.data_length as usize, h.rmt_port), (want.len(), 7));
            assert_eq!(n, room.min(want.len()));
            assert_eq!(&buf[..n], &want[..n], "read at round {round}");
            queued.pop_front();
            got += want.len();
        }
    }
    while let Some(want) = queued.pop_front() {
        let (_, n) = f.dequeue_dgram(&mut buf, false).unwrap().unwrap();
        assert_eq!(&buf[..n], &want[..]);
        got += n;
    }
    assert_eq!((got, f.max_dequeue()), (sent, 0));
    assert_eq!(f.dequeue_dgram(&mut buf, false).unwrap(), None);
    assert_eq!(f.chunk_list().unwrap().0, 1, "consumed chunks released");
    check_accounting(&fs, &[f]);
}

#[test]
fn deq_notification_with_signals_in_another_fifo() {
    // Cut-through: fill levels come from the data fifo, wishes and flags from the signal fifo.
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let data = fs.alloc_fifo(0, 4096).unwrap();
    let sig = fs.alloc_fifo(0, 4096).unwrap();
    data.enqueue(&[1u8; 4096]).unwrap();
    data.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL);
    data.dequeue(&mut [0u8; 10]).unwrap();
    assert!(
        !data.needs_deq_ntf_signalled_by(&sig, 10),
        "sig wants nothing"
    );
    sig.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL);
    assert!(
        data.needs_deq_ntf_signalled_by(&sig, 10),
        "data went full -> not full"
    );
    assert!(!sig.needs_deq_ntf(10), "sig itself was never full");
    sig.clear_deq_ntf();
    assert!(
        !data.needs_deq_ntf_signalled_by(&sig, 10),
        "pending acknowledgement"
    );
    sig.reset_has_deq_ntf();
    sig.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
    sig.set_deq_thresh(100);
    assert!(
        !data.needs_deq_ntf_signalled_by(&sig, 10),
        "10 free < threshold 100"
    );
    data.dequeue(&mut [0u8; 200]).unwrap();
    assert!(data.needs_deq_ntf_signalled_by(&sig, 200));
}

#[test]
fn event_flag_and_deq_notifications_follow_errata_d2() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 4096).unwrap();
    assert!(f.set_event());
    assert!(!f.set_event());
    assert!(f.has_event());
    f.unset_event();
    assert!(f.set_event());

    assert!(!f.needs_deq_ntf(10));
    f.enqueue(&[1u8; 4096]).unwrap();
    f.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF | SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL);
    f.set_deq_thresh(1000);
    f.dequeue(&mut [0u8; 100]).unwrap();
    // bit 1 decides alone: 100 free < 1000 -> no, although IF_FULL would say yes
    assert!(!f.needs_deq_ntf(100));
    f.dequeue(&mut [0u8; 1000]).unwrap();
    assert!(f.needs_deq_ntf(1000));
    f.clear_deq_ntf();
    assert_eq!(f.want_deq_ntf(), SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL);
    assert!(f.has_deq_ntf());
    // IF_FULL: full -> not full transition, gated on has_deq_ntf
    f.enqueue(&[1u8; 1100]).unwrap();
    f.dequeue(&mut [0u8; 10]).unwrap();
    assert!(!f.needs_deq_ntf(10), "pending acknowledgement");
    f.reset_has_deq_ntf();
    assert!(f.needs_deq_ntf(10));
    assert!(!f.needs_deq_ntf(5), "was not full before this dequeue");
    f.del_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL);
    f.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF_IF_EMPTY);
    assert!(!f.needs_deq_ntf(10));
    f.dequeue_drop_all().unwrap();
    assert!(f.needs_deq_ntf(10));

    f.add_subscriber(3);
    f.add_subscriber(5);
    f.del_subscriber(3);
    assert_eq!((f.n_subscribers(), f.subscriber(0)), (1, Some(5)));
}

#[test]
fn corrupt_chunk_pointers_are_errors_not_crashes() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let f = fs.alloc_fifo(0, 64 << 10).unwrap();
    f.enqueue(&pattern(0, 20_000)).unwrap();
    let shr = f.shared();
    let good_tail = shr.tail_chunk.load(Relaxed);
    shr.tail_chunk.store(12345, Relaxed);
    assert!(matches!(f.enqueue(&[0u8; 10]), Err(SvmError::Corrupt(_))));
    shr.tail_chunk.store(good_tail, Relaxed);
    // a cycle in the chunk list: the last chunk points back at the first
    let start = shr.start_chunk.load(Relaxed);
    let end = fs.chunk(shr.end_chunk.load(Relaxed)).unwrap();
    end.hdr.next.store(start, Relaxed);
    assert!(f.chunk_list().is_err());
    assert!(f.peek(19_000, &mut [0u8; 2000]).is_ok());
    end.hdr.next.store(0, Relaxed);
    // head_chunk garbage is recovered by walking from start_chunk
    shr.head_chunk.store(7, Relaxed);
    assert_eq!(f.peek(0, &mut [0u8; 10]).unwrap(), 10);
    // tail behind head
    shr.head
        .store(shr.tail.load(Relaxed).wrapping_add(1), Relaxed);
    assert!(matches!(
        f.dequeue(&mut [0u8; 10]),
        Err(SvmError::Corrupt(_))
    ));
    // slice index out of range
    shr.slice_index.store(9, Relaxed);
    assert!(Fifo::attach(fs, f.offset()).is_err());
}

/// Cached positions (PosCache) never let a producer overwrite unread bytes or a consumer read
/// unwritten ones: the producer sees the consumer's progress when it needs the room, the
/// consumer sees new bytes when its cached view runs short, and a stale or foreign cache (a
/// consumer that moved past it, a fresh cache on a used fifo near the wrap) is re-read.
#[test]
fn cached_positions_are_conservative() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let raw = fs.alloc_fifo(0, 8192).unwrap();
    // near the u32 wrap, as a long-lived fifo gets
    raw.shr.head.store(u32::MAX - 100, Relaxed);
    raw.shr.tail.store(u32::MAX - 100, Relaxed);
    let start = fs.chunk(raw.shr.start_chunk.load(Relaxed)).unwrap();
    start.hdr.start_byte.store(u32::MAX - 100, Relaxed);
    let (pc, cc) = (PosCache::new(), PosCache::new());
    let (prod, cons) = (raw.with_cache(&pc), raw.with_cache(&cc));
    let (mut sent, mut got) = (0usize, 0usize);
    let mut out = vec![0u8; 3000];
    for round in 0..200 {
        let n = match prod.enqueue(&pattern(sent, 1000 + round * 37 % 900)) {
            Ok(n) => n,
            Err(SvmError::Full) => 0,
            Err(e) => panic!("{e}"),
        };
        sent += n;
        assert!(raw.max_dequeue() <= 8192, "producer overran the consumer");
        if round % 3 != 0 {
            let want = 500 + round * 53 % 2500;
            if let Ok(m) = cons.dequeue(&mut out[..want]) {
                assert_eq!(out[..m], pattern(got, m)[..], "round {round}");
                got += m;
            }
        }
        if round % 17 == 0 {
            // another view consumes behind the cached one's back
            if let Ok(m) = raw.dequeue(&mut out[..100]) {
                assert_eq!(out[..m], pattern(got, m)[..]);
                got += m;
            }
        }
    }
    while let Ok(m) = cons.dequeue(&mut out) {
        assert_eq!(out[..m], pattern(got, m)[..]);
        got += m;
    }
    assert_eq!(got, sent);
    assert!(sent > 100_000, "the fifo kept moving ({sent} bytes)");
}

/// Put an empty one-chunk fifo at stream position `pos`, as if another view of it had moved
/// both ends that far (GiBs of traffic, without copying them here).
pub(super) fn jump(f: &Fifo, pos: u32) {
    assert_eq!(f.max_dequeue(), 0);
    assert_eq!(f.chunk_list().unwrap().0, 1, "jump needs a one-chunk fifo");
    let sc = f.shr.start_chunk.load(Relaxed);
    f.fs.chunk(sc).unwrap().hdr.start_byte.store(pos, Relaxed);
    for p in [&f.shr.head_chunk, &f.shr.tail_chunk, &f.shr.end_chunk] {
        p.store(sc, Relaxed);
    }
    f.shr.head.store(pos, Relaxed);
    f.shr.tail.store(pos, Relaxed);
}

/// A consumer's cached tail is dropped once its head moved without it: after another view
/// consumed 3 GiB, the wrapped difference to the old tail (1 GiB) is not taken for queued
/// bytes (issue 11: read past the chunk list, the cut-through stream was reset).
#[test]
fn a_cached_tail_left_behind_by_other_views_is_not_used() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let raw = fs.alloc_fifo(0, 8192).unwrap();
    let cc = PosCache::new();
    let cons = raw.with_cache(&cc);
    raw.enqueue(&pattern(0, 2000)).unwrap();
    let mut out = [0u8; 1000];
    assert_eq!(cons.dequeue(&mut out).unwrap(), 1000); // caches tail 2000
    assert_eq!(raw.dequeue(&mut out).unwrap(), 1000);
    jump(&raw, 2000 + (3 << 30));
    raw.enqueue(&pattern(7, 10)).unwrap();
    assert_eq!(cons.dequeue(&mut out).unwrap(), 10);
    assert_eq!(out[..10], pattern(7, 10)[..]);
}

/// A producer's cached head is dropped once its tail moved without it: a cached head 4 GiB
/// behind would leave room the fifo does not have, and the producer would overfill it.
#[test]
fn a_cached_head_left_behind_by_other_views_is_not_used() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let raw = fs.alloc_fifo(0, 8192).unwrap();
    let pc = PosCache::new();
    let prod = raw.with_cache(&pc);
    assert_eq!(prod.enqueue(&[1u8; 50]).unwrap(), 50); // caches head 0
    assert_eq!(raw.dequeue(&mut [0u8; 50]).unwrap(), 50);
    // another view streams on to just past the wrap and leaves 8000 bytes queued
    jump(&raw, 0u32.wrapping_sub(7900));
    let mut sent = 0;
    while sent < 8000 {
        sent += raw.enqueue(&pattern(sent, 8000 - sent)).unwrap();
    }
    assert_eq!(raw.shr.tail.load(Relaxed), 100);
    assert_eq!(
        prod.enqueue(&pattern(8000, 4000)).unwrap(),
        192,
        "only the free room"
    );
    assert_eq!(raw.max_dequeue(), 8192);
    let mut got = vec![0u8; 8192];
    let mut n = 0;
    while n < 8192 {
        n += raw.dequeue(&mut got[n..]).unwrap();
    }
    assert_eq!(got, pattern(0, 8192));
}

proptest::proptest! {
    /// The consumer's cached answers never claim more than is queued: `is_empty_cons` says
    /// "empty" exactly when nothing is queued, and `max_dequeue_cons_for(want)` is the real
    /// count, or an under-estimate that still covers `want`; while other views consume and
    /// produce behind the cache's back, near the u32 wrap.
    #[test]
    fn cached_consumer_answers_agree_with_shared_positions(
        start in proptest::prelude::prop_oneof![
            proptest::prelude::Just(0u32),
            proptest::prelude::Just(u32::MAX - 3000),
        ],
        ops in proptest::collection::vec((0u8..4, 1u32..3000), 1..200),
    ) {
        let seg = new_seg(4 << 20);
        let fs = FifoSegment::init(&seg, 1).unwrap();
        let raw = fs.alloc_fifo(0, 8192).unwrap();
        jump(&raw, start);
        let cc = PosCache::new();
        let cons = raw.with_cache(&cc);
        let mut out = vec![0u8; 3000];
        for (op, n) in ops {
            match op {
                0 => drop(raw.enqueue(&vec![1u8; n as usize])),
                1 => drop(cons.dequeue(&mut out[..n as usize])),
                2 => drop(raw.dequeue(&mut out[..n as usize])),
                _ => {}
            }
            let real = raw.max_dequeue_cons();
            proptest::prop_assert_eq!(cons.is_empty_cons(), real == 0);
            let got = cons.max_dequeue_cons_for(n);
            proptest::prop_assert!(got == real || (got >= n && got <= real), "got {} real {} want {}", got, real, n);
        }
    }
}
