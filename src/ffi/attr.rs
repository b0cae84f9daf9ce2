//! vppcom_session_attr: get and set session attributes (VPPCOM_ATTR_*).
//!
//! This file owns the caller's raw buffer: each op's buffer rule (upstream v26.06's NULL and
//! `*buflen` checks), reading what the op takes, and writing back what it returns. What the ops
//! mean lives in [`crate::session::attr`].

use std::ffi::{c_int, c_void};

use super::guard;
use super::ptr::{in_slice, opt_mut, opt_ref, out_slice};
use super::session::{endpoint_in, with_worker};
use super::types::vppcom_endpt_t;
use crate::session::attr::{self, EndptOut, Input, Output, ENDPT_LEN};

const _: () = assert!(size_of::<vppcom_endpt_t>() == ENDPT_LEN as usize);

/// What an op requires of the caller's buffer before it touches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Buffer and length are not looked at.
    Unchecked,
    /// Non-NULL buffer and length, `*buflen >= n`.
    AtLeast(u32),
    /// Non-NULL buffer and length, `*buflen == n`.
    Exactly(u32),
    /// A vppcom_endpt_t: `*buflen >= sizeof`, and its `ip` pointer non-NULL.
    Endpt,
}

/// What an op reads from the buffer once its rule holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reads {
    Nothing,
    U8,
    U32,
    U64,
    Endpt,
    /// `*buflen` bytes.
    Bytes,
}

use Reads::{Bytes as BY, Endpt as EI, Nothing as N, U32 as W, U64 as Q, U8 as B};
const U: Rule = Rule::Unchecked;
const EP: Rule = Rule::Endpt;
const L1: Rule = Rule::AtLeast(1);
const L4: Rule = Rule::AtLeast(4);
const L8: Rule = Rule::AtLeast(8);
const X4: Rule = Rule::Exactly(4);
const X8: Rule = Rule::Exactly(8);

/// Buffer rule of each op, by op number. NREAD, NWRITE and SET_CONNECTED ignore the buffer;
/// GET/SET_UNUSED and unknown ops fail (EINVAL) without looking at it.
#[rustfmt::skip]
const RULES: [Rule; 52] = [
    U,  U,  L4, X4, EP, EP, EP, U,  U,  L4, //  0..9
    L4, L4, L4, X4, L4, X4, L4, X4, L4, X4, // 10..19
    L4, X4, L4, X4, L4, X4, L4, X4, L4, X4, // 20..29
    L4, X4, L4, X4, U,  X4, X4, L4, L4, L1, // 30..39
    L1, X4, L4, EP, X4, EP, X8, X8, L4, X4, // 40..49
    L8, X8,                                 // 50..51
];

/// What each op reads from the buffer, by op number (GET_TCP_USER_MSS and
/// GET_APP_PROTO_ERR_CODE send the caller's value along with the request, as upstream does).
#[rustfmt::skip]
const READS: [Reads; 52] = [
    N,  N,  N,  W,  N,  EI, N,  N,  N,  N,  //  0..9
    N,  N,  N,  W,  N,  W,  N,  W,  N,  W,  // 10..19
    N,  W,  N,  W,  N,  W,  N,  W,  N,  W,  // 20..29
    N,  W,  W,  W,  N,  W,  W,  N,  N,  BY, // 30..39
    B,  W,  N,  N,  N,  N,  N,  N,  N,  W,  // 40..49
    Q,  Q,                                  // 50..51
];

pub(crate) fn rule(op: u32) -> Rule {
    RULES.get(op as usize).copied().unwrap_or(U)
}

pub(crate) fn reads(op: u32) -> Reads {
    READS.get(op as usize).copied().unwrap_or(N)
}

