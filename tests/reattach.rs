//! VPP restarting under a running app (the test peer stopped, then started again on the same
//! app socket): the library attaches again by itself, listeners listen again under the same
//! handles, a server's epoll loop sees the death (listener ERR, sessions HUP) and then keeps
//! serving new clients; new connects work; with `reattach off` the app stays detached.
//!
//! The library keeps one app per process, so the tests in this file take turns (SERIAL).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use vcl::testing::app;
use vcl_testpeer::{Peer, PeerConfig, SockAddr};

#[path = "common/vcl_peer.rs"]
mod util;
use util::*;

/// How long a re-attach may take here after the peer is back (a loaded 2-core CI; the
/// backoff alone is at most 200 ms).
const BACK: Duration = Duration::from_secs(10);

fn peer(tag: &str) -> Peer {
    Peer::start(PeerConfig::new(SockAddr::Abstract(name(tag)))).expect("peer starts")
}

fn attach_with(tag: &str, eventfd: bool, reattach: bool) -> Peer {
    attach_with_reattach(tag, eventfd, reattach)
}

/// What the server loop reports.
#[derive(Debug, PartialEq)]
enum Seen {
    ListenerErr,
    SessionHup,
    Served,
}

const LISTENER: u64 = u64::MAX;

/// A level-triggered epoll echo server on listener `ls` (worker 0, another thread): accepts,
/// echoes, closes what hung up, and keeps going on a listener error, as a server should.
fn serve(ls: u32, stop: Arc<AtomicBool>, seen: mpsc::Sender<Seen>) -> mpsc::Receiver<()> {
    on_worker(move || {
        // SAFETY: no arguments.
        let vep = unsafe { vppcom_epoll_create() } as u32;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: LISTENER,
        };
        // SAFETY: ev is valid for the call.
        let rv = unsafe { vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, ls, &mut ev) };
        assert_eq!(rv, 0);
        let mut listener_failed = false;
        while !stop.load(Ordering::Acquire) {
            let mut out = [libc::epoll_event { events: 0, u64: 0 }; 16];
            // SAFETY: out holds 16 entries.
            let n = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 16, 50.0) };
            assert!(n >= 0, "epoll_wait: {n}");
            for e in &out[..n as usize] {
                let (data, events) = (e.u64, e.events);
                if data == LISTENER {
                    if events & libc::EPOLLERR as u32 != 0 {
                        if !listener_failed {
                            listener_failed = true;
                            let _ = seen.send(Seen::ListenerErr);
                        }
                        continue;
                    }
                    listener_failed = false;
                    // SAFETY: a null endpoint is allowed.
                    let cs = unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) };
                    if cs < 0 {
                        continue;
                    }
                    let mut ev = libc::epoll_event {
                        events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
                        u64: cs as u64,
                    };
                    let add = libc::EPOLL_CTL_ADD;
                    // SAFETY: ev is valid for the call.
                    let rv = unsafe { vppcom_epoll_ctl(vep, add, cs as u32, &mut ev) };
                    assert_eq!(rv, 0);
                    continue;
                }
                let sh = data as u32;
                let mut buf = [0u8; 256];
                let r = read(sh, &mut buf);
                if r > 0 {
                    // SAFETY: buf holds r bytes.
                    let w = unsafe { vppcom_session_write(sh, buf.as_ptr(), r as usize) };
                    assert_eq!(w, r);
                    let _ = seen.send(Seen::Served);
                } else if r == 0 || r != -libc::EAGAIN {
                    if events & libc::EPOLLHUP as u32 != 0 {
                        let _ = seen.send(Seen::SessionHup);
                    }
                    // SAFETY: plain calls.
                    unsafe {
                        vppcom_epoll_ctl(vep, libc::EPOLL_CTL_DEL, sh, std::ptr::null_mut());
                        vppcom_session_close(sh);
                    }
                }
            }
        }
    })
}

