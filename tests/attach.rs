//! Attach, workers, segments, cert/key pairs and detach against the in-process test peer, plus
//! the peer's faults: every one must end in a clean error, never a hang or a crash.
//!
//! The library keeps one app per process, so the tests in this file take turns (SERIAL).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

use std::sync::Mutex;
use std::time::Duration;

use vcl::testing::app::{self, CreateError};
use vcl::testing::config::{Config, SapiAddr};
use vcl_testpeer::{Corruption, Faults, Peer, PeerConfig, SockAddr};

static SERIAL: Mutex<()> = Mutex::new(());

/// Take our turn, and start from a detached library even if an earlier test failed midway.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    app::destroy();
    g
}

fn name(tag: &str) -> String {
    format!("vcl-test-{tag}-{}", std::process::id())
}

fn peer(tag: &str, f: impl FnOnce(PeerConfig) -> PeerConfig) -> Peer {
    let cfg = f(PeerConfig::new(SockAddr::Abstract(name(tag))));
    Peer::start(cfg).expect("peer starts")
}

fn config(tag: &str) -> Config {
    Config {
        app_socket_api: Some(SapiAddr::Abstract(name(tag).into_bytes())),
        segment_size: 32 << 20,
        rx_fifo_size: 64 << 10,
        tx_fifo_size: 64 << 10,
        app_scope_local: true,
        app_scope_global: true,
        // a deadline for the peer's replies, not a test of speed: a loaded CI machine is slow
        app_timeout: 20.0,
        ..Config::default()
    }
}

fn count_fds() -> usize {
    list_fds().len()
}

/// Whether the process's fd count comes back to at most `fds` (within 10 s): growth is a
/// leak; fewer is fine (a previous test's peer or thread let go of its own meanwhile).
fn fds_back_to(fds: usize) -> bool {
    back_to(count_fds, fds)
}

/// Whether `count()` comes back to at most `n` within 10 s.
fn back_to(count: fn() -> usize, n: usize) -> bool {
    let t = std::time::Instant::now();
    while count() > n {
        if t.elapsed() > Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn list_fds() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// Mappings of shared-memory segments (ours and the in-process peer's; all memfds): other
/// mappings come and go with the test harness's threads and allocator.
fn count_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains("/memfd:"))
        .count()
}

#[test]
fn attach_then_detach_1000_times_leaks_nothing() {
    let _s = serial();
    let p = peer("leak", |c| c);
    let cfg = config("leak");
    app::create(cfg.clone(), Some("leak".into())).unwrap();
    app::destroy();
    // the in-process peer's own fds count too: measure when it has let go of the app
    assert!(p.wait_until(Duration::from_secs(20), |p| p.n_apps() == 0));
    let (fds, maps) = (count_fds(), count_maps());
    for _ in 0..1000 {
        app::create(cfg.clone(), Some("leak".into())).unwrap();
        assert!(vcl::testing::worker::current().is_some());
        app::destroy();
        assert!(vcl::testing::worker::current().is_none());
    }
    // The in-process peer closes its end of each connection asynchronously (its count at the
    // baseline may include one it had not closed yet): after 1000 rounds, nothing may have grown.
    assert!(
        fds_back_to(fds),
        "fds leaked: {fds} before, {:?} after",
        list_fds()
    );
    // the peer unmaps its side of a detached app asynchronously too
    assert!(
        back_to(count_maps, maps),
        "mappings leaked: {maps} before, {} after",
        count_maps()
    );
    assert!(
        p.wait_until(Duration::from_secs(20), |p| p.n_apps() == 0),
        "peer still has apps"
    );
    p.stop();
}

