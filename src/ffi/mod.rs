//! The C ABI of vppcom.h: one file per group of exports.
//!
//! Every export is a panic boundary (`guard`) around argument checks and one call into the
//! layer below; a panic never unwinds into C, it becomes the return type's failure value
//! (`OnPanic`: VPPCOM_EFAULT for an `int`) and one error log line. Caller pointers become
//! references and slices only through `ptr`.
//!
//! `unsafe` is allowed in this module only: it is where C hands us raw pointers, and
//! `#[no_mangle]` exports count as unsafe code too.
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

pub mod types;

mod app;
mod attr;
mod epoll;
mod ext;
mod fork;
mod io;
mod misc;
mod ptr;
mod session;
mod vppinfra;
mod worker;

pub use crate::abi::*;
pub(crate) use fork::install_fork_handlers;
pub use types::*;

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What an export returns when its body panicked, derived from its return type (the model is
/// rustls-ffi's `PanicOrDefault`). An export whose failure value differs uses [`guard_or`].
pub(crate) trait OnPanic {
    fn on_panic() -> Self;
}

/// Status and handle returns: an internal error is VPPCOM_EFAULT.
impl OnPanic for c_int {
    fn on_panic() -> Self {
        VPPCOM_EFAULT
    }
}

/// `void` exports: nothing to report.
impl OnPanic for () {
    fn on_panic() {}
}

/// Run an export's body, turning a panic into its return type's failure value (logged once).
pub(crate) fn guard<T: OnPanic>(name: &str, f: impl FnOnce() -> T) -> T {
    guard_or(name, T::on_panic(), f)
}

/// [`guard`] for the few exports whose failure value is their own (upstream's -1, 1, or a
/// static string): `on_panic` is returned instead.
pub(crate) fn guard_or<T>(name: &str, on_panic: T, f: impl FnOnce() -> T) -> T {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_return_types_failure_value() {
        assert_eq!(
            guard("t", || -> c_int { panic!("int export") }),
            VPPCOM_EFAULT
        );
        guard("t", || -> () { panic!("void export") });
        assert_eq!(guard_or("t", -1, || -> c_int { panic!("override") }), -1);
        assert_eq!(guard("t", || 7), 7);
    }
}
