//! VPP's object model and its main-thread side: the state under VPP's barrier lock
//! ([`state`]) with its sessions ([`sessions`]) and what carries each ([`kinds`]), the sapi
//! request handlers ([`app`]), segment managers ([`segment_manager`]), the shared-memory layout
//! of segments and queues ([`segments`]), and the emulated VPP threads that consume the vpp mqs
//! ([`thread`]). The session handlers (`session`, `transport`, `ct`, `quic`, `events`) import
//! the object model and it imports none of them: data sits below the behaviour that acts on it.

pub mod app;
pub mod kinds;
pub mod segment_manager;
pub mod segments;
pub mod sessions;
pub mod state;
pub mod thread;
