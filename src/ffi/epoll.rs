//! Event-wait exports: vppcom_epoll_*, vppcom_select, vppcom_poll.

use std::ffi::c_int;

use super::ptr::{opt_ref, out_slice};
use super::session::with_worker;
use super::types::{vcl_poll_t, vcl_si_set};
use super::{guard, VPPCOM_EFAULT, VPPCOM_EINVAL};
use crate::epoll;
use crate::error::Error;
use crate::table::Events;

/// `struct epoll_event` from <sys/epoll.h> (the header names it so through cbindgen's rename).
pub type EpollEvent = libc::epoll_event;

/// Most events one epoll_wait call gathers (the caller's array may be longer).
const MAX_BATCH: usize = 1024;
/// Batches up to this many events need no allocation.
const SMALL_BATCH: usize = 64;

/// Create an epoll session; returns its handle.
#[no_mangle]
pub extern "C" fn vppcom_epoll_create() -> c_int {
    guard("vppcom_epoll_create", || {
        with_worker(|w| epoll::create(w).map(|h| h as i32))
    })
}

/// Add, modify or delete `session_handle` in the epoll session `vep_handle`.
#[no_mangle]
pub extern "C" fn vppcom_epoll_ctl(
    vep_handle: u32,
    op: c_int,
    session_handle: u32,
    event: *mut EpollEvent,
) -> c_int {
    guard("vppcom_epoll_ctl", || {
        if vep_handle == session_handle {
            tracing::debug!("epoll_ctl: vep handle {vep_handle} == session handle");
            return VPPCOM_EINVAL;
        }
        // SAFETY: event is NULL or points at a caller-owned struct epoll_event.
        let ev =
            unsafe { opt_ref(event.cast_const()) }.map(|e| (Events::from_bits(e.events), e.u64));
        with_worker(|w| epoll::ctl(w, vep_handle, op, session_handle, ev).map(|_| 0))
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
    guard("vppcom_epoll_wait", || {
        if maxevents <= 0 {
            tracing::debug!("epoll_wait: invalid maxevents {maxevents}");
            return VPPCOM_EINVAL;
        }
        let n_max = (maxevents as usize).min(MAX_BATCH);
        // SAFETY: events is NULL or points at maxevents >= n_max entries the caller lets us
        // fill, per vppcom.h.
        let Some(out) = (unsafe { out_slice(events, n_max) }) else {
            return VPPCOM_EFAULT;
        };
        // a small batch on the stack (zeroing MAX_BATCH entries per call cost more than the
        // wait), a larger one on the heap
        let mut small = [(Events::NONE, 0u64); SMALL_BATCH];
        let mut large = Vec::new();
        let buf = if n_max <= SMALL_BATCH {
            &mut small[..n_max]
        } else {
            large.resize(n_max, (Events::NONE, 0u64));
            &mut large[..]
        };
        with_worker(|w| {
            let n = epoll::wait(w, vep_handle, buf, wait_for_time)?;
            for (o, (bits, data)) in out.iter_mut().zip(&buf[..n]) {
                o.events = bits.bits();
                o.u64 = *data;
            }
            Ok(n as i32)
        })
    })
}

/// select(2) over session indices as bit positions.
#[no_mangle]
pub extern "C" fn vppcom_select(
    n_bits: c_int,
    read_map: *mut vcl_si_set,
    write_map: *mut vcl_si_set,
    except_map: *mut vcl_si_set,
    wait_for_time: f64,
) -> c_int {
    guard("vppcom_select", || {
        if n_bits < 0 {
            return VPPCOM_EINVAL;
        }
        let words = (n_bits as usize).div_ceil(u64::BITS as usize);
        let map = |p: *mut vcl_si_set| {
            // SAFETY: a map is NULL or holds at least n_bits bits the caller lets us rewrite,
            // per vppcom.h; the three maps are distinct (select(2)'s contract).
            unsafe { out_slice(p, words) }.filter(|m| !m.is_empty())
        };
        let maps = [map(read_map), map(write_map), map(except_map)];
        with_worker(|w| epoll::select(w, maps, wait_for_time, w.uses_eventfd()).map(|n| n as i32))
    })
}

/// poll(2) over `n_sids` sessions, waiting up to `wait_for_time` seconds.
#[no_mangle]
pub extern "C" fn vppcom_poll(vp: *mut vcl_poll_t, n_sids: u32, wait_for_time: f64) -> c_int {
    guard("vppcom_poll", || {
        // SAFETY: vp is NULL or points at n_sids entries the caller lets us update, per vppcom.h.
        let Some(vp) = (unsafe { out_slice(vp, n_sids as usize) }) else {
            return VPPCOM_EFAULT;
        };
        let mut fds: Vec<(u32, i16, i16)> = vp.iter().map(|p| (p.sh, p.events, 0)).collect();
        let rv = with_worker(|w| epoll::poll(w, &mut fds, wait_for_time).map(|n| n as i32));
        if rv < 0 && rv == Error::BadFd.code() && n_sids > 0 {
            return rv;
        }
        for (p, f) in vp.iter_mut().zip(&fds) {
            p.revents = f.2;
        }
        rv
    })
}
