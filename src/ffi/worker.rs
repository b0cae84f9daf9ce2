//! Worker exports: register/unregister a thread, worker index, the worker's mq epoll fd.

use std::ffi::c_int;

use super::{guard, VPPCOM_EEXIST, VPPCOM_EFAULT, VPPCOM_ENOTSUP};
use crate::worker;

/// Register the calling thread as a new VCL worker (its own socket and app mq).
#[no_mangle]
pub extern "C" fn vppcom_worker_register() -> c_int {
    guard("vppcom_worker_register", VPPCOM_EFAULT, || {
        if !crate::app::is_attached() {
            tracing::error!("vppcom_worker_register: the app is not attached to VPP");
        }
        VPPCOM_EEXIST // upstream's code for any failure to add a worker
    })
}

/// Unregister the calling thread's worker.
#[no_mangle]
pub extern "C" fn vppcom_worker_unregister() {
    guard("vppcom_worker_unregister", (), || {
        worker::set_current_index(worker::INVALID)
    })
}

/// The calling thread's worker index (-1 when it has none).
#[no_mangle]
pub extern "C" fn vppcom_worker_index() -> c_int {
    guard("vppcom_worker_index", -1, || {
        worker::current_index() as c_int
    })
}

/// Point the calling thread at worker `index`.
#[no_mangle]
pub extern "C" fn vppcom_worker_index_set(index: c_int) {
    guard("vppcom_worker_index_set", (), || {
        worker::set_current_index(index as u32)
    })
}

/// The epoll fd watching this worker's message queue eventfds (-1 without use-mq-eventfd).
#[no_mangle]
pub extern "C" fn vppcom_worker_mqs_epfd() -> c_int {
    guard("vppcom_worker_mqs_epfd", -1, || -1)
}

/// The worker's mqs epoll fd (upstream returns it whether or not eventfds are in use).
#[no_mangle]
pub extern "C" fn vppcom_mq_epoll_fd() -> c_int {
    guard("vppcom_mq_epoll_fd", -1, || -1)
}

/// 1 if the worker lost its connection to VPP; VPPCOM_ENOTSUP without use-mq-eventfd.
#[no_mangle]
pub extern "C" fn vppcom_worker_is_detached() -> c_int {
    guard("vppcom_worker_is_detached", VPPCOM_EFAULT, || {
        if worker::has_current() {
            0
        } else {
            VPPCOM_ENOTSUP
        }
    })
}
