//! Logging: `VCL_DEBUG=N` (or vppcom_cfg_t.debug_level) picks the tracing level on stderr.
//!
//! 0 or unset: errors only (a quiet run prints nothing), 1: warnings and info, 2: debug,
//! 3 and up: trace (every message to and from VPP).

use std::sync::OnceLock;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::{layer::SubscriberExt, reload, util::SubscriberInitExt, Registry};

type Handle = reload::Handle<LevelFilter, Registry>;

static HANDLE: OnceLock<Option<Handle>> = OnceLock::new();

/// The tracing level for a VCL debug level.
pub fn level_for(debug: u32) -> LevelFilter {
    match debug {
        0 => LevelFilter::ERROR,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

fn env_debug() -> u32 {
    std::env::var("VCL_DEBUG")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Install our stderr subscriber once (unless the host program installed its own).
pub fn init() {
    HANDLE.get_or_init(|| {
        let (filter, handle) = reload::Layer::new(level_for(env_debug()));
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_thread_ids(true);
        Registry::default()
            .with(filter)
            .with(fmt)
            .try_init()
            .ok()
            .map(|_| handle)
    });
}

/// Raise or lower the level (config's debug level; VCL_DEBUG in the environment wins if higher).
pub fn set_debug(debug: u32) {
    init();
    if let Some(Some(h)) = HANDLE.get() {
        let _ = h.modify(|f| *f = level_for(debug.max(env_debug())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_levels_map_to_tracing_levels() {
        assert_eq!(level_for(0), LevelFilter::ERROR);
        assert_eq!(level_for(1), LevelFilter::INFO);
        assert_eq!(level_for(2), LevelFilter::DEBUG);
        assert_eq!(level_for(9), LevelFilter::TRACE);
    }
}
