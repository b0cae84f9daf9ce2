//! Lifetimes and bad input around a live app: closing a session VPP has not answered yet,
//! registering a worker while other threads work, NaN/inf timeouts, shutdown on an epoll
//! handle, and a peer that tries to shrink a segment under the app.
//!
//! The library keeps one app per process, so the tests in this file take turns (SERIAL).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vcl::testing::app;
use vcl::testing::config::{Config, SapiAddr};
use vcl_testpeer::{Peer, PeerConfig, SockAddr};

#[path = "common/vcl_peer.rs"]
mod util;
use util::*;

#[test]
fn shutdown_of_an_epoll_handle_is_ebadfd() {
    let _s = serial();
    let p = attach("shut", false);
    // SAFETY: plain calls.
    let rv = unsafe {
        let vep = vppcom_epoll_create();
        vppcom_session_shutdown(vep as u32, libc::SHUT_RDWR)
    };
    assert_eq!(rv, -libc::EBADFD);
    app::destroy();
    p.stop();
}

#[test]
fn nan_timeouts_in_the_config_mean_the_defaults() {
    let _s = serial();
    let p = Peer::start(PeerConfig::new(SockAddr::Abstract(name("nan")))).unwrap();
    let cfg = Config {
        app_socket_api: Some(SapiAddr::Abstract(name("nan").into_bytes())),
        segment_size: 32 << 20,
        app_scope_global: true,
        app_timeout: f64::NAN,
        session_timeout: f64::NAN,
        ..Config::default()
    };
    let r = std::panic::catch_unwind(|| app::create(cfg, None));
    assert!(matches!(r, Ok(Ok(()))), "attached");
    app::destroy();
    p.stop();
}

#[test]
fn a_late_bound_does_not_revive_a_closed_listener() {
    use vcl_testpeer::Faults;
    let _s = serial();
    let tag = "late-bound";
    let faults = Faults {
        ctrl_delay: Some(Duration::from_millis(400)),
        ..Faults::default()
    };
    let p = Peer::start(PeerConfig::new(SockAddr::Abstract(name(tag))).faults(faults)).unwrap();
    let cfg = Config {
        app_socket_api: Some(SapiAddr::Abstract(name(tag).into_bytes())),
        segment_size: 32 << 20,
        app_scope_global: true,
        ..Config::default()
    };
    app::create(cfg, None).unwrap();
    let port = free_port();
    let mut ip = [127, 0, 0, 1];
    let mut ep = endpt(&mut ip, port);
    // SAFETY: plain calls; ep and ip outlive them.
    let ls = unsafe {
        let ls = vppcom_session_create(0, 0) as u32;
        assert_eq!(vppcom_session_bind(ls, &mut ep), 0);
        ls
    };
    // SAFETY: a plain call.
    let listening = on_worker(move || unsafe { vppcom_session_listen(ls, 10) });
    // Let LISTEN go out (the peer then sits on it for 400 ms); not a synchronisation: if the
    // close came first, listen fails with EBADFD and nothing is revived either.
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: a plain call.
    assert_eq!(unsafe { vppcom_session_close(ls) }, 0);
    let r = listening.recv_timeout(DETECT).expect("listen returns");
    assert!(r < 0, "listen on a closed session fails: {r}");
    // SAFETY: no arguments.
    let vep = unsafe { vppcom_epoll_create() } as u32;
    let t = Instant::now();
    let mut listeners = 1;
    while listeners > 0 && t.elapsed() < Duration::from_secs(10) {
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
        // SAFETY: out holds 1 entry (the wait drains the app mq: the late BOUND lands).
        unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, 20.0) };
        listeners = p.sessions().iter().filter(|s| s.is_listener).count();
    }
    assert_eq!(listeners, 0, "VPP's listener was unlistened");
    // SAFETY: a plain call.
    let rv = unsafe { vppcom_session_close(ls) };
    assert_eq!(rv, -libc::EBADFD, "the handle stays dead");
    app::destroy();
    p.stop();
}

#[test]
fn registering_a_worker_does_not_stall_other_threads() {
    use vcl_testpeer::Faults;
    let _s = serial();
    let tag = "slow-register";
    let faults = Faults {
        reply_delay: Some(Duration::from_millis(1000)),
        ..Faults::default()
    };
    let p = Peer::start(PeerConfig::new(SockAddr::Abstract(name(tag))).faults(faults)).unwrap();
    let cfg = Config {
        app_socket_api: Some(SapiAddr::Abstract(name(tag).into_bytes())),
        segment_size: 32 << 20,
        app_scope_global: true,
        app_timeout: 10.0,
        ..Config::default()
    };
    app::create(cfg, None).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(app::register_worker());
    });
    // inside the peer's 1 s reply delay (not a synchronisation: if not, the check is weaker)
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    assert!(app::is_attached());
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(400),
        "the app lock was held across the round trip: {took:?}"
    );
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(20)),
        Ok(Ok(_))
    ));
    app::destroy();
    p.stop();
}

