//! Session lifecycle exports: create, bind, listen, accept, connect, shutdown, close and the
//! session queries. Argument checks come in upstream's order, then the session lookup.

use std::ffi::c_int;

use super::{guard, no_worker, rv, types::vppcom_endpt_t, VPPCOM_EFAULT, VPPCOM_EINVAL};
use crate::error::Result;
use crate::worker;

/// Look up this thread's worker for a session call (session state arrives with the worker).
pub(crate) fn call(_sh: u32) -> Result<i32> {
    if !worker::has_current() {
        return Err(no_worker());
    }
    Err(crate::error::Error::NotSup)
}

fn valid_endpoint(ep: *const vppcom_endpt_t) -> bool {
    // SAFETY: ep is NULL or points at a caller-owned vppcom_endpt_t, per vppcom.h.
    matches!(unsafe { ep.as_ref() }, Some(e) if !e.ip.is_null())
}

/// Create a session of protocol `proto` (VPPCOM_PROTO_*), returns its handle.
#[no_mangle]
pub extern "C" fn vppcom_session_create(proto: u8, is_nonblocking: u8) -> c_int {
    guard("vppcom_session_create", VPPCOM_EFAULT, || {
        let _ = (proto, is_nonblocking);
        rv(call(u32::MAX))
    })
}

/// Shut down one or both directions (SHUT_RD, SHUT_WR, SHUT_RDWR).
#[no_mangle]
pub extern "C" fn vppcom_session_shutdown(session_handle: u32, how: c_int) -> c_int {
    guard("vppcom_session_shutdown", VPPCOM_EFAULT, || {
        let _ = how;
        rv(call(session_handle))
    })
}

/// Close a session (disconnect, or unlisten a listener) and free its handle.
#[no_mangle]
pub extern "C" fn vppcom_session_close(session_handle: u32) -> c_int {
    guard("vppcom_session_close", VPPCOM_EFAULT, || {
        rv(call(session_handle))
    })
}

/// Abort a session (reset instead of an orderly close).
#[no_mangle]
pub extern "C" fn vppcom_session_terminate(session_handle: u32) -> c_int {
    guard("vppcom_session_terminate", VPPCOM_EFAULT, || {
        rv(call(session_handle))
    })
}

/// Bind a session to a local endpoint.
#[no_mangle]
pub extern "C" fn vppcom_session_bind(session_handle: u32, ep: *mut vppcom_endpt_t) -> c_int {
    guard("vppcom_session_bind", VPPCOM_EFAULT, || {
        if !valid_endpoint(ep) {
            return VPPCOM_EINVAL;
        }
        rv(call(session_handle))
    })
}

/// Start listening on a bound session.
#[no_mangle]
pub extern "C" fn vppcom_session_listen(session_handle: u32, q_len: u32) -> c_int {
    guard("vppcom_session_listen", VPPCOM_EFAULT, || {
        let _ = q_len;
        rv(call(session_handle))
    })
}

/// Accept a connection on a listener; fills `client_ep` when given. `flags` may hold O_NONBLOCK.
#[no_mangle]
pub extern "C" fn vppcom_session_accept(
    session_handle: u32,
    client_ep: *mut vppcom_endpt_t,
    flags: u32,
) -> c_int {
    guard("vppcom_session_accept", VPPCOM_EFAULT, || {
        let _ = (client_ep, flags);
        rv(call(session_handle))
    })
}

/// Connect a session to a server endpoint.
#[no_mangle]
pub extern "C" fn vppcom_session_connect(
    session_handle: u32,
    server_ep: *mut vppcom_endpt_t,
) -> c_int {
    guard("vppcom_session_connect", VPPCOM_EFAULT, || {
        let _ = server_ep;
        rv(call(session_handle))
    })
}

/// Open a stream on a connected parent session (QUIC).
#[no_mangle]
pub extern "C" fn vppcom_session_stream_connect(
    session_handle: u32,
    parent_session_handle: u32,
) -> c_int {
    guard("vppcom_session_stream_connect", VPPCOM_EFAULT, || {
        let _ = parent_session_handle;
        rv(call(session_handle))
    })
}

/// 1 if the session is a stream (not a datagram) session.
#[no_mangle]
pub extern "C" fn vppcom_session_is_stream(session_handle: u32) -> c_int {
    guard("vppcom_session_is_stream", VPPCOM_EFAULT, || {
        rv(call(session_handle))
    })
}

/// 1 if the session is a listener a client can connect a stream to (QUIC).
#[no_mangle]
pub extern "C" fn vppcom_session_is_connectable_listener(session_handle: u32) -> c_int {
    guard(
        "vppcom_session_is_connectable_listener",
        VPPCOM_EFAULT,
        || rv(call(session_handle)),
    )
}

/// The listener handle an accepted session came from.
#[no_mangle]
pub extern "C" fn vppcom_session_listener(session_handle: u32) -> c_int {
    guard("vppcom_session_listener", VPPCOM_EFAULT, || {
        rv(call(session_handle))
    })
}

/// How many sessions a listener has accepted.
#[no_mangle]
pub extern "C" fn vppcom_session_n_accepted(session_handle: u32) -> c_int {
    guard("vppcom_session_n_accepted", VPPCOM_EFAULT, || {
        rv(call(session_handle))
    })
}

/// The session's VPP error as a VPPCOM_E* code (EADDRINUSE, ECONNREFUSED, EFAULT or OK).
#[no_mangle]
pub extern "C" fn vppcom_session_get_error(session_handle: u32) -> c_int {
    guard("vppcom_session_get_error", VPPCOM_EFAULT, || {
        rv(call(session_handle))
    })
}
