//! fork for vppcom apps: the child gets a VCL worker of its own in VPP (the parent's
//! handles stay valid in it), accepts on an inherited listener, makes its own sessions, and
//! its close, destroy or exit never touches the parent's worker or sessions; threads holding
//! the library's locks at fork do not deadlock the child.
//!
//! The library keeps one app per process, so the tests in this file take turns (SERIAL).
//! A child only calls the library and async-signal-safe functions, then `_exit`s.
// unsafe here: fork, pipes and the C ABI, the way a C program calls them.
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vcl::testing::app;

#[path = "common/vcl_peer.rs"]
mod util;
use util::*;

extern "C" {
    fn vppcom_app_destroy();
}

/// How long a child may take for everything it does (a loaded 2-core CI).
const CHILD: Duration = Duration::from_secs(20);

/// Fork; the child runs `f` and exits with its result (0 = passed), never returning.
fn fork_child(f: impl FnOnce() -> u8) -> libc::pid_t {
    // SAFETY: fork has no preconditions; the child runs only `f` and then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(99);
        // SAFETY: ends the child without running the parent's destructors or atexit.
        unsafe { libc::_exit(i32::from(code)) };
    }
    pid
}

/// The child's exit code, failing the test if it takes longer than `limit` (then killed).
fn wait_child(pid: libc::pid_t, limit: Duration) -> i32 {
    let t = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: status is a valid int for the call.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
            return libc::WEXITSTATUS(status);
        }
        if t.elapsed() > limit {
            // SAFETY: the child is ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("child {pid} hung (killed after {limit:?})");
        }
        std::thread::sleep(Duration::from_millis(5)); // polling a child's exit
    }
}

/// A kernel accept that gives up after `limit`.
fn accept_kernel(kl: &TcpListener, limit: Duration) -> Option<TcpStream> {
    kl.set_nonblocking(true).unwrap();
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok((c, _)) = kl.accept() {
            c.set_nonblocking(false).unwrap();
            return Some(c);
        }
        std::thread::sleep(Duration::from_millis(5)); // polling a kernel listener
    }
    None
}

fn write_all(sh: u32, b: &[u8]) -> bool {
    // SAFETY: b is valid for its length.
    (unsafe { vppcom_session_write(sh, b.as_ptr(), b.len()) }) == b.len() as i32
}

/// Accept on `ls` within `ms` through an epoll set (the listener is blocking).
fn accept_within(ls: u32, ms: f64) -> i32 {
    // SAFETY: plain calls; ev and out outlive them.
    unsafe {
        let vep = vppcom_epoll_create() as u32;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 1,
        };
        if vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, ls, &mut ev) != 0 {
            return -1000;
        }
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
        let n = vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, ms);
        vppcom_session_close(vep);
        if n != 1 {
            return -1001;
        }
        vppcom_session_accept(ls, std::ptr::null_mut(), 0)
    }
}

/// What the forked child checks, as exit codes (0 = all good).
fn child_body(ls: u32, parents: u32, k2: u16) -> u8 {
    // SAFETY: no arguments.
    if unsafe { vppcom_worker_is_detached() } != 0 {
        return 1;
    }
    // its own session, through its own worker
    let mut ip = [127, 0, 0, 1];
    let mut ep = endpt(&mut ip, k2);
    // SAFETY: plain calls; ep outlives them.
    let cs = unsafe {
        let cs = vppcom_session_create(0, 0);
        if cs < 0 || vppcom_session_connect(cs as u32, &mut ep) != 0 {
            return 2;
        }
        cs as u32
    };
    if !write_all(cs, b"child") {
        return 3;
    }
    // the inherited listener (same handle) hands the child connections too
    let a = accept_within(ls, CHILD.as_millis() as f64 / 2.0);
    if a < 0 {
        return 4;
    }
    let mut buf = [0u8; 5];
    if read(a as u32, &mut buf) != 5 || &buf != b"hello" || !write_all(a as u32, b"child") {
        return 5;
    }
    // the parent's session: closing it here frees only the child's handle
    // SAFETY: plain calls.
    unsafe {
        if vppcom_session_close(parents) != 0 {
            return 6;
        }
        vppcom_session_close(a as u32);
        vppcom_session_close(cs);
        vppcom_app_destroy(); // detaches the child's worker only
    }
    0
}

