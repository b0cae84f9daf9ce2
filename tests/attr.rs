//! vppcom_session_attr through its C export, against the in-process test peer: every op's
//! buffer checks and values on unconnected sessions, and the TRANSPORT_ATTR exchange on a
//! session given fifos by hand (the peer does not emulate connects yet): the request reaches
//! VPP's queue, a reply completes it, no reply or a refusal is ENOPROTOOPT.
//!
//! The library keeps one app per process, so the tests in this file take turns (SERIAL).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vcl::codec::msg::{try_encode_ctrl, CtrlMsg, TransportAttr, TransportAttrReply};
use vcl::ffi::*;
use vcl::svm::fifo_segment::FifoSegment;
use vcl::svm::mq::SendMode;
use vcl::testing::app;
use vcl::testing::config::{Config, SapiAddr};
use vcl::testing::session::{self, FifoRef, Fifos, State};
use vcl::testing::worker::Worker;
use vcl_testpeer::{Dir, MsgKind, Peer, PeerConfig, SockAddr};

extern "C" {
    fn vppcom_session_create(proto: u8, is_nonblocking: u8) -> c_int;
    fn vppcom_session_close(session_handle: u32) -> c_int;
    fn vppcom_epoll_create() -> c_int;
    fn vppcom_session_attr(sh: u32, op: u32, buffer: *mut c_void, buflen: *mut u32) -> c_int;
}

static SERIAL: Mutex<()> = Mutex::new(());

fn name(tag: &str) -> String {
    format!("vcl-attr-{tag}-{}", std::process::id())
}

/// Attach to a fresh peer; fifo sizes stay at their defaults (1 MiB).
fn attach(tag: &str) -> Peer {
    let p = Peer::start(PeerConfig::new(SockAddr::Abstract(name(tag)))).expect("peer");
    let cfg = Config {
        app_socket_api: Some(SapiAddr::Abstract(name(tag).into_bytes())),
        segment_size: 32 << 20,
        app_timeout: 2.0,
        ..Config::default()
    };
    app::create(cfg, Some(tag.into())).expect("attach");
    p
}

fn create(proto: u8) -> u32 {
    // SAFETY: plain integer arguments.
    let sh = unsafe { vppcom_session_create(proto, 0) };
    assert!(sh >= 0, "create: {sh}");
    sh as u32
}

/// Call the export with `buf` (NULL if None) and a length word (NULL if None); returns
/// (rv, the length word afterwards).
fn call(sh: u32, op: i32, buf: Option<&mut [u8]>, len: Option<u32>) -> (i32, u32) {
    let p = buf.map_or(std::ptr::null_mut(), |b| b.as_mut_ptr().cast());
    let mut l = len.unwrap_or(0);
    let lp = if len.is_some() {
        &mut l as *mut u32
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: p is NULL or a live buffer of at least the length we pass.
    let rv = unsafe { vppcom_session_attr(sh, op as u32, p, lp) };
    (rv, l)
}

/// An int-sized op: (rv, value, length afterwards).
fn int_op(sh: u32, op: i32, v: u32, len: u32) -> (i32, u32, u32) {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&v.to_ne_bytes());
    let (rv, l) = call(sh, op, Some(&mut b), Some(len));
    (rv, u32::from_ne_bytes(b[..4].try_into().unwrap()), l)
}

struct Ep {
    ip: [u8; 16],
    ep: vppcom_endpt_t,
}

impl Ep {
    fn new(is_ip4: bool, ip: &[u8], port: u16) -> Box<Ep> {
        let mut e = Box::new(Ep {
            ip: [0; 16],
            ep: vppcom_endpt_t {
                unused: 0,
                is_ip4: is_ip4.into(),
                ip: std::ptr::null_mut(),
                port: port.to_be(),
                unused2: 0,
                app_tlv_len: 0,
                app_tlvs: std::ptr::null_mut(),
            },
        });
        e.ip[..ip.len()].copy_from_slice(ip);
        e.ep.ip = e.ip.as_mut_ptr();
        e
    }

    fn call(&mut self, sh: u32, op: i32, len: u32) -> (i32, u32) {
        let mut l = len;
        let p = (&mut self.ep as *mut vppcom_endpt_t).cast();
        // SAFETY: a live endpoint whose ip has room for 16 bytes.
        (unsafe { vppcom_session_attr(sh, op as u32, p, &mut l) }, l)
    }
}

