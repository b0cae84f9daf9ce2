//! Sessions end to end through the in-process test peer: 100 concurrent connections echoing
//! checksummed data, over cut-through and over transport (kernel TCP behind the peer), with
//! blocking sessions and with non-blocking sessions driven by epoll, level- and edge-triggered.
//! The echo server is this test binary again, in a child process (its own VCL app).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::process::Child;
use std::time::{Duration, Instant};

use vclapp::*;

const N_SESSIONS: usize = 100;
const BYTES_PER_SESSION: usize = 64 << 10;
const CHUNK: usize = 4096;

/// The byte at offset `i` of session `s`'s stream.
fn pattern(s: usize, i: usize) -> u8 {
    (s.wrapping_mul(131) ^ i.wrapping_mul(7) ^ (i >> 9)) as u8
}

// ---------------------------------------------------------------- the echo server (child)

#[test]
fn child_echo_server() {
    if let (Ok(port), Ok(n)) = (
        std::env::var("VCL_TEST_ECHO_PORT"),
        std::env::var("VCL_TEST_ECHO_N"),
    ) {
        echo_server(port.parse().unwrap(), n.parse().unwrap());
    }
}

fn spawn_server(conf: &std::path::Path, port: u16, n: usize) -> Child {
    let env = [
        ("VCL_TEST_ECHO_PORT", port.to_string()),
        ("VCL_TEST_ECHO_N", n.to_string()),
    ];
    spawn_child("child_echo_server", conf, &env)
}

// ---------------------------------------------------------------- clients

/// Blocking sessions: round-robin one chunk out and its echo back on every session.
fn blocking_clients(port: u16) {
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        let mut sh = Vec::new();
        for _ in 0..N_SESSIONS {
            let s = vppcom_session_create(0, 0);
            assert!(s >= 0);
            let mut ip = [127, 0, 0, 1];
            assert_eq!(
                vppcom_session_connect(s as u32, &mut endpt(&mut ip, port)),
                0
            );
            sh.push(s as u32);
        }
        let mut out = vec![0u8; CHUNK];
        let mut back = vec![0u8; CHUNK];
        for off in (0..BYTES_PER_SESSION).step_by(CHUNK) {
            for (k, &s) in sh.iter().enumerate() {
                for (j, b) in out.iter_mut().enumerate() {
                    *b = pattern(k, off + j);
                }
                assert_eq!(vppcom_session_write(s, out.as_ptr(), CHUNK), CHUNK as i32);
            }
            for (k, &s) in sh.iter().enumerate() {
                let mut got = 0;
                while got < CHUNK {
                    let r = vppcom_session_read(s, back[got..].as_mut_ptr(), CHUNK - got);
                    assert!(r > 0, "session {k}: read {r}");
                    got += r as usize;
                }
                for (j, &b) in back.iter().enumerate() {
                    assert_eq!(b, pattern(k, off + j), "session {k} byte {}", off + j);
                }
            }
        }
        for s in sh {
            assert_eq!(vppcom_session_close(s), 0);
        }
    }
}

/// Per-session progress of the non-blocking clients.
#[derive(Default, Clone)]
struct Progress {
    sent: usize,
    received: usize,
    connected: bool,
}

/// Non-blocking sessions on one epoll session: connect (EINPROGRESS, then EPOLLOUT), write
/// when writable, verify echoes when readable. `et`: edge-triggered, so drain until EAGAIN.
fn epoll_clients(port: u16, et: bool) {
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        let vep = vppcom_epoll_create() as u32;
        let mut sh = Vec::new();
        for k in 0..N_SESSIONS {
            let s = vppcom_session_create(0, 1) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(
                vppcom_session_connect(s, &mut endpt(&mut ip, port)),
                EINPROGRESS
            );
            let mut flags = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
            if et {
                flags |= libc::EPOLLET as u32;
            }
            let mut ev = libc::epoll_event {
                events: flags,
                u64: k as u64,
            };
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, s, &mut ev), 0);
            sh.push(s);
        }
        let mut p = vec![Progress::default(); N_SESSIONS];
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let mut buf = vec![0u8; CHUNK];
        let deadline = Instant::now() + Duration::from_secs(60);
        while p.iter().any(|x| x.received < BYTES_PER_SESSION) {
            assert!(Instant::now() < deadline, "epoll clients stalled");
            let n = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 64, 100.0);
            assert!(n >= 0, "epoll_wait {n}");
            for e in &evs[..n as usize] {
                let k = e.u64 as usize;
                let s = sh[k];
                assert_eq!(
                    e.events & (libc::EPOLLERR | libc::EPOLLHUP) as u32,
                    0,
                    "session {k} failed"
                );
                if e.events & libc::EPOLLOUT as u32 != 0 {
                    p[k].connected = true;
                }
                // write while there is room (ET: until EAGAIN)
                while p[k].connected && p[k].sent < BYTES_PER_SESSION {
                    let len = CHUNK.min(BYTES_PER_SESSION - p[k].sent);
                    for (j, b) in buf[..len].iter_mut().enumerate() {
                        *b = pattern(k, p[k].sent + j);
                    }
                    let w = vppcom_session_write(s, buf.as_ptr(), len);
                    if w == EAGAIN {
                        break;
                    }
                    assert!(w > 0, "session {k}: write {w}");
                    p[k].sent += w as usize;
                    if !et {
                        break;
                    }
                }
                loop {
                    let r = vppcom_session_read(s, buf.as_mut_ptr(), CHUNK);
                    if r == EAGAIN {
                        break;
                    }
                    assert!(r > 0, "session {k}: read {r}");
                    for (j, &b) in buf[..r as usize].iter().enumerate() {
                        assert_eq!(b, pattern(k, p[k].received + j), "session {k}");
                    }
                    p[k].received += r as usize;
                    if !et {
                        break;
                    }
                }
            }
        }
        for s in sh {
            vppcom_epoll_ctl(vep, libc::EPOLL_CTL_DEL, s, std::ptr::null_mut());
            assert_eq!(vppcom_session_close(s), 0);
        }
        vppcom_session_close(vep);
    }
}

