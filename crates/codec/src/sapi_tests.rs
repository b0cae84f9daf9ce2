use super::*;
use proptest::prelude::*;

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

#[test]
fn attach_image() {
    let mut a = Attach::new("my-app");
    a.options[opt::FLAGS] = app_flags::ACCEPT_REDIRECT | app_flags::ADD_SEGMENT;
    a.options[opt::PCT_FIRST_ALLOC] = 0x1122_3344_5566_7788;
    let b = SapiMsg::Attach(a.clone()).encode();
    assert_eq!(b.len(), 209);
    assert_eq!(b[0], 1);
    assert_eq!(&b[1..7], b"my-app");
    assert!(b[7..65].iter().all(|&c| c == 0));
    // options start at payload offset 64 (datagram offset 65)
    assert_eq!(b[65], 0x3);
    assert_eq!(
        &b[1 + 64 + 17 * 8..209],
        &0x1122_3344_5566_7788u64.to_le_bytes()
    );
    assert_eq!(SapiMsg::decode(&b).unwrap(), SapiMsg::Attach(a));
}

#[test]
fn attach_name_truncated_to_63() {
    let long = "x".repeat(100);
    let a = Attach::new(&long);
    assert_eq!(a.name_bytes().len(), 63);
    assert_eq!(a.name[63], 0);
}

#[test]
fn attach_reply_image_from_facts_offsets() {
    // Built by hand: payload offsets 0/4/8/16/24/32/36/37/38 (datagram +1).
    let mut b = [0u8; 209];
    b[0] = 2;
    let p = &mut b[1..];
    p[0..4].copy_from_slice(&(-14i32).to_le_bytes());
    p[4..8].copy_from_slice(&7u32.to_le_bytes());
    p[8..16].copy_from_slice(&0x1000u64.to_le_bytes());
    p[16..24].copy_from_slice(&0x2000u64.to_le_bytes());
    p[24..32].copy_from_slice(&0x0000_0001_0000_0002u64.to_le_bytes());
    p[32..36].copy_from_slice(&0x0003_0004u32.to_le_bytes());
    p[36] = 1;
    p[37] = 3;
    p[38] = 0x7;
    let want = AttachReply {
        retval: -14,
        app_index: 7,
        app_mq: 0x1000,
        vpp_ctrl_mq: 0x2000,
        segment_handle: 0x1_0000_0002,
        api_client_handle: 0x0003_0004,
        vpp_ctrl_mq_thread: 1,
        n_fds: 3,
        fd_flags: fd_flags::VPP_MQ_SEGMENT | fd_flags::MEMFD_SEGMENT | fd_flags::MQ_EVENTFD,
    };
    assert_eq!(SapiMsg::decode(&b).unwrap(), SapiMsg::AttachReply(want));
    assert_eq!(SapiMsg::AttachReply(want).encode(), b);
    // only the 39-byte reply is non-zero
    assert!(b[40..].iter().all(|&c| c == 0));
}

#[test]
fn worker_images() {
    let m = SapiMsg::AddDelWorker(WorkerAddDel {
        app_index: 5,
        wrk_index: 9,
        is_add: false,
    });
    let b = m.encode();
    assert_eq!(b[0], 3);
    assert_eq!(le32(&b, 1), 5);
    assert_eq!(le32(&b, 5), 9);
    assert_eq!(b[9], 0);
    assert!(b[10..].iter().all(|&c| c == 0));

    let r = WorkerAddDelReply {
        retval: 0,
        wrk_index: 2,
        app_event_queue_address: 0xabcd,
        segment_handle: 0x55,
        api_client_handle: 0x10001,
        n_fds: 2,
        fd_flags: 0x6,
        is_add: true,
    };
    let b = SapiMsg::AddDelWorkerReply(r).encode();
    assert_eq!(b[0], 4);
    assert_eq!(le32(&b, 1 + 4), 2);
    assert_eq!(&b[1 + 8..1 + 16], &0xabcdu64.to_le_bytes());
    assert_eq!(&b[1 + 16..1 + 24], &0x55u64.to_le_bytes());
    assert_eq!(le32(&b, 1 + 24), 0x10001);
    assert_eq!((b[29], b[30], b[31]), (2, 6, 1));
    assert!(b[32..].iter().all(|&c| c == 0)); // 31-byte payload
}

