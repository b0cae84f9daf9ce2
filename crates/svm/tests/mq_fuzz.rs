//! Fuzz-style robustness: lay out a queue, use it a little, then corrupt random words of its
//! header, slots and rings with a seeded RNG (everything except the pthread objects: a peer
//! that corrupts or holds the mutex can only block us, which no check can prevent), and check
//! that attaching and non-blocking operations return errors or values but never panic, hang or
//! touch memory outside the queue.

use std::time::Duration;

use vcl_svm::mq::{MqConfig, MsgQueue, RingCfg, SendMode};
use vcl_svm::Segment;

const OFF: u64 = 256;
/// Pthread mutex + condvar: [OFF + 8, OFF + 96).
const LOCK: std::ops::Range<u64> = OFF + 8..OFF + 96;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Values hostile code likes: boundaries, small numbers, garbage.
    fn nasty(&mut self, near: u32) -> u32 {
        match self.below(6) {
            0 => 0,
            1 => u32::MAX,
            2 => near.wrapping_add(self.below(3) as u32).wrapping_sub(1),
            3 => self.below(64) as u32,
            4 => 1 << self.below(32),
            _ => self.next() as u32,
        }
    }
}

fn shape(r: &mut Rng) -> MqConfig {
    MqConfig {
        q_nitems: 1 + r.below(16) as u32,
        rings: (0..1 + r.below(3))
            .map(|_| RingCfg {
                nitems: 1 + r.below(9) as u32,
                elsize: [18, 256, 2, 7][r.below(4) as usize],
            })
            .collect(),
    }
}

fn exercise(q: &MsgQueue<&Segment>, r: &mut Rng, steps: u64) -> usize {
    let mut events = 0;
    for _ in 0..steps {
        let ring = r.below(u64::from(q.n_rings()) + 1) as u32;
        let _ = match r.below(4) {
            0 => q.send(
                ring,
                1,
                &[7; 4][..r.below(5) as usize],
                false,
                SendMode::Try,
            ),
            1 => q.send_ctrl(2, &[9; 3], SendMode::Try),
            2 => q.send_io(3, r.next() as u32, SendMode::BlockFor(Duration::ZERO)),
            _ => match q.consumer() {
                Ok(mut c) => c
                    .dequeue(r.below(20) as usize, |e| events += e.data.len())
                    .map(|_| ()),
                Err(e) => Err(e),
            },
        };
        let _ = (q.len(), q.is_full(), q.ring_len(ring));
    }
    events
}

fn corrupt(seg: &Segment, size: u64, r: &mut Rng, words: u64) {
    for _ in 0..words {
        let at = OFF + r.below(size.saturating_sub(4));
        if LOCK.contains(&at) || LOCK.contains(&(at + 3)) {
            continue;
        }
        let near = seg.load::<u8>(at).map(u32::from).unwrap_or(0);
        let v = r.nasty(near).to_ne_bytes();
        for (i, b) in v.iter().enumerate() {
            let _ = seg.store::<u8>(at + i as u64, *b);
        }
    }
}

#[test]
fn corrupted_queues_never_panic() {
    let seg = Segment::create("mq-fuzz", 1 << 20, 8192).unwrap();
    let iters = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let (mut attached, mut refused) = (0, 0);
    for seed in 1..=iters as u64 {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let cfg = shape(&mut r);
        let size = cfg.size() as u64;
        let q = MsgQueue::init(&seg, OFF, &cfg).unwrap();
        let steps = r.below(12);
        exercise(&q, &mut r, steps);
        drop(q);
        let words = 1 + r.below(8);
        corrupt(&seg, size + 64, &mut r, words);
        match MsgQueue::attach(&seg, OFF) {
            Ok(q) => {
                attached += 1;
                exercise(&q, &mut r, 24);
            }
            Err(_) => refused += 1,
        }
    }
    eprintln!("{attached} corrupted queues attached and exercised, {refused} refused");
    assert!(attached > 0 && refused > 0);
}

#[test]
fn random_bytes_never_attach_out_of_bounds() {
    let seg = Segment::create("mq-fuzz-raw", 1 << 16, 8192).unwrap();
    let span = seg.fsh_span();
    let mut r = Rng(42);
    for _ in 0..2000 {
        for _ in 0..64 {
            let at = OFF + r.below(512);
            if !LOCK.contains(&at) {
                let _ = seg.store::<u8>(at, r.next() as u8);
            }
        }
        // Small plausible headers now and then so some attaches get further.
        let _ = seg.store::<u32>(OFF, 1 + r.below(3) as u32);
        let _ = seg.store::<u32>(OFF + 8 + 104, 8);
        let _ = seg.store::<u32>(OFF + 8 + 100, r.nasty(4) % 64);
        if let Ok(q) = MsgQueue::attach(&seg, OFF) {
            assert!(q.offset() + q.size() as u64 <= span);
            exercise(&q, &mut r, 8);
        }
    }
}
