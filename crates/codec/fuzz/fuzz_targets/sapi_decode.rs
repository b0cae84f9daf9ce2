//! Feeds arbitrary datagrams to the sapi decoders; anything that decodes
//! must survive an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcl_codec::SapiMsg;

fuzz_target!(|data: &[u8]| {
    for res in [SapiMsg::decode(data), SapiMsg::decode_prefix(data)] {
        if let Ok(m) = res {
            assert_eq!(SapiMsg::decode(&m.encode()).as_ref(), Ok(&m));
        }
    }
});
