//! Unit tests: layout and sizes, init/attach, producer/consumer including wrap-around, full and
//! empty behaviour, eventfd mode, robust-mutex recovery, corrupt headers, discovery.
// Shared memory / fds: eventfds and fork for the cross-process tests.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::*;

const OFF: u64 = 4096;

fn seg(size: u64) -> Segment {
    Segment::create("mq-test", size, 8192).unwrap()
}

fn small(q: u32, r0: u32, r1: u32) -> MqConfig {
    MqConfig {
        q_nitems: q,
        rings: vec![
            RingCfg {
                nitems: r0,
                elsize: SESSION_EVENT_SIZE,
            },
            RingCfg {
                nitems: r1,
                elsize: CTRL_EVENT_SIZE,
            },
        ],
    }
}

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new fd or -1 (checked).
    let fd = unsafe { libc::eventfd(0, 0) };
    assert!(fd >= 0);
    // SAFETY: fd is new and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn drain(q: &MsgQueue<&Segment>) -> Vec<(u32, Vec<u8>)> {
    let mut c = q.consumer().unwrap();
    let mut v = Vec::new();
    c.dequeue(usize::MAX, |e| v.push((e.ring, e.data.to_vec())))
        .unwrap();
    v
}

fn corrupt_err<T: std::fmt::Debug>(r: std::result::Result<T, SvmError>) -> String {
    match r {
        Err(SvmError::Corrupt(m)) => m,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn preset_sizes_and_ring_offsets_match_vpp() {
    assert_eq!(MqConfig::vpp_thread(0).size(), 315_552);
    assert_eq!(MqConfig::vpp_thread(1000).size(), 315_552);
    assert_eq!(MqConfig::app(2048).size(), 86_176);
    assert_eq!(MqConfig::app(2048).rings[1].nitems, 128);
    assert_eq!(MqConfig::app(64).rings[1].nitems, 16);
    let rx = MqConfig::private_rx(64);
    assert_eq!(
        (rx.q_nitems, rx.rings[0].nitems, rx.rings[1].nitems),
        (128, 128, 64)
    );
    assert_eq!(
        MqConfig::private_rx(2048).size(),
        120 + 8 * 2048 + 20 + 2048 * 18 + 20 + 1024 * 256
    );
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &MqConfig::app(2048)).unwrap();
    assert_eq!(q.ring_geom(0).unwrap().hdr, 16_504);
    assert_eq!(q.ring_geom(1).unwrap().hdr, 53_388);
    assert_eq!(q.size(), 86_176);
    let q = MsgQueue::init(&s, OFF, &MqConfig::vpp_thread(0)).unwrap();
    assert_eq!(q.size(), 315_552);
    assert_eq!(
        q.ring_cfg(1),
        Some(RingCfg {
            nitems: 1024,
            elsize: 256
        })
    );
}

#[test]
fn init_writes_vpp_header_bytes() {
    let s = seg(1 << 20);
    MsgQueue::init(&s, OFF, &small(8, 8, 4)).unwrap();
    assert_eq!(s.load::<u32>(OFF).unwrap(), 2); // n_rings
    assert_eq!(s.load::<u32>(OFF + 8 + 100).unwrap(), 8); // maxsize
    assert_eq!(s.load::<u32>(OFF + 8 + 104).unwrap(), 8); // elsize
    let r0 = OFF + 120 + 64;
    assert_eq!(s.load::<u32>(r0 + 4).unwrap(), 8);
    assert_eq!(s.load::<u32>(r0 + 16).unwrap(), 18);
    let r1 = r0 + 20 + 8 * 18;
    assert_eq!(s.load::<u32>(r1 + 4).unwrap(), 4);
    assert_eq!(s.load::<u32>(r1 + 16).unwrap(), 256);
}

#[test]
fn io_and_ctrl_events_land_at_the_right_bytes() {
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &small(8, 8, 4)).unwrap();
    let other = MsgQueue::attach(&s, OFF).unwrap();
    // Garbage in IO element 0's `postponed` byte must survive: IO sends write only 5 bytes.
    let elt0 = OFF + q.ring_geom(0).unwrap().hdr as u64 + 20;
    s.store::<u8>(elt0 + 1, 0xAB).unwrap();
    q.send_io(3, 0xDEAD_BEEF, SendMode::Try).unwrap();
    q.send_ctrl(9, &[1, 2, 3], SendMode::Block).unwrap();
    assert_eq!(other.len(), 2);
    let mut c = other.consumer().unwrap();
    let mut got = Vec::new();
    c.dequeue(10, |e| {
        got.push((
            e.ring,
            e.event_type(),
            e.session_index(),
            e.data.len(),
            e.data[1],
        ));
        if e.ring == 1 {
            assert_eq!(&e.payload()[..3], &[1, 2, 3]);
            assert!(e.data[5..18].iter().all(|&b| b == 0));
        }
    })
    .unwrap();
    assert_eq!(got[0], (0, 3, 0xDEAD_BEEF, 18, 0xAB));
    assert_eq!(got[1].0, 1);
    assert_eq!(got[1].1, 9);
    assert_eq!(got[1].3, 256);
    assert_eq!(q.ring_len(0), Some(0));
    assert_eq!(q.ring_len(1), Some(0));
}