#[test]
fn attach_reports_what_vpp_handed_out() {
    let _s = serial();
    let p = peer("info", |c| c.threads(2));
    app::create(config("info"), Some("info-app".into())).unwrap();
    let w = vcl::testing::worker::current().unwrap();
    let apps = p.apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, "info-app");
    assert_eq!(w.conn().app_index, apps[0].app_index);
    assert_eq!(
        w.conn().api_client_handle,
        apps[0].workers[0].api_client_index
    );
    assert_eq!(w.conn().vpp.mqs.len(), 2, "one mq per VPP thread");
    assert_eq!(
        w.conn().vpp.ctrl,
        1,
        "with VPP workers the ctrl mq is thread 1's"
    );
    app::destroy();
    p.stop();
}

#[test]
fn eight_threads_register_and_unregister_workers() {
    let _s = serial();
    let p = peer("wrk", |c| c);
    app::create(config("wrk"), None).unwrap();
    // all eight hold their worker at once (the barrier), so the indices are given concurrently
    let all = std::sync::Barrier::new(8);
    let indices: Vec<u32> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    let i = app::register_worker().expect("register");
                    assert_eq!(vcl::testing::worker::current_index(), i);
                    assert!(app::register_worker().is_err(), "a thread has one worker");
                    all.wait();
                    i
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = indices.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 8, "distinct worker indices: {indices:?}");
    assert!(!sorted.contains(&0));
    assert_eq!(p.n_workers(), 9);
    std::thread::scope(|sc| {
        for &i in &indices {
            sc.spawn(move || {
                app::set_current_worker(i);
                app::unregister_worker();
            });
        }
    });
    assert!(p.wait_until(Duration::from_secs(20), |p| p.n_workers() == 1));
    app::destroy();
    p.stop();
}

#[test]
fn a_thread_without_a_worker_gets_errors_not_crashes() {
    let _s = serial();
    let p = peer("nowrk", |c| c);
    app::create(config("nowrk"), None).unwrap();
    std::thread::spawn(|| {
        assert!(vcl::testing::worker::current().is_none());
        assert_eq!(vcl::ffi::VPPCOM_EBADFD, ffi_create());
    })
    .join()
    .unwrap();
    app::destroy();
    p.stop();
}

fn ffi_create() -> i32 {
    extern "C" {
        fn vppcom_session_create(proto: u8, nb: u8) -> i32;
    }
    // SAFETY: a plain C call into our own export with integer arguments.
    unsafe { vppcom_session_create(0, 0) }
}

