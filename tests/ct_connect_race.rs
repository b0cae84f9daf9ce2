//! A worker's delete must not overtake the closes it sent. VPP serves the app socket (worker
//! delete) on another thread than the mqs (DISCONNECT): if the delete goes first, the worker's
//! sessions are freed, their handles are reused, and the late DISCONNECTs close whatever
//! session now has the handle — another worker's fresh connect, refused (ECONNREFUSED).
//! Seen under load as cut-through connects of threads that register workers (wrk, iperf3).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::time::Duration;

use vclapp::*;

extern "C" {
    fn vppcom_worker_register() -> i32;
    fn vppcom_worker_unregister();
}

#[test]
fn child_echo_server() {
    if let (Ok(port), Ok(n)) = (
        std::env::var("VCL_TEST_ECHO_PORT"),
        std::env::var("VCL_TEST_ECHO_N"),
    ) {
        echo_server(port.parse().unwrap(), n.parse().unwrap());
    }
}

fn server(n: usize) -> impl FnOnce(&std::path::Path, u16) -> std::process::Child {
    move |conf, port| {
        let env = [
            ("VCL_TEST_ECHO_PORT", port.to_string()),
            ("VCL_TEST_ECHO_N", n.to_string()),
        ];
        spawn_child("child_echo_server", conf, &env)
    }
}

fn connect(s: u32, port: u16) -> i32 {
    let mut ip = [127, 0, 0, 1];
    // SAFETY: a plain call into our C ABI; the endpoint and ip outlive it.
    unsafe { vppcom_session_connect(s, &mut endpt(&mut ip, port)) }
}

fn echo(s: u32) {
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        assert_eq!(vppcom_session_write(s, b"ping".as_ptr(), 4), 4);
        let (mut b, mut got) = ([0u8; 4], 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while got < 4 {
            let r = vppcom_session_read(s, b[got..].as_mut_ptr(), 4 - got);
            if r == EAGAIN && std::time::Instant::now() < deadline {
                std::thread::yield_now(); // a non-blocking session: poll until the echo comes
                continue;
            }
            assert!(r > 0, "read {r}");
            got += r as usize;
        }
        assert_eq!(&b, b"ping");
    }
}

const THREADS: usize = 4;
const ROUNDS: usize = 60;
const PER_ROUND: usize = 8;

/// Threads register a worker, connect, echo, close and unregister, round after round, while
/// VPP's mq thread lags its socket thread by 2 ms a round (a loaded machine): a delete sent
/// right after the closes overtakes them, and a worker registering meanwhile can get the
/// deleted one's socket slot (so its api handle, which the late DISCONNECTs carry). Before
/// the fix about 9 runs in 10 failed with a refused connect.
#[test]
fn ct_connects_from_reregistered_workers() {
    let one_thread = |port: u16| {
        for round in 0..ROUNDS {
            // SAFETY: (every call in this block) plain calls into our own C ABI.
            unsafe {
                assert_eq!(vppcom_worker_register(), 0);
                let mut sh = Vec::new();
                for k in 0..PER_ROUND {
                    let s = vppcom_session_create(0, 0);
                    assert!(s >= 0);
                    let rv = connect(s as u32, port);
                    assert_eq!(rv, 0, "round {round} connect {k}: {rv}");
                    sh.push(s as u32);
                }
                for &s in &sh {
                    echo(s);
                }
                for s in sh {
                    assert_eq!(vppcom_session_close(s), 0);
                }
                vppcom_worker_unregister();
            }
        }
    };
    let n = THREADS * ROUNDS * PER_ROUND;
    let lag = |c: vcl_testpeer::PeerConfig| {
        let mut f = c.faults.clone();
        f.mq_lag = Some(Duration::from_millis(2));
        c.faults(f)
    };
    with_peer_cfg("ctrace", true, false, lag, server(n), |port, _| {
        std::thread::scope(|sc| {
            for _ in 0..THREADS {
                sc.spawn(move || one_thread(port));
            }
        });
    });
}
