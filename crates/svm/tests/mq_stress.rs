//! Several producer threads and one consumer on a small queue (so producers keep hitting "full"
//! and waiting), in mutex mode and in eventfd mode: every message must arrive exactly once and
//! in each producer's order.
// unsafe here: makes eventfds with libc.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use vcl_svm::mq::{MqConfig, MsgQueue, RingCfg, SendMode};
use vcl_svm::Segment;

const PRODUCERS: u32 = 4;
const PER_PRODUCER: u32 = if cfg!(debug_assertions) {
    40_000
} else {
    250_000
};

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new fd or -1 (checked).
    let fd = unsafe { libc::eventfd(0, 0) };
    assert!(fd >= 0);
    // SAFETY: fd is new and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn cfg() -> MqConfig {
    MqConfig {
        q_nitems: 64,
        rings: vec![
            RingCfg {
                nitems: 64,
                elsize: 18,
            },
            RingCfg {
                nitems: 8,
                elsize: 256,
            },
        ],
    }
}

fn producer(q: &MsgQueue<&Segment>, id: u32) {
    for seq in 0..PER_PRODUCER {
        let mut p = [0u8; 8];
        p[..4].copy_from_slice(&id.to_ne_bytes());
        p[4..].copy_from_slice(&seq.to_ne_bytes());
        if seq % 16 == 15 {
            q.send_ctrl(2, &p, SendMode::Block).unwrap();
        } else {
            // IO events carry only 4 bytes: pack producer id and sequence into one u32.
            q.send_io(1, id << 28 | seq, SendMode::Block).unwrap();
        }
    }
}

fn consume(q: &MsgQueue<&Segment>) -> Vec<u32> {
    let mut next = vec![0u32; PRODUCERS as usize];
    let mut c = q.consumer().unwrap();
    let total = PRODUCERS * PER_PRODUCER;
    let mut got = 0;
    let until = Instant::now() + Duration::from_secs(300);
    while got < total && Instant::now() < until {
        got += c
            .dequeue_wait(64, Duration::from_millis(10), |e| {
                let (id, seq) = match e.event_type() {
                    1 => (e.session_index() >> 28, e.session_index() & 0x0fff_ffff),
                    _ => {
                        let p = e.payload();
                        let id = u32::from_ne_bytes(p[..4].try_into().unwrap());
                        (id, u32::from_ne_bytes(p[4..8].try_into().unwrap()))
                    }
                };
                assert_eq!(seq, next[id as usize], "producer {id} out of order");
                assert_eq!(e.event_type() == 2, seq % 16 == 15);
                next[id as usize] += 1;
            })
            .unwrap() as u32;
    }
    next
}

fn run(evt: bool) {
    let seg = Segment::create("mq-stress", 1 << 20, 8192).unwrap();
    let mut q = MsgQueue::init(&seg, 0, &cfg()).unwrap();
    if evt {
        q.set_eventfd(eventfd());
    }
    let t = Instant::now();
    let next = std::thread::scope(|s| {
        for id in 0..PRODUCERS {
            let q = &q;
            s.spawn(move || producer(q, id));
        }
        consume(&q)
    });
    assert_eq!(next, vec![PER_PRODUCER; PRODUCERS as usize]);
    assert!(q.is_empty());
    assert_eq!((q.ring_len(0), q.ring_len(1)), (Some(0), Some(0)));
    eprintln!(
        "evt={evt}: {} messages from {PRODUCERS} threads in {:?}",
        PRODUCERS * PER_PRODUCER,
        t.elapsed()
    );
}

#[test]
fn many_producers_one_consumer_mutex_mode() {
    run(false);
}

#[test]
fn many_producers_one_consumer_eventfd_mode() {
    run(true);
}
