//! vcl: a Rust implementation of VPP's VCL (libvppcom) for the VPP v26.06 session ABI.
//!
//! Layers, each using only those below it (see README.md):
//!
//! - `ffi`: the C ABI of vppcom.h (argument checks, panic boundary), over `abi` (every enum
//!   and define of the header, also read by build.rs);
//! - `app`: the process-wide app (attach, workers, detach), reading `config`;
//! - `session`, `epoll`: the session calls and epoll/select/poll, on top of
//! - `wait`: the one wait loop (drain the app mq, re-check, sleep; deadlines and detach);
//! - `worker`: a worker's app socket and queues; it drains its app mq into its session table
//!   and sends to VPP's queues;
//! - `sapi` (the app socket), then `vcl_codec` (wire messages) and `vcl_svm` (shared memory);
//! - `table`: the session table, plain data (sessions, states, fifos, attribute state, epoll
//!   registrations and ready queues) that every layer above reads and writes; it imports
//!   nothing of the crate but `error`.
//!
//! `config` (vcl.conf and the environment) is read by `ffi` at app create and by `app` and
//! `sapi`; `error` and `logging` are used throughout. The VPP behaviour the code relies on is
//! written down in docs/wire.md.

pub(crate) mod abi;
pub mod api;
pub(crate) mod app;
pub(crate) mod config;
pub(crate) mod epoll;
pub(crate) mod error;
pub mod ffi;
pub(crate) mod logging;
pub(crate) mod sapi;
pub(crate) mod session;
pub(crate) mod table;
pub(crate) mod wait;
pub(crate) mod worker;

pub use vcl_codec as codec;
pub use vcl_svm as svm;

/// What the integration tests in tests/ reach inside the library. Not an API: everything else
/// stays crate-private, so rustc reports what nothing uses.
#[doc(hidden)]
pub mod testing {
    pub mod app {
        pub use crate::app::{
            add_cert_key_pair, create, del_cert_key_pair, destroy, is_attached, register_worker,
            set_current_worker, unregister_worker, CreateError,
        };
    }
    pub mod config {
        pub use crate::config::{Config, SapiAddr};
    }
    pub mod sapi {
        pub use crate::sapi::MAX_PENDING_FDS;
    }
    pub mod session {
        pub use crate::table::{parse_handle, FifoRef, Fifos, State};
    }
    pub mod worker {
        pub use crate::worker::{current, current_index, Worker};
    }
}
