//! Sessions: the per-session state machine of upstream VCL v26.06 (create, bind, listen,
//! accept, connect, read, write, shutdown, close), driven by the calls of the app and by the
//! events VPP puts on the worker's app message queue. The state itself is in
//! [`crate::table`]; waiting is [`crate::wait`]'s; the events are applied by the worker.

pub mod attr;
mod dgram;
mod io;
mod ops;
mod ready;
mod secure;

pub(crate) use dgram::next_dgram_len as dgram_next_len;
pub(crate) use dgram::set_remote as dgram_set_remote;
pub use io::*;
pub use ops::*;
pub(crate) use ready::{read_ready, readiness, write_ready};
pub(crate) use secure::{accepts, place_ext_config};
pub use secure::{is_connectable_listener, stream_connect};

pub use crate::table::{handle, Endpoint, Session, Sessions, State};
