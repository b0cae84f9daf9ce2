//! UDP end to end through the in-process test peer (kernel UDP behind it): 100 concurrent
//! connected flows against a connectionless echo server (a child process, its own VCL app,
//! two workers listening on the same port), every datagram carrying its flow, sequence number,
//! length and checksum, so a split, merged, corrupted or misdirected datagram fails the test;
//! the peer runs 3 threads, so every client session migrates after its first datagram. Then a
//! connectionless server answering 50 clients, datagram boundaries (truncation, EMSGSIZE),
//! and the peer's faults: dropped, reordered and oversized datagrams from the network.
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::io::Read;
use std::net::UdpSocket;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vcl_testpeer::{Peer, PeerConfig, SockAddr};
use vclapp::*;

extern "C" {
    fn vppcom_worker_register() -> i32;
    fn vppcom_session_sendto(sh: u32, buf: *const u8, n: u32, flags: i32, ep: *mut Endpt) -> i32;
    fn vppcom_session_recvfrom(sh: u32, buf: *mut u8, n: u32, flags: i32, ep: *mut Endpt) -> i32;
}

const VPPCOM_ATTR_SET_CONNECTED: u32 = 34;

const PROTO_UDP: u8 = 1;
const N_FLOWS: usize = 100;
const DGRAMS_PER_FLOW: u32 = 40;
const HDR: usize = 16;

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn fnv(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &x| {
        (h ^ u32::from(x)).wrapping_mul(0x0100_0193)
    })
}

/// Datagram `seq` of flow `flow`: flow, seq, payload length, checksum, payload.
fn dgram(flow: u32, seq: u32) -> Vec<u8> {
    let len = 1 + (flow as usize * 37 + seq as usize * 101) % 1400;
    let payload: Vec<u8> = (0..len)
        .map(|i| (flow as usize * 7 + seq as usize * 13 + i) as u8)
        .collect();
    let mut d = Vec::with_capacity(HDR + len);
    for v in [flow, seq, len as u32, fnv(&payload)] {
        d.extend_from_slice(&v.to_le_bytes());
    }
    d.extend_from_slice(&payload);
    d
}

/// Check one received datagram whole: (flow, seq).
fn check(d: &[u8]) -> (u32, u32) {
    assert!(d.len() >= HDR, "runt datagram of {} bytes", d.len());
    let f = |i: usize| u32::from_le_bytes(d[i..i + 4].try_into().unwrap());
    let (flow, seq, len, sum) = (f(0), f(4), f(8) as usize, f(12));
    assert_eq!(d.len(), HDR + len, "flow {flow} seq {seq}: split or merged");
    assert_eq!(fnv(&d[HDR..]), sum, "flow {flow} seq {seq}: corrupted");
    assert_eq!(d, dgram(flow, seq), "flow {flow} seq {seq}: wrong bytes");
    (flow, seq)
}

fn conf(sock: &str, tag: &str, fifo: u32, local: bool) -> std::path::PathBuf {
    let scope = if local {
        "app-scope-local\n  app-scope-global"
    } else {
        "app-scope-global"
    };
    let p = std::env::temp_dir().join(format!("vcl-udp-{tag}-{}.conf", std::process::id()));
    std::fs::write(
        &p,
        format!(
            "vcl {{\n  rx-fifo-size {fifo}\n  tx-fifo-size {fifo}\n  segment-size 134217728\n  \
             {scope}\n  app-socket-api abstract:{sock}\n}}\n"
        ),
    )
    .unwrap();
    p
}

// ---------------------------------------------------------------- the echo server (child)

