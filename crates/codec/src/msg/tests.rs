//! Byte-image tests of the large control messages (offsets from VPP v26.06's
//! application_interface.h, docs/wire.md#codec-layouts), round trips for every control
//! message, and robustness against random input. Small messages: tests_images.rs.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn ep(a: Ipv4Addr, port: u16) -> TransportEndpoint {
    TransportEndpoint {
        ip: Ip46::from_v4(a),
        port,
        is_ip4: true,
        sw_if_index: 3,
        fib_index: 4,
    }
}

fn sample_listen() -> Listen {
    Listen {
        client_index: 0x0001_0002,
        context: 7,
        wrk_index: 1,
        vrf: 2,
        port: 8080,
        proto: TransportProto::Udp,
        is_ip4: true,
        ip: Ip46::from_v4(Ipv4Addr::new(192, 168, 1, 1)),
        flags: cfg_flags::CONNECTED,
        ext_config: 0x1122_3344_5566_7788,
        dscp: 0x2e,
    }
}

fn sample_connect() -> Connect {
    Connect {
        client_index: 0x10,
        context: 0x20,
        wrk_index: 0x30,
        vrf: 0x40,
        port: 443,
        lcl_port: 0x1234,
        proto: TransportProto::Tls,
        is_ip4: false,
        ip: Ip46::from_v6(Ipv6Addr::LOCALHOST),
        lcl_ip: Ip46([0xaa; 16]),
        parent_handle: u64::MAX,
        ckpair_index: 5,
        crypto_engine: 1,
        flags: cfg_flags::CONNECTED | cfg_flags::UNIDIRECTIONAL,
        dscp: 9,
        ext_config: 0xdead_beef,
    }
}

fn sample_accepted() -> Accepted {
    Accepted {
        context: 3,
        listener_handle: 0x1_0000_0001,
        handle: 0x2_0000_0005,
        server_rx_fifo: 0x100,
        server_tx_fifo: 0x200,
        segment_handle: 0x300,
        vpp_event_queue_address: 0x400,
        mq_index: 2,
        lcl: ep(Ipv4Addr::new(10, 0, 0, 1), 80),
        rmt: ep(Ipv4Addr::new(10, 0, 0, 2), 0xc001),
        flags: session_flags::STREAM | session_flags::UNIDIRECTIONAL,
        original_dst_ip4: [1, 2, 3, 4],
        original_dst_port: 8443,
    }
}

fn sample_connected() -> Connected {
    Connected {
        context: 11,
        retval: 0,
        handle: 0x1_0000_0009,
        server_rx_fifo: 1,
        server_tx_fifo: 2,
        segment_handle: 3,
        ct_rx_fifo: 4,
        ct_tx_fifo: 5,
        ct_segment_handle: 6,
        vpp_event_queue_address: 7,
        lcl: ep(Ipv4Addr::new(127, 0, 0, 1), 40000),
        mq_index: 0x0102_0304,
    }
}

