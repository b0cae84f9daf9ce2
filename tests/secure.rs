//! TLS and QUIC sessions through the in-process test peer, one VCL app per test (this
//! process), driven through the C ABI. The peer carries TLS as plaintext after checking the ext
//! config the library places in VPP's mqs segment, and models QUIC connections and streams
//! (docs/wire.md#tls-and-quic says what that leaves unchecked).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::time::{Duration, Instant};

use vcl_codec::ext_cfg::{CryptoCfg, ExtCfgBody, ExtCfgType};
use vcl_testpeer::{Peer, PeerConfig, SockAddr};
use vclapp::*;

const TLS: u8 = 3;
const QUIC: u8 = 4;
const TCP: u8 = 0;
const ATTR_SET_CKPAIR: u32 = 35;
const ATTR_GET_STREAM_FLAGS: u32 = 48;
const ATTR_SET_STREAM_FLAGS: u32 = 49;
const ECONNREFUSED: i32 = -libc::ECONNREFUSED;
const ECONNRESET: i32 = -libc::ECONNRESET;

#[repr(C)]
struct CertKey {
    cert: *const u8,
    key: *const u8,
    cert_len: u32,
    key_len: u32,
}

extern "C" {
    fn vppcom_add_cert_key_pair(ck: *mut CertKey) -> i32;
    fn vppcom_del_cert_key_pair(i: u32) -> i32;
    fn vppcom_session_stream_connect(sh: u32, parent: u32) -> i32;
    fn vppcom_session_is_stream(sh: u32) -> i32;
    fn vppcom_session_is_connectable_listener(sh: u32) -> i32;
    fn vppcom_session_terminate(sh: u32) -> i32;
}

/// This process attached (global scope) to a fresh peer while `f` runs.
fn world(tag: &str, f: impl FnOnce(&Peer)) {
    world_threads(tag, 1, f)
}

/// `world` with a peer emulating `threads` VPP threads.
fn world_threads(tag: &str, threads: u8, f: impl FnOnce(&Peer)) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    vcl::testing::app::destroy();
    let sock = format!("vcl-secure-{tag}-{}", std::process::id());
    let mut cfg = PeerConfig::new(SockAddr::Abstract(sock.clone()));
    cfg.threads = threads;
    let peer = Peer::start(cfg).unwrap();
    let conf = write_conf(&sock, false);
    std::env::set_var("VCL_CONFIG", &conf);
    // SAFETY: a plain call into our own C ABI.
    assert_eq!(unsafe { vppcom_app_create(c"secure-test".as_ptr()) }, 0);
    f(&peer);
    // SAFETY: a plain call into our own C ABI.
    unsafe { vppcom_app_destroy() };
    peer.stop();
}

fn add_ckpair() -> u32 {
    let cert = b"-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n";
    let key = b"-----BEGIN PRIVATE KEY-----\ntest\n-----END PRIVATE KEY-----\n";
    let mut ck = CertKey {
        cert: cert.as_ptr(),
        key: key.as_ptr(),
        cert_len: cert.len() as u32,
        key_len: key.len() as u32,
    };
    // SAFETY: a plain call into our own C ABI with a valid struct.
    let i = unsafe { vppcom_add_cert_key_pair(&mut ck) };
    assert!(i > 0, "add_cert_key_pair: {i}");
    i as u32
}

fn set_ckpair(sh: u32, mut i: u32) -> i32 {
    let mut len = 4u32;
    // SAFETY: a plain call into our own C ABI with a 4-byte buffer.
    unsafe { vppcom_session_attr(sh, ATTR_SET_CKPAIR, (&mut i as *mut u32).cast(), &mut len) }
}

fn session(proto: u8, nb: bool) -> u32 {
    // SAFETY: a plain call into our own C ABI.
    let s = unsafe { vppcom_session_create(proto, u8::from(nb)) };
    assert!(s >= 0, "create: {s}");
    s as u32
}

/// A listener of `proto` on 127.0.0.1 (a free port), non-blocking, with cert/key pair `ck`.
fn listener(proto: u8, ck: Option<u32>) -> (u32, u16, i32) {
    let ls = session(proto, true);
    if let Some(ck) = ck {
        assert_eq!(set_ckpair(ls, ck), 0);
    }
    let port = free_port();
    let mut ip = [127, 0, 0, 1];
    // SAFETY: plain calls into our own C ABI with valid pointers.
    let rv = unsafe {
        assert_eq!(vppcom_session_bind(ls, &mut endpt(&mut ip, port)), 0);
        vppcom_session_listen(ls, 16)
    };
    (ls, port, rv)
}

