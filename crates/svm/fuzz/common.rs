//! Shared by the cargo-fuzz target and the seeded corruption test: build a realistic fifo
//! segment (two fifos with multi-chunk lists and data, chunks on the free lists), corrupt words
//! chosen by the input, then run every fifo and segment operation. Nothing may panic or hang;
//! errors are expected.

use std::sync::atomic::Ordering::Relaxed;

use vcl_svm::fifo::{Fifo, FifoSeg, SessionDgramHdr};
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::Segment;

pub const SEG_SIZE: u64 = 1 << 20;

/// Byte source over the fuzz input (zeros once exhausted).
pub struct Input<'d> {
    data: &'d [u8],
    at: usize,
}

impl<'d> Input<'d> {
    pub fn new(data: &'d [u8]) -> Self {
        Input { data, at: 0 }
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.data.get(self.at).copied().unwrap_or(0);
            self.at += 1;
        }
        u64::from_le_bytes(b)
    }

    pub fn u32(&mut self) -> u32 {
        self.u64() as u32
    }
}

/// Offsets worth corrupting: header fields, slice 0, both fifo headers, their chunks.
fn targets(fs: &FifoSegment, fifos: &[u64; 2]) -> Vec<u64> {
    let mut t: Vec<u64> = [0u64, 8, 12, 16, 20, 64, 72, 80].to_vec();
    t.extend((0..24).map(|k| 128 + 8 * k));
    for &f in fifos {
        t.extend(
            [
                0u64, 8, 16, 20, 24, 32, 40, 44, 48, 52, 60, 64, 72, 128, 136,
            ]
            .map(|o| f + o),
        );
        let shr = Fifo::attach(*fs, f).unwrap().shared();
        let mut off = shr.start_chunk.load(Relaxed);
        while let Ok(c) = fs.chunk(off) {
            t.extend([0u64, 4, 8, 16, 20].map(|o| off + o));
            off = c.hdr.next.load(Relaxed);
        }
    }
    let head = fs.slice(0).unwrap().free_chunks[0].load(Relaxed) & 0xFFFF_FFFF_FFFF;
    t.extend([head, head + 4, head + 8]);
    t
}

/// A segment with two fifos holding data across several chunks.
pub fn fixture() -> (Segment, [u64; 2]) {
    let seg = Segment::create("fifo-fuzz", SEG_SIZE, 8192).unwrap();
    let fs = FifoSegment::init(&seg, 2).unwrap();
    let a = fs.alloc_fifo(0, 64 << 10).unwrap();
    let b = fs.alloc_fifo(1, 20_000).unwrap();
    a.enqueue(&[7u8; 30_000]).unwrap();
    a.dequeue(&mut [0u8; 9000]).unwrap();
    b.enqueue_dgram(&SessionDgramHdr::default(), &[&[1u8; 5000]])
        .unwrap();
    let offs = [a.offset(), b.offset()];
    (seg, offs)
}

/// Apply corruptions chosen by the input.
pub fn corrupt(seg: &Segment, fifos: &[u64; 2], inp: &mut Input) {
    let fs = FifoSegment::attach(seg).unwrap();
    let t = targets(&fs, fifos);
    let n = 1 + inp.u32() % 3;
    for _ in 0..n {
        let off = t[inp.u32() as usize % t.len()];
        let chunk0 = fs.segment().load::<u64>(fifos[0]).unwrap_or(0);
        let v = match inp.u32() % 10 {
            0 => 0,
            1 => u64::MAX,
            2 => inp.u64(),
            3 => u64::from(inp.u32() % (SEG_SIZE as u32)),
            4 => chunk0,
            5 => chunk0.wrapping_add(8),
            6 => 1 << (inp.u32() % 40),
            7 => u64::from(u32::MAX - inp.u32() % 100_000),
            8 => fifos[(inp.u32() & 1) as usize],
            _ => seg.load::<u64>(off & !7).unwrap_or(0) ^ (1 << (inp.u32() % 64)),
        };
        let _ = match inp.u32() % 3 {
            0 => seg.store::<u8>(off, v as u8),
            1 => seg.store::<u32>(off & !3, v as u32),
            _ => seg.store::<u64>(off & !7, v),
        };
    }
}

fn fifo_ops(f: &Fifo, inp: &mut Input) {
    let mut buf = vec![0u8; (inp.u32() % 70_000) as usize];
    let _ = f.enqueue(&buf);
    let _ = f.dequeue(&mut buf);
    let _ = f.peek(inp.u32() % 80_000, &mut buf);
    let mut segs = [FifoSeg::default(); 4];
    let _ = f.segments(inp.u32() % 40_000, &mut segs, inp.u32());
    let _ = f.dequeue_drop(inp.u32() % 50_000);
    let _ = f.enqueue_segments(&[&buf[..buf.len() / 2], &buf], inp.u32() & 1 == 0);
    let _ = f.enqueue_dgram(&SessionDgramHdr::default(), &[&buf[..buf.len() / 3]]);
    let _ = f.dequeue_dgram(&mut buf, inp.u32() & 1 == 0);
    let _ = f.needs_deq_ntf(inp.u32());
    f.clear_deq_ntf();
    let _ = f.set_event();
    f.add_subscriber(1);
    f.del_subscriber(1);
    let _ = f.subscriber(inp.u32() as usize % 9);
    let _ = (f.max_enqueue(), f.max_dequeue(), f.chunk_list());
    let _ = f.dequeue_drop_all();
}

/// Run every operation on the (possibly corrupted) segment.
pub fn exercise(seg: &Segment, fifos: &[u64; 2], inp: &mut Input) {
    let fs = match FifoSegment::attach(seg) {
        Ok(fs) => fs,
        Err(_) => return,
    };
    for &off in fifos {
        if let Ok(f) = Fifo::attach(fs, off) {
            fifo_ops(&f, inp);
            let _ = fs.free_fifo(f);
        }
    }
    let _ = fs.alloc_chunk(inp.u32() % 3, inp.u32());
    if let Ok(f) = fs.alloc_fifo(inp.u32() % 2, inp.u32() % 200_000) {
        fifo_ops(&f, inp);
    }
    let _ = fs.collect_chunks(0, inp.u64() % SEG_SIZE);
    for fl in 0..11 {
        let _ = fs.num_free_chunks(0, fl);
    }
    let _ = fs.prealloc_chunks(1, inp.u32(), inp.u32() % 64);
    let _ = fs.prealloc_fifo_hdrs(1, inp.u32() % 64);
    let _ = fs.reserve(u64::from(inp.u32() % 100_000), 8);
    let _ = (fs.fl_chunk_bytes(), fs.free_bytes());
}
