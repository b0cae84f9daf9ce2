//! UDP datagram semantics against kernel UDP sockets on loopback, through the in-process test
//! peer: one read = one datagram (a short buffer truncates it and the rest is dropped, never
//! merged into the next), peek, NREAD = the next datagram's length, EMSGSIZE beyond the largest
//! datagram the fifo holds, recvfrom reporting each sender and sendto answering any address on
//! a connectionless listener (also one bound implicitly by its first sendto), epoll readiness
//! per datagram, and the peer's faults: dropped, reordered and oversized datagrams.
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use vcl_testpeer::{Peer, PeerConfig, SockAddr};
use vclapp::*;

#[repr(C)]
struct DataSeg {
    data: *mut u8,
    len: u32,
}

extern "C" {
    fn vppcom_session_read_segments(sh: u32, ds: *mut DataSeg, n: u32, max: u32) -> i32;
    fn vppcom_session_free_segments(sh: u32, n: u32);
    fn vppcom_session_sendto(sh: u32, buf: *const u8, n: u32, flags: i32, ep: *mut Endpt) -> i32;
    fn vppcom_session_recvfrom(sh: u32, buf: *mut u8, n: u32, flags: i32, ep: *mut Endpt) -> i32;
}

const PROTO_UDP: u8 = 1;
const FIFO: u32 = 65536;
const VPPCOM_ATTR_GET_NREAD: u32 = 0;

/// This process attached to a fresh peer (64 KiB fifos) while `f` runs.
fn world(tag: &str, f: impl FnOnce(&Peer)) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    vcl::testing::app::destroy();
    let sock = format!("vcl-udpd-{tag}-{}", std::process::id());
    let peer = Peer::start(PeerConfig::new(SockAddr::Abstract(sock.clone()))).unwrap();
    let conf = std::env::temp_dir().join(format!("vcl-udpd-{tag}-{}.conf", std::process::id()));
    std::fs::write(
        &conf,
        format!(
            "vcl {{\n  rx-fifo-size {FIFO}\n  tx-fifo-size {FIFO}\n  app-scope-global\n  \
             app-socket-api abstract:{sock}\n}}\n"
        ),
    )
    .unwrap();
    std::env::set_var("VCL_CONFIG", &conf);
    // SAFETY: a plain call into our own C ABI.
    assert_eq!(unsafe { vppcom_app_create(c"udp-dgram".as_ptr()) }, 0);
    f(&peer);
    // SAFETY: a plain call into our own C ABI.
    unsafe { vppcom_app_destroy() };
    peer.stop();
}

fn kernel() -> UdpSocket {
    let k = UdpSocket::bind("127.0.0.1:0").unwrap();
    k.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    k
}

fn port_of(k: &UdpSocket) -> u16 {
    k.local_addr().unwrap().port()
}

/// A blocking UDP session connected to `k`, and the address `k` sees it send from.
fn connected_to(k: &UdpSocket) -> (u32, SocketAddr) {
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        let s = vppcom_session_create(PROTO_UDP, 0) as u32;
        let mut ip = [127, 0, 0, 1];
        assert_eq!(
            vppcom_session_connect(s, &mut endpt(&mut ip, port_of(k))),
            0
        );
        assert_eq!(vppcom_session_write(s, b"hi".as_ptr(), 2), 2);
        let mut b = [0u8; 8];
        let (n, from) = k.recv_from(&mut b).unwrap();
        assert_eq!(&b[..n], b"hi");
        (s, from)
    }
}

fn read(s: u32, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    // SAFETY: b has len writable bytes.
    let n = unsafe { vppcom_session_read(s, b.as_mut_ptr(), len) };
    assert!(n >= 0, "read {n}");
    b.truncate(n as usize);
    b
}

fn pat(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
}