#[test]
fn queue_and_rings_wrap_around_in_order() {
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &small(5, 3, 2)).unwrap();
    let mut next = 0u32;
    let mut expect = 0u32;
    for round in 0..50 {
        let n = 1 + round % 3;
        for _ in 0..n {
            if next % 4 == 3 {
                q.send_ctrl(1, &next.to_ne_bytes(), SendMode::Try).unwrap();
            } else {
                q.send_io(0, next, SendMode::Try).unwrap();
            }
            next += 1;
        }
        for (ring, data) in drain(&q) {
            let v = u32::from_ne_bytes(data[2..6].try_into().unwrap());
            assert_eq!(v, expect);
            assert_eq!(ring, u32::from(expect % 4 == 3));
            expect += 1;
        }
    }
    assert_eq!(expect, next);
}

#[test]
fn full_queue_or_ring_fails_try_and_times_out_blocking() {
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &small(4, 8, 2)).unwrap();
    for i in 0..4 {
        q.send_io(0, i, SendMode::Try).unwrap();
    }
    assert!(q.is_full());
    assert_eq!(q.send_io(0, 9, SendMode::Try), Err(SvmError::Full));
    let t = Instant::now();
    assert_eq!(
        q.send_io(0, 9, SendMode::BlockFor(Duration::from_millis(30))),
        Err(SvmError::Full)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    drain(&q);
    // Ring 1 holds 2: the third ctrl send fails though the queue has room.
    q.send_ctrl(1, &[], SendMode::Try).unwrap();
    q.send_ctrl(1, &[], SendMode::Try).unwrap();
    assert_eq!(q.send_ctrl(1, &[], SendMode::Try), Err(SvmError::Full));
    assert_eq!(q.len(), 2);
    assert_eq!(drain(&q).len(), 2);
    // Payload too big and bad ring are caller errors, not corruption.
    assert!(matches!(
        q.send(0, 1, &[0; 17], false, SendMode::Try),
        Err(SvmError::Os(_, _))
    ));
    assert!(matches!(
        q.send(7, 1, &[], false, SendMode::Try),
        Err(SvmError::Os(_, _))
    ));
}