#[test]
fn segments_announced_later_are_mapped_and_unmapped() {
    let _s = serial();
    let p = peer("seg", |c| c);
    app::create(config("seg"), None).unwrap();
    let w = vcl::testing::worker::current().unwrap();
    let app_index = w.conn().app_index;
    let h = p.add_segment(app_index, 0, 4 << 20).unwrap();
    let mut others = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while w.segment(h).is_none() && std::time::Instant::now() < deadline {
        w.drain_mq(|t, _| others.push(t)).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let seg = w.segment(h).expect("segment mapped");
    // the add-segment message is handled inside drain_mq: nothing else was sent to this app
    assert!(others.is_empty(), "unexpected messages: {others:?}");
    assert!(seg.len() >= 4 << 20, "mapped {} bytes", seg.len());
    drop(seg);
    p.del_segment(h).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while w.segment(h).is_some() && std::time::Instant::now() < deadline {
        w.drain_mq(|t, _| others.push(t)).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(others.is_empty(), "unexpected messages: {others:?}");
    assert!(w.segment(h).is_none(), "segment unmapped");
    app::destroy();
    p.stop();
}

#[test]
fn cert_key_pairs_round_trip() {
    let _s = serial();
    let p = peer("ck", |c| c);
    app::create(config("ck"), None).unwrap();
    let i = app::add_cert_key_pair(b"-----CERT-----", b"-----KEY-----").unwrap();
    assert!(p.cert_keys().contains(&i));
    app::del_cert_key_pair(i).unwrap();
    assert!(!p.cert_keys().contains(&i));
    assert!(app::del_cert_key_pair(i).is_err(), "deleting twice fails");
    app::destroy();
    p.stop();
}

#[test]
fn eventfd_mode_gives_an_epoll_fd_and_sees_vpp_go_away() {
    let _s = serial();
    let p = peer("evfd", |c| c);
    let cfg = Config {
        use_mq_eventfd: true,
        ..config("evfd")
    };
    app::create(cfg, None).unwrap();
    let w = vcl::testing::worker::current().unwrap();
    assert!(w.mqs_epfd() >= 0);
    assert!(w.conn().app_mq.eventfd().is_some());
    assert!(!w.is_detached());
    p.stop();
    assert!(w.is_detached(), "a closed app socket means detached");
    drop(w);
    app::destroy();
}

fn expect_attach_failure(tag: &str, faults: Faults) {
    let p = peer(tag, |c| c.faults(faults));
    let t = std::time::Instant::now();
    let cfg = Config {
        app_timeout: 2.0,
        ..config(tag)
    };
    assert_eq!(app::create(cfg, None), Err(CreateError::AttachFailed));
    // at most app-timeout (2 s) plus a loaded machine's slack: never a hang
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "{tag}: took {:?}",
        t.elapsed()
    );
    assert!(!app::is_attached());
    p.stop();
}

#[test]
fn every_fault_is_a_clean_attach_error() {
    let _s = serial();
    let fds = count_fds();
    expect_attach_failure(
        "refuse",
        Faults {
            refuse_attach: Some(-13),
            ..Faults::default()
        },
    );
    expect_attach_failure(
        "drop",
        Faults {
            drop_after: Some(1),
            ..Faults::default()
        },
    );
    expect_attach_failure(
        "exit",
        Faults {
            exit_after: Some(1),
            ..Faults::default()
        },
    );
    for c in [
        Corruption::SsvmSize,
        Corruption::FshOffset,
        Corruption::MqRings,
        Corruption::MqMaxsize,
    ] {
        expect_attach_failure(
            "corrupt",
            Faults {
                corrupt_segment: Some(c),
                ..Faults::default()
            },
        );
    }
    // a reply later than app-timeout is an error too
    let p = peer("slow", |c| {
        c.faults(Faults {
            reply_delay: Some(Duration::from_secs(6)),
            ..Faults::default()
        })
    });
    let cfg = Config {
        app_timeout: 1.0,
        ..config("slow")
    };
    assert_eq!(app::create(cfg, None), Err(CreateError::AttachFailed));
    p.stop();
    assert!(
        fds_back_to(fds),
        "failed attaches leaked fds: {fds} before, {:?} after",
        list_fds()
    );
    // ... but a delay within it is fine
    let p = peer("delay", |c| {
        c.faults(Faults {
            reply_delay: Some(Duration::from_millis(200)),
            ..Faults::default()
        })
    });
    app::create(config("delay"), None).unwrap();
    app::destroy();
    p.stop();
}

#[test]
fn no_socket_is_upstreams_minus_one() {
    let _s = serial();
    let cfg = Config {
        app_socket_api: Some(SapiAddr::Path("/nonexistent/vcl/sock".into())),
        ..Config::default()
    };
    assert_eq!(app::create(cfg, None), Err(CreateError::AttachFailed));
}

/// Two processes attach to one peer at the same time (the child is this test binary again).
#[test]
fn two_processes_attach_concurrently() {
    if let Ok(sock) = std::env::var("VCL_TEST_PEER_NAME") {
        let cfg = Config {
            app_socket_api: Some(SapiAddr::Abstract(sock.into_bytes())),
            ..config("child")
        };
        app::create(cfg, Some("child".into())).unwrap();
        // stay attached until the parent has seen both children (or has gone: EOF)
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        app::destroy();
        return;
    }
    let _s = serial();
    let p = peer("twoproc", |c| c);
    let exe = std::env::current_exe().unwrap();
    let kids: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "two_processes_attach_concurrently",
                    "--nocapture",
                ])
                .env("VCL_TEST_PEER_NAME", name("twoproc"))
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let both = p.wait_until(Duration::from_secs(30), |p| p.n_apps() == 2);
    let apps = p.apps();
    for mut k in kids {
        drop(k.stdin.take()); // EOF: detach and exit
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = k.try_wait().unwrap() {
                break Some(st);
            }
            if std::time::Instant::now() > deadline {
                let _ = k.kill();
                let _ = k.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.is_some_and(|s| s.success()), "child: {status:?}");
    }
    assert!(both, "both attached at once");
    assert_ne!(apps[0].app_index, apps[1].app_index);
    assert!(p.wait_until(Duration::from_secs(20), |p| p.n_apps() == 0));
    p.stop();
}