/// Child mode: `workers` threads, each its own VCL worker listening on the same port and
/// echoing every datagram to its sender, until stdin ends. Connectionless: recvfrom/sendto on
/// the listener; `connected` (VPPCOM_ATTR_SET_CONNECTED): a session accepted per sender,
/// read/write on it.
fn echo_server(port: u16, workers: usize, connected: bool) {
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        assert_eq!(vppcom_app_create(c"udp-echo".as_ptr()), 0);
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(std::sync::Barrier::new(workers + 1));
        let threads: Vec<_> = (0..workers)
            .map(|_| {
                let (stop, ready) = (stop.clone(), ready.clone());
                std::thread::spawn(move || {
                    assert!(vppcom_worker_register() >= 0);
                    let ls = vppcom_session_create(PROTO_UDP, 1) as u32;
                    if connected {
                        let rv = vppcom_session_attr(
                            ls,
                            VPPCOM_ATTR_SET_CONNECTED,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                        );
                        assert_eq!(rv, 0);
                    }
                    // as upstream, binding a UDP session listens (connected or not: the
                    // attribute must come first)
                    let mut ip = [127, 0, 0, 1];
                    assert_eq!(vppcom_session_bind(ls, &mut endpt(&mut ip, port)), 0);
                    assert_eq!(vppcom_session_listen(ls, 10), 0);
                    let vep = vppcom_epoll_create() as u32;
                    let mut ev = libc::epoll_event {
                        events: libc::EPOLLIN as u32,
                        u64: u64::from(ls),
                    };
                    assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, ls, &mut ev), 0);
                    ready.wait();
                    let mut buf = vec![0u8; 65536];
                    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
                    while !stop.load(Ordering::Relaxed) {
                        let k = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 64, 50.0);
                        if connected {
                            for e in &evs[..k.max(0) as usize] {
                                serve_connected(vep, ls, e.u64 as u32, &mut buf);
                            }
                            continue;
                        }
                        if k <= 0 {
                            continue;
                        }
                        loop {
                            let mut rip = [0u8; 16];
                            let mut rep = endpt(&mut [0; 4], 0);
                            rep.ip = rip.as_mut_ptr();
                            let n =
                                vppcom_session_recvfrom(ls, buf.as_mut_ptr(), 65536, 0, &mut rep);
                            if n == EAGAIN {
                                break;
                            }
                            assert!(n > 0, "recvfrom {n}");
                            let w = vppcom_session_sendto(ls, buf.as_ptr(), n as u32, 0, &mut rep);
                            assert!(w == n || w == EAGAIN, "sendto {w}");
                        }
                    }
                    vppcom_session_close(ls);
                })
            })
            .collect();
        ready.wait();
        println!("LISTENING");
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        vppcom_app_destroy();
    }
}

/// One epoll event of the connected-mode server: accept on the listener, echo on a session.
///
/// # Safety
/// Plain calls into our own C ABI with valid pointers.
unsafe fn serve_connected(vep: u32, ls: u32, sh: u32, buf: &mut [u8]) {
    if sh == ls {
        let mut rip = [0u8; 16];
        let mut rep = endpt(&mut [0; 4], 0);
        rep.ip = rip.as_mut_ptr();
        while let cs @ 0.. = vppcom_session_accept(ls, &mut rep, libc::O_NONBLOCK as u32) {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: cs as u64,
            };
            assert_eq!(
                vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, cs as u32, &mut ev),
                0
            );
        }
        return;
    }
    loop {
        let n = vppcom_session_read(sh, buf.as_mut_ptr(), buf.len());
        if n == EAGAIN {
            return;
        }
        if n <= 0 {
            vppcom_epoll_ctl(vep, libc::EPOLL_CTL_DEL, sh, std::ptr::null_mut());
            vppcom_session_close(sh);
            return;
        }
        let w = vppcom_session_write(sh, buf.as_ptr(), n as usize);
        assert!(w == n || w == EAGAIN, "write {w}");
    }
}

#[test]
fn child_udp_echo_server() {
    if let (Ok(port), Ok(w)) = (
        std::env::var("VCL_TEST_UDP_PORT"),
        std::env::var("VCL_TEST_UDP_WORKERS"),
    ) {
        let connected = std::env::var("VCL_TEST_UDP_CONNECTED").is_ok_and(|v| v == "1");
        echo_server(port.parse().unwrap(), w.parse().unwrap(), connected);
    }
}

/// One test's world: a peer with `threads` VPP threads, an echo server child with `workers`
/// workers, this process attached as the client app while `client` runs.
struct Setup {
    threads: u8,
    workers: usize,
    connected: bool,
    local: bool,
}

fn with_server(tag: &str, su: Setup, client: impl FnOnce(u16, &Peer)) {
    let Setup {
        threads,
        workers,
        connected,
        local,
    } = su;
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    vcl::testing::app::destroy();
    let sock = format!("vcl-udp-{tag}-{}", std::process::id());
    let peer =
        Peer::start(PeerConfig::new(SockAddr::Abstract(sock.clone())).threads(threads)).unwrap();
    let conf = conf(&sock, tag, 1 << 20, local);
    let port = free_udp_port();
    let env = [
        ("VCL_TEST_UDP_PORT", port.to_string()),
        ("VCL_TEST_UDP_WORKERS", workers.to_string()),
        ("VCL_TEST_UDP_CONNECTED", u8::from(connected).to_string()),
    ];
    let server: Child = spawn_child("child_udp_echo_server", &conf, &env);
    std::env::set_var("VCL_CONFIG", &conf);
    // SAFETY: a plain call into our own C ABI.
    assert_eq!(unsafe { vppcom_app_create(c"udp-client".as_ptr()) }, 0);
    client(port, &peer);
    // SAFETY: a plain call into our own C ABI.
    unsafe { vppcom_app_destroy() };
    wait_child(server);
    peer.stop();
}

