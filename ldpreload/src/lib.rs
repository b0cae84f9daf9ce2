//! libvcl_ldpreload.so: unmodified socket programs on VPP's host stack.
//!
//! Preloaded (`LD_PRELOAD`), this object interposes the C library's socket, I/O, poll, select
//! and epoll calls. AF_INET/AF_INET6 stream sockets become VCL sessions (through the library's
//! Rust API, [`vcl::api`]); every other descriptor goes straight to the C library. See the
//! README's "LD_PRELOAD" section for the fd, wait and thread model.
// The whole crate is an FFI layer: it exports C entry points and calls the C library through
// raw pointers the caller hands in. Every unsafe block still states why it is sound.
#![allow(unsafe_code)]

mod addr;
mod calls;
mod epoll;
mod epset;
mod fdtab;
mod fork;
mod fork_hooks;
mod init;
mod io;
mod opts;
mod poll;
mod real;
mod sock;
mod spin;
mod udp;
mod wake;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `f`; a panic (a bug) becomes `fail` with errno EIO instead of unwinding into C.
pub(crate) fn guard<T>(fail: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            real::set_errno(libc::EIO);
            fail
        }
    }
}

/// A result as C returns it: the value, or -1 with errno set.
pub(crate) fn ret<T: TryFrom<i8>>(r: Result<T, i32>) -> T
where
    <T as TryFrom<i8>>::Error: std::fmt::Debug,
{
    match r {
        Ok(v) => v,
        Err(e) => {
            real::set_errno(e);
            T::try_from(-1).expect("-1 fits")
        }
    }
}