fn child_has_its_own_worker(eventfd: bool) {
    let _s = serial();
    let tag = if eventfd { "fork-evfd" } else { "fork-cond" };
    let p = attach(tag, eventfd);
    let kl = TcpListener::bind("127.0.0.1:0").unwrap();
    let kport = kl.local_addr().unwrap().port();
    let parents = connect(kport);
    let (mut k, _) = kl.accept().unwrap();
    let kl2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let k2 = kl2.local_addr().unwrap().port();
    let port = free_port();
    let ls = listen(port);

    // the parent serves its share of the listener's connections on another thread
    let pid = fork_child(move || child_body(ls, parents, k2));
    assert_eq!(p.n_apps(), 1);
    // serves until a client says "bye!!" (a stop flag raced with the last client under load:
    // the thread could see it between two clients and leave the last one unserved)
    let server = on_worker(move || loop {
        // SAFETY: a null endpoint is allowed.
        let a = unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) };
        if a < 0 {
            return a;
        }
        let mut buf = [0u8; 5];
        assert_eq!(read(a as u32, &mut buf), 5);
        assert!(write_all(a as u32, b"paren"));
        // SAFETY: a plain call.
        unsafe { vppcom_session_close(a as u32) };
        if &buf == b"bye!!" {
            return 0;
        }
    });

    // the child's own connect reaches us
    let Some(mut c2) = accept_kernel(&kl2, CHILD) else {
        panic!(
            "no connect from the child (its exit code: {})",
            wait_child(pid, CHILD)
        );
    };
    c2.set_read_timeout(Some(CHILD)).unwrap();
    let mut buf = [0u8; 5];
    if let Err(e) = c2.read_exact(&mut buf) {
        panic!(
            "child's data: {e} (its exit code: {})",
            wait_child(pid, CHILD)
        );
    }
    assert_eq!(&buf, b"child");
    // new clients land on the parent's and the child's workers in turn
    let t = Instant::now();
    let mut by_child = false;
    while !by_child {
        assert!(t.elapsed() < CHILD, "no connection reached the child");
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(CHILD)).unwrap();
        c.write_all(b"hello").unwrap();
        c.read_exact(&mut buf).unwrap();
        by_child = &buf == b"child";
    }
    assert_eq!(wait_child(pid, CHILD), 0, "the child's checks");
    assert!(
        p.wait_until(DETECT, |p| p.n_workers() == 1),
        "the child's worker is gone, the parent's stays"
    );
    // the parent's session and worker are untouched by the child's close and destroy
    // SAFETY: no arguments.
    assert_eq!(unsafe { vppcom_worker_is_detached() }, 0);
    assert!(write_all(parents, b"still"));
    k.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still");
    k.write_all(b"back!").unwrap();
    assert_eq!(read(parents, &mut buf), 5);
    assert_eq!(&buf, b"back!");
    // and its listener serves alone now
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(CHILD)).unwrap();
    c.write_all(b"bye!!").unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"paren");
    assert_eq!(server.recv_timeout(DETECT), Ok(0));
    app::destroy();
    p.stop();
}

#[test]
fn child_has_its_own_worker_without_eventfds() {
    child_has_its_own_worker(false);
}

#[test]
fn child_has_its_own_worker_with_eventfds() {
    child_has_its_own_worker(true);
}

#[test]
// Threads parked on the library's locks at fork must not leave those locks unusable in the
// child (a lock handed off to a waiter the child does not have): the locks are
// vcl_svm::sync mutexes, a futex word with no user-space waiter queue.
fn locks_held_by_other_threads_at_fork_do_not_hang_the_child() {
    let _s = serial();
    let p = attach("fork-locks", false);
    let kl = TcpListener::bind("127.0.0.1:0").unwrap();
    let kport = kl.local_addr().unwrap().port();
    let idle = connect(kport);
    let _k = kl.accept().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // threads in and out of the worker's session lock and the app lock all the time
    let mut busy = Vec::new();
    for _ in 0..2 {
        let stop = stop.clone();
        busy.push(on_worker(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                let mut sz = 0u32;
                let mut len = 4u32;
                // SAFETY: sz and len are valid for the call (GET_RX_FIFO_LEN).
                unsafe {
                    vppcom_session_attr(idle, 21, (&mut sz as *mut u32).cast(), &mut len);
                }
                let mut fds = [vcl::ffi::vcl_poll_t {
                    fds_ndx: 0,
                    sh: idle,
                    events: libc::POLLIN,
                    revents: 0,
                }];
                // SAFETY: fds holds 1 entry.
                unsafe { vppcom_poll(fds.as_mut_ptr(), 1, 1.0) };
                n += 1;
            }
            n
        }));
    }
    for round in 0..20 {
        let pid = fork_child(move || {
            // SAFETY: plain calls.
            unsafe {
                let s = vppcom_session_create(0, 0);
                if s < 0 {
                    return 1;
                }
                vppcom_session_close(s as u32);
            }
            // exit without destroy: only the child's socket closes
            0
        });
        assert_eq!(wait_child(pid, CHILD), 0, "child {round}");
    }
    stop.store(true, Ordering::Release);
    for b in busy {
        assert!(b.recv_timeout(DETECT).expect("busy thread ends") > 0);
    }
    assert!(
        p.wait_until(DETECT, |p| p.n_workers() == 1),
        "every child's worker is gone"
    );
    // SAFETY: no arguments.
    assert_eq!(unsafe { vppcom_worker_is_detached() }, 0);
    app::destroy();
    p.stop();
}

