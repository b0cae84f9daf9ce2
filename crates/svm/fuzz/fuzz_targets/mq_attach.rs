//! cargo-fuzz target for message queues (see `targets::mq_attach`).
//! Run: `cd crates/svm/fuzz && cargo +nightly fuzz run mq_attach`.
#![no_main]

#[path = "../common.rs"]
mod common;
#[path = "../targets.rs"]
mod targets;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| targets::mq_attach(data));
