//! Feeds arbitrary bytes to every session-message decoder (see `targets::ctrl_decode`).
#![no_main]

#[path = "../targets.rs"]
mod targets;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| targets::ctrl_decode(data));
