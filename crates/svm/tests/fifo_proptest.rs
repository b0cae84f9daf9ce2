//! Property test: random operation sequences on two fifos sharing one slice, checked against a
//! `VecDeque` model, with the segment's chunk accounting checked after every operation.
// unsafe here: reads the zero-copy fifo views it checks.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use proptest::prelude::*;
use vcl_svm::fifo::{Fifo, FifoSeg};
use vcl_svm::fifo_segment::{fl_size, FifoSegment, FS_CHUNK_VEC_LEN};
use vcl_svm::{Segment, SvmError};

#[derive(Debug, Clone)]
enum Op {
    Enq(usize, u32),
    Deq(usize, u32),
    Peek(usize, u32, u32),
    Drop(usize, u32),
    Segs(usize, u32, u32),
    EnqSegs(usize, Vec<u32>, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let f = 0..2usize;
    let len = prop_oneof![0..200u32, 0..20_000u32, 0..150_000u32];
    prop_oneof![
        3 => (f.clone(), len.clone()).prop_map(|(f, l)| Op::Enq(f, l)),
        3 => (f.clone(), len.clone()).prop_map(|(f, l)| Op::Deq(f, l)),
        1 => (f.clone(), 0..30_000u32, 0..10_000u32).prop_map(|(f, o, l)| Op::Peek(f, o, l)),
        1 => (f.clone(), len.clone()).prop_map(|(f, l)| Op::Drop(f, l)),
        1 => (f.clone(), 0..30_000u32, 0..100_000u32).prop_map(|(f, o, m)| Op::Segs(f, o, m)),
        1 => (f, prop::collection::vec(0..9000u32, 0..4), any::<bool>())
            .prop_map(|(f, l, p)| Op::EnqSegs(f, l, p)),
    ]
}

struct Model {
    q: VecDeque<u8>,
    next: u8,
}

impl Model {
    fn bytes(&mut self, n: u32) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.next = self.next.wrapping_mul(31).wrapping_add(7);
                self.next
            })
            .collect()
    }
}

fn check_accounting(fs: &FifoSegment, fifos: &[Fifo]) {
    let fss = fs.slice(0).unwrap();
    let mut carved = 0u64;
    let mut listed = 0u64;
    for i in 0..FS_CHUNK_VEC_LEN {
        carved += u64::from(fss.num_chunks[i].load(Relaxed)) * u64::from(fl_size(i));
        listed += u64::from(fs.num_free_chunks(0, i).unwrap()) * u64::from(fl_size(i));
    }
    let in_fifos: u64 = fifos.iter().map(|f| f.chunk_list().unwrap().1).sum();
    assert_eq!(fs.cached_bytes(), listed);
    assert_eq!(fss.n_fl_chunk_bytes.load(Relaxed), listed);
    assert_eq!(carved, listed + in_fifos);
}

fn run(f: &Fifo, m: &mut Model, op: &Op) {
    let size = f.size() as usize;
    match op {
        Op::Enq(_, l) => {
            let data = m.bytes(*l);
            let free = size - m.q.len();
            match f.enqueue(&data) {
                Ok(n) => {
                    assert_eq!(n, data.len().min(free));
                    m.q.extend(&data[..n]);
                }
                Err(SvmError::Full) => assert_eq!(free, 0),
                Err(e) => panic!("{e}"),
            }
        }
        Op::EnqSegs(_, lens, partial) => {
            let pieces: Vec<Vec<u8>> = lens.iter().map(|l| m.bytes(*l)).collect();
            let refs: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
            let all: Vec<u8> = pieces.concat();
            let free = size - m.q.len();
            match f.enqueue_segments(&refs, *partial) {
                Ok(n) => {
                    assert_eq!(n, all.len().min(free));
                    m.q.extend(&all[..n]);
                }
                Err(SvmError::Full) => assert!(free == 0 || (!partial && all.len() > free)),
                Err(e) => panic!("{e}"),
            }
        }
        Op::Deq(_, l) => {
            let mut buf = vec![0u8; *l as usize];
            match f.dequeue(&mut buf) {
                Ok(n) => {
                    assert_eq!(n, buf.len().min(m.q.len()));
                    let want: Vec<u8> = m.q.drain(..n).collect();
                    assert_eq!(&buf[..n], &want[..]);
                }
                Err(SvmError::Empty) => assert!(m.q.is_empty()),
                Err(e) => panic!("{e}"),
            }
        }
        Op::Peek(_, o, l) => {
            let mut buf = vec![0u8; *l as usize];
            let (o, used) = (*o as usize, m.q.len());
            match f.peek(o as u32, &mut buf) {
                Ok(n) => {
                    assert_eq!(n, buf.len().min(used.saturating_sub(o)));
                    assert!(m.q.iter().skip(o).take(n).eq(buf[..n].iter()));
                }
                Err(SvmError::Empty) => assert!(used == 0 && o == 0),
                Err(e) => panic!("{e}"),
            }
        }
        Op::Drop(_, l) => match f.dequeue_drop(*l) {
            Ok(n) => {
                assert_eq!(n, (*l as usize).min(m.q.len()));
                m.q.drain(..n);
            }
            Err(SvmError::Empty) => assert!(m.q.is_empty()),
            Err(e) => panic!("{e}"),
        },
        Op::Segs(_, o, max) => {
            let mut segs = [FifoSeg::default(); 3];
            let (o, used) = (*o as usize, m.q.len());
            match f.segments(o as u32, &mut segs, *max) {
                Ok((n, bytes)) => {
                    let mut got = Vec::new();
                    for s in &segs[..n] {
                        // SAFETY: single-threaded test; nothing writes the fifo meanwhile.
                        got.extend_from_slice(unsafe { s.as_slice() });
                    }
                    assert_eq!(got.len(), bytes as usize);
                    assert!(bytes as usize <= (used - o).min(*max as usize));
                    assert!(m.q.iter().skip(o).take(got.len()).eq(got.iter()));
                }
                Err(SvmError::Empty) => assert!(o >= used),
                Err(e) => panic!("{e}"),
            }
        }
    }
}

fn fifo_of(op: &Op) -> usize {
    match op {
        Op::Enq(f, _)
        | Op::Deq(f, _)
        | Op::Peek(f, _, _)
        | Op::Drop(f, _)
        | Op::Segs(f, _, _)
        | Op::EnqSegs(f, _, _) => *f,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn fifo_matches_vecdeque(
        sizes in (4096u32..200_000, 1u32..70_000),
        pct in prop_oneof![Just(0u8), 1u8..=100],
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let seg = Segment::create("fifo-prop", 32 << 20, 8192).unwrap();
        let fs = FifoSegment::init(&seg, 1).unwrap();
        fs.set_pct_first_alloc(pct);
        let fifos = [fs.alloc_fifo(0, sizes.0).unwrap(), fs.alloc_fifo(0, sizes.1).unwrap()];
        let mut models = [Model { q: VecDeque::new(), next: 1 }, Model { q: VecDeque::new(), next: 2 }];
        for op in &ops {
            let i = fifo_of(op);
            run(&fifos[i], &mut models[i], op);
            prop_assert_eq!(fifos[i].max_dequeue() as usize, models[i].q.len());
            check_accounting(&fs, &fifos);
        }
        // Draining both fifos and freeing them returns every carved byte to the free lists.
        for f in fifos {
            f.dequeue_drop_all().unwrap();
            fs.free_fifo(f).unwrap();
        }
        check_accounting(&fs, &[]);
        prop_assert_eq!(fs.n_active_fifos(), 0);
    }
}
