//! A blocking read that drains its session leaves the rx fifo's has_event set (the peer, like
//! VPP, then sends no RX event for new bytes; the library looks at the fifo itself while it
//! waits). Whatever waits next must still learn of new bytes: an edge-triggered epoll member
//! only learns of them through the peer's RX event, so epoll_wait has to clear the flag first.
//! Over cut-through and over transport; the echo server is this test binary in a child.
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::time::Instant;

use vclapp::*;

#[test]
fn child_echo_server() {
    if let Ok(port) = std::env::var("VCL_TEST_ECHO_PORT") {
        echo_server(port.parse().unwrap(), 1);
    }
}

/// Send `msg` on blocking session `s` and read its whole echo back with blocking reads.
///
/// # Safety
/// `s` is a connected session of the attached app.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn echo_blocking(s: u32, msg: &[u8]) {
    // SAFETY: the buffers are valid for the lengths given.
    unsafe {
        assert_eq!(
            vppcom_session_write(s, msg.as_ptr() as *mut _, msg.len()),
            msg.len() as i32
        );
        let mut got = vec![0u8; msg.len()];
        let mut off = 0;
        while off < got.len() {
            let n = vppcom_session_read(s, got[off..].as_mut_ptr() as *mut _, got.len() - off);
            assert!(n > 0, "read {n}");
            off += n as usize;
        }
        assert_eq!(got, msg);
    }
}

fn edge_triggered_epoll_sees_bytes_after_a_blocking_drain(local: bool) {
    let tag = if local { "held-ct" } else { "held-tpt" };
    let spawn = |conf: &std::path::Path, port: u16| {
        spawn_child(
            "child_echo_server",
            conf,
            &[("VCL_TEST_ECHO_PORT", port.to_string())],
        )
    };
    with_peer(tag, local, false, spawn, |port, _| {
        // SAFETY: plain calls into our own C ABI with valid pointers.
        unsafe {
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            // the drain: the last read empties the fifo
            echo_blocking(s, &[7u8; 100]);
            let vep = vppcom_epoll_create() as u32;
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: u64::from(s),
            };
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, s, &mut ev), 0);
            let msg = [9u8; 100];
            assert_eq!(
                vppcom_session_write(s, msg.as_ptr() as *mut _, msg.len()),
                100
            );
            // the echo arrives while nothing waits; only its RX event can report it
            let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
            let t = Instant::now();
            let n = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 4, 10_000.0);
            assert_eq!(n, 1, "no EPOLLIN within {:?}", t.elapsed());
            assert!(evs[0].events & libc::EPOLLIN as u32 != 0);
            let mut got = [0u8; 100];
            let mut off = 0;
            while off < 100 {
                let r = vppcom_session_read(s, got[off..].as_mut_ptr() as *mut _, 100 - off);
                assert!(r > 0, "read {r}");
                off += r as usize;
            }
            assert_eq!(got, msg);
            vppcom_session_close(vep);
            assert_eq!(vppcom_session_close(s), 0);
        }
    });
}

#[test]
fn ct_edge_triggered_epoll_after_blocking_drain() {
    edge_triggered_epoll_sees_bytes_after_a_blocking_drain(true);
}

#[test]
fn transport_edge_triggered_epoll_after_blocking_drain() {
    edge_triggered_epoll_sees_bytes_after_a_blocking_drain(false);
}
