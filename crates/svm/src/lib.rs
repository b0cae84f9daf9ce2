//! Shared memory of VPP v26.06's session layer, usable from the app side (the library) and from
//! VPP's side (the test peer): memfd segments, fifos and message queues.
//!
//! Everything in a segment is reachable only through [`segment::Segment`]'s bounds-checked offset
//! translation: offsets and lengths read from shared memory are untrusted.

mod chunk;
mod copy;
pub mod fdpass;
pub mod fifo;
pub mod fifo_segment;
pub mod mq;
pub mod segment;
mod shared;
pub mod sync;

pub use segment::{Segment, SvmError};