/// One echo exchange through the server on `port`; Err while nobody listens there yet.
fn echo(port: u16, msg: &[u8]) -> std::io::Result<TcpStream> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(msg)?;
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got)?;
    assert_eq!(got, msg);
    Ok(c)
}

fn expect(seen: &mpsc::Receiver<Seen>, want: Seen) {
    let deadline = Instant::now() + DETECT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(s) if s == want => return,
            Ok(_) => continue,
            Err(e) => panic!("waiting for {want:?}: {e}"),
        }
    }
}

fn server_keeps_serving_after_vpp_restarts(eventfd: bool) {
    let _s = serial();
    let tag = if eventfd { "ra-evfd" } else { "ra-cond" };
    let p = attach_with(tag, eventfd, true);
    let port = free_port();
    let ls = listen(port);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, seen) = mpsc::channel();
    let server = serve(ls, stop.clone(), tx);
    let before = echo(port, b"before").expect("served before the restart");
    expect(&seen, Seen::Served);

    let died = Instant::now();
    p.stop();
    // the blocked server loop sees the death: its listener fails, its session hangs up
    expect(&seen, Seen::ListenerErr);
    expect(&seen, Seen::SessionHup);
    drop(before);
    println!("{tag}: death seen after {:?}", died.elapsed());

    let p = peer(tag);
    let back = Instant::now();
    let c = loop {
        match echo(port, b"after") {
            Ok(c) => break c,
            Err(e) => assert!(back.elapsed() < BACK, "not serving again: {e}"),
        }
        std::thread::sleep(Duration::from_millis(10)); // a retry pace, not a synchronisation
    };
    println!(
        "{tag}: serving again {:?} after the restart",
        back.elapsed()
    );
    drop(c);
    // a second client, and a new connect from the app
    echo(port, b"again").expect("a second client after the restart");
    // SAFETY: no arguments.
    assert_eq!(unsafe { vppcom_worker_is_detached() }, 0);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let cs = connect(kport);
    let (mut k, _) = kl.accept().unwrap();
    // SAFETY: the buffer is valid for its length.
    assert_eq!(unsafe { vppcom_session_write(cs, b"new".as_ptr(), 3) }, 3);
    let mut buf = [0u8; 3];
    k.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"new");
    assert_eq!(p.n_apps(), 1, "one app in the new VPP");

    stop.store(true, Ordering::Release);
    server.recv_timeout(DETECT).expect("server loop ends");
    app::destroy();
    p.stop();
}

#[test]
fn server_keeps_serving_after_vpp_restarts_without_eventfds() {
    server_keeps_serving_after_vpp_restarts(false);
}

#[test]
fn server_keeps_serving_after_vpp_restarts_with_eventfds() {
    server_keeps_serving_after_vpp_restarts(true);
}

#[test]
fn blocked_accept_fails_then_the_same_listener_accepts_again() {
    let _s = serial();
    let p = attach_with("ra-accept", false, true);
    let port = free_port();
    let ls = listen(port);
    // SAFETY: a null endpoint is allowed.
    let blocked = on_worker(move || unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) });
    std::thread::sleep(Duration::from_millis(100)); // let it block (not a synchronisation)
    p.stop();
    let r = blocked
        .recv_timeout(DETECT)
        .expect("blocked accept returns");
    assert!(r < 0, "{r}");
    let p = peer("ra-accept");
    let back = Instant::now();
    let accepted = on_worker(move || {
        let mut r;
        loop {
            // SAFETY: a null endpoint is allowed.
            r = unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) };
            if r >= 0 || back.elapsed() > BACK {
                break;
            }
            std::thread::sleep(Duration::from_millis(10)); // listener not back yet
        }
        r
    });
    let _c = loop {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            break c;
        }
        assert!(back.elapsed() < BACK, "not listening again");
        std::thread::sleep(Duration::from_millis(10));
    };
    let cs = accepted.recv_timeout(BACK).expect("accept returns");
    assert!(cs >= 0, "the same listener handle accepts again: {cs}");
    app::destroy();
    p.stop();
}

