//! Fuzz target: corrupt a realistic fifo segment as the input dictates, then map it again and run
//! every fifo and segment operation (see `targets::fifo_segment_map`). Run with
//! `cargo +nightly fuzz run fifo_segment_map` from `crates/svm/fuzz`.
#![no_main]

#[path = "../common.rs"]
mod common;
#[path = "../targets.rs"]
mod targets;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| targets::fifo_segment_map(data));