fn connect(sh: u32, port: u16) -> i32 {
    let mut ip = [127, 0, 0, 1];
    // SAFETY: a plain call into our own C ABI with a valid endpoint.
    unsafe { vppcom_session_connect(sh, &mut endpt(&mut ip, port)) }
}

/// Wait (bounded) until `sh` reports one of `events`.
fn wait_for(sh: u32, events: u32) {
    // SAFETY: plain calls into our own C ABI with valid pointers.
    unsafe {
        let vep = vppcom_epoll_create() as u32;
        let mut ev = libc::epoll_event {
            events,
            u64: u64::from(sh),
        };
        assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, sh, &mut ev), 0);
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                Instant::now() < deadline,
                "session {sh}: no event {events:#x}"
            );
            if vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, 100.0) == 1 {
                break;
            }
        }
        vppcom_session_close(vep);
    }
}

/// Accept one session from `ls` (waiting, bounded).
fn accept(ls: u32) -> u32 {
    wait_for(ls, libc::EPOLLIN as u32);
    let mut ip = [0u8; 16];
    let mut ep = endpt(&mut [0; 4], 0);
    ep.ip = ip.as_mut_ptr();
    // SAFETY: a plain call into our own C ABI with a valid endpoint.
    let s = unsafe { vppcom_session_accept(ls, &mut ep, 0) };
    assert!(s >= 0, "accept: {s}");
    s as u32
}

/// Write all of `data` on `sh`, then read exactly as much back from `from`.
fn send_recv(sh: u32, from: u32, data: &[u8]) {
    // SAFETY: plain calls into our own C ABI with valid buffers.
    unsafe {
        assert_eq!(
            vppcom_session_write(sh, data.as_ptr(), data.len()),
            data.len() as i32
        );
        let mut got = vec![0u8; data.len()];
        let mut n = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while n < got.len() {
            assert!(Instant::now() < deadline, "read stalled at {n}");
            let r = vppcom_session_read(from, got[n..].as_mut_ptr(), got.len() - n);
            if r == EAGAIN {
                wait_for(from, libc::EPOLLIN as u32);
                continue;
            }
            assert!(r > 0, "read: {r}");
            n += r as usize;
        }
        assert_eq!(got, data);
    }
}

