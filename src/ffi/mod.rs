//! The C ABI of vppcom.h: one file per group of exports.
//!
//! Every export is a panic boundary ([`guard`]) around argument checks and one call into the
//! layer below; a panic never unwinds into C, it becomes VPPCOM_EFAULT (or the function's own
//! failure value) and one error log line.
#![allow(non_camel_case_types)]

pub mod types;

mod app;
mod attr;
mod epoll;
mod ext;
mod io;
mod misc;
mod session;
mod worker;

pub use crate::abi::*;
pub use types::*;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run an export's body, turning a panic into `on_panic` (logged once).
pub(crate) fn guard<T>(name: &str, on_panic: T, f: impl FnOnce() -> T) -> T {
    crate::logging::init();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            let why = e
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!("{name}: internal error (panic: {why}); returning failure");
            on_panic
        }
    }
}

/// Map an internal result to the C return value.
pub(crate) fn rv(r: crate::error::Result<i32>) -> i32 {
    r.unwrap_or_else(|e| e.code())
}

/// Session calls need this thread's worker; without one the handle names no session.
pub(crate) fn no_worker() -> crate::error::Error {
    tracing::debug!("no VCL worker on this thread (app not attached or thread not registered)");
    crate::error::Error::BadFd
}