/// The calling thread's id (/proc/thread-self is a link to PID/task/TID).
fn my_tid() -> i32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// Wait (up to 30 s) until thread `tid` of this process sleeps in a system call: a wake-up test
/// must release a thread that has really blocked, not one still on its way there.
fn wait_until_blocked(tid: i32) {
    let task = format!("/proc/self/task/{tid}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap_or_default();
        // the state is the first field after the ")" closing the thread's name
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next());
        let sc = std::fs::read_to_string(format!("{task}/syscall")).unwrap_or_default();
        if state == Some("S") && !sc.is_empty() && !sc.starts_with("running") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "thread {tid} never blocked: {stat} / {sc}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn blocked_producer_is_woken_by_the_consumer() {
    for evt in [false, true] {
        let s = seg(1 << 20);
        let mut q = MsgQueue::init(&s, OFF, &small(2, 4, 2)).unwrap();
        if evt {
            q.set_eventfd(eventfd());
        }
        q.send_io(0, 0, SendMode::Try).unwrap();
        q.send_io(0, 1, SendMode::Try).unwrap();
        std::thread::scope(|sc| {
            let (tx, rx) = std::sync::mpsc::channel();
            let q = &q;
            sc.spawn(move || {
                tx.send(my_tid()).unwrap();
                q.send_io(0, 2, SendMode::Block).unwrap()
            });
            wait_until_blocked(rx.recv().unwrap());
            let mut c = q.consumer().unwrap();
            let mut seen = Vec::new();
            let until = Instant::now() + Duration::from_secs(30);
            while seen.len() < 3 && Instant::now() < until {
                c.dequeue_wait(8, Duration::from_millis(50), |e| {
                    seen.push(e.session_index())
                })
                .unwrap();
            }
            assert_eq!(seen, vec![0, 1, 2]);
        });
    }
}

#[test]
fn empty_queue_waits_for_the_whole_timeout() {
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &small(4, 4, 2)).unwrap();
    let mut c = q.consumer().unwrap();
    assert_eq!(c.dequeue(4, |_| ()).unwrap(), 0);
    assert_eq!(c.try_dequeue(&mut [0; 18]).unwrap(), None);
    // VPP v26.06 returns at once for sub-second waits (docs/wire.md#timed-waits); we must not.
    let t = Instant::now();
    assert!(!c.wait(Duration::from_millis(60)).unwrap());
    let el = t.elapsed();
    assert!(el >= Duration::from_millis(60), "{el:?}");
    drop(c);
    let mut q = q;
    q.set_eventfd(eventfd());
    let mut c = q.consumer().unwrap();
    let t = Instant::now();
    assert!(!c.wait(Duration::from_millis(40)).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(40));
}

#[test]
fn consumer_wakes_on_send_in_both_modes() {
    for evt in [false, true] {
        let s = seg(1 << 20);
        let mut q = MsgQueue::init(&s, OFF, &small(4, 4, 2)).unwrap();
        if evt {
            q.set_eventfd(eventfd());
        }
        std::thread::scope(|sc| {
            let (tx, rx) = std::sync::mpsc::channel();
            let q = &q;
            let h = sc.spawn(move || {
                let mut c = q.consumer().unwrap();
                tx.send(my_tid()).unwrap();
                let t = Instant::now();
                let ok = c.wait(Duration::from_secs(60)).unwrap();
                (ok, t.elapsed())
            });
            wait_until_blocked(rx.recv().unwrap());
            q.send_io(0, 1, SendMode::Block).unwrap();
            let (ok, el) = h.join().unwrap();
            // woken by the send, long before the wait's own 60 s timeout
            assert!(ok && el < Duration::from_secs(30), "evt={evt} {el:?}");
        });
        let mut c = q.consumer().unwrap();
        let mut buf = [0u8; 32];
        assert_eq!(c.try_dequeue(&mut buf).unwrap(), Some((0, 18)));
        assert!(q.consumer().is_err()); // one consumer per handle
    }
}

#[test]
fn deadline_carries_fractions() {
    let t = libc::timespec {
        tv_sec: 10,
        tv_nsec: 900_000_000,
    };
    let d = sync::add_duration(t, Duration::from_millis(1_250));
    assert_eq!((d.tv_sec, d.tv_nsec), (12, 150_000_000));
    let d = sync::add_duration(t, Duration::from_millis(1));
    assert_eq!((d.tv_sec, d.tv_nsec), (10, 901_000_000));
}

