//! Seeded random corruption of segment, slice, fifo and chunk headers followed by every fifo
//! and segment operation: errors are fine, panics and hangs are not. The same harness backs the
//! cargo-fuzz target in `crates/svm/fuzz`.

#[path = "../fuzz/common.rs"]
mod common;
mod watchdog;

use std::time::{Duration, Instant};

const ROUNDS: u64 = if cfg!(debug_assertions) {
    2_000
} else {
    10_000
};

#[test]
fn random_corruptions_never_panic_or_hang() {
    // every round on a watchdog thread: a hang fails the test (a round's time is also checked)
    watchdog::within(Duration::from_secs(600), "corruption rounds", || {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut bytes = vec![0u8; 256];
        for round in 0..ROUNDS {
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let (seg, fifos) = common::fixture();
            let mut inp = common::Input::new(&bytes);
            common::corrupt(&seg, &fifos, &mut inp);
            let start = Instant::now();
            common::exercise(&seg, &fifos, &mut inp);
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "round {round} took {:?}",
                start.elapsed()
            );
        }
    });
}
