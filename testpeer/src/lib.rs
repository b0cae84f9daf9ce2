//! A test peer that plays VPP v26.06's session layer towards VCL-style clients, so the real wire
//! protocol can be exercised without VPP: the app socket API (sapi) on a SOCK_SEQPACKET socket,
//! memfd fifo segments, the app and VPP message queues, and the control plane of attaching
//! (attach, worker add/delete, cert/key pairs, segment add/delete, APP_DETACH).
//!
//! Behaviour follows VPP v26.06's sources; each handler names the VPP file and function it
//! reproduces. Indices and handles come from pools with VPP's reuse order, so a client sees the
//! numbers VPP would hand out.
//!
//! Modules:
//! * [`config`]: [`PeerConfig`], [`Faults`], socket addresses.
//! * [`peer`]: [`Peer`] — start/stop, introspection, segment add/delete.
//! * `sapi` / `sapi_io`: the sapi thread and socket plumbing.
//! * `vpp_thread`: one consumer loop per emulated VPP thread (dispatch of mq messages).
//! * `events`: delivery of queued events to app mqs.
//! * `state` / `app` / `sm` / `segments`: VPP's object model, request handlers, segment
//!   managers and shared-memory layout.
//! * `session` / `fifos` / `sess_evts`: sessions, listeners, the session state machine, fifo
//!   allocation and the delivery of session events to apps.
//! * `listen` / `sess_api`: LISTEN/UNLISTEN and the other session messages from apps.
//! * `transport` / `io`: TCP sessions on kernel loopback sockets and the I/O thread.
//! * `ct`: cut-through sessions between apps.
//! * [`log`]: the message log.

pub mod config;
pub mod log;
pub mod peer;
pub mod pool;

mod app;
mod ct;
mod events;
mod faults;
mod fifos;
mod io;
mod listen;
mod sapi;
mod sapi_io;
mod segments;
mod sess_api;
mod sess_evts;
mod session;
mod sm;
mod state;
mod transport;
mod vpp_thread;

pub use config::{Corruption, Faults, PeerConfig, SockAddr};
pub use log::{Dir, LogEntry, MsgKind};
pub use peer::{AppInfo, Peer, WorkerInfo};
pub use segments::{mqs_segment_size, page_size, sm_segment_size};
pub use sess_api::SessionInfo;