#[test]
fn one_read_one_datagram_truncation_peek_nread_emsgsize() {
    world("bounds", |_| {
        let k = kernel();
        let (s, from) = connected_to(&k);
        // a short buffer gets the head of the datagram; the rest is dropped, not merged
        k.send_to(&pat(1, 1000), from).unwrap();
        k.send_to(&pat(2, 10), from).unwrap();
        assert_eq!(read(s, 100), pat(1, 100));
        assert_eq!(read(s, 2000), pat(2, 10));
        // peek leaves the datagram; recvfrom reports the sender
        k.send_to(&pat(3, 50), from).unwrap();
        let mut b = vec![0u8; 2000];
        let mut rip = [0u8; 16];
        let mut ep = endpt(&mut [0; 4], 0);
        ep.ip = rip.as_mut_ptr();
        // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
        unsafe {
            let n = vppcom_session_recvfrom(s, b.as_mut_ptr(), 2000, libc::MSG_PEEK, &mut ep);
            assert_eq!(n, 50);
            assert_eq!(u16::from_be(ep.port), port_of(&k));
            assert_eq!(&rip[..4], &[127, 0, 0, 1]);
        }
        assert_eq!(read(s, 2000), pat(3, 50));
        // NREAD: the next datagram's length, not all queued bytes
        k.send_to(&pat(4, 300), from).unwrap();
        k.send_to(&pat(5, 7), from).unwrap();
        let nread = || {
            // SAFETY: a plain call into our own C ABI (NREAD takes no buffer).
            unsafe {
                vppcom_session_attr(
                    s,
                    VPPCOM_ATTR_GET_NREAD,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            }
        };
        assert_eq!(read(s, 2000), pat(4, 300));
        assert_eq!(read(s, 2000), pat(5, 7));
        assert_eq!(nread(), 0);
        k.send_to(&pat(6, 300), from).unwrap();
        k.send_to(&pat(7, 7), from).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while nread() == 0 {
            assert!(std::time::Instant::now() < deadline, "datagram never came");
            std::thread::yield_now();
        }
        assert_eq!(nread(), 300);
        assert_eq!(read(s, 2000), pat(6, 300));
        assert_eq!(read(s, 2000), pat(7, 7));
        // the largest datagram: what the tx fifo holds next to its 47-byte header
        let max = FIFO as usize - 47;
        let big = pat(8, max + 1);
        // SAFETY: plain calls into our own C ABI with valid buffers.
        unsafe {
            assert_eq!(
                vppcom_session_write(s, big.as_ptr(), max + 1),
                -libc::EMSGSIZE
            );
            assert_eq!(vppcom_session_write(s, big.as_ptr(), max), max as i32);
        }
        let mut kb = vec![0u8; 70000];
        let (n, _) = k.recv_from(&mut kb).unwrap();
        assert_eq!(&kb[..n], &big[..max]);
        // SAFETY: a plain call into our own C ABI.
        assert_eq!(unsafe { vppcom_session_close(s) }, 0);
    });
}

#[test]
fn cl_listener_answers_each_sender_and_any_address() {
    world("cl", |_| {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
        unsafe {
            let l = vppcom_session_create(PROTO_UDP, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_bind(l, &mut endpt(&mut ip, port)), 0);
            assert_eq!(vppcom_session_listen(l, 10), 0);
            let dst: SocketAddr = ([127, 0, 0, 1], port).into();
            let ks: Vec<UdpSocket> = (0..5).map(|_| kernel()).collect();
            for (i, k) in ks.iter().enumerate() {
                k.send_to(&[i as u8; 3], dst).unwrap();
            }
            let mut b = [0u8; 64];
            for _ in 0..5 {
                let mut rip = [0u8; 16];
                let mut ep = endpt(&mut [0; 4], 0);
                ep.ip = rip.as_mut_ptr();
                let n = vppcom_session_recvfrom(l, b.as_mut_ptr(), 64, 0, &mut ep);
                assert_eq!(n, 3);
                let i = b[0] as usize;
                assert_eq!(u16::from_be(ep.port), port_of(&ks[i]), "sender {i}");
                let reply = [b'r', i as u8];
                assert_eq!(vppcom_session_sendto(l, reply.as_ptr(), 2, 0, &mut ep), 2);
            }
            for (i, k) in ks.iter().enumerate() {
                let mut kb = [0u8; 8];
                let n = k.recv(&mut kb).unwrap();
                assert_eq!(&kb[..n], &[b'r', i as u8], "reply to sender {i}");
            }
            // an address that never sent anything
            let quiet = kernel();
            let mut qip = [127, 0, 0, 1];
            let mut qep = endpt(&mut qip, port_of(&quiet));
            assert_eq!(vppcom_session_sendto(l, b"x".as_ptr(), 1, 0, &mut qep), 1);
            let mut kb = [0u8; 8];
            assert_eq!(quiet.recv_from(&mut kb).unwrap(), (1, dst));
            // a session VPP does not know yet is bound by its first sendto
            let u = vppcom_session_create(PROTO_UDP, 0) as u32;
            assert_eq!(vppcom_session_sendto(u, b"yz".as_ptr(), 2, 0, &mut qep), 2);
            let (n, from) = quiet.recv_from(&mut kb).unwrap();
            assert_eq!(&kb[..n], b"yz");
            quiet.send_to(b"back", from).unwrap();
            assert_eq!(read(u, 64), b"back");
            // recvfrom with no endpoint still reads
            quiet.send_to(b"again", from).unwrap();
            let n = vppcom_session_recvfrom(u, b.as_mut_ptr(), 64, 0, std::ptr::null_mut());
            assert_eq!(n, 5);
            assert_eq!(vppcom_session_close(u), 0);
            assert_eq!(vppcom_session_close(l), 0);
        }
    });
}

#[test]
fn epoll_in_per_datagram_out_when_a_max_datagram_fits() {
    world("epoll", |_| {
        let k = kernel();
        let (s, from) = connected_to(&k);
        // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
        unsafe {
            let vep = vppcom_epoll_create() as u32;
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLOUT) as u32,
                u64: 7,
            };
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, s, &mut ev), 0);
            let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
            // writable once the peer took "hi" out: a whole largest datagram fits
            let n = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 4, 5000.0);
            assert_eq!((n, evs[0].events), (1, libc::EPOLLOUT as u32));
            ev.events = libc::EPOLLIN as u32;
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_MOD, s, &mut ev), 0);
            k.send_to(b"one", from).unwrap();
            k.send_to(b"two", from).unwrap();
            let mut seen = Vec::new();
            while seen.len() < 2 {
                let n = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 4, 5000.0);
                assert_eq!(n, 1, "epoll_wait");
                assert_ne!(evs[0].events & libc::EPOLLIN as u32, 0);
                seen.push(read(s, 64));
            }
            assert_eq!(seen, [b"one".to_vec(), b"two".to_vec()]);
            assert_eq!(vppcom_epoll_wait(vep, evs.as_mut_ptr(), 4, 0.0), 0);
            ev.events = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_MOD, s, &mut ev), 0);
            let n = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 4, 0.0);
            assert_eq!((n, evs[0].events), (1, libc::EPOLLOUT as u32));
            vppcom_session_close(s);
            vppcom_session_close(vep);
        }
    });
}