fn blob(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

#[test]
fn tls_listen_and_connect_carry_the_ext_config() {
    world("tls", |peer| {
        let ck = add_ckpair();
        let (ls, port, rv) = listener(TLS, Some(ck));
        assert_eq!(rv, 0, "TLS listen with a cert/key pair");
        // what VPP reads from the chunk: upstream's SET_CKPAIR blob, only the index filled in
        let cfgs = peer.ext_configs();
        let Some(Some(cfg)) = cfgs.last() else {
            panic!("no ext config reached the peer: {cfgs:?}")
        };
        let mut want = CryptoCfg {
            ckpair_index: ck,
            ..Default::default()
        };
        want.set_hostname("");
        assert_eq!(cfg.cfg_type, ExtCfgType::Crypto);
        assert_eq!(cfg.len, 288, "upstream writes the whole struct's size");
        assert_eq!(cfg.body, ExtCfgBody::Crypto(Box::new(want)));
        let c = session(TLS, true);
        assert_eq!(set_ckpair(c, 0), 0);
        assert_eq!(connect(c, port), EINPROGRESS);
        let a = accept(ls);
        wait_for(c, libc::EPOLLOUT as u32);
        assert_eq!(connect(c, port), 0, "connected");
        let n = peer.ext_configs().len();
        assert_eq!(n, 2, "one config per listen/connect");
        send_recv(c, a, &blob(60_000, 1));
        send_recv(a, c, &blob(40_000, 2));
        // SAFETY: plain calls into our own C ABI.
        unsafe {
            assert_eq!(vppcom_session_close(c), 0);
            assert_eq!(vppcom_session_close(a), 0);
            assert_eq!(vppcom_session_close(ls), 0);
        }
    });
}

#[test]
fn tls_without_or_with_a_bad_ext_config_is_refused() {
    world("tls-bad", |_| {
        // no SET_CKPAIR: VPP's TLS refuses the listen and the connect (SESSION_E_NOEXTCFG)
        let (_, _, rv) = listener(TLS, None);
        assert_eq!(rv, ECONNREFUSED);
        let (_, tcp_port, rv) = listener(TCP, None);
        assert_eq!(rv, 0);
        let c = session(TLS, false);
        assert_eq!(connect(c, tcp_port), ECONNREFUSED);
        // a cert/key pair that does not exist: the engine cannot start the listener
        let (_, _, rv) = listener(TLS, Some(999));
        assert_eq!(rv, ECONNREFUSED);
        // SET_CKPAIR only on crypto sessions (upstream: EINVAL)
        assert_eq!(set_ckpair(session(TCP, false), 1), -libc::EINVAL);
    });
}

#[test]
fn tls_handshake_failure_is_a_connect_error() {
    world("tls-hs", |_| {
        let ck = add_ckpair();
        // a TLS client reaching a plain TCP listener
        let (_, tcp_port, rv) = listener(TCP, None);
        assert_eq!(rv, 0);
        let c = session(TLS, false);
        assert_eq!(set_ckpair(c, 0), 0);
        assert_eq!(connect(c, tcp_port), ECONNREFUSED);
        // a TLS listener whose cert/key pair was deleted after it started
        let (_, port, rv) = listener(TLS, Some(ck));
        assert_eq!(rv, 0);
        // SAFETY: a plain call into our own C ABI.
        assert_eq!(unsafe { vppcom_del_cert_key_pair(ck) }, 0);
        let c = session(TLS, false);
        assert_eq!(set_ckpair(c, 0), 0);
        assert_eq!(connect(c, port), ECONNREFUSED);
        // the same session may try again (upstream allows it): still refused, no hang
        assert_eq!(set_ckpair(c, 0), 0);
        assert_eq!(connect(c, port), ECONNREFUSED);
    });
}

/// A QUIC connection: (client connection, server connection, listener).
fn quic_connection() -> (u32, u32, u32) {
    let ck = add_ckpair();
    let (ls, port, rv) = listener(QUIC, Some(ck));
    assert_eq!(rv, 0);
    let c = session(QUIC, true);
    assert_eq!(set_ckpair(c, 0), 0);
    assert_eq!(connect(c, port), EINPROGRESS);
    let sc = accept(ls);
    wait_for(c, libc::EPOLLOUT as u32);
    (c, sc, ls)
}

/// A stream opened on `conn`, accepted on `peer_conn`: (opened, accepted).
fn quic_stream(conn: u32, peer_conn: u32) -> (u32, u32) {
    let s = session(QUIC, true);
    // SAFETY: a plain call into our own C ABI.
    let rv = unsafe { vppcom_session_stream_connect(s, conn) };
    assert_eq!(rv, EINPROGRESS);
    let a = accept(peer_conn);
    wait_for(s, libc::EPOLLOUT as u32);
    (s, a)
}

#[test]
fn quic_connections_and_streams() {
    world("quic", |_| {
        let (c, sc, ls) = quic_connection();
        // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
        unsafe {
            assert_eq!(vppcom_session_is_connectable_listener(c), 1);
            assert_eq!(vppcom_session_is_connectable_listener(sc), 1);
            assert_eq!(vppcom_session_is_connectable_listener(ls), 0);
            assert_eq!(vppcom_session_is_stream(c), 0);
            // streams both ways, data both ways on each
            let (s1, a1) = quic_stream(c, sc);
            let (s2, a2) = quic_stream(sc, c);
            for (s, a) in [(s1, a1), (s2, a2)] {
                assert_eq!(vppcom_session_is_stream(s), 1);
                assert_eq!(vppcom_session_is_stream(a), 1);
                assert_eq!(vppcom_session_is_connectable_listener(s), 0);
                assert_eq!(vppcom_session_is_connectable_listener(a), 0);
                send_recv(s, a, &blob(50_000, 3));
                send_recv(a, s, &blob(30_000, 4));
            }
            // a stream reset reaches the other end of that stream only
            assert_eq!(vppcom_session_terminate(s1), 0);
            wait_for(a1, (libc::EPOLLHUP | libc::EPOLLERR) as u32);
            let mut b = [0u8; 16];
            assert_eq!(vppcom_session_read(a1, b.as_mut_ptr(), 16), ECONNRESET);
            send_recv(s2, a2, b"still alive");
            // a one-way stream: the accepting side sees the flag (VPPCOM_STREAM_F_UNIDIRECTIONAL)
            let u = session(QUIC, true);
            let (mut f, mut len) = (1u32, 4u32);
            let fp = (&mut f as *mut u32).cast();
            assert_eq!(
                vppcom_session_attr(u, ATTR_SET_STREAM_FLAGS, fp, &mut len),
                0
            );
            assert_eq!(vppcom_session_stream_connect(u, c), EINPROGRESS);
            let ua = accept(sc);
            let (mut g, mut glen) = (0u32, 4u32);
            let gp = (&mut g as *mut u32).cast();
            assert_eq!(
                vppcom_session_attr(ua, ATTR_GET_STREAM_FLAGS, gp, &mut glen),
                0
            );
            assert_eq!(g, 1, "accepted stream is unidirectional");
            let (s3, a3) = quic_stream(c, sc);
            assert_eq!(
                vppcom_session_attr(a3, ATTR_GET_STREAM_FLAGS, gp, &mut glen),
                0
            );
            assert_eq!(g, 0, "a two-way stream is not");
            // closing the connection closes its streams on both ends and the other end
            assert_eq!(vppcom_session_close(c), 0);
            for h in [sc, s2, a2] {
                wait_for(h, libc::EPOLLRDHUP as u32);
            }
            assert_eq!(vppcom_session_read(a2, b.as_mut_ptr(), 16), 0);
            for h in [s1, a1, s2, a2, u, ua, s3, a3, sc, ls] {
                assert_eq!(vppcom_session_close(h), 0);
            }
        }
    });
}

#[test]
fn stream_connect_needs_a_quic_connection() {
    world("quic-bad", |_| {
        let (_, port, rv) = listener(TCP, None);
        assert_eq!(rv, 0);
        let t = session(TCP, false);
        assert_eq!(connect(t, port), 0);
        // SAFETY: (every call in this block) plain calls into our own C ABI.
        unsafe {
            // VPP: TCP has no streams (SESSION_E_TRANSPORT_NO_REG) -> ECONNREFUSED
            let s = session(TCP, false);
            assert_eq!(vppcom_session_stream_connect(s, t), ECONNREFUSED);
            // a QUIC stream on a TCP parent: quic.c refuses it too
            let q = session(QUIC, false);
            assert_eq!(vppcom_session_stream_connect(q, t), ECONNREFUSED);
            // a stream on a stream is refused by QUIC
            let (c, sc, _) = quic_connection();
            let (s1, _) = quic_stream(c, sc);
            let q = session(QUIC, false);
            assert_eq!(vppcom_session_stream_connect(q, s1), ECONNREFUSED);
            // unknown handles
            assert_eq!(vppcom_session_stream_connect(q, 0xdead), -libc::EBADFD);
            assert_eq!(vppcom_session_stream_connect(0xdead, t), -libc::EBADFD);
            assert_eq!(vppcom_session_is_connectable_listener(0xdead), 0);
        }
    });
}

const DTLS: u8 = 5;

/// FNV-1a: the per-datagram checksum.
fn fnv(d: &[u8]) -> u32 {
    d.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Datagram `seq` of client `client`: [client, seq (4), payload, checksum (4)], 16 B to ~9 KB.
fn dgram(client: u8, seq: u32) -> Vec<u8> {
    let len = 16 + (seq as usize * 997 + usize::from(client) * 131) % 9000;
    let mut d = blob(len, client ^ seq as u8);
    d[0] = client;
    d[1..5].copy_from_slice(&seq.to_le_bytes());
    let sum = fnv(&d[..len - 4]);
    d[len - 4..].copy_from_slice(&sum.to_le_bytes());
    d
}

/// The next datagram on `sh` (waiting, bounded): one read is one datagram.
fn read_dgram(sh: u32) -> Vec<u8> {
    let mut buf = vec![0u8; 32 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "session {sh}: no datagram");
        // SAFETY: a plain call into our own C ABI with a valid buffer.
        let r = unsafe { vppcom_session_read(sh, buf.as_mut_ptr(), buf.len()) };
        if r == EAGAIN {
            wait_for(sh, libc::EPOLLIN as u32);
            continue;
        }
        assert!(r > 0, "read: {r}");
        buf.truncate(r as usize);
        return buf;
    }
}

fn write_dgram(sh: u32, d: &[u8]) {
    // SAFETY: a plain call into our own C ABI with a valid buffer.
    let r = unsafe { vppcom_session_write(sh, d.as_ptr(), d.len()) };
    assert_eq!(r, d.len() as i32, "write");
}

/// A connected DTLS client of `port`: the peer accepts it on its stand-in handshake.
fn dtls_client(port: u16) -> u32 {
    let c = session(DTLS, true);
    assert_eq!(set_ckpair(c, 0), 0);
    let rv = connect(c, port);
    assert!(rv == EINPROGRESS || rv == 0, "dtls connect: {rv}");
    wait_for(c, libc::EPOLLOUT as u32);
    c
}

#[test]
fn dtls_echo_with_checksums_several_clients() {
    const N: u8 = 6;
    const ROUNDS: u32 = 40;
    // three VPP threads: a plain UDP client would migrate on its first datagram; DTLS hides it
    world_threads("dtls", 3, |peer| {
        let ck = add_ckpair();
        let (ls, port, rv) = listener(DTLS, Some(ck));
        assert_eq!(rv, 0, "DTLS listen with a cert/key pair");
        let cfgs = peer.ext_configs();
        let Some(Some(cfg)) = cfgs.last() else {
            panic!("no ext config reached the peer: {cfgs:?}")
        };
        assert!(matches!(&cfg.body, ExtCfgBody::Crypto(c) if c.ckpair_index == ck));
        let clients: Vec<u32> = (0..N).map(|_| dtls_client(port)).collect();
        assert_eq!(peer.ext_configs().len(), 1 + usize::from(N));
        // every client is accepted on its handshake, before it sends anything
        let servers: Vec<u32> = (0..N).map(|_| accept(ls)).collect();
        // which client each accepted session carries, learnt from its first datagram
        let mut owner = vec![None; usize::from(N)];
        for seq in 0..ROUNDS {
            for (i, &c) in clients.iter().enumerate() {
                write_dgram(c, &dgram(i as u8, seq));
            }
            for (k, &s) in servers.iter().enumerate() {
                let d = read_dgram(s);
                let n = d.len();
                assert!(n >= 9, "runt datagram");
                let sum = u32::from_le_bytes(d[n - 4..].try_into().unwrap());
                assert_eq!(sum, fnv(&d[..n - 4]), "checksum (split or merged?)");
                let seq_in = u32::from_le_bytes(d[1..5].try_into().unwrap());
                assert_eq!(seq_in, seq, "in order, none lost");
                assert_eq!(
                    *owner[k].get_or_insert(d[0]),
                    d[0],
                    "one client per session"
                );
                assert_eq!(d, dgram(d[0], seq));
                write_dgram(s, &d);
            }
            for (i, &c) in clients.iter().enumerate() {
                assert_eq!(read_dgram(c), dgram(i as u8, seq), "echo to client {i}");
            }
        }
        // tls_openssl.c drops a datagram over 16 KB from the app; the next one passes
        write_dgram(clients[0], &blob(20_000, 9));
        write_dgram(clients[0], &dgram(0, ROUNDS));
        let k = owner.iter().position(|o| *o == Some(0)).unwrap();
        assert_eq!(read_dgram(servers[k]), dgram(0, ROUNDS));
        // VPP never tells a DTLS server its client closed: the server session stays usable
        // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
        unsafe {
            assert_eq!(vppcom_session_close(clients[0]), 0);
            let vep = vppcom_epoll_create() as u32;
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLRDHUP | libc::EPOLLHUP) as u32,
                u64: 0,
            };
            assert_eq!(
                vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, servers[k], &mut ev),
                0
            );
            let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
            assert_eq!(vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, 0.3), 0);
            vppcom_session_close(vep);
            write_dgram(servers[k], b"nobody listens");
            for h in clients[1..].iter().chain(&servers).chain([&ls]) {
                assert_eq!(vppcom_session_close(*h), 0);
            }
        }
    });
}

