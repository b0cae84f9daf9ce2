//! Property tests: typed round trips and random/truncated input for every
//! control message decoder.

use super::*;
use proptest::prelude::*;

fn arb_ep() -> impl Strategy<Value = TransportEndpoint> {
    (
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(ip, port, is_ip4, sw_if_index, fib_index)| TransportEndpoint {
                ip: Ip46(ip),
                port,
                is_ip4,
                sw_if_index,
                fib_index,
            },
        )
}

fn arb_attr() -> impl Strategy<Value = TransportAttr> {
    prop_oneof![
        any::<u64>().prop_map(TransportAttr::NextOutputNode),
        any::<u16>().prop_map(TransportAttr::Mss),
        any::<u8>().prop_map(TransportAttr::Flags),
        any::<u8>().prop_map(TransportAttr::CcAlgo),
        arb_ep().prop_map(TransportAttr::ExtEndpt),
        any::<(u64, u64, u32)>().prop_map(|(cert, chain, flags)| TransportAttr::TlsPeerCert {
            cert,
            chain,
            flags
        }),
        any::<u8>().prop_map(TransportAttr::TlsAlpn),
        any::<(u64, u16, u64, u64)>().prop_map(|(a, b, c, d)| TransportAttr::TlsProfileInfo {
            cipher: a,
            tls_version: b,
            key_agreement: c,
            signature_algo: d,
        }),
        any::<u64>().prop_map(TransportAttr::NextTransport),
        any::<u64>().prop_map(TransportAttr::AppProtoErrCode),
    ]
}

fn arb_accepted() -> impl Strategy<Value = Accepted> {
    (
        any::<(u32, u64, u64, u64, u64, u64, u64, u32)>(),
        arb_ep(),
        arb_ep(),
        any::<(u16, [u8; 4], u16)>(),
    )
        .prop_map(|(a, lcl, rmt, t)| Accepted {
            context: a.0,
            listener_handle: a.1,
            handle: a.2,
            server_rx_fifo: a.3,
            server_tx_fifo: a.4,
            segment_handle: a.5,
            vpp_event_queue_address: a.6,
            mq_index: a.7,
            lcl,
            rmt,
            flags: t.0,
            original_dst_ip4: t.1,
            original_dst_port: t.2,
        })
}

fn arb_connected() -> impl Strategy<Value = Connected> {
    (
        any::<(u32, i32, u64, u64, u64, u64)>(),
        any::<(u64, u64, u64, u64, u32)>(),
        arb_ep(),
    )
        .prop_map(|(a, b, lcl)| Connected {
            context: a.0,
            retval: a.1,
            handle: a.2,
            server_rx_fifo: a.3,
            server_tx_fifo: a.4,
            segment_handle: a.5,
            ct_rx_fifo: b.0,
            ct_tx_fifo: b.1,
            ct_segment_handle: b.2,
            vpp_event_queue_address: b.3,
            lcl,
            mq_index: b.4,
        })
}

fn arb_connect() -> impl Strategy<Value = Connect> {
    (
        any::<(u32, u32, u32, u32, u16, u16)>(),
        0u8..8,
        any::<(bool, [u8; 16], [u8; 16])>(),
        any::<(u64, u32, u8, u8, u8, u64)>(),
    )
        .prop_map(|(a, proto, b, c)| Connect {
            client_index: a.0,
            context: a.1,
            wrk_index: a.2,
            vrf: a.3,
            port: a.4,
            lcl_port: a.5,
            proto: TransportProto::from_u8(proto).unwrap(),
            is_ip4: b.0,
            ip: Ip46(b.1),
            lcl_ip: Ip46(b.2),
            parent_handle: c.0,
            ckpair_index: c.1,
            crypto_engine: c.2,
            flags: c.3,
            dscp: c.4,
            ext_config: c.5,
        })
}

fn arb_listen() -> impl Strategy<Value = Listen> {
    (
        any::<(u32, u32, u32, u32, u16)>(),
        0u8..8,
        any::<(bool, [u8; 16], u8, u64, u8)>(),
    )
        .prop_map(|(a, proto, b)| Listen {
            client_index: a.0,
            context: a.1,
            wrk_index: a.2,
            vrf: a.3,
            port: a.4,
            proto: TransportProto::from_u8(proto).unwrap(),
            is_ip4: b.0,
            ip: Ip46(b.1),
            flags: b.2,
            ext_config: b.3,
            dscp: b.4,
        })
}

fn arb_ctrl() -> impl Strategy<Value = CtrlMsg> {
    prop_oneof![
        arb_accepted().prop_map(CtrlMsg::Accepted),
        arb_connected().prop_map(CtrlMsg::Connected),
        arb_connect().prop_map(CtrlMsg::Connect),
        arb_connect().prop_map(CtrlMsg::ConnectStream),
        arb_listen().prop_map(CtrlMsg::Listen),
        (any::<(u32, u64, bool)>(), arb_attr()).prop_map(|((c, h, g), attr)| {
            CtrlMsg::TransportAttr(TransportAttrMsg {
                client_index: c,
                handle: h,
                attr,
                is_get: g,
            })
        }),
        (any::<(i32, u64, bool)>(), arb_attr()).prop_map(|((r, h, g), attr)| {
            CtrlMsg::TransportAttrReply(TransportAttrReply {
                retval: r,
                handle: h,
                attr,
                is_get: g,
            })
        }),
        any::<(u32, u32, u64)>().prop_map(|(c, x, h)| {
            CtrlMsg::Disconnected(SessionHandleMsg {
                client_index: c,
                context: x,
                handle: h,
            })
        }),
        any::<(u32, i32, u64)>().prop_map(|(c, r, h)| {
            CtrlMsg::ResetReply(SessionReplyMsg {
                context: c,
                retval: r,
                handle: h,
            })
        }),
        (any::<u64>(), any::<bool>()).prop_map(|(handle, s)| {
            let cleanup_type = if s {
                CleanupType::Session
            } else {
                CleanupType::Transport
            };
            CtrlMsg::Cleanup(Cleanup {
                handle,
                cleanup_type,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn typed_roundtrip(m in arb_ctrl()) {
        let mut buf = [0u8; CTRL_MSG_ROOM];
        let n = encode_ctrl(&m, &mut buf);
        prop_assert_eq!(n, m.wire_len());
        prop_assert_eq!(decode_ctrl(m.evt_type().as_u8(), &buf).unwrap(), m);
    }

    /// Any body that decodes re-encodes to something that decodes to the
    /// same value, for every event type (covers all messages, not just the
    /// ones with typed strategies above).
    #[test]
    fn decode_encode_stable(t in 0u8..40, b in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(m) = decode_ctrl(t, &b) {
            prop_assert_eq!(m.evt_type().as_u8(), t);
            let mut out = [0u8; CTRL_MSG_ROOM];
            let n = encode_ctrl(&m, &mut out);
            prop_assert_eq!(decode_ctrl(t, &out[..n]).unwrap(), m);
        }
    }

    /// Random and truncated inputs never panic.
    #[test]
    fn never_panics(t: u8, b in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
        let _ = decode_ctrl(t, &b);
        let _ = decode_ctrl(t, &b[..cut.min(b.len())]);
        let _ = decode_ctrl_element(&b);
    }
}
