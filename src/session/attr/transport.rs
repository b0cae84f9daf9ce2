//! GET/SET_TCP_USER_MSS and GET/SET_APP_PROTO_ERR_CODE: a TRANSPORT_ATTR request on the
//! session's VPP thread queue, answered by TRANSPORT_ATTR_REPLY on the app mq (recorded in
//! the table by the worker), waited for up to 1 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vcl_codec::msg::{CtrlMsg, TransportAttr, TransportAttrMsg};
use vcl_svm::sync::MutexGuard;

use crate::table::attr::Pending;
use crate::table::Sessions;
use crate::wait::{self, Naps};
use crate::worker::Worker;

/// How long a transport attribute request waits for VPP's reply.
const TRANSPORT_ATTR_WAIT: Duration = Duration::from_secs(1);

fn next_seq() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(1);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// The first 8 bytes of a transport_endpt_attr_t's union, as a little-endian word: what
/// upstream reads back as `mss` or `app_proto_err_code` whatever type VPP replied with.
pub fn union_word(a: &TransportAttr) -> u64 {
    match *a {
        TransportAttr::NextOutputNode(v)
        | TransportAttr::NextTransport(v)
        | TransportAttr::AppProtoErrCode(v) => v,
        TransportAttr::Mss(v) => v.into(),
        TransportAttr::Flags(v) | TransportAttr::CcAlgo(v) | TransportAttr::TlsAlpn(v) => v.into(),
        TransportAttr::ExtEndpt(ep) => u64::from_le_bytes(ep.ip.0[..8].try_into().expect("8")),
        TransportAttr::TlsPeerCert { cert, .. } => cert,
        TransportAttr::TlsProfileInfo { cipher, .. } => cipher,
    }
}

/// Get or set a transport attribute through VPP (upstream's vcl_session_transport_attr).
/// Returns the attribute (VPP's for a successful get); Err means ENOPROTOOPT.
pub(super) fn round_trip(
    w: &Worker,
    ss: &mut MutexGuard<'_, Sessions>,
    i: u32,
    is_get: bool,
    attr: TransportAttr,
) -> std::result::Result<TransportAttr, ()> {
    let s = ss.get_mut(i).ok_or(())?;
    if s.fifos.is_none() {
        // No VPP queue for this session yet: upstream reports success and sends nothing.
        return Ok(attr);
    }
    let seq = next_seq();
    s.attr.pending = Some(Pending { seq, result: None });
    let msg = CtrlMsg::TransportAttr(TransportAttrMsg {
        client_index: w.conn().api_client_handle,
        handle: s.vpp_handle,
        attr,
        is_get,
    });
    let thread = s.vpp_thread;
    if w.send_ctrl(thread, &msg).is_ok() {
        wait::until(w, ss, Some(TRANSPORT_ATTR_WAIT), Naps::Backoff, |ss| {
            ss.get(i).is_none_or(|s| match &s.attr.pending {
                Some(p) => p.seq != seq || p.result.is_some(),
                None => true,
            })
        });
    }
    let p = ss
        .get_mut(i)
        .and_then(|s| s.attr.pending.take_if(|p| p.seq == seq));
    match p.and_then(|p| p.result) {
        Some((0, got)) if is_get => Ok(got),
        Some((0, _)) => Ok(attr),
        Some((rv, _)) => {
            tracing::debug!("transport attr {} refused by VPP: {rv}", attr.attr_type());
            Err(())
        }
        None => {
            tracing::debug!("transport attr {}: no reply from VPP", attr.attr_type());
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_attr_values_read_back_from_the_union() {
        assert_eq!(union_word(&TransportAttr::Mss(1460)), 1460);
        assert_eq!(union_word(&TransportAttr::AppProtoErrCode(!1)), !1);
    }
}
