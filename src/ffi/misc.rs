//! Handle helpers, names of codes and protocols, certificate/key pairs.

use std::ffi::{c_char, c_int, CStr};

use super::ptr::{in_bytes, opt_cstr, opt_mut, opt_ref};
use super::types::{vcl_session_handle_t, vppcom_cert_key_pair_t};
use super::{guard, guard_or};
use crate::abi::*;
use crate::table::parse_handle;

/// The session index part of a handle (low 24 bits).
#[no_mangle]
pub extern "C" fn vppcom_session_index(session_handle: vcl_session_handle_t) -> c_int {
    guard("vppcom_session_index", || {
        parse_handle(session_handle).1 as c_int
    })
}

/// The worker part of a handle (high 8 bits).
#[no_mangle]
pub extern "C" fn vppcom_session_worker(session_handle: vcl_session_handle_t) -> c_int {
    guard("vppcom_session_worker", || {
        parse_handle(session_handle).0 as c_int
    })
}

/// Name of a VPPCOM_PROTO_* value ("TCP", "UDP", ... or "UNKNOWN").
#[no_mangle]
pub extern "C" fn vppcom_proto_str(proto: vppcom_proto_t) -> *const c_char {
    guard_or("vppcom_proto_str", c"UNKNOWN".as_ptr(), || {
        proto_name(proto).as_ptr()
    })
}

fn proto_name(proto: vppcom_proto_t) -> &'static CStr {
    match proto {
        VPPCOM_PROTO_TCP => c"TCP",
        VPPCOM_PROTO_UDP => c"UDP",
        VPPCOM_PROTO_TLS => c"TLS",
        VPPCOM_PROTO_QUIC => c"QUIC",
        VPPCOM_PROTO_DTLS => c"DTLS",
        VPPCOM_PROTO_SRTP => c"SRTP",
        VPPCOM_PROTO_HTTP => c"HTTP",
        _ => c"UNKNOWN",
    }
}

/// Name of a VPPCOM_E* value. Upstream knows only some and says "UNKNOWN_STATE" for the rest;
/// we name every value of vppcom_error_t (EAGAIN and EWOULDBLOCK are one value: "VPPCOM_EAGAIN").
#[no_mangle]
pub extern "C" fn vppcom_retval_str(retval: c_int) -> *const c_char {
    guard_or("vppcom_retval_str", c"UNKNOWN_STATE".as_ptr(), || {
        retval_name(retval).as_ptr()
    })
}

fn retval_name(retval: c_int) -> &'static CStr {
    match retval {
        VPPCOM_OK => c"VPPCOM_OK",
        VPPCOM_EAGAIN => c"VPPCOM_EAGAIN",
        VPPCOM_EINPROGRESS => c"VPPCOM_EINPROGRESS",
        VPPCOM_EFAULT => c"VPPCOM_EFAULT",
        VPPCOM_ENOMEM => c"VPPCOM_ENOMEM",
        VPPCOM_EINVAL => c"VPPCOM_EINVAL",
        VPPCOM_EBADFD => c"VPPCOM_EBADFD",
        VPPCOM_EAFNOSUPPORT => c"VPPCOM_EAFNOSUPPORT",
        VPPCOM_ECONNABORTED => c"VPPCOM_ECONNABORTED",
        VPPCOM_ECONNRESET => c"VPPCOM_ECONNRESET",
        VPPCOM_ENOTCONN => c"VPPCOM_ENOTCONN",
        VPPCOM_ECONNREFUSED => c"VPPCOM_ECONNREFUSED",
        VPPCOM_ETIMEDOUT => c"VPPCOM_ETIMEDOUT",
        VPPCOM_EEXIST => c"VPPCOM_EEXIST",
        VPPCOM_ENOPROTOOPT => c"VPPCOM_ENOPROTOOPT",
        VPPCOM_EPIPE => c"VPPCOM_EPIPE",
        VPPCOM_ENOENT => c"VPPCOM_ENOENT",
        VPPCOM_EADDRINUSE => c"VPPCOM_EADDRINUSE",
        VPPCOM_ENOTSUP => c"VPPCOM_ENOTSUP",
        _ => c"UNKNOWN_STATE",
    }
}

/// Parse "TCP"/"tcp", "UDP", "TLS", "QUIC", "DTLS", "SRTP" or "HTTP" (upper or lower case
/// only) into `*proto`; 0 on success, 1 otherwise (upstream's convention).
#[no_mangle]
pub extern "C" fn vppcom_unformat_proto(proto: *mut u8, proto_str: *mut c_char) -> c_int {
    guard_or("vppcom_unformat_proto", 1, || {
        // SAFETY: proto is NULL or points at a byte the caller lets us write, per vppcom.h.
        let Some(out) = (unsafe { opt_mut(proto) }) else {
            return 1;
        };
        // SAFETY: proto_str is NULL or NUL-terminated, per vppcom.h.
        let Some(s) = (unsafe { opt_cstr(proto_str) }) else {
            return 1;
        };
        let p = match s.to_bytes() {
            b"TCP" | b"tcp" => VPPCOM_PROTO_TCP,
            b"UDP" | b"udp" => VPPCOM_PROTO_UDP,
            b"TLS" | b"tls" => VPPCOM_PROTO_TLS,
            b"QUIC" | b"quic" => VPPCOM_PROTO_QUIC,
            b"DTLS" | b"dtls" => VPPCOM_PROTO_DTLS,
            b"SRTP" | b"srtp" => VPPCOM_PROTO_SRTP,
            b"HTTP" | b"http" => VPPCOM_PROTO_HTTP,
            _ => return 1,
        };
        *out = p as u8;
        0
    })
}

/// Register a certificate and key with VPP; returns the pair's index, or -1 (upstream's value
/// for any failure of the exchange).
#[no_mangle]
pub extern "C" fn vppcom_add_cert_key_pair(ckpair: *mut vppcom_cert_key_pair_t) -> c_int {
    guard("vppcom_add_cert_key_pair", || {
        // SAFETY: ckpair is NULL or points at a caller-owned vppcom_cert_key_pair_t.
        let Some(ck) = (unsafe { opt_ref(ckpair.cast_const()) }) else {
            return VPPCOM_EINVAL;
        };
        if (ck.cert.is_null() && ck.cert_len > 0) || (ck.key.is_null() && ck.key_len > 0) {
            return VPPCOM_EINVAL;
        }
        // SAFETY: non-null cert/key point at cert_len/key_len readable bytes (caller's contract).
        let (cert, key) = unsafe {
            (
                in_bytes(ck.cert, ck.cert_len as usize),
                in_bytes(ck.key, ck.key_len as usize),
            )
        };
        match crate::app::add_cert_key_pair(cert, key) {
            Ok(index) => index as c_int,
            Err(crate::error::Error::Inval) => VPPCOM_EINVAL,
            Err(_) => -1,
        }
    })
}

/// Remove a certificate/key pair; 0 on success, -1 otherwise.
#[no_mangle]
pub extern "C" fn vppcom_del_cert_key_pair(ckpair_index: u32) -> c_int {
    guard(
        "vppcom_del_cert_key_pair",
        || match crate::app::del_cert_key_pair(ckpair_index) {
            Ok(_) => 0,
            Err(_) => -1,
        },
    )
}