#[test]
fn blocking_waits_return_once_vpp_detached_the_worker() {
    use vcl::ffi::{vcl_poll_t, vcl_si_set, VPPCOM_ENOTCONN, VPPCOM_PROTO_TCP};
    type EpollEvent = libc::epoll_event;
    extern "C" {
        fn vppcom_session_create(proto: u8, nb: u8) -> i32;
        fn vppcom_epoll_create() -> i32;
        fn vppcom_epoll_ctl(vep: u32, op: i32, sh: u32, ev: *mut EpollEvent) -> i32;
        fn vppcom_epoll_wait(vep: u32, ev: *mut EpollEvent, max: i32, wait: f64) -> i32;
        fn vppcom_poll(vp: *mut vcl_poll_t, n: u32, wait: f64) -> i32;
        fn vppcom_select(
            n_bits: i32,
            rd: *mut vcl_si_set,
            wr: *mut vcl_si_set,
            ex: *mut vcl_si_set,
            wait: f64,
        ) -> i32;
    }
    let _s = serial();
    let p = peer("detach-wait", |c| c);
    // VPP gone for good: with a re-attach coming, the waits would wait for it
    let cfg = Config {
        reattach: false,
        ..config("detach-wait")
    };
    app::create(cfg, None).unwrap();
    // SAFETY: no arguments / plain integer arguments.
    let (vep, sh) = unsafe {
        (
            vppcom_epoll_create(),
            vppcom_session_create(VPPCOM_PROTO_TCP as u8, 1),
        )
    };
    assert!(vep >= 0 && sh >= 0);
    let mut ev = EpollEvent {
        events: libc::EPOLLIN as u32,
        u64: 7,
    };
    // SAFETY: ev is a valid struct epoll_event for the call's duration.
    let rv = unsafe { vppcom_epoll_ctl(vep as u32, libc::EPOLL_CTL_ADD, sh as u32, &mut ev) };
    assert_eq!(rv, 0);
    p.stop();
    // Every wait below is "forever"; each must come back now that VPP is gone. A hang fails
    // the test through the channel's deadline, not by blocking the suite.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        app::set_current_worker(0);
        let mut out = [EpollEvent { events: 0, u64: 0 }; 4];
        // SAFETY: out holds 4 entries.
        let e = unsafe { vppcom_epoll_wait(vep as u32, out.as_mut_ptr(), 4, -1.0) };
        let mut fds = [vcl_poll_t {
            fds_ndx: 0,
            sh: sh as u32,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: fds holds 1 entry.
        let pl = unsafe { vppcom_poll(fds.as_mut_ptr(), 1, -1.0) };
        let mut bits: vcl_si_set = 1 << (sh as u32 & 0xFF_FFFF);
        // SAFETY: bits holds 64 bits, more than the n_bits passed.
        let sel = unsafe {
            vppcom_select(
                (sh as u32 & 0xFF_FFFF) as i32 + 1,
                &mut bits,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                -1.0,
            )
        };
        let _ = tx.send((e, pl, sel));
    });
    let got = rx.recv_timeout(Duration::from_secs(20));
    assert_eq!(
        got,
        Ok((VPPCOM_ENOTCONN, VPPCOM_ENOTCONN, VPPCOM_ENOTCONN)),
        "epoll_wait, poll and select fail with ENOTCONN instead of waiting forever"
    );
    app::destroy();
}