#[test]
fn misaligned_ring_headers_work() {
    // 7 IO elements: ring 1's header lands at a 2-byte aligned address.
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &small(8, 7, 3)).unwrap();
    assert_eq!(q.ring_geom(1).unwrap().hdr % 4, 2);
    for round in 0..10u32 {
        q.send_ctrl(1, &round.to_ne_bytes(), SendMode::Try).unwrap();
        q.send_ctrl(1, &round.to_ne_bytes(), SendMode::Try).unwrap();
        assert_eq!(q.ring_len(1), Some(2));
        let got = drain(&q);
        assert_eq!(got.len(), 2);
        assert_eq!(q.ring_len(1), Some(0));
    }
}

#[test]
fn owner_death_is_recovered() {
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &small(4, 4, 2)).unwrap();
    // SAFETY: the child only locks the shared mutex and exits without unwinding.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let rc = q.shm_lock().lock().is_ok();
        // SAFETY: _exit never returns; the mutex stays locked by a dead owner.
        unsafe { libc::_exit(if rc { 0 } else { 1 }) };
    }
    let mut st = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(st, 0);
    q.send_io(0, 5, SendMode::Block).unwrap();
    q.send_io(0, 6, SendMode::Try).unwrap();
    assert_eq!(drain(&q).len(), 2);
}

#[test]
fn corrupt_headers_are_refused_on_attach() {
    let s = seg(1 << 20);
    let cfg = small(8, 8, 4);
    let reset = || {
        MsgQueue::init(&s, OFF, &cfg).unwrap();
    };
    let r0 = OFF + 120 + 64;
    let cases: [(u64, u32, &str); 7] = [
        (OFF, 0, "n_rings"),
        (OFF, 1000, "n_rings"),
        (OFF + 8 + 104, 16, "elsize 8"),
        (OFF + 8 + 100, 0, "maxsize"),
        (OFF + 8 + 100, 1 << 21, "outside"),
        (r0 + 4, 0, "ring 0 nitems"),
        (r0 + 16, 1, "ring 0 elsize"),
    ];
    for (at, v, what) in cases {
        reset();
        s.store::<u32>(at, v).unwrap();
        let m = corrupt_err(MsgQueue::attach(&s, OFF));
        assert!(m.contains(what), "{what}: {m}");
    }
    reset();
    assert!(MsgQueue::attach(&s, s.fsh_span() - 64).is_err());
    assert!(MsgQueue::attach(&s, OFF + 4).is_err()); // misaligned queue
}

#[test]
fn corrupt_runtime_state_is_an_error_not_a_panic() {
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &small(8, 8, 4)).unwrap();
    let qh = OFF + 8;
    let r0 = OFF + 120 + 64;
    q.send_io(0, 1, SendMode::Try).unwrap();
    s.store::<u32>(qh + 96, 100).unwrap(); // cursize > maxsize
    assert!(corrupt_err(drain_res(&q)).contains("cursize"));
    let q = MsgQueue::init(&s, OFF, &small(8, 8, 4)).unwrap();
    q.send_io(0, 1, SendMode::Try).unwrap();
    s.store::<u32>(r0 + 8, 3).unwrap(); // ring head moved: out of order
    assert!(corrupt_err(drain_res(&q)).contains("out of order"));
    let q = MsgQueue::init(&s, OFF, &small(8, 8, 4)).unwrap();
    q.send_io(0, 1, SendMode::Try).unwrap();
    s.store::<u32>(qh + 112, 9).unwrap(); // slot names ring 9
    assert!(corrupt_err(drain_res(&q)).contains("ring index"));
    let q = MsgQueue::init(&s, OFF, &small(8, 8, 4)).unwrap();
    s.store::<u32>(qh + 92, 8).unwrap(); // queue tail out of range
    assert!(corrupt_err(q.send_io(0, 1, SendMode::Try)).contains("tail"));
    s.store::<u32>(r0 + 12, 80).unwrap(); // ring tail out of range
    assert!(corrupt_err(q.send_io(0, 1, SendMode::Try)).contains("ring tail"));
    s.store::<u32>(qh + 88, 99).unwrap(); // queue head out of range
    s.store::<u32>(qh + 96, 1).unwrap();
    assert!(corrupt_err(drain_res(&q)).contains("head"));
}

