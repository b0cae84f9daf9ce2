//! With `api::set_caller_waits` (the LD_PRELOAD shim's mode) a non-blocking session that a
//! read drained keeps its rx has_event set: the peer, like VPP, then queues no RX event for new
//! bytes while the caller looks at the fifo itself. `api::sleep_begin` (what the shim calls
//! before it sleeps) clears it, so the next bytes wake the worker's mq eventfd again. Checked on
//! the eventfd itself, over cut-through; the echo server is this test binary in a child.
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::time::{Duration, Instant};

use vcl::api;
use vclapp::*;

#[test]
fn child_echo_server() {
    if let Ok(port) = std::env::var("VCL_TEST_ECHO_PORT") {
        echo_server(port.parse().unwrap(), 1);
    }
}

/// Whether `fd` polls readable within `ms`; consumes its counter if so.
fn evfd_fires(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut p, 1, ms) } <= 0 {
        return false;
    }
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a live u64 (the eventfd is non-blocking).
    unsafe { libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
    true
}

/// Write `msg` on non-blocking session `s` and read its echo back, leaving the app mq empty:
/// the peer, like VPP, signals the eventfd only when its queue goes from empty to non-empty,
/// so a message left unread would silence every later signal. With has_event clear, the echo
/// brings exactly one RX event: wait for its signal, handle it, then read (the last read
/// drains the session and holds has_event).
fn echo(w: &api::Worker, s: u32, efd: i32, msg: &[u8]) {
    // start from an empty queue and a clear counter (CONNECTED's signal)
    evfd_fires(efd, 0);
    api::drain(w);
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { vppcom_session_write(s, msg.as_ptr() as *mut _, msg.len()) };
    assert_eq!(n, msg.len() as i32);
    assert!(evfd_fires(efd, 20_000), "no RX event for the echo");
    api::drain(w);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < msg.len() {
        assert!(Instant::now() < deadline, "echo not back");
        let mut b = [0u8; 256];
        // SAFETY: the buffer is valid for its length.
        let r = unsafe { vppcom_session_read(s, b.as_mut_ptr() as *mut _, b.len()) };
        if r > 0 {
            got.extend_from_slice(&b[..r as usize]);
        } else {
            assert_eq!(r, EAGAIN, "read");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(got, msg);
}

#[test]
fn a_drained_session_holds_has_event_until_the_caller_sleeps() {
    let spawn = |conf: &std::path::Path, port: u16| {
        spawn_child(
            "child_echo_server",
            conf,
            &[("VCL_TEST_ECHO_PORT", port.to_string())],
        )
    };
    with_peer("caller-waits", true, true, spawn, |port, _| {
        api::set_caller_waits();
        let w = api::worker_current().expect("attached");
        let efd = w.mq_eventfd().expect("use-mq-eventfd");
        // SAFETY: plain calls into our own C ABI with valid pointers.
        let s = unsafe {
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            let on = libc::O_NONBLOCK;
            let mut len = 4u32;
            // VPPCOM_ATTR_SET_FLAGS
            let r = vppcom_session_attr(s, 3, &on as *const i32 as *mut _, &mut len);
            assert_eq!(r, 0);
            s
        };
        echo(&w, s, efd, &[1u8; 100]); // drained: has_event held, the mq empty

        // held: the echo's bytes come without an event
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { vppcom_session_write(s, [2u8; 100].as_ptr() as *mut _, 100) };
        assert_eq!(n, 100);
        let deadline = Instant::now() + Duration::from_secs(20);
        while api::nread(&w, s).unwrap() < 100 {
            assert!(Instant::now() < deadline, "echo not back");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!evfd_fires(efd, 200), "an RX event came for a held session");
        // about to sleep: released, and the bytes that came meanwhile are reported
        assert!(api::sleep_begin(&w), "sleep_begin missed the queued bytes");
        api::sleep_end(&w);
        let mut b = [0u8; 100];
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { vppcom_session_read(s, b.as_mut_ptr() as *mut _, 100) };
        assert_eq!(n, 100);
        assert_eq!(b, [2u8; 100]);

        // drained and held again; a sleeper releases it, so the next echo signals the eventfd
        assert!(!api::sleep_begin(&w));
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { vppcom_session_write(s, [3u8; 100].as_ptr() as *mut _, 100) };
        assert_eq!(n, 100);
        assert!(evfd_fires(efd, 20_000), "no RX event after the release");
        api::sleep_end(&w);
        // SAFETY: plain call into our own C ABI.
        assert_eq!(unsafe { vppcom_session_close(s) }, 0);
    });
}