#[test]
fn every_op_checks_its_buffer_and_keeps_upstream_values() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = attach("local");
    let sh = create(0);
    assert_eq!(call(sh ^ 0x00F0_0000, 0, None, None).0, VPPCOM_EBADFD);

    // NULL buffer and length: only the unchecked ops get past the check.
    for op in 0..60 {
        let want = match op {
            VPPCOM_ATTR_GET_NREAD | VPPCOM_ATTR_GET_NWRITE => VPPCOM_ENOTCONN,
            VPPCOM_ATTR_SET_CONNECTED => 0,
            // IPv6 (no address yet) fails before the buffer is looked at.
            VPPCOM_ATTR_GET_ORIGINAL_DST => VPPCOM_EAFNOSUPPORT,
            _ => VPPCOM_EINVAL,
        };
        assert_eq!(call(sh, op, None, None).0, want, "op {op}");
        let mut b = [0u8; 64];
        assert_eq!(
            call(sh, op, Some(&mut b), None).0,
            want,
            "op {op}, NULL buflen"
        );
    }
    // Lengths one short or one over.
    for op in [
        2, 9, 10, 11, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 37, 38, 42, 48,
    ] {
        assert_eq!(int_op(sh, op, 0, 3).0, VPPCOM_EINVAL, "op {op} len 3");
        assert_eq!(int_op(sh, op, 0, 5).0, 0, "op {op} len 5");
    }
    for op in [
        3, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 36, 41, 44, 49,
    ] {
        assert_eq!(int_op(sh, op, 0, 5).0, VPPCOM_EINVAL, "op {op} len 5");
    }
    for op in [46, 47, 51] {
        assert_eq!(int_op(sh, op, 0, 4).0, VPPCOM_EINVAL, "op {op} len 4");
        assert_eq!(int_op(sh, op, 0, 9).0, VPPCOM_EINVAL, "op {op} len 9");
    }
    assert_eq!(
        int_op(sh, VPPCOM_ATTR_GET_APP_PROTO_ERR_CODE, 0, 7).0,
        VPPCOM_EINVAL
    );
    assert_eq!(int_op(sh, VPPCOM_ATTR_SET_DSCP, 0, 0).0, VPPCOM_EINVAL);
    for op in [7, 8, 52, 1000] {
        assert_eq!(int_op(sh, op, 1, 4).0, VPPCOM_EINVAL, "op {op}");
    }

    // Flags.
    let (rv, v, l) = int_op(sh, VPPCOM_ATTR_GET_FLAGS, 0, 8);
    assert_eq!((rv, v as i32, l), (0, libc::O_RDWR, 4));
    assert_eq!(
        int_op(sh, VPPCOM_ATTR_SET_FLAGS, libc::O_NONBLOCK as u32, 4).0,
        0
    );
    let v = int_op(sh, VPPCOM_ATTR_GET_FLAGS, 0, 4).1 as i32;
    assert_eq!(v, libc::O_RDWR | libc::O_NONBLOCK);

    // Addresses: the local one round-trips, the family follows it, *buflen becomes 48.
    let mut e = Ep::new(true, &[10, 1, 2, 3], 8080);
    assert_eq!(e.call(sh, VPPCOM_ATTR_SET_LCL_ADDR, 64), (0, 48));
    let mut g = Ep::new(false, &[0xEE; 16], 0);
    assert_eq!(g.call(sh, VPPCOM_ATTR_GET_LCL_ADDR, 48), (0, 48));
    assert_eq!((g.ep.is_ip4, u16::from_be(g.ep.port)), (1, 8080));
    assert_eq!(
        &g.ip[..5],
        &[10, 1, 2, 3, 0xEE],
        "only 4 bytes written for IPv4"
    );
    assert_eq!(g.call(sh, VPPCOM_ATTR_GET_PEER_ADDR, 47).0, VPPCOM_EINVAL);
    g.ep.ip = std::ptr::null_mut();
    assert_eq!(g.call(sh, VPPCOM_ATTR_GET_PEER_ADDR, 48).0, VPPCOM_EINVAL);
    let (rv, af, l) = int_op(sh, VPPCOM_ATTR_GET_DOMAIN, 0, 4);
    assert_eq!((rv, af as i32, l), (0, libc::AF_INET, 4));
    // IPv4 now: no original destination known, so EINVAL rather than EAFNOSUPPORT.
    let mut o = Ep::new(true, &[0; 4], 0);
    assert_eq!(
        o.call(sh, VPPCOM_ATTR_GET_ORIGINAL_DST, 48).0,
        VPPCOM_EINVAL
    );
    assert_eq!(o.call(sh, VPPCOM_ATTR_GET_EXT_ENDPT, 48).0, VPPCOM_EINVAL);
    {
        let w = vcl::testing::worker::current().unwrap();
        let mut ss = w.sessions.lock();
        let s = ss.get_mut(session::parse_handle(sh).1).unwrap();
        s.attr.note_original_dst([192, 0, 2, 1], 443);
    }
    let mut o = Ep::new(true, &[0xEE; 16], 0);
    assert_eq!(
        o.call(sh, VPPCOM_ATTR_GET_EXT_ENDPT, 64),
        (0, 64),
        "*buflen untouched"
    );
    assert_eq!(o.call(sh, VPPCOM_ATTR_GET_ORIGINAL_DST, 64), (0, 48));
    assert_eq!((o.ep.is_ip4, u16::from_be(o.ep.port)), (0, 443));
    assert_eq!(o.ip[..12], [0; 12]);
    assert_eq!(o.ip[12..], [192, 0, 2, 1]);

    // Simple reads.
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_PROTOCOL, 9, 4), (0, 0, 4));
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_LISTEN, 9, 4), (0, 0, 4));
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_ERROR, 9, 4), (0, 0, 4));
    assert_eq!(
        int_op(sh, VPPCOM_ATTR_GET_NWRITEQ, 0, 4).0,
        VPPCOM_EINVAL,
        "no fifo"
    );

    // Fifo lengths: vcl.conf's until set; RX writes a size_t when there is room for one.
    assert_eq!(
        int_op(sh, VPPCOM_ATTR_GET_TX_FIFO_LEN, 0, 4),
        (0, 1 << 20, 4)
    );
    assert_eq!(int_op(sh, VPPCOM_ATTR_SET_TX_FIFO_LEN, 4096, 4).0, 0);
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_TX_FIFO_LEN, 0, 4).1, 4096);
    assert_eq!(int_op(sh, VPPCOM_ATTR_SET_RX_FIFO_LEN, 8192, 4).0, 0);
    let mut b = [0xFFu8; 12];
    assert_eq!(
        call(sh, VPPCOM_ATTR_GET_RX_FIFO_LEN, Some(&mut b), Some(4)),
        (0, 4)
    );
    assert_eq!(&b[..8], &[0, 0x20, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(
        call(sh, VPPCOM_ATTR_GET_RX_FIFO_LEN, Some(&mut b), Some(8)),
        (0, 4)
    );
    assert_eq!(&b[..9], &[0, 0x20, 0, 0, 0, 0, 0, 0, 0xFF]);

    // Boolean attributes (keepidle/keepintvl report whether they were set, not the value).
    for (get, set) in [
        (16, 17),
        (18, 19),
        (20, 21),
        (22, 23),
        (24, 25),
        (26, 27),
        (28, 29),
    ] {
        assert_eq!(int_op(sh, set, 30, 4).0, 0, "op {set}");
        assert_eq!(int_op(sh, get, 0, 4), (0, 1, 4), "op {get}");
        assert_eq!(int_op(sh, set, 0, 4).0, 0);
        assert_eq!(int_op(sh, get, 7, 4).1, 0);
    }
    assert_eq!(int_op(sh, VPPCOM_ATTR_SET_TCP_KEEPINTVL, 5, 4).0, 0);
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_TCP_KEEPINTVL, 0, 4).1, 1);
    assert_eq!(int_op(sh, VPPCOM_ATTR_SET_IP_PKTINFO, 1, 4).0, 0);
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_IP_PKTINFO, 0, 4).1, 1);
    assert_eq!(
        int_op(sh, VPPCOM_ATTR_SET_IP_PKTINFO, 0, 4).0,
        VPPCOM_EINVAL,
        "set once"
    );

    // Cookie: 8 bytes exactly, reads 0, *buflen untouched.
    let mut b = [0xFFu8; 8];
    assert_eq!(
        call(sh, VPPCOM_ATTR_GET_COOKIE, Some(&mut b), Some(8)),
        (0, 8)
    );
    assert_eq!(b, [0; 8]);
    assert_eq!(call(sh, VPPCOM_ATTR_SET_COOKIE, Some(&mut b), Some(8)).0, 0);

    // VRF, DSCP, stream flags, connected.
    assert_eq!(int_op(sh, VPPCOM_ATTR_SET_VRF, 7, 4).0, 0);
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_VRF, 0, 6), (0, 7, 4));
    assert_eq!(int_op(sh, VPPCOM_ATTR_SET_DSCP, 46, 1).0, 0);
    assert_eq!(int_op(sh, VPPCOM_ATTR_SET_STREAM_FLAGS, 3, 4).0, 0);
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_STREAM_FLAGS, 0, 4), (0, 1, 4));
    assert_eq!(call(sh, VPPCOM_ATTR_SET_CONNECTED, None, None).0, 0);
    {
        let w = vcl::testing::worker::current().unwrap();
        let ss = w.sessions.lock();
        let s = ss.get(session::parse_handle(sh).1).unwrap();
        assert_eq!((s.attr.vrf, s.attr.dscp), (7, 46));
        assert!(s.attr.connected);
    }

    // Ext config: a cert/key pair needs a crypto protocol; raw config only once, not after.
    assert_eq!(
        int_op(sh, VPPCOM_ATTR_SET_CKPAIR, 1, 4).0,
        VPPCOM_EINVAL,
        "TCP"
    );
    let mut cfg = *b"abc";
    assert_eq!(
        call(sh, VPPCOM_ATTR_SET_ENDPT_EXT_CFG, Some(&mut cfg), Some(3)).0,
        0
    );
    assert_eq!(
        call(sh, VPPCOM_ATTR_SET_ENDPT_EXT_CFG, Some(&mut cfg), Some(3)).0,
        VPPCOM_EINVAL
    );
    let tls = create(3);
    assert_eq!(int_op(tls, VPPCOM_ATTR_SET_CKPAIR, 2, 4).0, 0);
    assert_eq!(
        call(tls, VPPCOM_ATTR_SET_ENDPT_EXT_CFG, Some(&mut cfg), Some(3)).0,
        VPPCOM_EINVAL
    );
    {
        let w = vcl::testing::worker::current().unwrap();
        let ss = w.sessions.lock();
        let s = ss.get(session::parse_handle(sh).1).unwrap();
        let raw = s.attr.ext_config.as_ref().map(|c| c.encode());
        assert_eq!(raw.as_deref(), Some(&[0, 0, 3, 0, b'a', b'b', b'c'][..]));
    }

    // Transport attributes without a VPP queue: success, nothing sent, value echoed.
    let (rv, v, l) = int_op(sh, VPPCOM_ATTR_GET_TCP_USER_MSS, 1234, 8);
    assert_eq!((rv, v, l), (0, 1234, 4));
    assert_eq!(int_op(sh, VPPCOM_ATTR_SET_TCP_USER_MSS, 1400, 4).0, 0);
    let mut b = 77u64.to_ne_bytes();
    assert_eq!(
        call(
            sh,
            VPPCOM_ATTR_GET_APP_PROTO_ERR_CODE,
            Some(&mut b),
            Some(8)
        ),
        (0, 4)
    );
    assert_eq!(u64::from_ne_bytes(b), 77);
    assert!(
        !p.log().iter().any(|e| e.kind == MsgKind::Mq(33)),
        "nothing sent"
    );

    // An epoll session has nothing to read or write.
    // SAFETY: no arguments.
    let vep = unsafe { vppcom_epoll_create() };
    assert!(vep >= 0);
    assert_eq!(
        call(vep as u32, VPPCOM_ATTR_GET_NREAD, None, None).0,
        VPPCOM_EBADFD
    );
    assert_eq!(
        call(vep as u32, VPPCOM_ATTR_GET_NWRITE, None, None).0,
        VPPCOM_EBADFD
    );

    for h in [sh, tls, vep as u32] {
        // SAFETY: plain integer argument.
        assert_eq!(unsafe { vppcom_session_close(h) }, 0);
    }
    app::destroy();
    p.stop();
}