fn drain_res(q: &MsgQueue<&Segment>) -> std::result::Result<usize, SvmError> {
    q.consumer().unwrap().dequeue(64, |_| ())
}

fn lay_mqs_segment(s: &Segment, n: u8, cfg: &MqConfig) -> Vec<u64> {
    s.store::<u8>(20, 1).unwrap(); // n_slices
    s.store::<u64>(80, 320).unwrap(); // start_byte_index
    s.store::<u8>(22, n).unwrap();
    let size = cfg.size() as u64;
    let offs: Vec<u64> = (0..u64::from(n)).map(|i| 320 + i * size).collect();
    for &o in &offs {
        MsgQueue::init(s, o, cfg).unwrap();
    }
    s.store::<u32>(12, (320 + u64::from(n) * size) as u32)
        .unwrap();
    offs
}

#[test]
fn discovery_finds_vpp_thread_queues() {
    let s = seg(2 << 20);
    let offs = lay_mqs_segment(&s, 3, &MqConfig::vpp_thread(0));
    assert_eq!(offs[1], 320 + 315_552);
    assert_eq!(vpp_mq_offsets(&s).unwrap(), offs);
    let qs = discover_vpp_mqs(&s, Vec::new()).unwrap();
    assert_eq!(qs.len(), 3);
    qs[2].send_io(1, 7, SendMode::Try).unwrap();
    assert_eq!(qs[2].len(), 1);
    let fds = vec![eventfd(), eventfd(), eventfd()];
    let qs = discover_vpp_mqs(&s, fds).unwrap();
    assert!(qs.iter().all(|q| q.eventfd().is_some()));
    assert!(discover_vpp_mqs(&s, vec![eventfd()]).is_err());
}

#[test]
fn discovery_refuses_bad_headers() {
    let s = seg(2 << 20);
    let offs = lay_mqs_segment(&s, 2, &MqConfig::app(64));
    s.store::<u8>(22, 0).unwrap();
    assert!(corrupt_err(vpp_mq_offsets(&s)).contains("n_mqs"));
    s.store::<u8>(22, 3).unwrap(); // does not divide
    corrupt_err(vpp_mq_offsets(&s));
    s.store::<u8>(22, 2).unwrap();
    s.store::<u32>(12, u32::MAX).unwrap(); // beyond the segment
    corrupt_err(vpp_mq_offsets(&s));
    s.store::<u32>(12, 100).unwrap(); // below start
    corrupt_err(vpp_mq_offsets(&s));
    let stride = offs[1] - offs[0];
    s.store::<u32>(12, (320 + 2 * (stride - 8)) as u32).unwrap(); // stride too small
    assert!(corrupt_err(discover_vpp_mqs(&s, Vec::new()).map(|v| v.len())).contains("stride"));
}

