//! Fixed byte images of the small control messages, written by hand from VPP v26.06's structs
//! (src/vnet/session/application_interface.h; event numbers from session_types.h's
//! `session_evt_type_t`), not from this crate's encoders. Each image is also in
//! docs/wire-images.md with its offset table; `images_are_documented` keeps the two equal.
//!
//! Field values are chosen so every byte of a field differs from every other field's bytes:
//! a swapped, shifted or mis-sized field changes the image.

use super::*;

const CI: u32 = 0x1112_1314; // client_index
const CTX: u32 = 0x2122_2324; // context
const H: u64 = 0x3132_3334_3536_3738; // a session handle
const RV: i32 = -2; // retval: fe ff ff ff

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn uri() -> [u8; 56] {
    let mut u = [0u8; 56];
    u[..17].copy_from_slice(b"tcp://1.2.3.4/80\0");
    u
}

const URI_HEX: &str = "7463703a2f2f312e322e332e342f3830 \
    00000000000000000000000000000000 00000000000000000000000000000000 0000000000000000";

/// (name, VPP event type number, message, image in hex)
fn images() -> Vec<(&'static str, u8, CtrlMsg, String)> {
    let sh = SessionHandleMsg {
        client_index: CI,
        context: CTX,
        handle: H,
    };
    let sr = SessionReplyMsg {
        context: CTX,
        retval: RV,
        handle: H,
    };
    // u32 client_index, u32 context, u64 handle
    let sh_img = "14131211 24232221 3837363534333231".to_string();
    // u32 context, i32 retval, u64 handle
    let sr_img = "24232221 feffffff 3837363534333231".to_string();
    let mut rpc = [0u8; 64];
    for (i, b) in rpc.iter_mut().enumerate() {
        *b = 0x80 + i as u8;
    }
    let rpc_hex: String = (0..64).map(|i| format!("{:02x}", 0x80 + i)).collect();
    vec![
        ("Reset", 8, CtrlMsg::Reset(sh), sh_img.clone()),
        (
            "UnlistenReply",
            10,
            CtrlMsg::UnlistenReply(UnlistenReply {
                context: CTX,
                handle: H,
                retval: RV,
            }),
            "24232221 3837363534333231 feffffff".into(),
        ),
        (
            "Disconnected",
            14,
            CtrlMsg::Disconnected(sh),
            sh_img.clone(),
        ),
        (
            "DisconnectedReply",
            15,
            CtrlMsg::DisconnectedReply(sr),
            sr_img.clone(),
        ),
        ("ResetReply", 16, CtrlMsg::ResetReply(sr), sr_img),
        (
            "ReqWorkerUpdate",
            17,
            CtrlMsg::ReqWorkerUpdate(ReqWorkerUpdate { session_handle: H }),
            "3837363534333231".into(),
        ),
        (
            "WorkerUpdate",
            18,
            CtrlMsg::WorkerUpdate(WorkerUpdate {
                client_index: CI,
                wrk_index: 0x4142,
                req_wrk_index: 0x5152,
                handle: H,
            }),
            "14131211 4241 5251 3837363534333231".into(),
        ),
        (
            "WorkerUpdateReply",
            19,
            CtrlMsg::WorkerUpdateReply(WorkerUpdateReply {
                handle: H,
                rx_fifo: 0x4142_4344_4546_4748,
                tx_fifo: 0x5152_5354_5556_5758,
                segment_handle: 0x6162_6364_6566_6768,
            }),
            "3837363534333231 4847464544434241 5857565554535251 6867666564636261".into(),
        ),
        ("Shutdown", 20, CtrlMsg::Shutdown(sh), sh_img.clone()),
        ("Disconnect", 21, CtrlMsg::Disconnect(sh), sh_img.clone()),
        (
            "ConnectUri",
            23,
            CtrlMsg::ConnectUri(UriMsg {
                client_index: CI,
                context: CTX,
                uri: uri(),
            }),
            format!("14131211 24232221 {URI_HEX}"),
        ),
        (
            "ListenUri",
            25,
            CtrlMsg::ListenUri(UriMsg {
                client_index: CI,
                context: CTX,
                uri: uri(),
            }),
            format!("14131211 24232221 {URI_HEX}"),
        ),
        (
            "Unlisten",
            26,
            CtrlMsg::Unlisten(Unlisten {
                client_index: CI,
                context: CTX,
                wrk_index: 0x4142_4344,
                handle: H,
            }),
            "14131211 24232221 44434241 3837363534333231".into(),
        ),
        (
            "DelSegment",
            29,
            CtrlMsg::AppDelSegment(DelSegment {
                client_index: CI,
                context: CTX,
                segment_handle: H,
            }),
            "14131211 24232221 3837363534333231".into(),
        ),
        (
            "AppWrkRpc",
            32,
            CtrlMsg::AppWrkRpc(AppWrkRpc {
                client_index: CI,
                wrk_index: 0x4142_4344,
                data: rpc,
            }),
            format!("14131211 44434241 {rpc_hex}"),
        ),
        ("Terminate", 38, CtrlMsg::Terminate(sh), sh_img),
    ]
}

#[test]
fn fixed_images_encode_and_decode() {
    for (name, evt, msg, img) in images() {
        let want = hex(&img);
        assert_eq!(msg.evt_type().as_u8(), evt, "{name}: event type");
        assert_eq!(msg.wire_len(), want.len(), "{name}: size");
        let mut buf = [0xeeu8; CTRL_MSG_ROOM];
        let n = encode_ctrl(&msg, &mut buf);
        assert_eq!(&buf[..n], &want[..], "{name}: encoded bytes");
        assert_eq!(decode_ctrl(evt, &want).unwrap(), msg, "{name}: decoded");
        // as a whole ring-1 element: type byte, `postponed` byte, then the body
        let mut elt = [0u8; CTRL_EVT_ELT_LEN];
        elt[0] = evt;
        elt[2..2 + want.len()].copy_from_slice(&want);
        assert_eq!(decode_ctrl_element(&elt).unwrap(), msg, "{name}: element");
    }
}

#[test]
fn images_are_documented() {
    let doc = include_str!("../../../../docs/wire-images.md");
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    let doc_norm = norm(&doc.replace('`', " "));
    for (name, evt, _, img) in images() {
        let head = format!("### {name} ({evt})");
        assert!(doc.contains(&head), "docs/wire-images.md has no `{head}`");
        assert!(
            doc_norm.contains(&norm(&img)),
            "docs/wire-images.md does not show {name}'s image"
        );
    }
}
