//! [`Shared`]: what the peer's threads share (configuration, the state lock, the stop flag and
//! the vpp mqs). Its own module so the threads need not import [`crate::peer`], which starts
//! them.

use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Mutex, MutexGuard};

use nix::sys::eventfd::EventFd;

use crate::config::PeerConfig;
use crate::vpp::segments::VppMqs;
use crate::vpp::state::State;

/// What the threads share.
pub struct Shared {
    pub cfg: PeerConfig,
    state: Mutex<State>,
    pub stop: AtomicBool,
    /// Wakes the sapi thread out of poll.
    pub wake: EventFd,
    pub vpp_mqs: VppMqs,
    /// Datagrams received over all connections (fault injection).
    pub rx_total: AtomicU32,
}

impl Shared {
    pub fn new(cfg: PeerConfig, state: State, wake: EventFd, vpp_mqs: VppMqs) -> Shared {
        Shared {
            cfg,
            state: Mutex::new(state),
            stop: AtomicBool::new(false),
            wake,
            vpp_mqs,
            rx_total: AtomicU32::new(0),
        }
    }

    /// The state lock (VPP's barrier). A panicked holder does not make the state unusable.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
