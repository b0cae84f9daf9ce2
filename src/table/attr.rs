//! Per-session attribute state: what vppcom_session_attr records (upstream keeps it in
//! vcl_session_t) and the TRANSPORT_ATTR request in flight. The ops live in
//! [`crate::session::attr`].

use vcl_codec::ext_cfg::{CryptoCfg, ExtCfg, ExtCfgBody, ExtCfgType, EXT_CFG_CRYPTO_LEN};
use vcl_codec::msg::{Ip46, TransportAttr, TransportAttrReply, TransportEndpoint};

use super::Sessions;

/// Upstream's boolean session attributes (vcl_sess_attr_t), as bits of [`AttrState`].
pub(crate) mod bit {
    /// SO_ACCEPTCONN. Upstream v26.06 declares it but never sets it.
    pub const LISTEN: u16 = 1 << 0;
    pub const REUSEADDR: u16 = 1 << 1;
    pub const REUSEPORT: u16 = 1 << 2;
    pub const BROADCAST: u16 = 1 << 3;
    pub const V6ONLY: u16 = 1 << 4;
    pub const KEEPALIVE: u16 = 1 << 5;
    pub const TCP_NODELAY: u16 = 1 << 6;
    pub const TCP_KEEPIDLE: u16 = 1 << 7;
    pub const TCP_KEEPINTVL: u16 = 1 << 8;
    pub const IP_PKTINFO: u16 = 1 << 9;
}

/// SET_CKPAIR's ext config: a crypto config naming cert/key pair `ckpair_index`. Upstream
/// writes the size of the whole struct into the header's len, not the body's, and so do we.
/// tls_profile_index and owner_app_wrk_index stay "unset" (the codec's default) rather than
/// upstream's zeros: see docs/wire.md#ext-config.
pub(crate) fn crypto_ext_cfg(ckpair_index: u32) -> ExtCfg {
    let mut c = ExtCfg::crypto(CryptoCfg {
        ckpair_index,
        ..Default::default()
    });
    c.len = EXT_CFG_CRYPTO_LEN as u16;
    c
}

/// SET_ENDPT_EXT_CFG's ext config: the caller's bytes as the body of a type-NONE config (the
/// header's len is 16 bits; upstream truncates the same way).
pub(crate) fn raw_ext_cfg(data: Vec<u8>) -> ExtCfg {
    ExtCfg {
        cfg_type: ExtCfgType::None,
        len: data.len() as u16,
        body: ExtCfgBody::Raw(data),
    }
}

/// A TRANSPORT_ATTR request in flight for this session.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub seq: u64,
    /// (retval, attr) once the reply came.
    pub result: Option<(i32, TransportAttr)>,
}

/// Per-session attribute state (what upstream keeps in vcl_session_t for the attr ops).
#[derive(Debug, Clone, Default)]
pub struct AttrState {
    bits: u16,
    /// VCL_SESSION_F_CONNECTED from SET_CONNECTED: listen/connect send TRANSPORT_CFG_F_CONNECTED.
    pub connected: bool,
    /// VCL_SESSION_VPP_F_UNIDIRECTIONAL (SET_STREAM_FLAGS, or an accepted stream's flags).
    pub unidirectional: bool,
    /// SET_TX_FIFO_LEN / SET_RX_FIFO_LEN (0: not set).
    pub sndbuf: u32,
    pub rcvbuf: u32,
    /// VRF and DSCP for the next listen/connect.
    pub vrf: u32,
    pub dscp: u8,
    /// The ext config the next listen/connect carries (freed once sent, as upstream does).
    pub ext_config: Option<ExtCfg>,
    /// Attributes VPP pushed with TRANSPORT_ATTR (e.g. the original destination).
    pub(crate) tep_attrs: Vec<TransportAttr>,
    pub(crate) pending: Option<Pending>,
}

impl AttrState {
    pub(crate) fn has(&self, b: u16) -> bool {
        self.bits & b != 0
    }

    pub(crate) fn set(&mut self, b: u16, on: bool) {
        self.bits = (self.bits & !b) | if on { b } else { 0 };
    }

    pub(crate) fn tep(&self, ty: u8) -> Option<&TransportAttr> {
        self.tep_attrs.iter().find(|a| a.attr_type() == ty)
    }

    /// An accepted session's original destination (ACCEPTED's original_dst_ip4/port, kept
    /// when the peer is IPv4 and the port non-zero), as upstream records it: an EXT_ENDPT
    /// attribute whose family field stays 0, so GET_ORIGINAL_DST reports IPv6: 12 zero bytes,
    /// then the IPv4.
    pub fn note_original_dst(&mut self, ip4: [u8; 4], port: u16) {
        let mut ip = [0u8; 16];
        ip[12..].copy_from_slice(&ip4);
        let ep = TransportEndpoint {
            ip: Ip46(ip),
            port,
            ..Default::default()
        };
        self.tep_attrs.push(TransportAttr::ExtEndpt(ep));
    }
}

impl Sessions {
    /// TRANSPORT_ATTR_REPLY from the app mq: completes the request waiting on that session.
    pub(crate) fn transport_attr_reply(&mut self, m: &TransportAttrReply) {
        let pending = self
            .index_of_vpp(m.handle)
            .and_then(|i| self.get_mut(i))
            .and_then(|s| s.attr.pending.as_mut());
        match pending {
            Some(p) if p.result.is_none() => p.result = Some((m.retval, m.attr)),
            _ => tracing::debug!("transport attr reply for {:#x}: nobody waits", m.handle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_config_blobs() {
        let c = crypto_ext_cfg(7).encode();
        let u32_at = |o: usize| u32::from_ne_bytes(c[o..o + 4].try_into().unwrap());
        assert_eq!((c.len(), &c[..4]), (288, &[1, 0, 32, 1][..]));
        assert_eq!(
            (u32_at(4), u32_at(8), u32_at(12), u32_at(16)),
            (7, 0, !0, !0)
        );
        assert!(c[20..].iter().all(|&b| b == 0));
        assert_eq!(raw_ext_cfg(vec![9, 8, 7]).encode(), [0, 0, 3, 0, 9, 8, 7]);
    }
}
