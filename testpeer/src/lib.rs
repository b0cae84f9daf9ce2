//! A test peer that plays VPP v26.06's session layer towards VCL-style clients, so the real wire
//! protocol can be exercised without VPP: the app socket API (sapi) on a SOCK_SEQPACKET socket,
//! memfd fifo segments, the app and VPP message queues, and the control plane of attaching
//! (attach, worker add/delete, cert/key pairs, segment add/delete, APP_DETACH).
//!
//! Behaviour follows VPP v26.06's sources; each handler names the VPP file and function it
//! reproduces. Indices and handles come from pools with VPP's reuse order, so a client sees the
//! numbers VPP would hand out.
//!
//! Modules. [`peer`] starts the threads and nothing imports it; the threads share only
//! [`shared`]. VPP's state (`State`, one struct under one lock, as VPP's
//! barrier) is defined in `vpp::state` and extended by `impl State` blocks in the handler
//! modules (`vpp::app`, `session`, `transport`, `ct`, `quic`), each next to the VPP code it
//! mirrors. The data they act on (`vpp::sessions`, `vpp::kinds`) sits with the state, below
//! them: the handlers import it, never the other way round.
//! * [`peer`]: [`Peer`] — start/stop, introspection, segment add/delete; [`shared`]: what the
//!   threads share.
//! * `sapi`: the sapi thread (`sapi::socket`: its socket plumbing).
//! * `vpp`: the emulated VPP threads (`vpp::thread`, dispatch of mq messages), VPP's object
//!   model (`vpp::state`; sessions and listeners in `vpp::sessions`, what carries each session
//!   in `vpp::kinds`), the sapi request handlers (`vpp::app`), segment managers
//!   (`vpp::segment_manager`) and the shared-memory layout (`vpp::segments`).
//! * `events`: queued worker events, built into session and segment messages and delivered
//!   to app mqs.
//! * `session`: the session state machine; `session::fifos` (fifo allocation),
//!   `session::listen` (LISTEN/UNLISTEN), `session::api` (the other session messages from
//!   apps), `session::secure` (TLS, DTLS and QUIC checks).
//! * `transport`: TCP sessions on kernel loopback sockets; `transport::io`, the I/O thread.
//! * `ct`: cut-through sessions between apps; `quic`: QUIC modelled on cut-through pairs.
//! * `faults`: segment corruption for tests.
//! * [`config`]: [`PeerConfig`], [`Faults`], socket addresses; [`log`]: the message log;
//!   [`pool`]: vppinfra-style pools.

pub mod config;
pub mod log;
pub mod peer;
pub mod pool;
pub mod shared;

mod ct;
mod events;
mod faults;
mod quic;
mod sapi;
mod session;
mod transport;
mod vpp;

pub use config::{Corruption, Faults, PeerConfig, SockAddr};
pub use log::{Dir, LogEntry, MsgKind};
pub use peer::{AppInfo, Peer, WorkerInfo};
pub use session::api::SessionInfo;
pub use vpp::segments::{mqs_segment_size, page_size, sm_segment_size};