/// One instance of every `CtrlMsg` variant with its size in VPP.
fn samples() -> Vec<(CtrlMsg, usize)> {
    let sh = SessionHandleMsg {
        client_index: 1,
        context: 2,
        handle: 0x3_0000_0004,
    };
    let sr = SessionReplyMsg {
        context: 5,
        retval: -12,
        handle: 0x6,
    };
    let mut uri = [0u8; 56];
    uri[..14].copy_from_slice(b"tcp://1.2.3.4/");
    let mut seg_name = [0u8; 128];
    seg_name[..9].copy_from_slice(b"seg-app-0");
    vec![
        (CtrlMsg::Listen(sample_listen()), 46),
        (
            CtrlMsg::ListenUri(UriMsg {
                client_index: 1,
                context: 2,
                uri,
            }),
            64,
        ),
        (
            CtrlMsg::Bound(Bound {
                context: 1,
                handle: 2,
                cl_sh_handle: 3,
                retval: -17,
                lcl_is_ip4: true,
                lcl_ip: Ip46::from_v4(Ipv4Addr::new(1, 1, 1, 1)),
                lcl_port: 53,
                rx_fifo: 4,
                tx_fifo: 5,
                vpp_evt_q: 6,
                segment_handle: 7,
                mq_index: 1,
            }),
            79,
        ),
        (
            CtrlMsg::Unlisten(Unlisten {
                client_index: 1,
                context: 2,
                wrk_index: 3,
                handle: 4,
            }),
            20,
        ),
        (
            CtrlMsg::UnlistenReply(UnlistenReply {
                context: 1,
                handle: 2,
                retval: -11,
            }),
            16,
        ),
        (CtrlMsg::Accepted(sample_accepted()), 120),
        (
            CtrlMsg::AcceptedReply(AcceptedReply {
                context: 3,
                retval: 0,
                handle: 9,
                app_session_index: 42,
            }),
            20,
        ),
        (CtrlMsg::Connect(sample_connect()), 77),
        (
            CtrlMsg::ConnectUri(UriMsg {
                client_index: 3,
                context: 4,
                uri,
            }),
            64,
        ),
        (CtrlMsg::ConnectStream(sample_connect()), 77),
        (CtrlMsg::Connected(sample_connected()), 104),
        (CtrlMsg::Shutdown(sh), 16),
        (CtrlMsg::Disconnect(sh), 16),
        (CtrlMsg::Terminate(sh), 16),
        (CtrlMsg::Disconnected(sh), 16),
        (CtrlMsg::Reset(sh), 16),
        (CtrlMsg::DisconnectedReply(sr), 16),
        (CtrlMsg::ResetReply(sr), 16),
        (
            CtrlMsg::ReqWorkerUpdate(ReqWorkerUpdate { session_handle: 77 }),
            8,
        ),
        (
            CtrlMsg::WorkerUpdate(WorkerUpdate {
                client_index: 1,
                wrk_index: 2,
                req_wrk_index: 3,
                handle: 4,
            }),
            16,
        ),
        (
            CtrlMsg::WorkerUpdateReply(WorkerUpdateReply {
                handle: 1,
                rx_fifo: 2,
                tx_fifo: 3,
                segment_handle: 4,
            }),
            32,
        ),
        (
            CtrlMsg::AppDetach(AppDetach {
                client_index: 1,
                context: 2,
            }),
            8,
        ),
        (
            CtrlMsg::AppAddSegment(AddSegment {
                client_index: 0,
                context: 0,
                fd_flags: 2,
                segment_size: 0x0800_0000,
                segment_name: seg_name,
                segment_handle: 0x0100_0000_0000_0002,
            }),
            152,
        ),
        (
            CtrlMsg::AppDelSegment(DelSegment {
                client_index: 0,
                context: 0,
                segment_handle: 5,
            }),
            16,
        ),
        (
            CtrlMsg::Migrated(Migrated {
                vpp_evt_q: 1,
                handle: 2,
                new_handle: 3,
                segment_handle: u64::MAX,
                vpp_thread_index: 2,
            }),
            36,
        ),
        (
            CtrlMsg::Cleanup(Cleanup {
                handle: 8,
                cleanup_type: CleanupType::Session,
            }),
            9,
        ),
        (
            CtrlMsg::AppWrkRpc(AppWrkRpc {
                client_index: 1,
                wrk_index: 2,
                data: [7; 64],
            }),
            72,
        ),
        (
            CtrlMsg::TransportAttr(TransportAttrMsg {
                client_index: 1,
                handle: 2,
                attr: TransportAttr::Mss(1460),
                is_get: false,
            }),
            53,
        ),
        (
            CtrlMsg::TransportAttrReply(TransportAttrReply {
                retval: 0,
                handle: 2,
                attr: TransportAttr::ExtEndpt(ep(Ipv4Addr::new(8, 8, 8, 8), 53)),
                is_get: true,
            }),
            53,
        ),
    ]
}

#[test]
fn every_message_roundtrips_with_facts_size() {
    let all = samples();
    assert_eq!(all.len(), 29);
    assert_eq!(all.iter().map(|(_, n)| *n).max(), Some(CTRL_MSG_MAX_LEN));
    for (m, size) in all {
        assert_eq!(m.wire_len(), size, "{:?}", m.evt_type());
        assert!(size <= CTRL_MSG_MAX_LEN);
        let mut buf = [0xeeu8; CTRL_MSG_ROOM];
        assert_eq!(encode_ctrl(&m, &mut buf), size);
        assert!(
            buf[size..].iter().all(|&b| b == 0xee),
            "wrote past the message"
        );
        assert_eq!(decode_ctrl(m.evt_type().as_u8(), &buf[..size]).unwrap(), m);
        // Short by one byte is always refused with the expected size.
        let e = decode_ctrl(m.evt_type().as_u8(), &buf[..size - 1]).unwrap_err();
        assert!(
            matches!(e, DecodeError::Short { need, .. } if need == size),
            "{e}"
        );
        // Whole ring element.
        let mut elt = [0x55u8; CTRL_EVT_ELT_LEN];
        encode_ctrl_element(&m, &mut elt).unwrap();
        assert_eq!(elt[0], m.evt_type().as_u8());
        assert_eq!(elt[1], 0);
        assert_eq!(decode_ctrl_element(&elt).unwrap(), m);
    }
}

