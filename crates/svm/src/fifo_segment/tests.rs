use std::sync::atomic::Ordering::Relaxed;

use super::*;

pub(crate) fn new_seg(size: u64) -> Segment {
    Segment::create("fifo-seg-test", size, 8192).unwrap()
}

#[test]
fn init_lays_out_like_fifo_segment_init() {
    let seg = new_seg(1 << 20);
    let fs = FifoSegment::init(&seg, 3).unwrap();
    let h = fs.header();
    let start = FSH_SIZE + 3 * SLICE_SIZE;
    assert_eq!(h.n_slices.load(Relaxed), 3);
    assert_eq!(h.start_byte_index.load(Relaxed), start);
    assert_eq!(h.byte_index.load(Relaxed), start);
    assert_eq!(h.n_reserved_bytes.load(Relaxed) as u64, start);
    assert_eq!(h.max_byte_index.load(Relaxed), (1 << 20) - 8192);
    // (seg_sz - slices) / 2 is just under 512 KiB: floor log2 = 18
    assert_eq!(h.max_log2_fifo_size.load(Relaxed), 18);
    // raw bytes at the documented offsets
    assert_eq!(seg.load::<u64>(80).unwrap(), start);
    assert_eq!(seg.load::<u8>(20).unwrap(), 3);
    // a second view through map() agrees
    let again = FifoSegment::attach(&seg).unwrap();
    assert_eq!(again.n_slices(), 3);
    assert!(fs.slice(3).is_err());
}

#[test]
fn attach_refuses_inconsistent_headers() {
    let seg = new_seg(1 << 20);
    FifoSegment::init(&seg, 2).unwrap();
    seg.store::<u64>(72, 1 << 40).unwrap();
    assert!(matches!(
        FifoSegment::attach(&seg),
        Err(SvmError::Corrupt(_))
    ));
    seg.store::<u64>(72, 1000).unwrap();
    seg.store::<u8>(20, 0).unwrap();
    assert!(matches!(
        FifoSegment::attach(&seg),
        Err(SvmError::Corrupt(_))
    ));
}

#[test]
fn reserve_places_mqs_back_to_back_after_slices() {
    let seg = new_seg(1 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    fs.set_n_mqs(2);
    let a = fs.reserve(1000, 8).unwrap();
    let b = fs.reserve(1000, 8).unwrap();
    let start = FSH_SIZE + SLICE_SIZE;
    assert_eq!(a, start);
    assert_eq!(b, start + 1000);
    // discovery formula: (n_reserved - start) / n_mqs
    let reserved = u64::from(fs.header().n_reserved_bytes.load(Relaxed));
    assert_eq!((reserved - start) / 2, 1000);
    assert_eq!(fs.reserve(1 << 21, 8), Err(SvmError::Full));
}

#[test]
fn first_alloc_carves_a_batch_and_counts() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let c = fs.alloc_chunk(0, 5000).unwrap().unwrap();
    assert_eq!(c.len, 8192);
    let fss = fs.slice(0).unwrap();
    assert_eq!(fss.num_chunks[1].load(Relaxed), 32);
    assert_eq!(fs.cached_bytes(), 31 * 8192);
    assert_eq!(fs.fl_chunk_bytes(), 31 * 8192);
    assert_eq!(fs.num_free_chunks(0, 1).unwrap(), 31);
    fs.collect_chunks(0, c.off).unwrap();
    assert_eq!(fs.cached_bytes(), 32 * 8192);
    assert_eq!(fs.num_free_chunks(0, 1).unwrap(), 32);
}

#[test]
fn multi_chunk_from_smaller_classes_when_space_is_short() {
    // Room for a few dozen 4 KiB chunks only.
    let seg = new_seg(8192 + 1024 + 40 * 4120);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let c = fs.alloc_chunk(0, 4096).unwrap().unwrap();
    fs.collect_chunks(0, c.off).unwrap();
    let before = fs.cached_bytes();
    assert_eq!(before, 32 * 4096);
    // 16 KiB: no class-2 chunk, no room to carve one batch of 32, but one 16 KiB fits? n_free is
    // about 8 * 4120, so a single 16 KiB chunk is carved.
    let big = fs.alloc_chunk(0, 16384).unwrap().unwrap();
    let mut total = 0u64;
    let mut off = big.off;
    while off != 0 {
        let c = fs.chunk(off).unwrap();
        total += u64::from(c.len);
        off = c.hdr.next.load(Relaxed);
    }
    assert!(total >= 16384);
    let carved: u64 = (0..FS_CHUNK_VEC_LEN)
        .map(|i| {
            u64::from(fs.slice(0).unwrap().num_chunks[i].load(Relaxed)) * u64::from(fl_size(i))
        })
        .sum();
    assert_eq!(carved, fs.cached_bytes() + total);
}

