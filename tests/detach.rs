//! VPP dying under a running app (the test peer stopped: its app socket hangs up): every
//! blocked or busy call and every epoll/select/poll caller learns it at once, sessions fail
//! the way docs/wire.md ("VPP death") says, and closing them afterwards costs nothing. Also a
//! corrupt app mq (the same as VPP gone), two threads on one worker, infinite timeouts.
//!
//! The library keeps one app per process, so the tests in this file take turns (SERIAL).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vcl::ffi::{vcl_poll_t, vcl_si_set};
use vcl::testing::app;

#[path = "common/vcl_peer.rs"]
mod util;
use util::*;

fn vpp_dies_under_every_kind_of_call(eventfd: bool) {
    let _s = serial();
    let tag = if eventfd { "evfd" } else { "cond" };
    let p = attach(tag, eventfd);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let with_data = connect(kport);
    let (mut k1, _) = kl.accept().unwrap();
    let idle = connect(kport);
    let _k2 = kl.accept().unwrap();
    let writer = connect(kport);
    let _k3 = kl.accept().unwrap(); // never reads: the writer's tx fills up
    let ls = listen(free_port());
    k1.write_all(b"hello").unwrap();
    let mut nread = 0;
    let t = Instant::now();
    while nread == 0 && t.elapsed() < Duration::from_secs(10) {
        let mut fds = [vcl_poll_t {
            fds_ndx: 0,
            sh: with_data,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: fds holds 1 entry.
        nread = unsafe { vppcom_poll(fds.as_mut_ptr(), 1, 100.0) };
    }
    assert_eq!(nread, 1, "the data arrived");
    // SAFETY: no arguments.
    let vep = unsafe { vppcom_epoll_create() } as u32;
    for (sh, data) in [(with_data, 1u64), (ls, 2), (idle, 3)] {
        // edge-triggered: the data already there is reported once, below, not again
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: data,
        };
        // SAFETY: ev is valid for the call.
        let rv = unsafe { vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, sh, &mut ev) };
        assert_eq!(rv, 0);
    }
    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 8];
    // SAFETY: out holds 8 entries.
    let n = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 8, 0.0) };
    assert!(n <= 1, "at most the data: {n}");
    // SAFETY: no arguments.
    assert_eq!(unsafe { vppcom_worker_is_detached() }, 0);

    // Calls blocked on other threads of the same worker when VPP goes.
    let blocked_read = on_worker(move || read(idle, &mut [0u8; 16]));
    let blocked_accept = on_worker(move || {
        // SAFETY: a null endpoint is allowed.
        unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) }
    });
    let blocked_write = on_worker(move || {
        let chunk = vec![7u8; 1 << 20];
        loop {
            // SAFETY: chunk is valid for its length.
            let r = unsafe { vppcom_session_write(writer, chunk.as_ptr(), chunk.len()) };
            if r < 0 {
                return r;
            }
        }
    });
    let blocked_epoll = on_worker(move || loop {
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 8];
        // SAFETY: out holds 8 entries.
        let n = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 8, -1.0) };
        let got: Vec<(u64, u32)> = out[..n.max(0) as usize]
            .iter()
            .map(|e| (e.u64, e.events))
            .collect();
        // The peer's RX event for the data read above can land after the non-blocking drain
        // (the poll saw the bytes in the fifo first): that plain EPOLLIN is not the news.
        if got != [(1, libc::EPOLLIN as u32)] {
            break (n, got);
        }
    });
    let blocked_select = on_worker(move || {
        let mut bits: vcl_si_set = 1 << (idle & 0xFF_FFFF);
        // SAFETY: bits holds 64 bits, more than the n_bits passed.
        let n = unsafe {
            vppcom_select(
                (idle & 0xFF_FFFF) as i32 + 1,
                &mut bits,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                -1.0,
            )
        };
        (n, bits)
    });
    let blocked_poll = on_worker(move || {
        let mut fds = [vcl_poll_t {
            fds_ndx: 0,
            sh: idle,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: fds holds 1 entry.
        let n = unsafe { vppcom_poll(fds.as_mut_ptr(), 1, -1.0) };
        (n, fds[0].revents)
    });
    std::thread::sleep(Duration::from_millis(100)); // let them block (not a synchronisation)
    let died = Instant::now();
    p.stop();

    let r = blocked_read.recv_timeout(DETECT);
    println!("{tag}: blocked read returned after {:?}", died.elapsed());
    assert_eq!(r, Ok(-libc::ECONNRESET), "blocked read");
    let w = blocked_write.recv_timeout(DETECT);
    assert_eq!(w, Ok(-libc::EPIPE), "blocked write on a full fifo");
    let a = blocked_accept.recv_timeout(DETECT);
    assert!(matches!(a, Ok(r) if r < 0), "blocked accept fails: {a:?}");
    let (n, got) = blocked_epoll
        .recv_timeout(DETECT)
        .expect("epoll_wait(-1) returns");
    assert_eq!(n, 3, "every registered session is reported: {got:?}");
    let hup = (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) as u32;
    for (data, ev) in got {
        let want = if data == 2 {
            libc::EPOLLERR as u32
        } else {
            hup
        };
        assert_eq!(ev & want, want, "session {data}: events {ev:#x}");
    }
    let (n, _) = blocked_select.recv_timeout(DETECT).expect("select returns");
    assert!(n != 0, "select reports the dead session or fails: {n}");
    let (n, revents) = blocked_poll.recv_timeout(DETECT).expect("poll returns");
    assert!(n < 0 || revents != 0, "poll: {n} {revents:#x}");
    println!("{tag}: all waiters back after {:?}", died.elapsed());

    // SAFETY: no arguments.
    assert_eq!(unsafe { vppcom_worker_is_detached() }, 1);
    // Buffered data first, then the reset; writes fail with EPIPE.
    let mut buf = [0u8; 16];
    assert_eq!(read(with_data, &mut buf), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(read(with_data, &mut buf), -libc::ECONNRESET);
    // SAFETY: buf is valid for its length.
    let wr = unsafe { vppcom_session_write(idle, buf.as_ptr(), 4) };
    assert_eq!(wr, -libc::EPIPE);
    // Closing after VPP died sends nothing and waits for nothing.
    let t = Instant::now();
    for sh in [with_data, idle, writer, ls, vep] {
        // SAFETY: a plain call.
        assert_eq!(unsafe { vppcom_session_close(sh) }, 0, "close {sh:#x}");
    }
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    app::destroy();
}

#[test]
fn vpp_death_is_seen_everywhere_without_eventfds() {
    vpp_dies_under_every_kind_of_call(false);
}

#[test]
fn vpp_death_is_seen_everywhere_with_eventfds() {
    vpp_dies_under_every_kind_of_call(true);
}

#[test]
fn a_busy_nonblocking_loop_sees_vpp_die() {
    let _s = serial();
    let p = attach("busy", false);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let sh = connect(kport);
    let _k = kl.accept().unwrap();
    // non-blocking from now on (VPPCOM_ATTR_SET_FLAGS = 3 takes an int of O_ flags)
    let mut nb: i32 = libc::O_NONBLOCK;
    let mut len = 4u32;
    // SAFETY: nb and len outlive the call.
    let rv = unsafe { vppcom_session_attr(sh, 3, (&mut nb as *mut i32).cast(), &mut len) };
    assert_eq!(rv, 0);
    let mut buf = [0u8; 16];
    assert_eq!(read(sh, &mut buf), -libc::EAGAIN);
    let died = Instant::now();
    p.stop();
    let mut r = -libc::EAGAIN;
    while r == -libc::EAGAIN && died.elapsed() < DETECT {
        r = read(sh, &mut buf);
    }
    println!("busy loop: {r} after {:?}", died.elapsed());
    assert_eq!(r, -libc::ECONNRESET);
    app::destroy();
}

#[test]
fn epoll_wait_with_an_infinite_timeout_waits() {
    let _s = serial();
    let p = attach_for_good("inf", false);
    // SAFETY: plain calls.
    let vep = unsafe { vppcom_epoll_create() } as u32;
    let waiter = on_worker(move || {
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
        // SAFETY: out holds 1 entry.
        unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, f64::INFINITY) }
    });
    assert_eq!(
        waiter.recv_timeout(Duration::from_millis(300)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "still waiting (not EFAULT from a panic)"
    );
    p.stop(); // the wait ends once VPP is gone
    assert_eq!(
        waiter.recv_timeout(DETECT),
        Ok(-libc::ENOTCONN),
        "an empty epoll set on a detached worker"
    );
    app::destroy();
}

#[test]
fn a_corrupt_app_mq_is_a_detach_without_a_spin() {
    let _s = serial();
    let p = attach_for_good("corrupt", false);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let sh = connect(kport);
    let _k = kl.accept().unwrap();
    let blocked = on_worker(move || read(sh, &mut [0u8; 16]));
    let app_index = p.apps()[0].app_index;
    assert!(p.corrupt_app_mq(app_index));
    let (t, cpu) = (Instant::now(), cpu_time());
    assert_eq!(blocked.recv_timeout(DETECT), Ok(-libc::ECONNRESET));
    println!("corrupt mq: read failed after {:?}", t.elapsed());
    // SAFETY: no arguments.
    assert_eq!(unsafe { vppcom_worker_is_detached() }, 1);
    // later calls fail at once, without spinning on the queue
    let t = Instant::now();
    // SAFETY: no arguments.
    let vep = unsafe { vppcom_epoll_create() } as u32;
    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
    // SAFETY: out holds 1 entry.
    let n = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, -1.0) };
    assert_eq!(n, -libc::ENOTCONN);
    assert!(t.elapsed() < DETECT);
    assert!(cpu_time() - cpu < Duration::from_secs(1), "no spin");
    app::destroy();
    p.stop();
}

