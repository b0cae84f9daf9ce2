//! Types embedded in control messages: addresses, transport endpoints,
//! protocols, session flags and transport attributes.
//!
//! Address convention: IP addresses stay exactly as on the wire
//! (`ip46_address_t`, network order, IPv4 in bytes 12..16) inside [`Ip46`];
//! ports are `u16` **in host order** in every struct of this crate and are
//! byte-swapped to network order by the encoder/decoder. So `port: 80`
//! appears as bytes `00 50` on the wire.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::DecodeError;
use crate::wire::{Reader, Writer};

/// `ip46_address_t`: 16 bytes, network order; IPv4 sits in bytes 12..16
/// with bytes 0..12 zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ip46(pub [u8; 16]);

impl Ip46 {
    /// All zero (unspecified, either family).
    pub const ZERO: Ip46 = Ip46([0; 16]);

    /// IPv4 in VPP's ip46 layout.
    pub fn from_v4(a: Ipv4Addr) -> Self {
        let mut b = [0u8; 16];
        b[12..].copy_from_slice(&a.octets());
        Self(b)
    }

    /// IPv6.
    pub fn from_v6(a: Ipv6Addr) -> Self {
        Self(a.octets())
    }

    /// Returns the address and the `is_ip4` flag that goes with it.
    pub fn from_ip(a: IpAddr) -> (Self, bool) {
        match a {
            IpAddr::V4(v4) => (Self::from_v4(v4), true),
            IpAddr::V6(v6) => (Self::from_v6(v6), false),
        }
    }

    /// IPv4 view (bytes 12..16).
    pub fn v4(&self) -> Ipv4Addr {
        let [.., a, b, c, d] = self.0;
        Ipv4Addr::new(a, b, c, d)
    }

    /// Interprets the bytes according to the message's `is_ip4`.
    pub fn to_ip(&self, is_ip4: bool) -> IpAddr {
        if is_ip4 {
            IpAddr::V4(self.v4())
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }
}

/// Transport protocol (`transport_proto_t`, also `vppcom_proto_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TransportProto {
    /// TCP.
    Tcp = 0,
    /// UDP.
    Udp = 1,
    /// Cut-through; also TRANSPORT_PROTO_NONE.
    Ct = 2,
    /// TLS.
    Tls = 3,
    /// QUIC.
    Quic = 4,
    /// DTLS.
    Dtls = 5,
    /// SRTP.
    Srtp = 6,
    /// HTTP.
    Http = 7,
}

impl TransportProto {
    /// Parses the wire byte; unknown protocols are errors.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Tcp,
            1 => Self::Udp,
            2 => Self::Ct,
            3 => Self::Tls,
            4 => Self::Quic,
            5 => Self::Dtls,
            6 => Self::Srtp,
            7 => Self::Http,
            _ => return None,
        })
    }

    pub(crate) fn read(r: &Reader<'_>, off: usize) -> Result<Self, DecodeError> {
        let v = r.u8(off)?;
        Self::from_u8(v).ok_or_else(|| r.bad("proto", v.into()))
    }
}

/// `transport_endpt_cfg_flags` bits for the `flags` byte of LISTEN/CONNECT.
pub mod cfg_flags {
    /// Connected UDP (VCL sets it on every connect: docs/wire.md#connect-flags).
    pub const CONNECTED: u8 = 1 << 0;
    /// Unidirectional stream.
    pub const UNIDIRECTIONAL: u8 = 1 << 1;
}

/// Session flag bits (`SESSION_F_*`) in ACCEPTED `flags` (u16).
pub mod session_flags {
    /// Rx event pending.
    pub const RX_EVT: u16 = 1 << 0;
    /// Proxy session.
    pub const PROXY: u16 = 1 << 1;
    /// Custom tx.
    pub const CUSTOM_TX: u16 = 1 << 2;
    /// Being migrated.
    pub const IS_MIGRATING: u16 = 1 << 3;
    /// Unidirectional stream.
    pub const UNIDIRECTIONAL: u16 = 1 << 4;
    /// Custom fifo tuning.
    pub const CUSTOM_FIFO_TUNING: u16 = 1 << 5;
    /// Half-open.
    pub const HALF_OPEN: u16 = 1 << 6;
    /// App closed.
    pub const APP_CLOSED: u16 = 1 << 7;
    /// Connectionless.
    pub const IS_CLESS: u16 = 1 << 8;
    /// Rx ready.
    pub const RX_READY: u16 = 1 << 9;
    /// Transport initiated close.
    pub const TPT_INIT_CLOSE: u16 = 1 << 10;
    /// Stream session.
    pub const STREAM: u16 = 1 << 11;
}

