//! The fuzz targets' bodies as plain functions: `fuzz_targets/*.rs` hand them libFuzzer's
//! inputs (nightly, `cargo fuzz`), and `crates/svm/tests/fuzz_replay.rs` runs them on stable
//! under `cargo test` with a bounded random driver, so CI builds, lints and runs them.
//! Include with `#[path]` next to `common.rs` (module `common`).

use vcl_svm::mq::{MqConfig, MsgQueue, RingCfg, SendMode};
use vcl_svm::Segment;

const OFF: u64 = 64;
const LOCK: std::ops::Range<u64> = OFF + 8..OFF + 96;

struct Input<'d>(&'d [u8], usize);

impl Input<'_> {
    fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        for x in &mut b {
            *x = self.0.get(self.1).copied().unwrap_or(0);
            self.1 += 1;
        }
        u32::from_le_bytes(b)
    }
}

fn ops(q: &MsgQueue<&Segment>, inp: &mut Input, n: u32) {
    for _ in 0..n {
        let v = inp.u32();
        let ring = v % (q.n_rings() + 1);
        let _ = match v >> 30 {
            0 => q.send_io(1, v, SendMode::Try),
            1 => q.send_ctrl(2, &[3; 40], SendMode::Try),
            2 => q.send(ring, 4, &[5; 2], true, SendMode::Try),
            _ => q
                .consumer()
                .and_then(|mut c| {
                    c.dequeue((v & 63) as usize, |e| {
                        std::hint::black_box(e.payload());
                    })
                })
                .map(drop),
        };
        let _ = (q.len(), q.ring_len(ring));
    }
}

/// A queue of the input's shape, a few operations, then corrupted words (anywhere in the queue
/// except its pthread objects, which a hostile peer can only use to block us); attaching and
/// non-blocking operations on the result must return values or errors, never panic or stray
/// out of bounds.
pub fn mq_attach(data: &[u8]) {
    let mut inp = Input(data, 0);
    let seg = Segment::create("mq-fuzz", 1 << 20, 8192).unwrap();
    let shape = inp.u32();
    let cfg = MqConfig {
        q_nitems: 1 + shape % 32,
        rings: vec![
            RingCfg {
                nitems: 1 + (shape >> 8) % 32,
                elsize: 18,
            },
            RingCfg {
                nitems: 1 + (shape >> 16) % 8,
                elsize: 256,
            },
        ],
    };
    let size = cfg.size() as u64;
    let q = MsgQueue::init(&seg, OFF, &cfg).unwrap();
    let n = inp.u32() % 16;
    ops(&q, &mut inp, n);
    drop(q);
    for _ in 0..1 + inp.u32() % 6 {
        let at = OFF + u64::from(inp.u32()) % (size + 16);
        let v = inp.u32();
        if LOCK.contains(&at) || LOCK.contains(&(at + 3)) {
            continue;
        }
        for (i, b) in v.to_ne_bytes().iter().enumerate() {
            let _ = seg.store::<u8>(at + i as u64, *b);
        }
    }
    if let Ok(q) = MsgQueue::attach(&seg, OFF) {
        ops(&q, &mut inp, 32);
    }
}

/// Corrupt a realistic fifo segment as the input dictates, then map it again and run every
/// fifo and segment operation.
pub fn fifo_segment_map(data: &[u8]) {
    let (seg, fifos) = super::common::fixture();
    let mut inp = super::common::Input::new(data);
    super::common::corrupt(&seg, &fifos, &mut inp);
    super::common::exercise(&seg, &fifos, &mut inp);
}
