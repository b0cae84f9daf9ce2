//! The session layer's objects (session.c / session_types.h): sessions in per-thread pools
//! (handle = `thread << 32 | index`, listeners on thread 0 like `listen_session_alloc (0, ..)`),
//! app listeners (application.c `app_listener_t`) and the lookup tables. Plain data, held by
//! the state; the state machine that drives it is the `session` module.

use std::collections::HashMap;

use vcl_codec::msg::TransportEndpoint;

use crate::pool::Pool;
use crate::vpp::kinds::{HalfOpen, Kind};
use crate::vpp::segment_manager::FifoLoc;

/// `session_state_t`, in VPP's order (comparisons matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SessState {
    Created,
    Listening,
    Connecting,
    Accepting,
    Ready,
    Opened,
    TransportClosing,
    Closing,
    AppClosed,
    TransportClosed,
    Closed,
    TransportDeleted,
}

/// `session_t`.
pub struct Session {
    pub thread: u8,
    pub index: u32,
    pub state: SessState,
    /// Global app worker index, `INVALID` once detached
    /// (docs/wire.md#accepted_reply-with-an-error).
    pub app_wrk: u32,
    pub listener_handle: u64,
    /// `SESSION_F_RX_READY`.
    pub rx_ready: bool,
    /// `SESSION_F_APP_CLOSED`.
    pub app_closed: bool,
    /// `SESSION_F_RX_EVT`: an RX notification is queued.
    pub rx_evt: bool,
    /// The fifos' `app_session_index` (what IO events to the app carry).
    pub app_session_index: u32,
    pub rx: Option<FifoLoc>,
    pub tx: Option<FifoLoc>,
    /// Segment manager the fifos came from.
    pub sm: u32,
    pub lcl: TransportEndpoint,
    pub rmt: TransportEndpoint,
    /// App listener index (listeners only).
    pub al: u32,
    pub kind: Kind,
}

impl Session {
    pub fn handle(&self) -> u64 {
        (u64::from(self.thread) << 32) | u64::from(self.index)
    }

    pub fn is_ct(&self) -> bool {
        matches!(self.kind, Kind::Ct(_))
    }
}

/// Key of the lookup tables: (is_ip4, ip, port).
pub type EpKey = (bool, [u8; 16], u16);

/// The crypto a listener was started with (what its handshakes use).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenCrypto {
    pub ckpair: u32,
}

/// `app_listener_t`.
pub struct AppListener {
    pub app_index: u32,
    /// wrk_map_index → listener segment manager of that worker.
    pub workers: std::collections::BTreeMap<u32, u32>,
    pub accept_rotor: u32,
    /// Global-scope listen session handle.
    pub session: Option<u64>,
    /// Local-scope (CT) listen session handle.
    pub local: Option<u64>,
    pub ls_handle: u64,
    /// The transport it listens with, and (TLS/QUIC) its crypto.
    pub proto: vcl_codec::msg::TransportProto,
    pub crypto: ListenCrypto,
}

/// Session layer tables.
#[derive(Default)]
pub struct Sessions {
    /// One pool per VPP thread.
    pub pools: Vec<Pool<Session>>,
    pub listeners: Pool<AppListener>,
    /// Namespace global table (fib 0) and local table: endpoint → listen session handle.
    pub global: HashMap<EpKey, u64>,
    pub local: HashMap<EpKey, u64>,
    /// Round-robin counter for placing new sessions on threads.
    pub n_sessions: u32,
    /// Connection sessions ever allocated: (cut-through, transport). Tests check which kind a
    /// run used; a short run can come and go between two looks at the live sessions.
    pub ever: (u32, u32),
    /// Ephemeral ports handed to local-only listeners bound to port 0.
    pub next_local_port: u16,
    /// CT fifo pairs still referenced: (segment handle, server rx offset) → references.
    pub ct_refs: HashMap<(u64, u64), u8>,
    /// CT segments per (server listener sm, client wrk, server wrk) → segment index.
    pub ct_segs: HashMap<(u32, u32, u32), u32>,
    /// Kernel connects in progress (half-open sessions).
    pub half_opens: Pool<HalfOpen>,
}

pub fn thread_of(h: u64) -> u8 {
    (h >> 32) as u8
}

pub fn index_of(h: u64) -> u32 {
    h as u32
}
