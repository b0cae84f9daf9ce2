//! The cargo-fuzz targets' bodies (crates/svm/fuzz/targets.rs) on stable: a seeded random
//! driver feeds each for a bounded time (VCL_FUZZ_SECS, default 4 s, at least 200 inputs), on
//! a watchdog thread so a hang fails the test. CI builds, lints and runs them this way.

#[path = "../fuzz/common.rs"]
mod common;
#[path = "../fuzz/targets.rs"]
mod targets;
mod watchdog;

use std::time::{Duration, Instant};

fn budget() -> Duration {
    let secs = std::env::var("VCL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    Duration::from_secs_f64(secs)
}

/// Feed `target` random inputs of up to `max_len` bytes until the budget is spent.
fn drive(name: &'static str, seed: u64, max_len: usize, target: fn(&[u8])) {
    let n = watchdog::within(Duration::from_secs(300), name, move || {
        let (mut x, mut buf, mut n) = (seed, Vec::new(), 0u64);
        let (t, budget) = (Instant::now(), budget());
        while n < 200 || t.elapsed() < budget {
            buf.clear();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % max_len as u64) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            target(&buf);
            n += 1;
        }
        n
    });
    eprintln!("{name}: {n} inputs");
}

#[test]
fn mq_attach_on_random_inputs() {
    drive("mq_attach", 0x9e37_79b9_7f4a_7c15, 300, targets::mq_attach);
}

#[test]
fn fifo_segment_map_on_random_inputs() {
    drive(
        "fifo_segment_map",
        0x2545_f491_4f6c_dd1d,
        400,
        targets::fifo_segment_map,
    );
}
