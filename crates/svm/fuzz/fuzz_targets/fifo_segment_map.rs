//! Fuzz target: corrupt a realistic fifo segment as the input dictates, then map it again and run
//! every fifo and segment operation. Run with `cargo +nightly fuzz run fifo_segment_map` from
//! `crates/svm/fuzz`.
#![no_main]

#[path = "../common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (seg, fifos) = common::fixture();
    let mut inp = common::Input::new(data);
    common::corrupt(&seg, &fifos, &mut inp);
    common::exercise(&seg, &fifos, &mut inp);
});
