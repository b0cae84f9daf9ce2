//! Closes and resets seen without epoll, and the mq epoll fd, through the in-process test peer:
//! the server is this test binary again, in a child process (its own VCL app) that closes its
//! session when told to (its stdin).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::process::Child;
use std::time::{Duration, Instant};

use vcl_testpeer::Peer;
use vclapp::*;

/// Child mode: accept one session, send `bye`, close it when the parent says so (a line or EOF
/// on stdin; `hold` = don't wait for one), then stay attached until stdin's EOF, so the close
/// reaches the client before this app detaches.
fn closer_server(port: u16, hold: bool) {
    use std::io::BufRead;
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        assert_eq!(vppcom_app_create(c"closer".as_ptr()), 0);
        let ls = vppcom_session_create(0, 0) as u32;
        let mut ip = [0u8; 4];
        assert_eq!(vppcom_session_bind(ls, &mut endpt(&mut ip, port)), 0);
        assert_eq!(vppcom_session_listen(ls, 8), 0);
        println!("LISTENING");
        let mut pip = [0u8; 16];
        let mut pe = endpt(&mut [0; 4], 0);
        pe.ip = pip.as_mut_ptr();
        let cs = vppcom_session_accept(ls, &mut pe, 0);
        assert!(cs >= 0);
        assert_eq!(vppcom_session_write(cs as u32, b"bye".as_ptr(), 3), 3);
        if hold {
            let _ = stdin.read_line(&mut line);
        }
        assert_eq!(vppcom_session_close(cs as u32), 0);
        while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {}
        vppcom_app_destroy();
    }
}

#[test]
fn child_closer_server() {
    if let (Ok(port), Ok(hold)) = (
        std::env::var("VCL_TEST_CLOSER_PORT"),
        std::env::var("VCL_TEST_CLOSER_HOLD"),
    ) {
        closer_server(port.parse().unwrap(), hold == "1");
    }
}

fn spawn_closer(conf: &std::path::Path, port: u16, hold: bool) -> Child {
    let env = [
        ("VCL_TEST_CLOSER_PORT", port.to_string()),
        ("VCL_TEST_CLOSER_HOLD", u8::from(hold).to_string()),
    ];
    spawn_child("child_closer_server", conf, &env)
}

/// Connect non-blocking, then spin on read without ever calling epoll: the data, then the
/// peer's close (0), must show up — upstream VCL misses the close in this loop.
fn busy_read_until_close(port: u16) -> Vec<i32> {
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        let s = vppcom_session_create(0, 1) as u32;
        let mut ip = [127, 0, 0, 1];
        assert_eq!(
            vppcom_session_connect(s, &mut endpt(&mut ip, port)),
            EINPROGRESS
        );
        let mut seen = Vec::new();
        let mut buf = [0u8; 16];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "close never seen: {seen:?}");
            let r = vppcom_session_read(s, buf.as_mut_ptr(), buf.len());
            if r == EAGAIN || r == -libc::ENOTCONN {
                continue;
            }
            seen.push(r);
            if r <= 0 {
                break;
            }
            assert_eq!(&buf[..r as usize], b"bye");
        }
        vppcom_session_close(s);
        seen
    }
}

fn run_closer(tag: &str, local: bool, hold: bool, client: impl FnOnce(u16, &Peer)) {
    let spawn = |conf: &std::path::Path, port| spawn_closer(conf, port, hold);
    with_peer(tag, local, true, spawn, client);
}

#[test]
fn busy_nonblocking_read_sees_peer_close_transport() {
    run_closer("close-tpt", false, false, |port, _| {
        assert_eq!(busy_read_until_close(port), vec![3, 0]);
    });
}

#[test]
fn busy_nonblocking_read_sees_peer_close_ct() {
    run_closer("close-ct", true, false, |port, _| {
        assert_eq!(busy_read_until_close(port), vec![3, 0]);
    });
}

#[test]
fn busy_nonblocking_read_sees_reset() {
    // the server holds its session open (its stdin) until the client has seen the reset
    run_closer("reset", false, true, |port, peer| {
        // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
        unsafe {
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            let mut flags = libc::O_NONBLOCK as u32;
            let mut len = 4u32;
            assert_eq!(
                vppcom_session_attr(s, 3, &mut flags as *mut u32 as *mut libc::c_void, &mut len),
                0
            );
            let mut buf = [0u8; 16];
            let deadline = Instant::now() + Duration::from_secs(30);
            while vppcom_session_read(s, buf.as_mut_ptr(), 16) != 3 {
                assert!(Instant::now() < deadline, "no data");
            }
            // reset every session of this app (the client) the peer knows: exactly this one
            let me = peer
                .apps()
                .iter()
                .find(|a| a.name == "sessions-client")
                .expect("client app attached")
                .app_index;
            let mine: Vec<u64> = peer
                .sessions()
                .iter()
                .filter(|x| x.app_index == me && !x.is_listener && x.state != "closed")
                .map(|x| x.handle)
                .collect();
            assert_eq!(mine.len(), 1, "the client's sessions: {mine:?}");
            for &h in &mine {
                assert!(peer.reset_session(h), "peer did not reset {h:#x}");
            }
            loop {
                assert!(Instant::now() < deadline, "reset never seen");
                let r = vppcom_session_read(s, buf.as_mut_ptr(), 16);
                if r == EAGAIN {
                    continue;
                }
                assert_eq!(
                    r,
                    -libc::ECONNRESET,
                    "read after reset (0 = an orderly close)"
                );
                break;
            }
            vppcom_session_close(s);
        }
    });
}

#[test]
fn the_mq_epoll_fd_wakes_an_app_owned_epoll() {
    run_closer("mqsepfd", true, true, |port, _| {
        // SAFETY: (every call in this block) plain calls with valid pointers into our C ABI and libc.
        unsafe {
            let epfd = vppcom_worker_mqs_epfd();
            assert!(epfd >= 0, "use-mq-eventfd gives an epoll fd");
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            let vep = vppcom_epoll_create() as u32;
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 7,
            };
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, s, &mut ev), 0);
            // the app's own event loop: the kernel epoll over VCL's mq eventfd
            let mut kev = [libc::epoll_event { events: 0, u64: 0 }; 4];
            let mut got = 0;
            let deadline = Instant::now() + Duration::from_secs(30);
            while got == 0 {
                assert!(
                    Instant::now() < deadline,
                    "no VCL event through the mq epoll fd"
                );
                assert!(libc::epoll_wait(epfd, kev.as_mut_ptr(), 4, 1000) >= 0);
                let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
                got = vppcom_epoll_wait(vep, out.as_mut_ptr(), 4, 0.0);
                if got > 0 {
                    let (events, data) = (out[0].events, out[0].u64);
                    assert_eq!(data, 7);
                    assert_ne!(events & libc::EPOLLIN as u32, 0);
                }
            }
            vppcom_session_close(s);
            vppcom_session_close(vep);
        }
    });
}
