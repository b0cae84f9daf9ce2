//! Worker exports: register/unregister a thread, worker index, the worker's mq epoll fd.

use std::ffi::c_int;

use super::{guard, guard_or, VPPCOM_OK};
use crate::{app, worker};

/// Register the calling thread as a new VCL worker (its own socket and app mq).
/// Any failure is VPPCOM_EEXIST, as upstream.
#[no_mangle]
pub extern "C" fn vppcom_worker_register() -> c_int {
    guard("vppcom_worker_register", || match app::register_worker() {
        Ok(_) => VPPCOM_OK,
        Err(_) => super::VPPCOM_EEXIST,
    })
}

/// Unregister the calling thread's worker.
#[no_mangle]
pub extern "C" fn vppcom_worker_unregister() {
    guard("vppcom_worker_unregister", app::unregister_worker)
}

/// The calling thread's worker index (-1 when it has none).
#[no_mangle]
pub extern "C" fn vppcom_worker_index() -> c_int {
    guard_or("vppcom_worker_index", -1, || {
        worker::current_index() as c_int
    })
}

/// Point the calling thread at worker `index`.
#[no_mangle]
pub extern "C" fn vppcom_worker_index_set(index: c_int) {
    guard("vppcom_worker_index_set", || {
        app::set_current_worker(index as u32)
    })
}

/// The epoll fd watching this worker's message queue eventfd (-1 without use-mq-eventfd).
#[no_mangle]
pub extern "C" fn vppcom_worker_mqs_epfd() -> c_int {
    guard_or("vppcom_worker_mqs_epfd", -1, || {
        worker::current().map_or(-1, |w| w.mqs_epfd())
    })
}

/// The worker's mqs epoll fd (upstream returns it whether or not eventfds are in use).
#[no_mangle]
pub extern "C" fn vppcom_mq_epoll_fd() -> c_int {
    guard_or("vppcom_mq_epoll_fd", -1, || {
        worker::current().map_or(-1, |w| w.mqs_epfd())
    })
}

/// 1 if the worker lost its connection to VPP. Upstream answers VPPCOM_ENOTSUP without
/// use-mq-eventfd; we probe the app socket, which works in both modes.
#[no_mangle]
pub extern "C" fn vppcom_worker_is_detached() -> c_int {
    guard("vppcom_worker_is_detached", || {
        worker::current().map_or(1, |w| c_int::from(w.is_detached()))
    })
}