/// Give session `sh` fifos in the worker's segment and a VPP handle, as CONNECTED would.
fn fake_connect(sh: u32, vpp_handle: u64) {
    let w = vcl::testing::worker::current().unwrap();
    let seg = w.segment(w.segment_handles()[0]).unwrap();
    let fs = FifoSegment::attach(&seg).unwrap();
    let rx = fs.alloc_fifo(0, 8192).unwrap().offset();
    let tx = fs.alloc_fifo(0, 8192).unwrap().offset();
    let fifos = Fifos::plain(
        FifoRef::new(seg.clone(), rx).unwrap(),
        FifoRef::new(seg, tx).unwrap(),
    );
    let mut ss = w.sessions.lock();
    let i = session::parse_handle(sh).1;
    let s = ss.get_mut(i).unwrap();
    s.fifos = Some(fifos);
    s.state = State::Ready;
    s.vpp_thread = 0;
    ss.bind_vpp(i, vpp_handle);
}

fn n_requests(p: &Peer) -> usize {
    let log = p.log();
    log.iter()
        .filter(|e| e.dir == Dir::Rx && e.kind == MsgKind::Mq(33))
        .count()
}

/// Queue VPP's answer to the next request on worker `w`'s app mq before the request is made:
/// the library registers its wait before sending, so it finds the reply however slowly this
/// machine runs (the library waits 1 s for VPP, as upstream does). `sent` then checks that the
/// request did reach the peer.
fn reply_ahead(w: &Worker, reply: TransportAttrReply) {
    let mut buf = [0u8; 128];
    let len = try_encode_ctrl(&CtrlMsg::TransportAttrReply(reply), &mut buf).unwrap();
    let mode = SendMode::BlockFor(Duration::from_secs(10));
    w.conn().app_mq.send_ctrl(34, &buf[..len], mode).unwrap();
}