/// The mqs header is shared with VPP: discovery must read each field once. Another process
/// rewriting `n_reserved_bytes` while we attach gets an error or a consistent answer, never a
/// wrapped stride (a re-read used to underflow when the value dropped below start_byte_index).
#[test]
fn discovery_survives_a_racing_header_writer() {
    let s = std::sync::Arc::new(seg(2 << 20));
    lay_mqs_segment(&s, 1, &MqConfig::app(64));
    let good = s.load::<u32>(12).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                s.store::<u32>(12, good).unwrap();
                s.store::<u32>(12, 100).unwrap(); // below start_byte_index (320)
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let r = std::panic::catch_unwind(|| discover_vpp_mqs(&*s, Vec::new()).map(|v| v.len()));
        match r {
            Ok(Ok(n)) => {
                assert_eq!(n, 1);
            }
            Ok(Err(SvmError::Corrupt(_))) => {}
            Ok(Err(e)) => panic!("unexpected error {e:?}"),
            Err(_) => {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("discovery panicked on a racing header");
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

/// Another app on the segment (or a stopped process) holding the shared mq mutex must not
/// freeze a producer: the lock gives up after LOCK_PATIENCE with ETIMEDOUT.
#[test]
fn a_mutex_held_elsewhere_times_out() {
    let s = std::sync::Arc::new(seg(1 << 20));
    MsgQueue::init(&*s, OFF, &small(8, 8, 4)).unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let s = s.clone();
        std::thread::spawn(move || {
            let q = MsgQueue::attach(&*s, OFF).unwrap();
            let l = q.shm_lock();
            l.lock().unwrap();
            held_tx.send(()).unwrap();
            // Hold it until the test is done (at most 10 s).
            let _ = done_rx.recv_timeout(Duration::from_secs(10));
            l.unlock();
        })
    };
    held_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let q = MsgQueue::attach(&*s, OFF).unwrap();
    let t = Instant::now();
    let r = q.send_io(1, 7, SendMode::Block);
    let took = t.elapsed();
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    match r {
        Err(SvmError::Os(_, e)) => assert_eq!(e, libc::ETIMEDOUT),
        other => panic!("expected ETIMEDOUT, got {other:?}"),
    }
    assert!(took >= sync::LOCK_PATIENCE, "gave up early: {took:?}");
    assert!(took < Duration::from_secs(5), "waited {took:?}");
}

/// After the first corrupt slot the queue is poisoned: a later dequeue or wait fails at once
/// with Corrupt (the caller detaches) instead of reporting work that can never be taken, which
/// made blocked callers spin.
#[test]
fn a_corrupt_queue_stays_corrupt_and_waits_fail_fast() {
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &small(8, 8, 4)).unwrap();
    let qh = OFF + 8;
    q.send_io(0, 1, SendMode::Try).unwrap();
    s.store::<u32>(qh + 96, 100).unwrap(); // cursize > maxsize
    let mut c = q.consumer().unwrap();
    assert!(corrupt_err(c.dequeue(64, |_| ())).contains("cursize"));
    assert!(c.is_corrupt());
    let t = Instant::now();
    assert!(corrupt_err(c.wait(Duration::from_secs(2))).contains("corrupt earlier"));
    assert!(t.elapsed() < Duration::from_secs(1));
    s.store::<u32>(qh + 96, 1).unwrap(); // "repaired" by the peer: still not trusted
    assert!(corrupt_err(c.dequeue(64, |_| ())).contains("corrupt earlier"));
}

#[test]
fn a_consumer_that_panicked_leaves_the_queue_consumable() {
    let s = seg(1 << 20);
    let q = MsgQueue::init(&s, OFF, &small(4, 4, 2)).unwrap();
    q.send_io(0, 1, SendMode::Block).unwrap();
    let r = std::panic::catch_unwind(|| {
        let _c = q.consumer().unwrap();
        panic!("app code panicked while holding the consumer");
    });
    assert!(r.is_err());
    // the copy buffer's lock is poisoned, not lost: the next consumer gets it, and the element
    // the first one never took is still there
    let mut c = q.consumer().unwrap();
    let mut got = Vec::new();
    c.dequeue(8, |e| got.push(e.data.len())).unwrap();
    assert_eq!(got, [18]);
    assert!(q.consumer().is_err());
    drop(c);
    assert!(q.consumer().is_ok());
}