#[test]
fn cert_key_images() {
    let m = CertKeyAddDel {
        context: 1,
        index: 2,
        cert_len: 0x0102,
        certkey_len: 0x0304,
        is_add: true,
    };
    let b = SapiMsg::AddDelCertKey(m).encode();
    assert_eq!(b[0], 6);
    assert_eq!(&b[9..14], &[0x02, 0x01, 0x04, 0x03, 1]);
    assert!(b[14..].iter().all(|&c| c == 0)); // 13-byte payload
    let r = CertKeyAddDelReply {
        context: 1,
        retval: -19,
        index: 4,
    };
    let b = SapiMsg::AddDelCertKeyReply(r).encode();
    assert_eq!(b[0], 7);
    assert_eq!(le32(&b, 5) as i32, -19);
    assert_eq!(le32(&b, 9), 4);
    assert!(b[13..].iter().all(|&c| c == 0)); // 12-byte payload
}

#[test]
fn send_fds_is_all_zero_payload() {
    let b = SapiMsg::SendFds.encode();
    assert_eq!(b[0], 5);
    assert!(b[1..].iter().all(|&c| c == 0));
    assert_eq!(SapiMsg::decode(&b).unwrap(), SapiMsg::SendFds);
}

#[test]
fn size_and_type_errors() {
    let e = SapiMsg::decode(&[2u8; 208]).unwrap_err();
    assert_eq!(e.to_string(), "sapi msg: need exactly 209 bytes, got 208");
    assert!(matches!(
        SapiMsg::decode(&[1u8; 300]),
        Err(DecodeError::WrongSize { .. })
    ));
    // VPP's truncating view accepts the first 209 bytes of a longer datagram
    let mut long = [0u8; 300];
    long[0] = 5;
    assert_eq!(SapiMsg::decode_prefix(&long).unwrap(), SapiMsg::SendFds);
    let mut b = [0u8; 209];
    for t in [0u8, 8, 255] {
        b[0] = t;
        assert_eq!(SapiMsg::decode(&b), Err(DecodeError::UnknownSapiType(t)));
    }
}

fn arb_sapi() -> impl Strategy<Value = SapiMsg> {
    prop_oneof![
        (
            proptest::array::uniform32(any::<u8>()),
            proptest::array::uniform18(any::<u64>())
        )
            .prop_map(|(n, options)| {
                let mut name = [0u8; 64];
                name[..32].copy_from_slice(&n);
                SapiMsg::Attach(Attach { name, options })
            }),
        (
            any::<(i32, u32, u64, u64, u64)>(),
            any::<(u32, u8, u8, u8)>()
        )
            .prop_map(|(a, b)| {
                SapiMsg::AttachReply(AttachReply {
                    retval: a.0,
                    app_index: a.1,
                    app_mq: a.2,
                    vpp_ctrl_mq: a.3,
                    segment_handle: a.4,
                    api_client_handle: b.0,
                    vpp_ctrl_mq_thread: b.1,
                    n_fds: b.2,
                    fd_flags: b.3,
                })
            }),
        any::<(u32, u32, bool)>().prop_map(|(app_index, wrk_index, is_add)| {
            SapiMsg::AddDelWorker(WorkerAddDel {
                app_index,
                wrk_index,
                is_add,
            })
        }),
        (any::<(i32, u32, u64, u64)>(), any::<(u32, u8, u8, bool)>()).prop_map(|(a, b)| {
            SapiMsg::AddDelWorkerReply(WorkerAddDelReply {
                retval: a.0,
                wrk_index: a.1,
                app_event_queue_address: a.2,
                segment_handle: a.3,
                api_client_handle: b.0,
                n_fds: b.1,
                fd_flags: b.2,
                is_add: b.3,
            })
        }),
        Just(SapiMsg::SendFds),
        any::<(u32, u32, u16, u16, bool)>().prop_map(
            |(context, index, cert_len, certkey_len, is_add)| {
                SapiMsg::AddDelCertKey(CertKeyAddDel {
                    context,
                    index,
                    cert_len,
                    certkey_len,
                    is_add,
                })
            }
        ),
        any::<(u32, i32, u32)>().prop_map(|(context, retval, index)| {
            SapiMsg::AddDelCertKeyReply(CertKeyAddDelReply {
                context,
                retval,
                index,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn roundtrip(m in arb_sapi()) {
        prop_assert_eq!(SapiMsg::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = SapiMsg::decode(&b);
        let _ = SapiMsg::decode_prefix(&b);
    }

    #[test]
    fn decode_encode_is_stable(mut b in proptest::collection::vec(any::<u8>(), 209), t in 0u8..9) {
        b[0] = t;
        if let Ok(m) = SapiMsg::decode(&b) {
            prop_assert_eq!(SapiMsg::decode(&m.encode()).unwrap(), m);
        }
    }
}