/// Whether a buffer (`buffer` non-NULL, `*buflen` or None for a NULL `buflen`, the endpoint's
/// `ip` non-NULL) satisfies rule `r`.
pub(crate) fn rule_ok(r: Rule, buffer: bool, buflen: Option<u32>, ep_ip: bool) -> bool {
    let len = match (buffer, buflen) {
        (true, Some(l)) => l,
        _ => return r == Rule::Unchecked,
    };
    match r {
        Rule::Unchecked => true,
        Rule::AtLeast(n) => len >= n,
        Rule::Exactly(n) => len == n,
        Rule::Endpt => len >= ENDPT_LEN && ep_ip,
    }
}

/// Read what `what` names from `buffer` (`len` bytes, already checked by the op's rule).
fn read_input(what: Reads, buffer: *mut c_void, len: u32) -> Input {
    // The first `n` bytes of the buffer (at most `len`), None for a NULL buffer.
    let bytes = |n: u32| {
        // SAFETY: the op's rule held, so a non-NULL `buffer` has `len` bytes the caller vouches
        // for; the slice lives for this call only.
        unsafe { in_slice(buffer.cast::<u8>().cast_const(), n.min(len) as usize) }
    };
    match what {
        Reads::Nothing => Input::None,
        Reads::Endpt => {
            endpoint_in(buffer.cast::<vppcom_endpt_t>()).map_or(Input::None, Input::Endpt)
        }
        Reads::U8 => bytes(1)
            .and_then(|b| b.first().copied())
            .map_or(Input::None, Input::U8),
        Reads::U32 => bytes(4)
            .and_then(|b| b.first_chunk().copied())
            .map_or(Input::None, |c| Input::U32(u32::from_ne_bytes(c))),
        Reads::U64 => bytes(8)
            .and_then(|b| b.first_chunk().copied())
            .map_or(Input::None, |c| Input::U64(u64::from_ne_bytes(c))),
        Reads::Bytes => bytes(len).map_or(Input::None, |b| Input::Bytes(b.to_vec())),
    }
}

/// Write an address into the caller's endpoint (its `ip` was checked non-NULL).
fn write_endpt(ep: &mut vppcom_endpt_t, e: &EndptOut) {
    ep.is_ip4 = u8::from(e.is_ip4);
    ep.port = e.port_be;
    let src = if e.is_ip4 { &e.ip.0[12..] } else { &e.ip.0[..] };
    // SAFETY: `ip` is NULL or holds 4 (IPv4) or 16 (IPv6) writable bytes, per vppcom.h.
    if let Some(dst) = unsafe { out_slice(ep.ip, src.len()) } {
        dst.copy_from_slice(src);
    }
}

/// Write `out` into `buffer` (`len` bytes, checked by the op's rule).
fn write_output(out: Output, buffer: *mut c_void, len: u32) {
    if let Output::Endpt(e) = &out {
        // SAFETY: the Endpt rule held: `buffer` is NULL or a caller-owned vppcom_endpt_t.
        if let Some(ep) = unsafe { opt_mut(buffer.cast::<vppcom_endpt_t>()) } {
            write_endpt(ep, e);
        }
        return;
    }
    // SAFETY: an op only returns an output once its rule held, so a non-NULL `buffer` has
    // `len` writable bytes; the slice lives for this call only.
    let Some(b) = (unsafe { out_slice(buffer.cast::<u8>(), len as usize) }) else {
        return;
    };
    let mut put = |v: &[u8]| {
        if let Some(d) = b.get_mut(..v.len()) {
            d.copy_from_slice(v);
        }
    };
    match out {
        Output::None | Output::Endpt(_) => {}
        Output::Int(v) => put(&v.to_ne_bytes()),
        Output::U32(v) => put(&v.to_ne_bytes()),
        Output::U64(v) => put(&v.to_ne_bytes()),
        // Upstream stores a size_t even when *buflen is 4; we stay inside the buffer.
        Output::SizeT(v) if len >= 8 => put(&v.to_ne_bytes()),
        // The value came from a u32.
        Output::SizeT(v) => put(&(v as u32).to_ne_bytes()),
    }
}

