//! A waiting epoll_wait looks at the rx fifos of its recently active members itself: a
//! cut-through peer's bytes are in the shared fifo as soon as they are written, and VPP's
//! relayed event comes much later. The peer here delays every VPP-thread round by 300 ms
//! (`mq_lag`), so an echo server whose epoll_wait waited for the relayed event answers each
//! request no sooner than that. Edge-triggered members get one edge per arrival: bytes left
//! unread make no new one, and neither does VPP's later event for bytes already reported.
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::time::{Duration, Instant};

use vclapp::*;

const LAG: Duration = Duration::from_millis(300);

#[test]
fn child_echo_server() {
    if let Ok(port) = std::env::var("VCL_TEST_PROBE_PORT") {
        let et = std::env::var("VCL_TEST_PROBE_ET").is_ok_and(|v| v == "1");
        let extra = if et { libc::EPOLLET as u32 } else { 0 };
        echo_server_with(port.parse().unwrap(), 1, extra);
    }
}

fn lag(c: vcl_testpeer::PeerConfig) -> vcl_testpeer::PeerConfig {
    let mut f = c.faults.clone();
    f.mq_lag = Some(LAG);
    c.faults(f)
}

#[test]
fn an_epoll_echo_server_answers_without_waiting_for_vpps_event() {
    echo_rounds(false);
}

#[test]
fn an_edge_triggered_epoll_echo_server_answers_without_waiting_for_vpps_event() {
    echo_rounds(true);
}

fn echo_rounds(et: bool) {
    let spawn = |conf: &std::path::Path, port: u16| {
        let env = [
            ("VCL_TEST_PROBE_PORT", port.to_string()),
            ("VCL_TEST_PROBE_ET", u8::from(et).to_string()),
        ];
        spawn_child("child_echo_server", conf, &env)
    };
    with_peer_cfg("probe", true, false, lag, spawn, |port, _| {
        // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
        unsafe {
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            let mut times = Vec::new();
            for round in 0..5u8 {
                let out = [round; 64];
                let t = Instant::now();
                assert_eq!(vppcom_session_write(s, out.as_ptr(), out.len()), 64);
                let mut back = [0u8; 64];
                let mut got = 0;
                while got < back.len() {
                    let r = vppcom_session_read(s, back[got..].as_mut_ptr(), back.len() - got);
                    assert!(r > 0, "read: {r}");
                    got += r as usize;
                }
                assert_eq!(back, out);
                times.push(t.elapsed());
            }
            println!("round trips with VPP's events {LAG:?} late: {times:?}");
            // the first round makes the session one the server's epoll_wait looks at
            let mut later = times[1..].to_vec();
            later.sort();
            assert!(
                later[later.len() / 2] < LAG / 2,
                "the echo server waited for VPP's event: {times:?}"
            );
            assert_eq!(vppcom_session_close(s), 0);
        }
    });
}

/// Edge-triggered: count EPOLLIN edges of one session while its first 64 bytes stay unread
/// for 1.2 s (VPP's event for them comes 300 ms late, the wait looks at the fifo meanwhile),
/// then read them, count the edge for 64 more, and reply with the two counts.
#[test]
fn child_edge_counter() {
    let Ok(port) = std::env::var("VCL_TEST_EDGE_PORT") else {
        return;
    };
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        assert_eq!(vppcom_app_create(c"edge-counter".as_ptr()), 0);
        let ls = vppcom_session_create(0, 0) as u32;
        let mut ip = [0u8; 4];
        assert_eq!(
            vppcom_session_bind(ls, &mut endpt(&mut ip, port.parse().unwrap())),
            0
        );
        assert_eq!(vppcom_session_listen(ls, 10), 0);
        println!("LISTENING");
        let mut pip = [0u8; 16];
        let mut pe = endpt(&mut [0; 4], 0);
        pe.ip = pip.as_mut_ptr();
        let cs = vppcom_session_accept(ls, &mut pe, libc::O_NONBLOCK as u32);
        assert!(cs >= 0, "accept: {cs}");
        let cs = cs as u32;
        let vep = vppcom_epoll_create() as u32;
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: 7,
        };
        assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, cs, &mut ev), 0);
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 8];
        let mut edges = |until: Duration| {
            let (end, mut n) = (Instant::now() + until, 0usize);
            while Instant::now() < end {
                let k = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 8, 50.0);
                n += evs[..k.max(0) as usize]
                    .iter()
                    .filter(|e| e.events & libc::EPOLLIN as u32 != 0)
                    .count();
            }
            n.min(255) as u8
        };
        let first = edges(Duration::from_millis(1200));
        let mut buf = [0u8; 256];
        assert_eq!(vppcom_session_read(cs, buf.as_mut_ptr(), buf.len()), 64);
        // the client sends 64 more once it sees this byte
        assert_eq!(vppcom_session_write(cs, [0u8].as_ptr(), 1), 1);
        let second = edges(Duration::from_millis(1200));
        assert_eq!(vppcom_session_read(cs, buf.as_mut_ptr(), buf.len()), 64);
        assert_eq!(vppcom_session_write(cs, [first, second].as_ptr(), 2), 2);
        let mut end = [0u8; 1];
        vppcom_session_read(cs, end.as_mut_ptr(), 1);
        vppcom_app_destroy();
    }
}

#[test]
fn an_edge_triggered_member_gets_one_edge_per_arrival() {
    let spawn = |conf: &std::path::Path, port: u16| {
        let env = [("VCL_TEST_EDGE_PORT", port.to_string())];
        spawn_child("child_edge_counter", conf, &env)
    };
    with_peer_cfg("edges", true, false, lag, spawn, |port, _| {
        // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
        unsafe {
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            let out = [1u8; 64];
            assert_eq!(vppcom_session_write(s, out.as_ptr(), 64), 64);
            let mut go = [0u8; 1];
            assert_eq!(vppcom_session_read(s, go.as_mut_ptr(), 1), 1);
            assert_eq!(vppcom_session_write(s, out.as_ptr(), 64), 64);
            let mut counts = [0u8; 2];
            let mut got = 0;
            while got < 2 {
                let r = vppcom_session_read(s, counts[got..].as_mut_ptr(), 2 - got);
                assert!(r > 0, "read: {r}");
                got += r as usize;
            }
            assert_eq!(counts, [1, 1], "EPOLLIN edges for each of two arrivals");
            assert_eq!(vppcom_session_close(s), 0);
        }
    });
}