/// A test peer whose VPP threads handle their mq late (well under destroy's 500 ms wait for
/// the hang-up, even on a loaded machine), the config of an app for it, and the lag.
fn lagging_peer(tag: &str) -> (vcl_testpeer::Peer, vcl::testing::config::Config, Duration) {
    let lag = Duration::from_millis(100);
    let mut cfg = vcl_testpeer::PeerConfig::new(vcl_testpeer::SockAddr::Abstract(name(tag)));
    cfg.faults.mq_lag = Some(lag);
    let p = vcl_testpeer::Peer::start(cfg).expect("peer starts");
    let app_cfg = vcl::testing::config::Config {
        app_socket_api: Some(vcl::testing::config::SapiAddr::Abstract(
            name(tag).into_bytes(),
        )),
        segment_size: 32 << 20,
        app_scope_global: true,
        app_timeout: 2.0,
        ..vcl::testing::config::Config::default()
    };
    (p, app_cfg, lag)
}

/// Fork a child that attaches with `cfg`, opens a session with `open`, closes it, destroys
/// its app and exits (exit code 0; 1 if it could not attach).
fn child_app_closes_one_and_exits(
    cfg: vcl::testing::config::Config,
    open: impl FnOnce() -> u32,
) -> libc::pid_t {
    fork_child(move || {
        if app::create(cfg, None).is_err() {
            return 1;
        }
        // SAFETY: plain calls.
        unsafe {
            vppcom_session_close(open());
            vppcom_app_destroy();
        }
        0 // _exit closes what is left
    })
}

/// An app that closes a session, destroys and exits leaves nothing behind that could hit the
/// next app to attach, even when VPP handles its mq late (the app socket's close overtaking
/// the queue): VPP frees a socket index, the api client handle, when the close deletes the
/// worker, and the next attach may get the same index (and its session the same session
/// index). A destroy that closed its socket without waiting for VPP lost the next app's
/// worker to a late APP_DETACH, or its session to a late close.
#[test]
fn the_next_app_keeps_its_worker_after_another_destroys_and_exits() {
    let _s = serial();
    let (p, app_cfg, lag) = lagging_peer("fork-next");
    let kl = TcpListener::bind("127.0.0.1:0").unwrap();
    let kport = kl.local_addr().unwrap().port();
    for round in 0..3 {
        let pid = child_app_closes_one_and_exits(app_cfg.clone(), move || connect(kport));
        assert_eq!(wait_child(pid, CHILD), 0, "child {round}");
        assert!(
            p.wait_until(DETECT, |p| p.n_apps() == 0),
            "the child's app is gone"
        );
        app::create(app_cfg.clone(), None).expect("attached");
        let sh = connect(kport);
        // past the lag: whatever the child left queued has been handled by now
        std::thread::sleep(lag * 3);
        assert_eq!(
            p.n_apps(),
            1,
            "round {round}: the new app is still attached"
        );
        // SAFETY: no arguments.
        assert_eq!(unsafe { vppcom_worker_is_detached() }, 0, "round {round}");
        assert!(
            write_all(sh, b"alive"),
            "round {round}: the new session works"
        );
        let mut got = false;
        while let Some(mut k) = accept_kernel(&kl, DETECT) {
            let mut b = [0u8; 5];
            if k.read_exact(&mut b).is_ok() && &b == b"alive" {
                got = true;
                break;
            }
        }
        assert!(got, "round {round}: the new session's bytes arrived");
        app::destroy();
        assert!(p.wait_until(DETECT, |p| p.n_apps() == 0));
    }
    p.stop();
}

/// As above with a UDP session, whose index the peer reuses at once: the child's late session
/// close must not close the next app's session that took the same index (it would close it
/// silently, and that app's reads would wait forever, as an echo client of the examples did).
#[test]
fn the_next_app_keeps_its_udp_session_after_another_closes_one_and_exits() {
    let _s = serial();
    let (p, app_cfg, lag) = lagging_peer("fork-next-udp");
    let ku = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ku.set_read_timeout(Some(DETECT)).unwrap();
    let kport = ku.local_addr().unwrap().port();
    let udp = move || connect_udp(kport);
    for round in 0..3 {
        let pid = child_app_closes_one_and_exits(app_cfg.clone(), udp);
        assert_eq!(wait_child(pid, CHILD), 0, "child {round}");
        assert!(p.wait_until(DETECT, |p| p.n_apps() == 0));
        app::create(app_cfg.clone(), None).expect("attached");
        let sh = udp();
        std::thread::sleep(lag * 3);
        assert!(
            write_all(sh, b"alive"),
            "round {round}: the new session works"
        );
        let mut b = [0u8; 16];
        let n = ku.recv(&mut b).unwrap_or(0);
        assert_eq!(&b[..n], b"alive", "round {round}: the datagram arrived");
        app::destroy();
        assert!(p.wait_until(DETECT, |p| p.n_apps() == 0));
    }
    p.stop();
}