#[test]
fn multi_chunk_list_when_segment_is_full() {
    let seg = new_seg(8192 + 1024 + 33 * 4120);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let c = fs.alloc_chunk(0, 4096).unwrap().unwrap();
    fs.collect_chunks(0, c.off).unwrap();
    let big = fs.alloc_chunk(0, 20000).unwrap().unwrap();
    let mut n = 0;
    let mut off = big.off;
    while off != 0 {
        n += 1;
        off = fs.chunk(off).unwrap().hdr.next.load(Relaxed);
    }
    assert_eq!(n, 5, "five 4 KiB chunks cover 20000 bytes");
    assert_eq!(fs.cached_bytes(), 27 * 4096);
    fs.collect_chunks(0, big.off).unwrap();
    assert_eq!(fs.cached_bytes(), 32 * 4096);
    assert_eq!(fs.fl_chunk_bytes(), 32 * 4096);
}

#[test]
fn exhausted_segment_returns_none() {
    let seg = new_seg(8192 + 4096);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    assert!(fs.alloc_chunk(0, 4096).unwrap().is_none());
    assert_eq!(fs.alloc_fifo(0, 4096).unwrap_err(), SvmError::Full);
}

#[test]
fn alloc_and_free_fifo_like_vpp() {
    let seg = new_seg(4 << 20);
    let fs = FifoSegment::init(&seg, 2).unwrap();
    let f = fs.alloc_fifo(1, 100_000).unwrap();
    let shr = f.shared();
    assert_eq!(f.offset() % 64, 0);
    assert_eq!(shr.size.load(Relaxed), 100_000);
    assert_eq!(shr.min_alloc.load(Relaxed), 12_500);
    assert_eq!(shr.slice_index.load(Relaxed), 1);
    assert_eq!(shr.head_chunk.load(Relaxed), shr.start_chunk.load(Relaxed));
    assert_eq!(shr.tail_chunk.load(Relaxed), shr.start_chunk.load(Relaxed));
    assert_eq!(shr.end_chunk.load(Relaxed), shr.start_chunk.load(Relaxed));
    assert_eq!(
        f.chunk_list().unwrap(),
        (1, 4096),
        "pct_first_alloc 0: one 4 KiB chunk"
    );
    assert_eq!(fs.n_active_fifos(), 1);
    assert_eq!(fs.slice(1).unwrap().virtual_mem.load(Relaxed), 100_000);
    let off = f.offset();
    fs.free_fifo(f).unwrap();
    assert_eq!(fs.n_active_fifos(), 0);
    assert_eq!(fs.cached_bytes(), 32 * 4096);
    // the header is reused
    fs.set_pct_first_alloc(100);
    let g = fs.alloc_fifo(1, 100_000).unwrap();
    assert_eq!(g.offset(), off);
    assert_eq!(g.chunk_list().unwrap(), (1, 128 << 10));
}

#[test]
fn corrupt_free_list_head_is_an_error() {
    let seg = new_seg(1 << 20);
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let fss = fs.slice(0).unwrap();
    for bad in [1u64, 8, 1 << 40, FSH_SIZE + 8, (1 << 20) - 16, 321, 4096] {
        fss.free_chunks[0].store(bad, Relaxed);
        assert!(
            matches!(fs.alloc_chunk(0, 4096), Err(SvmError::Corrupt(_))),
            "{bad}"
        );
    }
    // a self-loop in a free list is refused by the counting walk
    fss.free_chunks[0].store(0, Relaxed);
    let c = fs.alloc_chunk(0, 4096).unwrap().unwrap();
    c.hdr.next.store(c.off, Relaxed);
    fss.free_chunks[0].store(c.off, Relaxed);
    assert!(fs.num_free_chunks(0, 0).is_err());
    assert!(fs.collect_chunks(0, c.off).is_err());
}

#[test]
fn fl_index_matches_vpp() {
    assert_eq!(fl_index(0), 0);
    assert_eq!(fl_index(4095), 0);
    assert_eq!(fl_index(4096), 0);
    assert_eq!(fl_index(4097), 1);
    assert_eq!(fl_index(8192), 1);
    assert_eq!(fl_index(4 << 20), 10);
    assert_eq!(fl_index(u32::MAX), 10);
}