#[test]
fn listen_image() {
    let b = sample_listen().to_bytes();
    assert_eq!(le32(&b, 0), 0x0001_0002);
    assert_eq!(le32(&b, 4), 7);
    assert_eq!(le32(&b, 8), 1);
    assert_eq!(le32(&b, 12), 2);
    assert_eq!(&b[16..18], &[0x1f, 0x90]); // 8080, network order
    assert_eq!((b[18], b[19]), (1, 1));
    assert_eq!(&b[20..32], &[0; 12]);
    assert_eq!(&b[32..36], &[192, 168, 1, 1]);
    assert_eq!(b[36], 1);
    assert_eq!(le64(&b, 37), 0x1122_3344_5566_7788);
    assert_eq!(b[45], 0x2e);
}

#[test]
fn connect_image() {
    let b = sample_connect().to_bytes();
    assert_eq!(&b[16..20], &[0x01, 0xbb, 0x12, 0x34]);
    assert_eq!((b[20], b[21]), (3, 0));
    assert_eq!(b[37], 1); // ::1
    assert_eq!(&b[38..54], &[0xaa; 16]);
    assert_eq!(le64(&b, 54), u64::MAX);
    assert_eq!(le32(&b, 62), 5);
    assert_eq!((b[66], b[67], b[68]), (1, 3, 9));
    assert_eq!(le64(&b, 69), 0xdead_beef);
}

#[test]
fn accepted_image() {
    let b = sample_accepted().to_bytes();
    assert_eq!(le32(&b, 0), 3);
    assert_eq!(le64(&b, 4), 0x1_0000_0001);
    assert_eq!(le64(&b, 12), 0x2_0000_0005);
    assert_eq!(le64(&b, 20), 0x100);
    assert_eq!(le64(&b, 28), 0x200);
    assert_eq!(le64(&b, 36), 0x300);
    assert_eq!(le64(&b, 44), 0x400);
    assert_eq!(le32(&b, 52), 2);
    // lcl endpoint @56: ip4 in bytes 12..16 of ip46, port BE @72, is_ip4 @74
    assert_eq!(&b[68..72], &[10, 0, 0, 1]);
    assert_eq!(&b[72..76], &[0, 80, 1, 0]);
    assert_eq!(le32(&b, 76), 3);
    assert_eq!(le32(&b, 80), 4);
    // rmt endpoint @84
    assert_eq!(&b[96..100], &[10, 0, 0, 2]);
    assert_eq!(&b[100..102], &[0xc0, 0x01]);
    assert_eq!(le16(&b, 112), 0x810);
    assert_eq!(&b[114..118], &[1, 2, 3, 4]);
    assert_eq!(&b[118..120], &8443u16.to_be_bytes());
    let e = decode_ctrl(11, &b[..37]).unwrap_err();
    assert_eq!(e.to_string(), "accepted: need 120 bytes, got 37");
}

#[test]
fn connected_image() {
    let b = sample_connected().to_bytes();
    assert_eq!(le32(&b, 0), 11);
    assert_eq!(le64(&b, 8), 0x1_0000_0009);
    for (i, off) in [16, 24, 32, 40, 48, 56, 64].into_iter().enumerate() {
        assert_eq!(le64(&b, off), i as u64 + 1);
    }
    assert_eq!(&b[84..88], &[127, 0, 0, 1]);
    assert_eq!(&b[88..91], &[0x9c, 0x40, 1]);
    assert_eq!(le32(&b, 100), 0x0102_0304);
}

#[test]
fn small_message_images() {
    let bound = samples().into_iter().find_map(|(m, _)| match m {
        CtrlMsg::Bound(b) => Some(b),
        _ => None,
    });
    let b = bound.unwrap().to_bytes();
    assert_eq!(le32(&b, 20) as i32, -17);
    assert_eq!(b[24], 1);
    assert_eq!(&b[37..41], &[1, 1, 1, 1]);
    assert_eq!(&b[41..43], &[0, 53]);
    assert_eq!(le64(&b, 67), 7);
    assert_eq!(le32(&b, 75), 1);

    let r = UnlistenReply {
        context: 1,
        handle: 2,
        retval: -11,
    }
    .to_bytes();
    assert_eq!((le64(&r, 4), le32(&r, 12) as i32), (2, -11));

    let r = AcceptedReply {
        context: 1,
        retval: -2,
        handle: 3,
        app_session_index: 4,
    }
    .to_bytes();
    assert_eq!((le32(&r, 4) as i32, le64(&r, 8), le32(&r, 16)), (-2, 3, 4));

    let w = WorkerUpdate {
        client_index: 1,
        wrk_index: 0x0203,
        req_wrk_index: 0x0405,
        handle: 6,
    };
    let w = w.to_bytes();
    assert_eq!((le16(&w, 4), le16(&w, 6), le64(&w, 8)), (0x0203, 0x0405, 6));

    let c = Cleanup {
        handle: 0x0102,
        cleanup_type: CleanupType::Transport,
    }
    .to_bytes();
    assert_eq!(c, vec![2, 1, 0, 0, 0, 0, 0, 0, 0]);

    let m = Migrated {
        vpp_evt_q: 1,
        handle: 2,
        new_handle: 3,
        segment_handle: 4,
        vpp_thread_index: 5,
    };
    let m = m.to_bytes();
    assert_eq!((le64(&m, 16), le64(&m, 24), le32(&m, 32)), (3, 4, 5));

    let d = AppDetach {
        client_index: 9,
        context: 10,
    }
    .to_bytes();
    assert_eq!(d, vec![9, 0, 0, 0, 10, 0, 0, 0]);
}

