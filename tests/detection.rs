//! How fast VPP's death is noticed in each wait mode, without use-mq-eventfd (the mode where
//! nothing wakes a waiter: it must find the hung-up app socket by itself, see docs/wire.md
//! "VPP death") and with it for comparison. Blocked read, write on a full fifo, accept,
//! epoll_wait(-1), select(-1), poll(-1) and a busy non-blocking read loop: each alone on
//! worker 0 (another waiter on the same worker could notice for it) while the test peer is
//! stopped, timed from the stop to the call's return. Several rounds per mode; the figures
//! are printed, and every one must be under 1 s (a loaded 2-core CI).
//!
//! The library keeps one app per process, so the tests in this file take turns (SERIAL).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vcl::ffi::{vcl_poll_t, vcl_si_set};
use vcl::testing::app;

#[path = "common/vcl_peer.rs"]
mod util;
use util::*;

const MODES: [&str; 7] = ["read", "write", "accept", "epoll", "select", "poll", "busy"];
const BOUND: Duration = Duration::from_secs(1);
const ROUNDS: usize = 3;

/// One round: mode `mode` waits alone; returns how long after the peer stopped it returned.
fn round(tag: &str, eventfd: bool, mode: usize) -> Duration {
    let p = attach(tag, eventfd);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let idle = connect(kport);
    let _k1 = kl.accept().unwrap();
    let writer = connect(kport);
    let _k2 = kl.accept().unwrap(); // never reads: the writer's tx fills up
    let busy = connect(kport);
    let _k3 = kl.accept().unwrap();
    let ls = listen(free_port());
    // SAFETY: no arguments.
    let vep = unsafe { vppcom_epoll_create() } as u32;
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 1,
    };
    // SAFETY: ev is valid for the call.
    let rv = unsafe { vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, idle, &mut ev) };
    assert_eq!(rv, 0);
    let mut nb: i32 = libc::O_NONBLOCK;
    let mut len = 4u32;
    // SAFETY: nb and len outlive the call (VPPCOM_ATTR_SET_FLAGS = 3).
    let rv = unsafe { vppcom_session_attr(busy, 3, (&mut nb as *mut i32).cast(), &mut len) };
    assert_eq!(rv, 0);
    // the writer fills its fifo first, so its blocked write is a full-fifo wait
    let (full_tx, full_rx) = mpsc::channel();

    let (tx, rx) = mpsc::channel::<Instant>();
    let (died_tx, died_rx) = mpsc::channel::<()>();
    let mut waiters: Vec<Box<dyn FnOnce() + Send>> = vec![
        Box::new(move || {
            read(idle, &mut [0u8; 16]);
        }),
        Box::new(move || {
            let chunk = vec![7u8; 64 << 10];
            let mut full = Some(full_tx);
            loop {
                let mut nb = 1i32;
                let mut len = 4u32;
                // SAFETY: nb and len outlive the call (VPPCOM_ATTR_GET_NWRITE = 1).
                let space = unsafe {
                    vppcom_session_attr(writer, 1, (&mut nb as *mut i32).cast(), &mut len)
                };
                if space == 0 {
                    if let Some(f) = full.take() {
                        let _ = f.send(());
                    }
                }
                // SAFETY: chunk is valid for its length.
                let r = unsafe { vppcom_session_write(writer, chunk.as_ptr(), chunk.len()) };
                if r < 0 {
                    break;
                }
            }
        }),
        Box::new(move || {
            // SAFETY: a null endpoint is allowed.
            unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) };
        }),
        Box::new(move || {
            let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
            // SAFETY: out holds 4 entries.
            unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 4, -1.0) };
        }),
        Box::new(move || {
            let mut bits: vcl_si_set = 1 << (idle & 0xFF_FFFF);
            let n = (idle & 0xFF_FFFF) as i32 + 1;
            let null = std::ptr::null_mut();
            // SAFETY: bits holds 64 bits, more than n.
            unsafe { vppcom_select(n, &mut bits, null, null, -1.0) };
        }),
        Box::new(move || {
            let mut fds = [vcl_poll_t {
                fds_ndx: 0,
                sh: idle,
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: fds holds 1 entry.
            unsafe { vppcom_poll(fds.as_mut_ptr(), 1, -1.0) };
        }),
        Box::new(move || {
            // spins until the peer is gone, then until the read fails
            let _ = died_rx.recv();
            while read(busy, &mut [0u8; 16]) == -libc::EAGAIN {}
        }),
    ];
    let f = waiters.swap_remove(mode);
    drop(waiters);
    std::thread::spawn(move || {
        app::set_current_worker(0);
        f();
        let _ = tx.send(Instant::now());
    });
    if MODES[mode] == "write" {
        full_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the writer's fifo filled up");
    }
    // let the others block (not a synchronisation: one not yet blocked is measured too)
    std::thread::sleep(Duration::from_millis(100));
    let stopping = Instant::now();
    let _ = died_tx.send(());
    // VPP dies when its end of the app socket closes: the last thing `stop` does, after
    // joining the peer's threads (which a loaded machine can delay; not the library's time)
    p.stop();
    let died = Instant::now();
    let lat = rx
        .recv_timeout(BOUND * 5)
        .map_or(Duration::MAX, |at| at.saturating_duration_since(died));
    if lat > BOUND {
        println!(
            "{tag}: {} noticed {lat:?} after the socket closed ({:?} after stop began)",
            MODES[mode],
            lat.saturating_add(died - stopping)
        );
    }
    app::destroy();
    lat
}

fn measure(eventfd: bool) {
    let _s = serial();
    let tag = if eventfd { "lat-evfd" } else { "lat-noevfd" };
    let mut all: Vec<Vec<Duration>> = vec![Vec::new(); MODES.len()];
    for r in 0..ROUNDS {
        for (k, lat) in all.iter_mut().enumerate() {
            lat.push(round(&format!("{tag}{r}{k}"), eventfd, k));
        }
    }
    let mut worst = Duration::ZERO;
    for (k, ls) in all.iter_mut().enumerate() {
        ls.sort();
        let shown: Vec<String> = ls.iter().map(|l| format!("{:.1}", ms(*l))).collect();
        println!(
            "{tag}: {:>6} median {:>6.1} ms, all [{}] ms",
            MODES[k],
            ms(ls[ls.len() / 2]),
            shown.join(", ")
        );
        worst = worst.max(*ls.last().unwrap());
    }
    assert!(worst <= BOUND, "{tag}: a waiter took {worst:?} to notice");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[test]
fn vpp_death_is_noticed_fast_in_every_mode_without_eventfds() {
    measure(false);
}

#[test]
fn vpp_death_is_noticed_fast_in_every_mode_with_eventfds() {
    measure(true);
}