/// Send `n` numbered datagrams from `k` to `to`, then read `want` of them from `s`.
fn numbered(k: &UdpSocket, to: SocketAddr, s: u32, n: u8, want: usize) -> Vec<u8> {
    for i in 0..n {
        k.send_to(&[i; 20], to).unwrap();
    }
    (0..want).map(|_| read(s, 64)[0]).collect()
}

#[test]
fn faults_dropped_reordered_and_oversized_datagrams() {
    world("faults", |peer| {
        let k = kernel();
        // every third datagram from the network dropped (the session's first was "hi" out,
        // so counting starts with these)
        let (s, from) = connected_to(&k);
        peer.set_udp_faults(Some(3), false);
        assert_eq!(numbered(&k, from, s, 9, 6), [0, 1, 3, 4, 6, 7]);
        // nothing else was queued before the next one
        k.send_to(&[99; 20], from).unwrap();
        assert_eq!(read(s, 64)[0], 99);
        // SAFETY: a plain call into our own C ABI.
        unsafe { vppcom_session_close(s) };
        // pairs swapped
        peer.set_udp_faults(None, true);
        let (s, from) = connected_to(&k);
        assert_eq!(numbered(&k, from, s, 6, 6), [1, 0, 3, 2, 5, 4]);
        // SAFETY: a plain call into our own C ABI.
        unsafe { vppcom_session_close(s) };
        // a datagram larger than the rx fifo is dropped; the next one arrives whole
        peer.set_udp_faults(None, false);
        let (s, from) = connected_to(&k);
        k.send_to(&pat(9, 65500), from).unwrap();
        k.send_to(&pat(10, 100), from).unwrap();
        assert_eq!(read(s, 70000), pat(10, 100));
        // SAFETY: a plain call into our own C ABI.
        unsafe { vppcom_session_close(s) };
    });
}