#[test]
fn add_segment_natural_alignment() {
    let mut name = [0u8; 128];
    name[..5].copy_from_slice(b"seg-1");
    let s = AddSegment {
        client_index: 1,
        context: 2,
        fd_flags: 2,
        segment_size: 0xaabb_ccdd,
        segment_name: name,
        segment_handle: 0x0102_0304_0506_0708,
    };
    let b = s.to_bytes();
    assert_eq!(b.len(), 152);
    assert_eq!(b[8], 2);
    assert_eq!(&b[9..12], &[0, 0, 0]); // padding
    assert_eq!(le32(&b, 12), 0xaabb_ccdd);
    assert_eq!(&b[16..21], b"seg-1");
    assert_eq!(&b[140..144], &[0; 4]); // padding before the u64
    assert_eq!(le64(&b, 144), 0x0102_0304_0506_0708);
    assert_eq!(s.name_bytes(), b"seg-1");
}

#[test]
fn transport_attr_images() {
    let m = TransportAttrMsg {
        client_index: 1,
        handle: 0x0a0b,
        attr: TransportAttr::AppProtoErrCode(0x1122),
        is_get: true,
    };
    let b = m.to_bytes();
    assert_eq!(le64(&b, 4), 0x0a0b);
    assert_eq!(b[12], attr_type::APP_PROTO_ERR_CODE);
    assert_eq!(b[12], 9); // v26.06 numbering
    assert_eq!(&b[13..20], &[0; 7]);
    assert_eq!(le64(&b, 20), 0x1122);
    assert_eq!(b[52], 1);
    let p = TransportAttr::TlsProfileInfo {
        cipher: 1,
        tls_version: 0x0304,
        key_agreement: 2,
        signature_algo: 3,
    };
    let b = TransportAttrReply {
        retval: -1,
        handle: 0,
        attr: p,
        is_get: true,
    }
    .to_bytes();
    assert_eq!(b[12], 7);
    assert_eq!(
        (le64(&b, 20), le16(&b, 28), le64(&b, 36), le64(&b, 44)),
        (1, 0x0304, 2, 3)
    );
}

#[test]
fn decode_rejects_unknown_values() {
    let mut l = sample_listen().to_bytes();
    l[18] = 8;
    assert_eq!(
        decode_ctrl(24, &l).unwrap_err().to_string(),
        "listen: unknown proto value 8"
    );
    let mut c = Cleanup {
        handle: 1,
        cleanup_type: CleanupType::Session,
    }
    .to_bytes();
    c[8] = 2;
    assert!(matches!(
        decode_ctrl(31, &c),
        Err(DecodeError::BadValue {
            field: "cleanup type",
            ..
        })
    ));
    let mut a = [0u8; 53];
    a[12] = 10;
    assert!(matches!(
        decode_ctrl(33, &a),
        Err(DecodeError::BadValue { value: 10, .. })
    ));
    for t in [0u8, 1, 2, 3, 4, 5, 6, 7, 35, 36] {
        assert_eq!(decode_ctrl(t, &[0; 254]), Err(DecodeError::NotCtrlMsg(t)));
    }
    assert_eq!(
        decode_ctrl(39, &[0; 254]),
        Err(DecodeError::UnknownEventType(39))
    );
    assert!(decode_ctrl_element(&[]).is_err());
    assert!(decode_ctrl_element(&[13]).is_err());
}

#[test]
fn encode_into_short_buffer_is_an_error() {
    let m = CtrlMsg::Accepted(sample_accepted());
    let mut small = [0u8; 100];
    assert_eq!(
        try_encode_ctrl(&m, &mut small),
        Err(BufferTooSmall {
            need: 120,
            got: 100
        })
    );
    let mut elt = [0u8; 121];
    assert!(encode_ctrl_element(&m, &mut elt).is_err());
}

#[test]
fn ip46_helpers() {
    let (a, v4) = Ip46::from_ip("10.1.2.3".parse().unwrap());
    assert!(v4);
    assert_eq!(a.0[12..], [10, 1, 2, 3]);
    assert_eq!(a.to_ip(true).to_string(), "10.1.2.3");
    let (b, v4) = Ip46::from_ip("fe80::1".parse().unwrap());
    assert!(!v4);
    assert_eq!(b.to_ip(false).to_string(), "fe80::1");
}
