//! Event-wait exports: vppcom_epoll_*, vppcom_select, vppcom_poll.

use std::ffi::c_int;

use super::session::call;
use super::types::{vcl_poll_t, vcl_si_set};
use super::{guard, rv, VPPCOM_EFAULT, VPPCOM_EINVAL};

/// `struct epoll_event` from <sys/epoll.h> (the header names it so through cbindgen's rename).
pub type EpollEvent = libc::epoll_event;

/// Create an epoll session; returns its handle.
#[no_mangle]
pub extern "C" fn vppcom_epoll_create() -> c_int {
    guard("vppcom_epoll_create", VPPCOM_EFAULT, || rv(call(u32::MAX)))
}

/// Add, modify or delete `session_handle` in the epoll session `vep_handle`.
#[no_mangle]
pub extern "C" fn vppcom_epoll_ctl(
    vep_handle: u32,
    op: c_int,
    session_handle: u32,
    event: *mut EpollEvent,
) -> c_int {
    guard("vppcom_epoll_ctl", VPPCOM_EFAULT, || {
        if vep_handle == session_handle {
            tracing::debug!("epoll_ctl: vep handle {vep_handle} == session handle");
            return VPPCOM_EINVAL;
        }
        let _ = (op, event);
        rv(call(vep_handle))
    })
}

/// Wait up to `wait_for_time` ms (0: poll, -1: forever) for events on `vep_handle`.
#[no_mangle]
pub extern "C" fn vppcom_epoll_wait(
    vep_handle: u32,
    events: *mut EpollEvent,
    maxevents: c_int,
    wait_for_time: f64,
) -> c_int {
    guard("vppcom_epoll_wait", VPPCOM_EFAULT, || {
        if maxevents <= 0 {
            tracing::debug!("epoll_wait: invalid maxevents {maxevents}");
            return VPPCOM_EINVAL;
        }
        let _ = (events, wait_for_time);
        rv(call(vep_handle))
    })
}

/// select(2) over session handles as bit indices.
#[no_mangle]
pub extern "C" fn vppcom_select(
    n_bits: c_int,
    read_map: *mut vcl_si_set,
    write_map: *mut vcl_si_set,
    except_map: *mut vcl_si_set,
    wait_for_time: f64,
) -> c_int {
    guard("vppcom_select", VPPCOM_EFAULT, || {
        if n_bits < 0 {
            return VPPCOM_EINVAL;
        }
        let _ = (read_map, write_map, except_map, wait_for_time);
        rv(call(u32::MAX))
    })
}

/// poll(2) over `n_sids` sessions, waiting up to `wait_for_time` seconds.
#[no_mangle]
pub extern "C" fn vppcom_poll(vp: *mut vcl_poll_t, n_sids: u32, wait_for_time: f64) -> c_int {
    guard("vppcom_poll", VPPCOM_EFAULT, || {
        if vp.is_null() {
            return VPPCOM_EFAULT;
        }
        let _ = (n_sids, wait_for_time);
        rv(call(u32::MAX))
    })
}
