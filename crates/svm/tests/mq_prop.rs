//! Property test: random sequences of non-blocking sends (IO and control, on small queues and
//! rings so "full" is frequent) and batched receives behave exactly like a VecDeque model, in
//! both locking modes.
// unsafe here: makes eventfds with libc.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::os::fd::{FromRawFd, OwnedFd};

use proptest::prelude::*;
use vcl_svm::mq::{MqConfig, MsgQueue, RingCfg, SendMode};
use vcl_svm::{Segment, SvmError};

#[derive(Debug, Clone)]
enum Op {
    Io(u32),
    Ctrl(u8, u8),
    Recv(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u32>().prop_map(Op::Io),
        (0u8..=254, any::<u8>()).prop_map(|(l, b)| Op::Ctrl(l, b)),
        (0u8..8).prop_map(Op::Recv),
    ]
}

/// What the model expects to come out: ring and the payload bytes that were written.
type Expected = (u32, u8, Vec<u8>);

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new fd or -1 (checked).
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
    assert!(fd >= 0);
    // SAFETY: fd is new and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn send(q: &MsgQueue<&Segment>, op: &Op) -> (Result<(), SvmError>, Expected) {
    match *op {
        Op::Io(v) => (
            q.send_io(5, v, SendMode::Try),
            (0, 5, v.to_ne_bytes().to_vec()),
        ),
        Op::Ctrl(len, b) => {
            let p = vec![b; len as usize];
            (q.send_ctrl(6, &p, SendMode::Try), (1, 6, p))
        }
        Op::Recv(_) => unreachable!(),
    }
}

fn check(q_n: u32, r0: u32, r1: u32, evt: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let seg = Segment::create("mq-prop", 1 << 18, 8192).unwrap();
    let cfg = MqConfig {
        q_nitems: q_n,
        rings: vec![
            RingCfg {
                nitems: r0,
                elsize: 18,
            },
            RingCfg {
                nitems: r1,
                elsize: 256,
            },
        ],
    };
    let mut q = MsgQueue::init(&seg, 64, &cfg).unwrap();
    if evt {
        q.set_eventfd(eventfd());
    }
    let mut model: VecDeque<Expected> = VecDeque::new();
    for op in ops {
        if let Op::Recv(n) = *op {
            let mut got = Vec::new();
            let mut c = q.consumer().unwrap();
            let k = c
                .dequeue(n as usize, |e| {
                    let len = if e.ring == 0 { 4 } else { e.payload().len() };
                    got.push((e.ring, e.event_type(), e.payload()[..len].to_vec()))
                })
                .unwrap();
            prop_assert_eq!(k, (n as usize).min(model.len()));
            for g in got {
                let want = model.pop_front().unwrap();
                if want.0 == 1 {
                    // Control: payload as sent, the rest of the zeroed 18-byte header still
                    // zero, later bytes whatever the element held before.
                    let n = want.2.len();
                    prop_assert_eq!((g.0, g.1), (want.0, want.1));
                    prop_assert_eq!(&g.2[..n], &want.2[..]);
                    prop_assert!(g.2[n.min(16)..16].iter().all(|&b| b == 0));
                } else {
                    prop_assert_eq!(&g, &want);
                }
            }
        } else {
            let (r, want) = send(&q, op);
            let ring_used = model.iter().filter(|m| m.0 == want.0).count() as u32;
            let cap = if want.0 == 0 { r0 } else { r1 };
            let room = (model.len() as u32) < q_n && ring_used < cap;
            prop_assert_eq!(r.is_ok(), room, "{:?}", r);
            if room {
                model.push_back(want);
            } else {
                prop_assert_eq!(r, Err(SvmError::Full));
            }
        }
        prop_assert_eq!(q.len() as usize, model.len());
        let used0 = model.iter().filter(|m| m.0 == 0).count() as u32;
        prop_assert_eq!(q.ring_len(0), Some(used0));
        prop_assert_eq!(q.ring_len(1), Some(model.len() as u32 - used0));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn queue_matches_a_vecdeque_model(
        q_n in 1u32..7,
        r0 in 1u32..7,
        r1 in 1u32..4,
        evt in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..160),
    ) {
        check(q_n, r0, r1, evt, &ops)?;
    }
}