#[test]
fn two_threads_waiting_on_one_worker_do_not_spin() {
    let _s = serial();
    let p = attach("twothreads", false);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let (a, b) = (connect(kport), connect(kport));
    let _ka = kl.accept().unwrap();
    let _kb = kl.accept().unwrap();
    let ra = on_worker(move || read(a, &mut [0u8; 16]));
    let rb = on_worker(move || read(b, &mut [0u8; 16]));
    std::thread::sleep(Duration::from_millis(100)); // both blocked (not a synchronisation)
    let (t, cpu) = (Instant::now(), cpu_time());
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_time() - cpu;
    let wall = t.elapsed();
    println!("two waiters on one worker: {used:?} CPU in {wall:?}");
    assert!(
        used < wall * 2 / 5,
        "one waits, the other sleeps: {used:?} CPU in {wall:?}"
    );
    p.stop();
    assert_eq!(ra.recv_timeout(DETECT), Ok(-libc::ECONNRESET));
    assert_eq!(rb.recv_timeout(DETECT), Ok(-libc::ECONNRESET));
    app::destroy();
}

#[test]
fn closes_after_vpp_died_cost_nothing_even_with_its_mq_mutex_held() {
    let _s = serial();
    let p = attach("held-mutex", false);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let mut shs = Vec::new();
    let mut ks = Vec::new();
    for _ in 0..4 {
        shs.push(connect(kport));
        ks.push(kl.accept().unwrap());
    }
    // VPP dies; a stopped (or hostile) process still holds its queues' mutexes.
    p.stop();
    let w = vcl::testing::worker::current().unwrap();
    let mut holders = Vec::new();
    for k in 0..w.conn().vpp.mqs.len() {
        let w = w.clone();
        let (tx, rx) = mpsc::channel();
        holders.push(std::thread::spawn(move || {
            let held = || {
                let _ = tx.send(());
            };
            w.conn().vpp.mqs[k]
                .hold_shm_lock_for(Duration::from_secs(6), held)
                .unwrap();
        }));
        rx.recv().unwrap();
    }
    // "after VPP died" as the library sees it: the app socket's hang-up has been noticed (under
    // load it can trail p.stop(), and a close before it waits out the held mutex once)
    let seen = Instant::now();
    // SAFETY: no arguments.
    while unsafe { vppcom_worker_is_detached() } != 1 {
        assert!(seen.elapsed() < DETECT, "VPP's death not seen");
        std::thread::sleep(Duration::from_millis(1)); // polling the library's view
    }
    let t = Instant::now();
    for sh in shs {
        // SAFETY: a plain call.
        assert_eq!(unsafe { vppcom_session_close(sh) }, 0);
    }
    let took = t.elapsed();
    println!("4 closes with VPP gone and its mq mutexes held: {took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
    drop(w);
    app::destroy();
    for h in holders {
        h.join().unwrap();
    }
}

/// The peer handles an APP_DETACH for this app's api client handle now, as a late one naming
/// a reused handle would.
fn vpp_detaches_this_app(p: &vcl_testpeer::Peer) {
    let client = vcl::testing::worker::current()
        .unwrap()
        .conn()
        .api_client_handle;
    assert!(p.app_detach(client));
}

/// VPP detaching the app while it stays up (as a late APP_DETACH naming a reused api client
/// handle does) ends calls blocked on the app's sessions, TCP and UDP, within DETECT: the
/// sessions fail and the app attaches again.
#[test]
fn a_detach_while_vpp_stays_up_ends_blocked_reads() {
    let _s = serial();
    let p = attach("alive", true);
    let kport = free_port();
    let kl = TcpListener::bind(("127.0.0.1", kport)).unwrap();
    let tcp = connect(kport);
    let _k = kl.accept().unwrap();
    let ku = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = connect_udp(ku.local_addr().unwrap().port());
    let blocked_tcp = on_worker(move || read(tcp, &mut [0u8; 16]));
    let blocked_udp = on_worker(move || read(udp, &mut [0u8; 16]));
    std::thread::sleep(Duration::from_millis(100)); // both are blocked now
    vpp_detaches_this_app(&p);
    let t = blocked_tcp
        .recv_timeout(DETECT)
        .expect("the TCP read returned");
    let u = blocked_udp
        .recv_timeout(DETECT)
        .expect("the UDP read returned");
    assert!(
        t <= 0 && u <= 0,
        "reads of detached sessions: tcp {t}, udp {u}"
    );
    app::destroy();
    p.stop();
}

/// An app detached by VPP right after attaching (a late APP_DETACH for its reused handle),
/// before it made any session: its next calls finish, each with a result or an error,
/// within DETECT, as the UDP echo client's do (none hangs).
#[test]
fn calls_right_after_an_early_detach_do_not_hang() {
    let _s = serial();
    let p = attach("early", true);
    let ku = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let kport = ku.local_addr().unwrap().port();
    vpp_detaches_this_app(&p);
    let done = on_worker(move || {
        let mut ip = [127, 0, 0, 1];
        let mut ep = endpt(&mut ip, kport);
        // SAFETY: plain calls into our C ABI; ep, ip and the buffers outlive them.
        unsafe {
            let sh = vppcom_session_create(1, 0);
            if sh < 0 {
                return (sh, 0, 0);
            }
            let c = vppcom_session_connect(sh as u32, &mut ep);
            let w = vppcom_session_write(sh as u32, b"ping".as_ptr(), 4);
            let mut buf = [0u8; 16];
            let r = if w == 4 {
                vppcom_session_read(sh as u32, buf.as_mut_ptr(), buf.len())
            } else {
                w
            };
            (c, w, r)
        }
    });
    let r = done.recv_timeout(DETECT * 3);
    eprintln!("after an early detach: {r:?}");
    assert!(r.is_ok(), "a call hung after the detach");
    app::destroy();
    p.stop();
}
