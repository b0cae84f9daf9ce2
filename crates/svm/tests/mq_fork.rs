//! Two processes over one message queue: the parent produces a million messages (IO events with
//! a control event every 64th) into an app-shaped queue, the forked child consumes them, checks
//! their order and reports a checksum through a pipe. Run in mutex mode and in eventfd mode (the
//! eventfd is inherited across fork, as VPP passes it across processes).
// unsafe here: makes eventfds and pipes and forks to test across processes.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use vcl_svm::mq::{MqConfig, MsgQueue, SendMode};
use vcl_svm::Segment;

mod watchdog;

const N: u32 = 1_000_000;
const OFF: u64 = 4096;

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new fd or -1 (checked).
    let fd = unsafe { libc::eventfd(0, 0) };
    assert!(fd >= 0);
    // SAFETY: fd is new and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut p = [0; 2];
    // SAFETY: pipe writes two new fds into `p` (checked).
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    // SAFETY: both fds are new and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) }
}

/// Order-sensitive checksum step.
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x100_0000_01b3).rotate_left(5)
}

fn is_ctrl(i: u32) -> bool {
    i % 64 == 63
}

fn ctrl_payload(i: u32) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&i.to_ne_bytes());
    p[4..].copy_from_slice(&(u64::from(i) * 3).to_ne_bytes());
    p
}

fn expected_checksum() -> u64 {
    (0..N).fold(0, |h, i| {
        mix(h, u64::from(i) ^ (u64::from(is_ctrl(i)) << 40))
    })
}

/// Send all N messages. A send blocked for 60 s (a dead or stuck consumer) fails the test.
fn produce(q: &MsgQueue<&Segment>) {
    let mode = SendMode::BlockFor(Duration::from_secs(60));
    for i in 0..N {
        let r = if is_ctrl(i) {
            q.send_ctrl(i as u8, &ctrl_payload(i), mode)
        } else {
            q.send_io(i as u8, i, mode)
        };
        if let Err(e) = r {
            panic!("message {i} not sent: {e}");
        }
    }
}

/// Consume all N messages; returns the checksum or a description of the first violation.
fn consume(q: &MsgQueue<&Segment>) -> Result<u64, String> {
    let mut c = q.consumer().map_err(|e| e.to_string())?;
    let (mut next, mut h, mut bad) = (0u32, 0u64, None);
    let until = Instant::now() + Duration::from_secs(120);
    while next < N && bad.is_none() && Instant::now() < until {
        c.dequeue_wait(256, Duration::from_millis(20), |e| {
            let i = next;
            let ok = if is_ctrl(i) {
                e.ring == 1 && e.payload()[..12] == ctrl_payload(i)
            } else {
                e.ring == 0 && e.session_index() == i
            };
            if !ok || e.event_type() != i as u8 {
                bad.get_or_insert(format!("message {i}: ring {} {:?}", e.ring, &e.data[..6]));
            }
            h = mix(h, u64::from(i) ^ (u64::from(e.ring) << 40));
            next += 1;
        })
        .map_err(|e| e.to_string())?;
    }
    match bad {
        Some(b) => Err(b),
        None if next == N => Ok(h),
        None => Err(format!("timed out after {next} messages")),
    }
}

fn run(evt: bool) {
    let seg = Segment::create("mq-fork", 1 << 20, 8192).unwrap();
    let mut q = MsgQueue::init(&seg, OFF, &MqConfig::app(2048)).unwrap();
    if evt {
        q.set_eventfd(eventfd());
    }
    let (rd, wr) = pipe();
    // SAFETY: the child runs only the consumer (no locks shared with other parent threads besides
    // the queue's process-shared ones) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let r = std::panic::catch_unwind(|| consume(&q)).unwrap_or(Err("panic".into()));
        let (code, v) = match r {
            Ok(h) => (0, h),
            Err(m) => {
                eprintln!("child: {m}");
                (1, 0)
            }
        };
        // SAFETY: writes 8 bytes from a live u64 to our pipe end; _exit never returns.
        unsafe {
            libc::write(wr.as_raw_fd(), &v as *const u64 as *const libc::c_void, 8);
            libc::_exit(code);
        }
    }
    drop(wr);
    let child = watchdog::Child(pid);
    let t = Instant::now();
    produce(&q);
    // the consumer gives up by itself after 120 s
    let st = child.wait(Duration::from_secs(180));
    let el = t.elapsed();
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a live u64.
    let n = unsafe { libc::read(rd.as_raw_fd(), &mut v as *mut u64 as *mut libc::c_void, 8) };
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "child failed ({st})"
    );
    assert_eq!(n, 8);
    assert_eq!(v, expected_checksum());
    let rate = f64::from(N) / el.as_secs_f64();
    eprintln!("mode evt={evt}: {N} messages across processes in {el:?} ({rate:.0}/s)");
    assert!(q.is_empty());
}

#[test]
fn a_million_messages_across_fork_in_mutex_and_eventfd_modes() {
    run(false);
    run(true);
}