#[test]
fn a_peer_cannot_shrink_a_segment_under_the_app() {
    let _s = serial();
    let p = attach("shrink", false);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let sh = connect(kport);
    let (mut k, _) = kl.accept().unwrap();
    let app_index = p.apps()[0].app_index;
    let e = p
        .shrink_app_segments(app_index)
        .expect_err("sealed: refused");
    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    // the fifos in it still work (a shrunk mapping would SIGBUS here)
    k.write_all(b"still here").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(read(sh, &mut buf), 10);
    assert_eq!(&buf[..10], b"still here");
    app::destroy();
    p.stop();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn an_fd_flood_from_the_peer_is_bounded_and_closed() {
    use vcl_testpeer::Faults;
    let _s = serial();
    let tag = "fd-flood";
    // every SEND_FDS carries 21 fds and comes after 3 unsolicited ones
    let faults = Faults {
        extra_fds: 20,
        unsolicited_fds: 3,
        ..Faults::default()
    };
    let p = Peer::start(PeerConfig::new(SockAddr::Abstract(name(tag))).faults(faults)).unwrap();
    let cfg = Config {
        app_socket_api: Some(SapiAddr::Abstract(name(tag).into_bytes())),
        segment_size: 32 << 20,
        app_scope_global: true,
        ..Config::default()
    };
    app::create(cfg, None).unwrap();
    let w = vcl::testing::worker::current().unwrap();
    let app_index = p.apps()[0].app_index;
    let before = open_fds();
    let n_segs = 10;
    for _ in 0..n_segs {
        let h = p.add_segment(app_index, 0, 1 << 20).unwrap();
        let t = Instant::now();
        while w.segment(h).is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "segment {h:#x} mapped"
            );
            let mut fds = [vcl::ffi::vcl_poll_t {
                fds_ndx: 0,
                sh: u32::MAX,
                events: 0,
                revents: 0,
            }];
            // SAFETY: fds holds 1 entry (a zero-timeout poll drains the app mq).
            unsafe { vppcom_poll(fds.as_mut_ptr(), 1, 0.0) };
        }
    }
    // a request over the socket reads every SEND_FDS queued ahead of its reply
    let _ = app::add_cert_key_pair(b"cert", b"key");
    let pending = w.with_sock(|s| s.pending_fds());
    let grew = open_fds() - before;
    println!("fd flood: {n_segs} segments mapped, {pending} fds pending, fd table +{grew}");
    assert!(pending <= vcl::testing::sapi::MAX_PENDING_FDS, "{pending}");
    // the peer's memfd and our mapping's fd per segment, plus what may wait; the flood itself
    // (23 fds per segment) must be closed
    let bound = 2 * n_segs + vcl::testing::sapi::MAX_PENDING_FDS + 4;
    assert!(grew <= bound, "fd table grew by {grew} (bound {bound})");
    drop(w);
    app::destroy();
    p.stop();
}

#[test]
fn a_listen_on_a_connected_session_leaves_no_stale_vpp_handle() {
    // Found by tests/fuzz_api.rs: the connected session's VPP handle kept naming its slot after
    // the listen gave it a new one; once the slot was freed, a RESET for the old handle
    // panicked in the event handler (the call draining it returned EFAULT).
    let _s = serial();
    let p = attach("relisten", false);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let sh = connect(kport);
    let _k = kl.accept().unwrap();
    let first = p.sessions().iter().find(|s| !s.is_listener).unwrap().handle;
    let mut ip = [127, 0, 0, 1];
    let mut ep = endpt(&mut ip, free_port());
    // SAFETY: plain calls; ep and ip outlive them.
    unsafe {
        assert_eq!(vppcom_session_bind(sh, &mut ep), 0);
        assert_eq!(vppcom_session_listen(sh, 10), 0, "upstream allows it too");
        assert_eq!(vppcom_session_close(sh), 0);
    }
    // SAFETY: no arguments.
    let vep = unsafe { vppcom_epoll_create() } as u32;
    let t = Instant::now();
    while p.sessions().iter().any(|s| s.is_listener) {
        assert!(t.elapsed() < DETECT, "the listener went");
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
        // SAFETY: out holds 1 entry.
        unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, 1.0) };
    }
    assert!(
        p.reset_session(first),
        "the first VPP session is still there"
    );
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
        // SAFETY: out holds 1 entry.
        let rv = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, 1.0) };
        assert!(rv >= 0, "epoll_wait while the RESET is handled: {rv}");
    }
    app::destroy();
    p.stop();
}

#[test]
fn a_tx_event_is_not_lost_while_vpps_queue_is_unusable_for_a_while() {
    // Seen in the 8 x 1,000-session soak: VPP's queue stayed full past the send deadline, the
    // event was dropped with the fifo's has_event still set, so no later write signalled again
    // and the bytes never left. Now the write waits until VPP's queue takes the event.
    let _s = serial();
    let p = attach("lost-tx-event", false);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let sh = connect(kport);
    let (mut k, _) = kl.accept().unwrap();
    // VPP's thread queue unusable for longer than the library's 1 s send deadline
    let held = p.hold_vpp_mq_mutex(0, Duration::from_millis(1500));
    // SAFETY: the buffer is valid for its length.
    assert_eq!(unsafe { vppcom_session_write(sh, b"first".as_ptr(), 5) }, 5);
    held.join().unwrap();
    // SAFETY: as above.
    let r = unsafe { vppcom_session_write(sh, b"second".as_ptr(), 6) };
    assert_eq!(r, 6);
    k.set_read_timeout(Some(DETECT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    while got.len() < 11 {
        match std::io::Read::read(&mut k, &mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            r => panic!("the bytes never left: {r:?} after {got:?}"),
        }
    }
    assert_eq!(got, b"firstsecond");
    app::destroy();
    p.stop();
}