#[test]
fn reattach_off_stays_detached() {
    let _s = serial();
    let p = attach_with("ra-off", false, false);
    let ls = listen(free_port());
    p.stop();
    let t = Instant::now();
    // SAFETY: no arguments.
    while unsafe { vppcom_worker_is_detached() } != 1 {
        assert!(t.elapsed() < DETECT, "detach not seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    let p = peer("ra-off");
    // nothing should happen: give a re-attach ample time to (wrongly) happen
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(p.n_apps(), 0, "no app attached to the new VPP");
    // SAFETY: no arguments.
    assert_eq!(unsafe { vppcom_worker_is_detached() }, 1);
    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
    // SAFETY: no arguments; out holds 1 entry.
    unsafe {
        let vep = vppcom_epoll_create() as u32;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 1,
        };
        assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, ls, &mut ev), 0);
        assert_eq!(vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, 0.0), 1);
    }
    assert_ne!(
        out[0].events & libc::EPOLLERR as u32,
        0,
        "the listener stays failed"
    );
    app::destroy();
    p.stop();
}

#[test]
fn every_worker_attaches_again() {
    let _s = serial();
    let p = attach_with("ra-wrk", true, true);
    let port = free_port();
    // a second worker (its own thread) with a listener of its own
    let (go, wait) = mpsc::channel::<()>();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        app::register_worker().expect("worker 1");
        let ls = listen(port);
        tx.send(ls).unwrap();
        wait.recv().unwrap(); // the peer restarted
                              // SAFETY: a null endpoint is allowed.
        let cs = unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) };
        tx.send(cs as u32).unwrap();
        app::unregister_worker();
    });
    let ls = rx.recv_timeout(DETECT).expect("listener on worker 1");
    assert_eq!(ls >> 24, 1, "worker 1's handle");
    p.stop();
    // the death is noticed by a call (here worker 0's); the re-attach covers every worker
    let t0 = Instant::now();
    // SAFETY: no arguments.
    while unsafe { vppcom_worker_is_detached() } != 1 {
        assert!(t0.elapsed() < DETECT, "detach not seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    let p = peer("ra-wrk");
    let back = Instant::now();
    assert!(
        p.wait_until(BACK, |p| p.n_apps() == 1 && p.n_workers() == 2),
        "app and both workers attached again"
    );
    // the peer listens (in the kernel) once worker 1's LISTEN came again
    let _c = loop {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            break c;
        }
        assert!(back.elapsed() < BACK, "worker 1's listener not back");
        std::thread::sleep(Duration::from_millis(10)); // a retry pace
    };
    go.send(()).unwrap();
    let cs = rx.recv_timeout(BACK).expect("worker 1 accepts");
    assert!((cs as i32) >= 0, "accepted on worker 1: {}", cs as i32);
    t.join().unwrap();
    app::destroy();
    p.stop();
}