/// `transport_endpoint_t` (natural layout, 28 B; embedded unaligned in
/// packed messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransportEndpoint {
    /// Address (network order).
    pub ip: Ip46,
    /// Port, host order (network order on the wire).
    pub port: u16,
    /// Address family.
    pub is_ip4: bool,
    /// Interface.
    pub sw_if_index: u32,
    /// FIB table.
    pub fib_index: u32,
}

impl TransportEndpoint {
    /// Size on the wire.
    pub const LEN: usize = 28;

    pub(crate) fn put(&self, w: &mut Writer<'_>, off: usize) {
        w.bytes(off, &self.ip.0);
        w.u16_be(off + 16, self.port);
        w.bool(off + 18, self.is_ip4);
        w.u32(off + 20, self.sw_if_index);
        w.u32(off + 24, self.fib_index);
    }

    pub(crate) fn get(r: &Reader<'_>, off: usize) -> Result<Self, DecodeError> {
        Ok(Self {
            ip: Ip46(r.array(off)?),
            port: r.u16_be(off + 16)?,
            is_ip4: r.bool(off + 18)?,
            sw_if_index: r.u32(off + 20)?,
            fib_index: r.u32(off + 24)?,
        })
    }
}

/// `transport_endpt_attr_type_t` values as numbered in v26.06
/// (TLS_PROFILE_INFO=7 shifted NEXT_TRANSPORT and APP_PROTO_ERR_CODE up by one
/// compared with v26.02).
pub mod attr_type {
    /// u64 next output node.
    pub const NEXT_OUTPUT_NODE: u8 = 0;
    /// u16 MSS.
    pub const MSS: u8 = 1;
    /// u8 `TRANSPORT_ENDPT_ATTR_F_*` flags.
    pub const FLAGS: u8 = 2;
    /// u8 congestion control algorithm.
    pub const CC_ALGO: u8 = 3;
    /// transport_endpoint_t.
    pub const EXT_ENDPT: u8 = 4;
    /// tls_cert_t (pointers; meaningless across processes).
    pub const TLS_PEER_CERT: u8 = 5;
    /// u8 negotiated ALPN protocol id.
    pub const TLS_ALPN: u8 = 6;
    /// tls_profile_info_t (pointers; meaningless across processes).
    pub const TLS_PROFILE_INFO: u8 = 7;
    /// u64 next transport.
    pub const NEXT_TRANSPORT: u8 = 8;
    /// u64 application protocol error code.
    pub const APP_PROTO_ERR_CODE: u8 = 9;
}

/// `transport_endpt_attr_t` (natural, 40 B): type byte at 0, union at 8.
/// Pointer members are kept as raw u64 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportAttr {
    /// Type 0.
    NextOutputNode(u64),
    /// Type 1.
    Mss(u16),
    /// Type 2.
    Flags(u8),
    /// Type 3.
    CcAlgo(u8),
    /// Type 4.
    ExtEndpt(TransportEndpoint),
    /// Type 5: `tls_cert_t` {cert ptr @8, chain ptr @16, flags u32 @24}.
    TlsPeerCert {
        /// Pointer value.
        cert: u64,
        /// Pointer value.
        chain: u64,
        /// `TLS_CERT_F_*`.
        flags: u32,
    },
    /// Type 6.
    TlsAlpn(u8),
    /// Type 7: `tls_profile_info_t` {cipher ptr @8, tls_version u16 @16,
    /// key_agreement ptr @24, signature_algo ptr @32}.
    TlsProfileInfo {
        /// Pointer value.
        cipher: u64,
        /// Negotiated version.
        tls_version: u16,
        /// Pointer value.
        key_agreement: u64,
        /// Pointer value.
        signature_algo: u64,
    },
    /// Type 8.
    NextTransport(u64),
    /// Type 9.
    AppProtoErrCode(u64),
}

