//! vcl: a Rust implementation of VPP's VCL (libvppcom) for the VPP v26.06 session ABI.
//!
//! Layers, each depending only on those below (see README.md):
//! `ffi` (the C ABI) -> `session`/`epoll` -> `worker` -> `sapi` -> codec (`vcl_codec`)
//! -> shared memory (`vcl_svm`) ; `config` is read by `ffi` at app create.

pub mod api;
pub mod app;
pub mod config;
pub mod epoll;
pub mod error;
pub mod ffi;
pub mod logging;
pub mod sapi;
pub mod session;
pub mod worker;

pub use vcl_codec as codec;
pub use vcl_svm as svm;