/// The peer logged request number `n`.
fn sent(p: &Peer, n: usize) {
    assert!(
        p.wait_until(Duration::from_secs(20), |p| n_requests(p) >= n),
        "request {n} never reached the peer"
    );
}

#[test]
fn transport_attrs_go_to_vpp_and_wait_for_its_reply() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = attach("vpp");
    let w = vcl::testing::worker::current().unwrap();
    let sh = create(0);
    fake_connect(sh, 0xabc);

    // Readiness and queue bytes now come from the fifos.
    assert_eq!(call(sh, VPPCOM_ATTR_GET_NREAD, None, None).0, 0);
    assert_eq!(call(sh, VPPCOM_ATTR_GET_NWRITE, None, None).0, 8192);
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_NWRITEQ, 9, 4), (0, 0, 4));
    assert_eq!(int_op(sh, VPPCOM_ATTR_GET_RX_FIFO_LEN, 0, 4).1, 8192);

    // No reply within 1 s: ENOPROTOOPT, the buffer untouched.
    let t = Instant::now();
    assert_eq!(
        int_op(sh, VPPCOM_ATTR_GET_TCP_USER_MSS, 1, 4),
        (VPPCOM_ENOPROTOOPT, 1, 4)
    );
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    assert_eq!(n_requests(&p), 1);

    let answer = |retval, attr| TransportAttrReply {
        retval,
        handle: 0xabc,
        attr,
        is_get: true,
    };
    reply_ahead(&w, answer(0, TransportAttr::Mss(1360)));
    let (rv, v, l) = int_op(sh, VPPCOM_ATTR_GET_TCP_USER_MSS, 1, 8);
    assert_eq!((rv, v, l), (0, 1360, 4));
    sent(&p, 2);

    reply_ahead(&w, answer(-1, TransportAttr::Mss(0)));
    assert_eq!(
        int_op(sh, VPPCOM_ATTR_SET_TCP_USER_MSS, 1000, 4).0,
        VPPCOM_ENOPROTOOPT
    );
    sent(&p, 3);

    let code = TransportAttr::AppProtoErrCode(0x1_0000_0002);
    reply_ahead(&w, answer(0, code));
    let mut b = [0u8; 16];
    let r = call(
        sh,
        VPPCOM_ATTR_GET_APP_PROTO_ERR_CODE,
        Some(&mut b),
        Some(16),
    );
    assert_eq!(r, (0, 4), "*buflen is sizeof (int) after the 8-byte code");
    assert_eq!(
        u64::from_ne_bytes(b[..8].try_into().unwrap()),
        0x1_0000_0002
    );
    sent(&p, 4);
    drop(w);
    app::destroy();
    p.stop();
}