#[test]
fn dtls_refusals_are_listen_and_connect_errors() {
    world("dtls-bad", |_| {
        // no SET_CKPAIR: the listen and the connect are refused (SESSION_E_NOEXTCFG)
        let (_, _, rv) = listener(DTLS, None);
        assert_eq!(rv, ECONNREFUSED);
        let (_, _, rv) = listener(DTLS, Some(999));
        assert_eq!(rv, ECONNREFUSED, "a cert/key pair VPP does not have");
        let ck = add_ckpair();
        let (_, port, rv) = listener(DTLS, Some(ck));
        assert_eq!(rv, 0);
        let c = session(DTLS, false);
        assert_eq!(connect(c, port), ECONNREFUSED, "client without ext config");
        // a DTLS client reaching a TLS listener: no handshake
        let (_, tls_port, rv) = listener(TLS, Some(ck));
        assert_eq!(rv, 0);
        let c = session(DTLS, false);
        assert_eq!(set_ckpair(c, 0), 0);
        assert_eq!(connect(c, tls_port), ECONNREFUSED);
        // the DTLS listener's pair deleted since it started: the handshake fails
        // SAFETY: a plain call into our own C ABI.
        assert_eq!(unsafe { vppcom_del_cert_key_pair(ck) }, 0);
        let c = session(DTLS, false);
        assert_eq!(set_ckpair(c, 0), 0);
        assert_eq!(connect(c, port), ECONNREFUSED);
    });
}