impl TransportAttr {
    /// Size on the wire.
    pub const LEN: usize = 40;

    /// The attribute's type byte.
    pub fn attr_type(&self) -> u8 {
        match self {
            Self::NextOutputNode(_) => attr_type::NEXT_OUTPUT_NODE,
            Self::Mss(_) => attr_type::MSS,
            Self::Flags(_) => attr_type::FLAGS,
            Self::CcAlgo(_) => attr_type::CC_ALGO,
            Self::ExtEndpt(_) => attr_type::EXT_ENDPT,
            Self::TlsPeerCert { .. } => attr_type::TLS_PEER_CERT,
            Self::TlsAlpn(_) => attr_type::TLS_ALPN,
            Self::TlsProfileInfo { .. } => attr_type::TLS_PROFILE_INFO,
            Self::NextTransport(_) => attr_type::NEXT_TRANSPORT,
            Self::AppProtoErrCode(_) => attr_type::APP_PROTO_ERR_CODE,
        }
    }

    pub(crate) fn put(&self, w: &mut Writer<'_>, off: usize) {
        w.u8(off, self.attr_type());
        let u = off + 8;
        match *self {
            Self::NextOutputNode(v) | Self::NextTransport(v) | Self::AppProtoErrCode(v) => {
                w.u64(u, v)
            }
            Self::Mss(v) => w.u16(u, v),
            Self::Flags(v) | Self::CcAlgo(v) | Self::TlsAlpn(v) => w.u8(u, v),
            Self::ExtEndpt(ep) => ep.put(w, u),
            Self::TlsPeerCert { cert, chain, flags } => {
                w.u64(u, cert);
                w.u64(u + 8, chain);
                w.u32(u + 16, flags);
            }
            Self::TlsProfileInfo {
                cipher,
                tls_version,
                key_agreement,
                signature_algo,
            } => {
                w.u64(u, cipher);
                w.u16(u + 8, tls_version);
                w.u64(u + 16, key_agreement);
                w.u64(u + 24, signature_algo);
            }
        }
    }

    pub(crate) fn get(r: &Reader<'_>, off: usize) -> Result<Self, DecodeError> {
        let u = off + 8;
        let t = r.u8(off)?;
        Ok(match t {
            attr_type::NEXT_OUTPUT_NODE => Self::NextOutputNode(r.u64(u)?),
            attr_type::MSS => Self::Mss(r.u16(u)?),
            attr_type::FLAGS => Self::Flags(r.u8(u)?),
            attr_type::CC_ALGO => Self::CcAlgo(r.u8(u)?),
            attr_type::EXT_ENDPT => Self::ExtEndpt(TransportEndpoint::get(r, u)?),
            attr_type::TLS_PEER_CERT => Self::TlsPeerCert {
                cert: r.u64(u)?,
                chain: r.u64(u + 8)?,
                flags: r.u32(u + 16)?,
            },
            attr_type::TLS_ALPN => Self::TlsAlpn(r.u8(u)?),
            attr_type::TLS_PROFILE_INFO => Self::TlsProfileInfo {
                cipher: r.u64(u)?,
                tls_version: r.u16(u + 8)?,
                key_agreement: r.u64(u + 16)?,
                signature_algo: r.u64(u + 24)?,
            },
            attr_type::NEXT_TRANSPORT => Self::NextTransport(r.u64(u)?),
            attr_type::APP_PROTO_ERR_CODE => Self::AppProtoErrCode(r.u64(u)?),
            other => return Err(r.bad("attr type", other.into())),
        })
    }
}

/// `session_cleanup_ntf_t` carried in CLEANUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CleanupType {
    /// Transport freed before the app closed.
    Transport = 0,
    /// Session freed (always sent).
    Session = 1,
}
