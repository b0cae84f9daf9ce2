//! The per-thread worker state table: a thread-local worker index into the process's workers.
//!
//! Worker 0 is created by attach; `vppcom_worker_register` adds one per thread. Until the attach
//! machinery exists the table is empty, so every lookup reports "no worker".

use std::cell::Cell;

/// "No worker" (upstream's ~0).
pub const INVALID: u32 = u32::MAX;

thread_local! {
    static INDEX: Cell<u32> = const { Cell::new(INVALID) };
}

/// This thread's worker index, or [`INVALID`].
pub fn current_index() -> u32 {
    INDEX.with(|i| i.get())
}

/// Point this thread at a worker (vppcom_worker_index_set).
pub fn set_current_index(index: u32) {
    INDEX.with(|i| i.set(index));
}

/// Whether this thread has a live worker (registered and attached).
pub fn has_current() -> bool {
    // The table is empty until attach lands: no index names a live worker yet.
    false
}