/// vppcom_session_read_segments on a connectionless listener, as upstream's: the rx fifo's raw
/// bytes, each datagram behind its 47-byte `session_dgram_hdr_t` (docs/wire.md#datagram-framing),
/// nothing consumed until free_segments.
#[test]
fn read_segments_on_a_cl_listener_shows_the_framed_fifo() {
    world("segs", |_| {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
        unsafe {
            let l = vppcom_session_create(PROTO_UDP, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_bind(l, &mut endpt(&mut ip, port)), 0);
            assert_eq!(vppcom_session_listen(l, 10), 0);
            let k = kernel();
            let dst: SocketAddr = ([127, 0, 0, 1], port).into();
            k.send_to(b"first", dst).unwrap();
            // a blocking read waits for the first datagram; peek it so it stays
            let mut b = [0u8; 16];
            let mut rip = [0u8; 16];
            let mut ep = endpt(&mut [0; 4], 0);
            ep.ip = rip.as_mut_ptr();
            assert_eq!(
                vppcom_session_recvfrom(l, b.as_mut_ptr(), 16, libc::MSG_PEEK, &mut ep),
                5
            );
            let mut ds = [
                DataSeg {
                    data: std::ptr::null_mut(),
                    len: 0,
                },
                DataSeg {
                    data: std::ptr::null_mut(),
                    len: 0,
                },
            ];
            let n = vppcom_session_read_segments(l, ds.as_mut_ptr(), 2, u32::MAX);
            assert_eq!(n, 47 + 5, "header and payload");
            let mut raw = Vec::new();
            for d in &ds {
                if d.len > 0 {
                    raw.extend_from_slice(std::slice::from_raw_parts(d.data, d.len as usize));
                }
            }
            assert_eq!(raw.len(), 52);
            assert_eq!(
                u32::from_ne_bytes(raw[0..4].try_into().unwrap()),
                5,
                "data_length"
            );
            assert_eq!(&raw[20..24], &[127, 0, 0, 1], "remote address");
            assert_eq!(
                u16::from_be_bytes([raw[40], raw[41]]),
                port_of(&k),
                "remote port"
            );
            assert_eq!(raw[44], 1, "is_ip4");
            assert_eq!(&raw[47..], b"first");
            // nothing consumed yet: again the same bytes; max_bytes bounds what is shown
            assert_eq!(vppcom_session_read_segments(l, ds.as_mut_ptr(), 2, 10), 10);
            vppcom_session_free_segments(l, 52);
            k.send_to(b"second", dst).unwrap();
            assert_eq!(read(l, 64), b"second", "the next datagram reads whole");
            assert_eq!(vppcom_session_close(l), 0);
        }
    });
}
