//! Session lifecycle exports: create, bind, listen, accept, connect, shutdown, close and the
//! session queries. Argument checks come in upstream's order, then the session lookup.

use std::ffi::c_int;

use super::ptr::{in_slice, opt_mut, opt_ref, out_slice};
use super::{guard, no_worker, rv, types::vppcom_endpt_t, VPPCOM_EINVAL};
use crate::error::{Error, Result};
use crate::session::{self, Endpoint};
use crate::worker::{self, Worker};
use vcl_codec::msg::Ip46;

/// A caller's endpoint as ours (address copied, port to host order).
pub(crate) fn endpoint_in(ep: *const vppcom_endpt_t) -> Option<Endpoint> {
    // SAFETY: ep is NULL or points at a caller-owned vppcom_endpt_t, per vppcom.h.
    let e = unsafe { opt_ref(ep) }?;
    let is_ip4 = e.is_ip4 != 0;
    let len = if is_ip4 { 4 } else { 16 };
    // SAFETY: a non-NULL `ip` points at 4 (IPv4) or 16 (IPv6) readable bytes, per vppcom.h.
    let src = unsafe { in_slice(e.ip.cast_const(), len) }?;
    let mut ip = [0u8; 16];
    ip[16 - len..].copy_from_slice(src);
    Some(Endpoint {
        is_ip4,
        ip: Ip46(ip),
        port: u16::from_be(e.port),
    })
}

/// Fill a caller's endpoint (its `ip` must have room for the address) from ours.
pub(crate) fn endpoint_out(ep: *mut vppcom_endpt_t, from: &Endpoint) {
    // SAFETY: ep is NULL or points at a caller-owned vppcom_endpt_t, per vppcom.h.
    let Some(e) = (unsafe { opt_mut(ep) }) else {
        return;
    };
    e.is_ip4 = u8::from(from.is_ip4);
    e.port = from.port.to_be();
    let src = if from.is_ip4 {
        &from.ip.0[12..]
    } else {
        &from.ip.0[..]
    };
    // SAFETY: a non-NULL `ip` has room for the address of its family, per vppcom.h.
    if let Some(dst) = unsafe { out_slice(e.ip, src.len()) } {
        dst.copy_from_slice(src);
    }
}

/// Run `f` on this thread's worker, returning its result or error code.
pub(crate) fn with_worker(f: impl FnOnce(&Worker) -> Result<i32>) -> i32 {
    rv(worker::with_current(|w| f(w)).unwrap_or_else(|| Err(no_worker())))
}

/// Create a session of protocol `proto` (VPPCOM_PROTO_*), returns its handle.
#[no_mangle]
pub extern "C" fn vppcom_session_create(proto: u8, is_nonblocking: u8) -> c_int {
    guard("vppcom_session_create", || {
        with_worker(|w| session::create(w, proto, is_nonblocking != 0).map(|h| h as i32))
    })
}

/// Shut down one or both directions (SHUT_RD, SHUT_WR, SHUT_RDWR).
#[no_mangle]
pub extern "C" fn vppcom_session_shutdown(session_handle: u32, how: c_int) -> c_int {
    guard("vppcom_session_shutdown", || {
        with_worker(|w| session::shutdown(w, session_handle, how).map(|_| 0))
    })
}

/// Close a session (disconnect, or unlisten a listener) and free its handle.
#[no_mangle]
pub extern "C" fn vppcom_session_close(session_handle: u32) -> c_int {
    guard("vppcom_session_close", || {
        with_worker(|w| session::close(w, session_handle).map(|_| 0))
    })
}

/// Abort a session (reset instead of an orderly close).
#[no_mangle]
pub extern "C" fn vppcom_session_terminate(session_handle: u32) -> c_int {
    guard("vppcom_session_terminate", || {
        with_worker(|w| session::terminate(w, session_handle).map(|_| 0))
    })
}

/// Bind a session to a local endpoint.
#[no_mangle]
pub extern "C" fn vppcom_session_bind(session_handle: u32, ep: *mut vppcom_endpt_t) -> c_int {
    guard("vppcom_session_bind", || {
        let Some(ep) = endpoint_in(ep) else {
            return VPPCOM_EINVAL;
        };
        with_worker(|w| session::bind(w, session_handle, ep).map(|_| 0))
    })
}

/// Start listening on a bound session.
#[no_mangle]
pub extern "C" fn vppcom_session_listen(session_handle: u32, q_len: u32) -> c_int {
    guard("vppcom_session_listen", || {
        let _ = q_len; // VPP has no accept backlog to size
        with_worker(|w| {
            session::listen(w, session_handle, crate::app::session_timeout()).map(|_| 0)
        })
    })
}

