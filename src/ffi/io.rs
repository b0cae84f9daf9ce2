//! Data exports: read/write, datagram send/receive and zero-copy segments.

use std::ffi::{c_int, c_void};

use super::session::call;
use super::types::{vppcom_data_segment_t, vppcom_endpt_t};
use super::{guard, rv, VPPCOM_EAFNOSUPPORT, VPPCOM_EFAULT, VPPCOM_OK};

/// Read up to `n` bytes; 0 on orderly close, VPPCOM_EAGAIN when non-blocking and empty.
#[no_mangle]
pub extern "C" fn vppcom_session_read(session_handle: u32, buf: *mut c_void, n: usize) -> c_int {
    guard("vppcom_session_read", VPPCOM_EFAULT, || {
        if buf.is_null() {
            return VPPCOM_EFAULT;
        }
        let _ = n;
        rv(call(session_handle))
    })
}

fn write_common(session_handle: u32, buf: *mut c_void, n: usize) -> c_int {
    if buf.is_null() {
        return VPPCOM_EFAULT;
    }
    let _ = n;
    rv(call(session_handle))
}

/// Write up to `n` bytes; returns how many were queued.
#[no_mangle]
pub extern "C" fn vppcom_session_write(session_handle: u32, buf: *mut c_void, n: usize) -> c_int {
    guard("vppcom_session_write", VPPCOM_EFAULT, || {
        write_common(session_handle, buf, n)
    })
}

/// Write one message: all `n` bytes or nothing.
#[no_mangle]
pub extern "C" fn vppcom_session_write_msg(
    session_handle: u32,
    buf: *mut c_void,
    n: usize,
) -> c_int {
    guard("vppcom_session_write_msg", VPPCOM_EFAULT, || {
        write_common(session_handle, buf, n)
    })
}

/// Receive (flags 0 or MSG_PEEK), filling `ep` with the peer for datagram sessions.
#[no_mangle]
pub extern "C" fn vppcom_session_recvfrom(
    session_handle: u32,
    buffer: *mut c_void,
    buflen: u32,
    flags: c_int,
    ep: *mut vppcom_endpt_t,
) -> c_int {
    guard("vppcom_session_recvfrom", VPPCOM_EFAULT, || {
        if flags != 0 && flags & libc::MSG_PEEK == 0 {
            tracing::debug!("recvfrom: unsupported flags {flags:#x}");
            return VPPCOM_EAFNOSUPPORT;
        }
        let _ = ep;
        vppcom_session_read(session_handle, buffer, buflen as usize)
    })
}

/// Send to `ep` (datagram sessions) or to the connected peer.
#[no_mangle]
pub extern "C" fn vppcom_session_sendto(
    session_handle: u32,
    buffer: *mut c_void,
    buflen: u32,
    flags: c_int,
    ep: *mut vppcom_endpt_t,
) -> c_int {
    guard("vppcom_session_sendto", VPPCOM_EFAULT, || {
        // Upstream looks the session up first, then checks the endpoint, then writes.
        let _ = (buflen, flags, ep);
        match call(session_handle) {
            Err(e) => e.code(),
            Ok(_) => write_common(session_handle, buffer, buflen as usize),
        }
    })
}

/// Zero-copy read: point `ds` at up to `max_bytes` of received data without consuming it.
#[no_mangle]
pub extern "C" fn vppcom_session_read_segments(
    session_handle: u32,
    ds: *mut vppcom_data_segment_t,
    n_segments: u32,
    max_bytes: u32,
) -> c_int {
    guard("vppcom_session_read_segments", VPPCOM_EFAULT, || {
        let _ = (ds, n_segments, max_bytes);
        rv(call(session_handle))
    })
}

/// Write the bytes described by `n_segments` segments, as one message for datagrams.
#[no_mangle]
pub extern "C" fn vppcom_session_write_segments(
    session_handle: u32,
    ds: *mut vppcom_data_segment_t,
    n_segments: u32,
) -> c_int {
    guard("vppcom_session_write_segments", VPPCOM_EFAULT, || {
        // SAFETY: ds is NULL or points at n_segments >= 1 caller-owned segments, per vppcom.h.
        let first = match unsafe { ds.as_ref() } {
            None => return VPPCOM_EFAULT,
            Some(first) => first,
        };
        if first.len == 0 {
            return VPPCOM_OK; // upstream accepts a zero-length write and does nothing
        }
        let _ = n_segments;
        rv(call(session_handle))
    })
}

/// Consume `n_bytes` previously returned by vppcom_session_read_segments.
#[no_mangle]
pub extern "C" fn vppcom_session_free_segments(session_handle: u32, n_bytes: u32) {
    guard("vppcom_session_free_segments", (), || {
        let _ = (n_bytes, call(session_handle));
    })
}
