//! Data exports: read/write, datagram send/receive and zero-copy segments.

use std::ffi::{c_int, c_void};

use super::ptr::{in_slice, out_slice};
use super::session::{endpoint_in, endpoint_out, with_worker};
use super::types::{vppcom_data_segment_t, vppcom_endpt_t};
use super::{guard, VPPCOM_EAFNOSUPPORT, VPPCOM_EFAULT, VPPCOM_OK};
use crate::error::Error;
use crate::session;

fn read_common(session_handle: u32, buf: *mut c_void, n: usize, peek: bool) -> c_int {
    // SAFETY: buf is NULL or points at n bytes the caller lets us write, per vppcom.h; the
    // slice lives for this call only.
    let Some(b) = (unsafe { out_slice(buf.cast::<u8>(), n.min(i32::MAX as usize)) }) else {
        return VPPCOM_EFAULT;
    };
    with_worker(|w| session::read(w, session_handle, b, peek).map(|n| n as i32))
}

/// Read up to `n` bytes; 0 on orderly close, VPPCOM_EAGAIN when non-blocking and empty.
#[no_mangle]
pub extern "C" fn vppcom_session_read(session_handle: u32, buf: *mut c_void, n: usize) -> c_int {
    guard("vppcom_session_read", || {
        read_common(session_handle, buf, n, false)
    })
}

/// Upstream's order: an unknown session is EBADFD, a zero-length write is 0, then a NULL
/// buffer is EFAULT.
/// `buf` is only promised readable (vppcom.h types it `void *` all the same).
#[inline]
fn write_common(session_handle: u32, buf: *const c_void, n: usize, flush: bool) -> c_int {
    with_worker(|w| {
        // the common case (bytes from a real buffer) leaves the lookup to the write itself
        if n == 0 || buf.is_null() {
            session::lookup(w, &w.sessions.lock(), session_handle)?;
        }
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: buf is NULL or points at n readable bytes, per vppcom.h; the slice lives
        // for this call only.
        let b =
            unsafe { in_slice(buf.cast::<u8>(), n.min(i32::MAX as usize)) }.ok_or(Error::Fault)?;
        session::write(w, session_handle, b, flush).map(|n| n as i32)
    })
}

/// Write up to `n` bytes; returns how many were queued.
#[no_mangle]
pub extern "C" fn vppcom_session_write(session_handle: u32, buf: *mut c_void, n: usize) -> c_int {
    guard("vppcom_session_write", || {
        write_common(session_handle, buf, n, false)
    })
}

/// Write one message (TX_FLUSH: VPP sends it without waiting for more).
#[no_mangle]
pub extern "C" fn vppcom_session_write_msg(
    session_handle: u32,
    buf: *mut c_void,
    n: usize,
) -> c_int {
    guard("vppcom_session_write_msg", || {
        write_common(session_handle, buf, n, true)
    })
}

/// Receive (flags 0 or MSG_PEEK), filling `ep` with the peer's address.
#[no_mangle]
pub extern "C" fn vppcom_session_recvfrom(
    session_handle: u32,
    buffer: *mut c_void,
    buflen: u32,
    flags: c_int,
    ep: *mut vppcom_endpt_t,
) -> c_int {
    guard("vppcom_session_recvfrom", || {
        let peek = match flags {
            0 => false,
            f if f & libc::MSG_PEEK != 0 => true,
            f => {
                tracing::debug!("recvfrom: unsupported flags {f:#x}");
                return VPPCOM_EAFNOSUPPORT;
            }
        };
        let rv = read_common(session_handle, buffer, buflen as usize, peek);
        if rv > 0 && !ep.is_null() {
            with_worker(|w| {
                let ss = w.sessions.lock();
                let i = session::lookup(w, &ss, session_handle)?;
                endpoint_out(ep, &ss.get(i).expect("found").rmt);
                Ok(0)
            });
        }
        rv
    })
}

/// Send one message (TX_FLUSH). With `ep`, only on a connectionless UDP session (else
/// EINVAL, upstream): `ep` becomes its remote and the session is bound in VPP if it was not.
#[no_mangle]
pub extern "C" fn vppcom_session_sendto(
    session_handle: u32,
    buffer: *mut c_void,
    buflen: u32,
    flags: c_int,
    ep: *mut vppcom_endpt_t,
) -> c_int {
    guard("vppcom_session_sendto", || {
        let _ = flags; // upstream ignores them too
        let looked_up = with_worker(|w| {
            session::lookup(w, &w.sessions.lock(), session_handle)?;
            if !ep.is_null() {
                let rmt = endpoint_in(ep).ok_or(Error::Inval)?;
                session::dgram_set_remote(w, session_handle, rmt)?;
            }
            Ok(0)
        });
        if looked_up < 0 {
            return looked_up;
        }
        write_common(session_handle, buffer, buflen as usize, true)
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
    guard("vppcom_session_read_segments", || {
        // SAFETY: ds is NULL or points at n_segments segments the caller lets us fill.
        let out = match unsafe { out_slice(ds, n_segments as usize) } {
            Some(out) if !out.is_empty() => out,
            // Upstream's codes when it has nothing to show (EBADFD, ENOTCONN, EWOULDBLOCK...);
            // EFAULT where upstream would write through the NULL vector.
            _ => {
                return with_worker(|w| {
                    let mut segs = [(std::ptr::null_mut::<u8>(), 0u32); 2];
                    session::read_segments(w, session_handle, &mut segs, max_bytes)?;
                    Ok(VPPCOM_EFAULT)
                })
            }
        };
        with_worker(|w| {
            let mut segs = [(std::ptr::null_mut::<u8>(), 0u32); 2];
            let n = session::read_segments(w, session_handle, &mut segs, max_bytes)?;
            for (o, (p, len)) in out.iter_mut().zip(segs) {
                o.data = p;
                o.len = len;
            }
            Ok(n as i32)
        })
    })
}

/// Write the bytes described by `n_segments` segments.
#[no_mangle]
pub extern "C" fn vppcom_session_write_segments(
    session_handle: u32,
    ds: *mut vppcom_data_segment_t,
    n_segments: u32,
) -> c_int {
    guard("vppcom_session_write_segments", || {
        // SAFETY: ds is NULL or points at n_segments >= 1 readable segments, per vppcom.h
        // (upstream reads the first one whatever n_segments says).
        let Some(segs) = (unsafe { in_slice(ds.cast_const(), n_segments.max(1) as usize) }) else {
            return VPPCOM_EFAULT;
        };
        if segs[0].len == 0 {
            return VPPCOM_OK; // upstream accepts a zero-length write and does nothing
        }
        let mut total = 0i32;
        for d in segs {
            let rv = write_common(
                session_handle,
                d.data.cast_const().cast(),
                d.len as usize,
                false,
            );
            if rv < 0 {
                return if total > 0 { total } else { rv };
            }
            total += rv;
            if (rv as u32) < d.len {
                break;
            }
        }
        total
    })
}

/// Consume `n_bytes` previously returned by vppcom_session_read_segments.
#[no_mangle]
pub extern "C" fn vppcom_session_free_segments(session_handle: u32, n_bytes: u32) {
    guard("vppcom_session_free_segments", || {
        with_worker(|w| session::free_segments(w, session_handle, n_bytes).map(|_| 0));
    })
}
