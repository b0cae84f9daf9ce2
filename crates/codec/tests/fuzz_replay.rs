//! The cargo-fuzz targets' bodies (crates/codec/fuzz/targets.rs) on stable: a seeded random
//! driver feeds each for a bounded time (VCL_FUZZ_SECS, default 4 s, and at least 20 000
//! inputs), so CI builds, lints and runs them. Inputs are random bytes with lengths around the
//! real message sizes and event types in range, so most decode and round-trip.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::time::{Duration, Instant};

use vcl_codec::sapi::SAPI_MSG_LEN;

/// Body sizes of the control messages (and a few beyond), so inputs often decode.
const SIZES: &[usize] = &[
    0, 1, 8, 9, 16, 18, 20, 32, 36, 46, 53, 64, 72, 77, 79, 104, 120, 152, 254, 256, 300,
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn budget() -> Duration {
    let secs = std::env::var("VCL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    Duration::from_secs_f64(secs)
}

/// Feed `target` random inputs shaped by `shape` until the budget is spent.
fn drive(seed: u64, shape: impl Fn(&mut Rng, &mut Vec<u8>), target: fn(&[u8])) -> u64 {
    let (mut r, mut buf, mut n) = (Rng(seed), Vec::new(), 0u64);
    let t = Instant::now();
    let budget = budget();
    while n < 20_000 || t.elapsed() < budget {
        buf.clear();
        shape(&mut r, &mut buf);
        target(&buf);
        n += 1;
    }
    n
}

fn random_bytes(r: &mut Rng, buf: &mut Vec<u8>, len: usize) {
    // mostly small values (flags, enums, lengths), sometimes anything
    let wide = r.below(2) == 0;
    for _ in 0..len {
        let v = r.next() as u8;
        buf.push(if wide { v } else { v % 4 });
    }
}

#[test]
fn ctrl_decode_on_random_messages() {
    let n = drive(
        0x9e37_79b9_7f4a_7c15,
        |r, buf| {
            buf.push(r.below(42) as u8); // event type, a few past the last
            let len = SIZES[r.below(SIZES.len())] + r.below(3);
            random_bytes(r, buf, len);
        },
        targets::ctrl_decode,
    );
    eprintln!("ctrl_decode: {n} inputs");
}

#[test]
fn sapi_decode_on_random_datagrams() {
    let n = drive(
        0x2545_f491_4f6c_dd1d,
        |r, buf| {
            let len = match r.below(4) {
                0 => r.below(2 * SAPI_MSG_LEN),
                _ => SAPI_MSG_LEN,
            };
            random_bytes(r, buf, len);
            if let Some(b) = buf.first_mut() {
                *b = r.below(12) as u8; // message type, a few past the last
            }
        },
        targets::sapi_decode,
    );
    eprintln!("sapi_decode: {n} inputs");
}