fn run(tag: &str, local: bool, client: impl FnOnce(u16)) {
    let spawn = |conf: &std::path::Path, port| spawn_server(conf, port, N_SESSIONS);
    with_peer(tag, local, false, spawn, |port, _| {
        let t = Instant::now();
        client(port);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{tag}: {N_SESSIONS} sessions x {BYTES_PER_SESSION} B echoed in {secs:.2} s ({:.1} MB/s)",
            (N_SESSIONS * BYTES_PER_SESSION * 2) as f64 / secs / 1e6
        );
    });
}

#[test]
fn ct_blocking_100_sessions() {
    run("ct-blocking", true, blocking_clients);
}

#[test]
fn ct_epoll_lt_100_sessions() {
    run("ct-lt", true, |p| epoll_clients(p, false));
}

#[test]
fn ct_epoll_et_100_sessions() {
    run("ct-et", true, |p| epoll_clients(p, true));
}

#[test]
fn transport_blocking_100_sessions() {
    run("tpt-blocking", false, blocking_clients);
}

#[test]
fn transport_epoll_lt_100_sessions() {
    run("tpt-lt", false, |p| epoll_clients(p, false));
}

#[test]
fn transport_epoll_et_100_sessions() {
    run("tpt-et", false, |p| epoll_clients(p, true));
}

/// A waiter blocked 2 s on an idle session (epoll_wait: the same wait loop as a blocking read)
/// busy-polls only for its first window, then sleeps: its CPU time over the wait stays small.
#[test]
fn idle_blocked_waiter_sleeps_after_busy_poll() {
    let spawn = |conf: &std::path::Path, port| spawn_server(conf, port, 1);
    with_peer("idle", true, false, spawn, |port, _| {
        let cpu = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes into the valid timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
        };
        // SAFETY: plain calls into our own C ABI with valid pointers.
        unsafe {
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            let vep = vppcom_epoll_create() as u32;
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: u64::from(s),
            };
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, s, &mut ev), 0);
            let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
            let (c0, t0) = (cpu(), Instant::now());
            assert_eq!(vppcom_epoll_wait(vep, evs.as_mut_ptr(), 4, 2000.0), 0);
            let (used, waited) = (cpu() - c0, t0.elapsed());
            assert!(waited >= Duration::from_millis(1900), "returned early");
            assert!(used < 0.2, "idle waiter used {used:.3} s CPU in {waited:?}");
            println!(
                "idle blocked waiter: {:.1} ms CPU over {waited:?}",
                used * 1e3
            );
            vppcom_session_close(vep);
            assert_eq!(vppcom_session_close(s), 0);
        }
    });
}

// ------------------------------------------------- one worker per thread (Envoy's model)

extern "C" {
    fn vppcom_worker_register() -> i32;
    fn vppcom_worker_unregister();
    fn vppcom_worker_index() -> i32;
}

/// Each of 4 threads registers its own VCL worker, opens 10 sessions on it and echoes through
/// them with blocking calls; handles carry the thread's worker index.
fn per_thread_workers(port: u16) {
    std::thread::scope(|sc| {
        for t in 0..4 {
            sc.spawn(move || {
                // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
                unsafe {
                    assert_eq!(vppcom_worker_register(), 0);
                    let wrk = vppcom_worker_index();
                    assert!(wrk > 0);
                    let mut sh = Vec::new();
                    for _ in 0..10 {
                        let s = vppcom_session_create(0, 0);
                        assert!(s >= 0);
                        assert_eq!(s >> 24, wrk, "handle names the thread's worker");
                        let mut ip = [127, 0, 0, 1];
                        assert_eq!(
                            vppcom_session_connect(s as u32, &mut endpt(&mut ip, port)),
                            0
                        );
                        sh.push(s as u32);
                    }
                    let mut back = [0u8; 1024];
                    for (k, &s) in sh.iter().enumerate() {
                        let out: Vec<u8> = (0..1024).map(|i| pattern(t * 100 + k, i)).collect();
                        assert_eq!(vppcom_session_write(s, out.as_ptr(), out.len()), 1024);
                        let mut got = 0;
                        while got < 1024 {
                            let r = vppcom_session_read(s, back[got..].as_mut_ptr(), 1024 - got);
                            assert!(r > 0, "thread {t} session {k}: read {r}");
                            got += r as usize;
                        }
                        assert_eq!(&back[..], &out[..]);
                    }
                    for s in sh {
                        assert_eq!(vppcom_session_close(s), 0);
                    }
                    vppcom_worker_unregister();
                }
            });
        }
    });
}

fn run_n(tag: &str, local: bool, n: usize, client: impl FnOnce(u16)) {
    let spawn = |conf: &std::path::Path, port| spawn_server(conf, port, n);
    with_peer(tag, local, false, spawn, |port, _| client(port));
}

#[test]
fn per_thread_workers_ct() {
    run_n("wrk-ct", true, 40, per_thread_workers);
}

#[test]
fn per_thread_workers_transport() {
    run_n("wrk-tpt", false, 40, per_thread_workers);
}
