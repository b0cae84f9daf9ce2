//! VPP's object model and its main-thread side: the state under VPP's barrier lock
//! ([`state`]), the sapi request handlers ([`app`]), segment managers ([`segment_manager`]),
//! the shared-memory layout of segments and queues ([`segments`]), and the emulated VPP
//! threads that consume the vpp mqs ([`thread`]).

pub mod app;
pub mod segment_manager;
pub mod segments;
pub mod state;
pub mod thread;