/// Accept a connection on a listener; fills `client_ep` when given. `flags` may hold O_NONBLOCK.
#[no_mangle]
pub extern "C" fn vppcom_session_accept(
    session_handle: u32,
    client_ep: *mut vppcom_endpt_t,
    flags: u32,
) -> c_int {
    guard("vppcom_session_accept", || {
        with_worker(|w| {
            let nb = flags & libc::O_NONBLOCK as u32 != 0;
            let (h, rmt) = session::accept(w, session_handle, nb)?;
            endpoint_out(client_ep, &rmt);
            Ok(h as i32)
        })
    })
}

/// Connect a session to a server endpoint.
#[no_mangle]
pub extern "C" fn vppcom_session_connect(
    session_handle: u32,
    server_ep: *mut vppcom_endpt_t,
) -> c_int {
    guard("vppcom_session_connect", || {
        with_worker(|w| {
            let ep = endpoint_in(server_ep).ok_or(Error::Inval)?;
            session::connect(w, session_handle, ep, crate::app::session_timeout()).map(|_| 0)
        })
    })
}

/// Open a stream on a connected parent session (QUIC): CONNECT_STREAM on the parent's VPP
/// thread; blocking sessions wait for VPP's reply (ECONNREFUSED when VPP refuses, e.g. a
/// parent whose transport has no streams).
#[no_mangle]
pub extern "C" fn vppcom_session_stream_connect(
    session_handle: u32,
    parent_session_handle: u32,
) -> c_int {
    guard("vppcom_session_stream_connect", || {
        with_worker(|w| {
            session::stream_connect(
                w,
                session_handle,
                parent_session_handle,
                crate::app::session_timeout(),
            )
            .map(|_| 0)
        })
    })
}

/// Look a session up and read something off it.
fn query(sh: u32, f: impl FnOnce(&session::Sessions, u32) -> i32) -> i32 {
    with_worker(|w| {
        let ss = w.sessions.lock();
        let i = session::lookup(w, &ss, sh)?;
        Ok(f(&ss, i))
    })
}

/// 1 if VPP flagged the session as a stream of a multi-stream transport (QUIC); 0 otherwise,
/// and for unknown handles, as upstream.
#[no_mangle]
pub extern "C" fn vppcom_session_is_stream(session_handle: u32) -> c_int {
    guard("vppcom_session_is_stream", || {
        query(session_handle, |ss, i| {
            i32::from(ss.get(i).expect("found").stream)
        })
        .max(0)
    })
}

/// 1 if the session is a QUIC connection streams can be opened or accepted on (connected by
/// the app, or accepted from a listener); 0 otherwise.
#[no_mangle]
pub extern "C" fn vppcom_session_is_connectable_listener(session_handle: u32) -> c_int {
    guard("vppcom_session_is_connectable_listener", || {
        query(session_handle, |ss, i| {
            i32::from(session::is_connectable_listener(ss, i))
        })
        .max(0)
    })
}

/// The listener handle an accepted session came from (VPPCOM_EBADFD if none).
#[no_mangle]
pub extern "C" fn vppcom_session_listener(session_handle: u32) -> c_int {
    guard("vppcom_session_listener", || {
        with_worker(|w| {
            let ss = w.sessions.lock();
            let i = session::lookup(w, &ss, session_handle)?;
            let l = ss.get(i).expect("found").listener;
            ss.get(l).ok_or(Error::BadFd)?;
            Ok(session::handle(w.index, l) as i32)
        })
    })
}

/// How many sessions a listener has accepted (and not yet closed).
#[no_mangle]
pub extern "C" fn vppcom_session_n_accepted(session_handle: u32) -> c_int {
    guard("vppcom_session_n_accepted", || {
        query(session_handle, |ss, i| {
            ss.get(i).expect("found").n_accepted as i32
        })
    })
}

/// The session's VPP error as a VPPCOM_E* code (EADDRINUSE, ECONNREFUSED, EFAULT or OK).
#[no_mangle]
pub extern "C" fn vppcom_session_get_error(session_handle: u32) -> c_int {
    use vcl_codec::session_error::{SESSION_E_PORTINUSE, SESSION_E_REFUSED};
    guard("vppcom_session_get_error", || {
        with_worker(|w| {
            let ss = w.sessions.lock();
            let i = session::lookup(w, &ss, session_handle)?;
            let s = ss.get(i).expect("found");
            if s.is_vep {
                return Err(Error::BadFd);
            }
            Ok(match s.vpp_error {
                0 => 0,
                SESSION_E_PORTINUSE => Error::AddrInUse.code(),
                SESSION_E_REFUSED => Error::ConnRefused.code(),
                _ => Error::Fault.code(),
            })
        })
    })
}