/// vcl.conf's (rx, tx) fifo sizes, for GET_RX/TX_FIFO_LEN before VPP gave a session fifos.
/// The app keeps its configuration private; until it exposes the sizes, the defaults.
fn cfg_fifo_sizes() -> (u32, u32) {
    crate::app::fifo_sizes()
}

/// Get or set attribute `op` (VPPCOM_ATTR_*) of a session through `buffer`/`buflen`, with
/// upstream VCL's semantics: returns 0 (or, for GET_NREAD/GET_NWRITE, a byte count), or
/// VPPCOM_EBADFD (no such session), VPPCOM_EINVAL (bad buffer or length, unknown op, refused
/// set), VPPCOM_ENOPROTOOPT (VPP refused or did not answer a transport attribute),
/// VPPCOM_EAFNOSUPPORT (GET_ORIGINAL_DST on IPv6), or the session's error for NREAD/NWRITE.
#[no_mangle]
pub extern "C" fn vppcom_session_attr(
    session_handle: u32,
    op: u32,
    buffer: *mut c_void,
    buflen: *mut u32,
) -> c_int {
    guard("vppcom_session_attr", || {
        with_worker(|w| {
            // SAFETY: buflen is NULL or points at the caller's length word.
            let len = unsafe { opt_ref(buflen.cast_const()) }.copied();
            let r = rule(op);
            let has_buf = !buffer.is_null();
            let ep_ip = r == Rule::Endpt
                && has_buf
                && len.is_some_and(|l| l >= ENDPT_LEN)
                // SAFETY: a non-NULL buffer of at least sizeof (vppcom_endpt_t) bytes.
                && unsafe { opt_ref(buffer.cast::<vppcom_endpt_t>().cast_const()) }
                    .is_some_and(|e| !e.ip.is_null());
            let ok = rule_ok(r, has_buf, len, ep_ip);
            let l = len.unwrap_or(0);
            let input = if ok {
                read_input(reads(op), buffer, l)
            } else {
                Input::None
            };
            let reply = {
                let mut ss = w.sessions.lock();
                attr::session_attr(w, &mut ss, session_handle, op, ok, &input, cfg_fifo_sizes)?
            };
            if ok {
                write_output(reply.out, buffer, l);
            }
            // SAFETY: buflen is NULL or points at the caller's length word.
            if let (Some(n), Some(l)) = (reply.buflen, unsafe { opt_mut(buflen) }) {
                *l = n;
            }
            Ok(reply.rv)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::*;

    #[test]
    fn rules_follow_upstream_checks() {
        let at_least_4 = [
            VPPCOM_ATTR_GET_FLAGS,
            VPPCOM_ATTR_GET_PROTOCOL,
            VPPCOM_ATTR_GET_RX_FIFO_LEN,
            VPPCOM_ATTR_GET_TCP_USER_MSS,
            VPPCOM_ATTR_GET_VRF,
            VPPCOM_ATTR_GET_DOMAIN,
            VPPCOM_ATTR_GET_IP_PKTINFO,
            VPPCOM_ATTR_GET_STREAM_FLAGS,
        ];
        for op in at_least_4 {
            assert_eq!(rule(op as u32), Rule::AtLeast(4), "op {op}");
        }
        let exactly_4 = [
            VPPCOM_ATTR_SET_FLAGS,
            VPPCOM_ATTR_GET_NWRITEQ,
            VPPCOM_ATTR_SET_TCP_USER_MSS,
            VPPCOM_ATTR_SET_CKPAIR,
            VPPCOM_ATTR_SET_VRF,
            VPPCOM_ATTR_SET_IP_PKTINFO,
            VPPCOM_ATTR_SET_STREAM_FLAGS,
        ];
        for op in exactly_4 {
            assert_eq!(rule(op as u32), Rule::Exactly(4), "op {op}");
        }
        for op in [VPPCOM_ATTR_GET_COOKIE, VPPCOM_ATTR_SET_COOKIE] {
            assert_eq!(rule(op as u32), Rule::Exactly(8));
        }
        assert_eq!(
            rule(VPPCOM_ATTR_SET_APP_PROTO_ERR_CODE as u32),
            Rule::Exactly(8)
        );
        assert_eq!(
            rule(VPPCOM_ATTR_GET_APP_PROTO_ERR_CODE as u32),
            Rule::AtLeast(8)
        );
        assert_eq!(rule(VPPCOM_ATTR_SET_DSCP as u32), Rule::AtLeast(1));
        assert_eq!(rule(VPPCOM_ATTR_SET_ENDPT_EXT_CFG as u32), Rule::AtLeast(1));
        for op in [4, 5, 6, 43, 45] {
            assert_eq!(rule(op), Rule::Endpt);
        }
        for op in [0, 1, 7, 8, 34, 52, u32::MAX] {
            assert_eq!(rule(op), Rule::Unchecked);
        }
        // Every SET op with an exact 4-byte rule reads an int, except GET_NWRITEQ.
        for op in 0..52u32 {
            let want = rule(op) == Rule::Exactly(4) && op != VPPCOM_ATTR_GET_NWRITEQ as u32;
            assert_eq!(reads(op) == Reads::U32, want || op == 32, "op {op}");
        }
        assert_eq!(reads(VPPCOM_ATTR_SET_LCL_ADDR as u32), Reads::Endpt);
        assert_eq!(reads(VPPCOM_ATTR_SET_DSCP as u32), Reads::U8);
        assert_eq!(reads(VPPCOM_ATTR_SET_ENDPT_EXT_CFG as u32), Reads::Bytes);
        assert_eq!(reads(99), Reads::Nothing);
    }

    #[test]
    fn rule_checks_null_and_length() {
        assert!(rule_ok(U, false, None, false));
        assert!(!rule_ok(L4, false, Some(4), false));
        assert!(!rule_ok(L4, true, None, false));
        assert!(!rule_ok(L4, true, Some(3), false));
        assert!(rule_ok(L4, true, Some(4), false));
        assert!(rule_ok(L4, true, Some(100), false));
        assert!(!rule_ok(X4, true, Some(8), false));
        assert!(rule_ok(X4, true, Some(4), false));
        assert!(!rule_ok(L1, true, Some(0), false));
        assert!(!rule_ok(EP, true, Some(ENDPT_LEN), false));
        assert!(!rule_ok(EP, true, Some(ENDPT_LEN - 1), true));
        assert!(rule_ok(EP, true, Some(ENDPT_LEN), true));
    }

    #[test]
    fn outputs_stay_inside_the_buffer() {
        let mut b = [0xAAu8; 12];
        write_output(Output::SizeT(0x1_0000), b.as_mut_ptr().cast(), 4);
        assert_eq!(&b[..8], &[0, 0, 1, 0, 0xAA, 0xAA, 0xAA, 0xAA]);
        write_output(Output::SizeT(7), b.as_mut_ptr().cast(), 8);
        assert_eq!(&b[..9], &[7, 0, 0, 0, 0, 0, 0, 0, 0xAA]);
        let mut ip = [0u8; 16];
        let mut ep = vppcom_endpt_t {
            unused: 0,
            is_ip4: 0,
            ip: ip.as_mut_ptr(),
            port: 0,
            unused2: 0,
            app_tlv_len: 0,
            app_tlvs: std::ptr::null_mut(),
        };
        let mut a = [0u8; 16];
        a[12..].copy_from_slice(&[10, 0, 0, 1]);
        let e = EndptOut {
            is_ip4: true,
            ip: vcl_codec::msg::Ip46(a),
            port_be: 80u16.to_be(),
        };
        write_output(
            Output::Endpt(e),
            (&mut ep as *mut vppcom_endpt_t).cast(),
            48,
        );
        assert_eq!((ep.is_ip4, u16::from_be(ep.port)), (1, 80));
        assert_eq!(&ip[..5], &[10, 0, 0, 1, 0]);
    }
}