/// `n` connected non-blocking UDP sessions on one epoll session, each sending `per_flow`
/// datagrams one at a time (resent after 500 ms without an echo) and checking every echo.
/// Runs `n` echo flows; returns (datagrams resent, sessions on peer thread 2, cut-through
/// sessions), the last two counted while every flow is still open.
fn flows(port: u16, n: usize, per_flow: u32, peer: &Peer) -> (usize, usize, usize) {
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        let vep = vppcom_epoll_create() as u32;
        let mut sh = Vec::new();
        for k in 0..n {
            let s = vppcom_session_create(PROTO_UDP, 1) as u32;
            let mut ip = [127, 0, 0, 1];
            let rv = vppcom_session_connect(s, &mut endpt(&mut ip, port));
            assert!(rv == 0 || rv == EINPROGRESS, "connect {rv}");
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLOUT) as u32,
                u64: k as u64,
            };
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, s, &mut ev), 0);
            sh.push(s);
        }
        let mut up = vec![false; n];
        let mut next = vec![0u32; n];
        let mut sent_at: Vec<Option<Instant>> = vec![None; n];
        let mut resent = 0;
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 128];
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(120);
        while next.iter().any(|&s| s < per_flow) {
            assert!(Instant::now() < deadline, "flows stalled at {next:?}");
            let k = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 128, 20.0);
            assert!(k >= 0, "epoll_wait {k}");
            for e in &evs[..k as usize] {
                let f = e.u64 as usize;
                if e.events & libc::EPOLLOUT as u32 != 0 {
                    up[f] = true;
                }
                loop {
                    let r = vppcom_session_read(sh[f], buf.as_mut_ptr(), buf.len());
                    if r == EAGAIN {
                        break;
                    }
                    assert!(r > 0, "flow {f}: read {r}");
                    let (flow, seq) = check(&buf[..r as usize]);
                    assert_eq!(flow as usize, f, "echo for another flow");
                    assert!(seq <= next[f], "flow {f}: seq {seq} never sent");
                    if seq == next[f] {
                        next[f] += 1;
                        sent_at[f] = None;
                    }
                }
            }
            for f in 0..n {
                let due = sent_at[f].is_none_or(|t| t.elapsed() > Duration::from_millis(500));
                if up[f] && next[f] < per_flow && due {
                    if sent_at[f].is_some() {
                        resent += 1;
                    }
                    let d = dgram(f as u32, next[f]);
                    let w = vppcom_session_write(sh[f], d.as_ptr(), d.len());
                    if w == EAGAIN {
                        continue;
                    }
                    assert_eq!(w, d.len() as i32, "flow {f}: write");
                    sent_at[f] = Some(Instant::now());
                }
            }
        }
        // sessions VPP moved off the connectionless thread (1) to worker thread 2
        let on_thread2 = peer
            .sessions()
            .iter()
            .filter(|s| s.handle >> 32 == 2 && !s.is_listener)
            .count();
        let ct = peer.sessions().iter().filter(|s| s.is_ct).count();
        for s in sh {
            assert_eq!(vppcom_session_close(s), 0);
        }
        vppcom_session_close(vep);
        (resent, on_thread2, ct)
    }
}

#[test]
fn udp_100_connected_flows_migrating_two_server_workers() {
    let su = Setup {
        threads: 3,
        workers: 2,
        connected: false,
        local: false,
    };
    with_server("flows", su, |port, peer| {
        let t = Instant::now();
        let (resent, migrated, _) = flows(port, N_FLOWS, DGRAMS_PER_FLOW, peer);
        println!(
            "{N_FLOWS} flows x {DGRAMS_PER_FLOW} datagrams echoed in {:.2} s, {resent} resent",
            t.elapsed().as_secs_f64()
        );
        // every flow migrated after its first datagram and went on working
        assert_eq!(migrated, N_FLOWS, "sessions migrated");
    });
}

#[test]
fn udp_cl_server_answers_50_clients() {
    let su = Setup {
        threads: 1,
        workers: 1,
        connected: false,
        local: false,
    };
    with_server("cl50", su, |port, peer| {
        let (resent, _, _) = flows(port, 50, 10, peer);
        println!("50 clients answered, {resent} resent");
    });
}

#[test]
fn udp_connected_listener_accepts_100_flows() {
    let su = Setup {
        threads: 2,
        workers: 1,
        connected: true,
        local: false,
    };
    with_server("acc", su, |port, peer| {
        let (resent, _, _) = flows(port, N_FLOWS, 20, peer);
        println!("accepted: {N_FLOWS} flows echoed, {resent} resent");
    });
}

#[test]
fn udp_cut_through_100_flows() {
    let su = Setup {
        threads: 1,
        workers: 1,
        connected: true,
        local: true,
    };
    with_server("ct", su, |port, peer| {
        // counted while the flows are open (closed ones leave the peer's table)
        let (resent, _, ct) = flows(port, N_FLOWS, 20, peer);
        println!("cut-through: {N_FLOWS} flows echoed, {resent} resent, {ct} ct sessions");
        assert!(ct >= N_FLOWS, "the flows went through the transport");
    });
}
