//! The fuzz targets' bodies as plain functions: `fuzz_targets/*.rs` hand them libFuzzer's
//! inputs (nightly, `cargo fuzz`), and `crates/codec/tests/fuzz_replay.rs` runs them on
//! stable under `cargo test` with a bounded random driver, so they are built, linted and run
//! in CI. Any input may fail to decode; a panic is a bug.

use vcl_codec::dgram::DgramHdr;
use vcl_codec::ext_cfg::ExtCfg;
use vcl_codec::msg::{decode_ctrl_element, CTRL_MSG_ROOM};
use vcl_codec::{decode_ctrl, encode_ctrl, SapiMsg, SessionEvent};

/// Every session-message decoder. The first byte picks the event type for `decode_ctrl`; the
/// whole input is also tried as a ring element, an 18-byte event, an ext config and a datagram
/// header. Control messages that decode must round-trip unchanged.
pub fn ctrl_decode(data: &[u8]) {
    if let Some((&t, body)) = data.split_first() {
        if let Ok(m) = decode_ctrl(t, body) {
            let mut out = [0u8; CTRL_MSG_ROOM];
            let n = encode_ctrl(&m, &mut out);
            assert_eq!(decode_ctrl(t, &out[..n]).as_ref(), Ok(&m));
        }
    }
    let _ = decode_ctrl_element(data);
    let _ = SessionEvent::decode(data);
    if let Ok(e) = ExtCfg::decode(data) {
        let _ = e.encode();
    }
    let _ = DgramHdr::decode(data);
}

/// The app socket decoders: anything that decodes survives an encode/decode round trip.
pub fn sapi_decode(data: &[u8]) {
    for m in [SapiMsg::decode(data), SapiMsg::decode_prefix(data)]
        .into_iter()
        .flatten()
    {
        assert_eq!(SapiMsg::decode(&m.encode()).as_ref(), Ok(&m));
    }
}
