//! Feeds arbitrary datagrams to the sapi decoders (see `targets::sapi_decode`).
#![no_main]

#[path = "../targets.rs"]
mod targets;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| targets::sapi_decode(data));