/// A level-triggered loop that, like a real server, calls accept when its listener reports
/// an error: the accept returns the failure once, and the loop then sleeps (no report per
/// wait) until the listener is back and a client arrives. Before, each wait returned the
/// listener's ERR at once: the loop spun until re-attach completed.
fn level_triggered_loop_sleeps_while_the_listener_is_down(eventfd: bool) {
    let _s = serial();
    let tag = if eventfd { "ra-lt-evfd" } else { "ra-lt" };
    let p = attach_with(tag, eventfd, true);
    let port = free_port();
    let ls = listen(port);
    // SAFETY: no arguments.
    let vep = unsafe { vppcom_epoll_create() } as u32;
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 7,
    };
    // SAFETY: ev is valid for the call.
    let rv = unsafe { vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, ls, &mut ev) };
    assert_eq!(rv, 0);
    p.stop();
    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
    let mut wait = || {
        // SAFETY: out holds 4 entries.
        let n = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 4, 100.0) };
        assert!(n >= 0, "epoll_wait: {n}");
        (n, out[0].events)
    };
    // the death is reported: ERR on the listener; accept returns the failure
    let t = Instant::now();
    let (n, events) = loop {
        let (n, events) = wait();
        if n > 0 {
            break (n, events);
        }
        assert!(
            t.elapsed() < DETECT,
            "the listener's failure is not reported"
        );
    };
    assert_eq!(n, 1);
    assert_ne!(
        events & libc::EPOLLERR as u32,
        0,
        "listener ERR: {events:#x}"
    );
    // SAFETY: a null endpoint is allowed.
    let rv = unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) };
    assert_eq!(rv, -libc::EBADFD, "accept on the failed listener");
    // while VPP is away, 10 waits of 100 ms: none reports anything
    let t = Instant::now();
    let reports = (0..10).filter(|_| wait().0 > 0).count();
    assert_eq!(reports, 0, "the failure is reported once, not per wait");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "the waits slept: {:?}",
        t.elapsed()
    );
    // VPP is back: the same loop sees a new client on the same listener
    let _p = peer(tag);
    let back = Instant::now();
    let _c = loop {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            break c;
        }
        assert!(back.elapsed() < BACK, "not listening again");
        std::thread::sleep(Duration::from_millis(10)); // a retry pace, not a synchronisation
    };
    loop {
        let (n, events) = wait();
        if n > 0 {
            assert_eq!(events & libc::EPOLLERR as u32, 0, "{events:#x}");
            // SAFETY: a null endpoint is allowed.
            let cs = unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) };
            assert!(cs >= 0, "accepted after the restart: {cs}");
            break;
        }
        assert!(
            back.elapsed() < BACK,
            "no client reported after the restart"
        );
    }
    app::destroy();
    _p.stop();
}

#[test]
fn level_triggered_loop_sleeps_while_the_listener_is_down_without_eventfds() {
    level_triggered_loop_sleeps_while_the_listener_is_down(false);
}

#[test]
fn level_triggered_loop_sleeps_while_the_listener_is_down_with_eventfds() {
    level_triggered_loop_sleeps_while_the_listener_is_down(true);
}

/// An app destroyed while its re-attach thread waits to retry, then a new app that loses VPP
/// before that thread has ended: the new app attaches again too. Before, the old thread still
/// held the one re-attach slot when the new app's detach came, the detach started nothing,
/// and the old thread then ended without looking: the new app stayed detached for good.
#[test]
fn a_new_app_reattaches_while_an_old_apps_reattach_thread_ends() {
    let _s = serial();
    let old = attach_with("ra-old", false, true);
    let _ls = listen(free_port());
    old.stop();
    let t = Instant::now();
    // SAFETY: no arguments.
    while unsafe { vppcom_worker_is_detached() } != 1 {
        assert!(t.elapsed() < DETECT, "detach not seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    // let the old app's re-attach back off to its longest wait, then destroy the app
    std::thread::sleep(Duration::from_millis(400));
    app::destroy();
    let p = attach_with("ra-new", false, true);
    let port = free_port();
    let ls = listen(port);
    p.stop();
    let t = Instant::now();
    // SAFETY: no arguments.
    while unsafe { vppcom_worker_is_detached() } != 1 {
        assert!(t.elapsed() < DETECT, "detach not seen");
        std::thread::sleep(Duration::from_millis(1));
    }
    let p = peer("ra-new");
    assert!(
        p.wait_until(BACK, |p| p.n_apps() == 1),
        "the new app attached again"
    );
    let _c = loop {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            break c;
        }
        assert!(p.n_apps() == 1, "still attached");
        std::thread::sleep(Duration::from_millis(10)); // a retry pace, not a synchronisation
    };
    // SAFETY: a null endpoint is allowed.
    let cs = unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) };
    assert!(cs >= 0, "the new app's listener accepts again: {cs}");
    app::destroy();
    p.stop();
}
