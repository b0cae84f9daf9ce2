//! A waiting epoll_wait looks at the rx fifos of its recently active level-triggered members
//! itself: a cut-through peer's bytes are in the shared fifo as soon as they are written, and
//! VPP's relayed event comes much later. The peer here delays every VPP-thread round by 300 ms
//! (`mq_lag`), so an echo server whose epoll_wait waited for the relayed event answers each
//! request no sooner than that.
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::time::{Duration, Instant};

use vclapp::*;

const LAG: Duration = Duration::from_millis(300);

#[test]
fn child_echo_server() {
    if let Ok(port) = std::env::var("VCL_TEST_PROBE_PORT") {
        echo_server(port.parse().unwrap(), 1);
    }
}

#[test]
fn an_epoll_echo_server_answers_without_waiting_for_vpps_event() {
    let lag = |c: vcl_testpeer::PeerConfig| {
        let mut f = c.faults.clone();
        f.mq_lag = Some(LAG);
        c.faults(f)
    };
    let spawn = |conf: &std::path::Path, port: u16| {
        let env = [("VCL_TEST_PROBE_PORT", port.to_string())];
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
