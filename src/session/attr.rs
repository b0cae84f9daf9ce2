//! Session attributes: every VPPCOM_ATTR_* op of vppcom_session_attr, with upstream VCL
//! v26.06's value semantics, buffer-length checks, `*buflen` updates and error codes.
//!
//! The C layer (src/ffi/attr.rs) owns the caller's raw buffer: it checks it against the op's
//! rule, reads what the op takes into an [`Input`], calls [`session_attr`] and writes the
//! [`Reply`] back. Everything here is safe Rust over typed values; the order in which the
//! session state and the buffer check decide an op's error is upstream's.
//!
//! Four ops talk to VPP: GET/SET_TCP_USER_MSS and GET/SET_APP_PROTO_ERR_CODE send
//! TRANSPORT_ATTR on the session's VPP thread queue and wait up to 1 s for TRANSPORT_ATTR_REPLY
//! ([`on_transport_attr_reply`]). SET_CKPAIR, SET_ENDPT_EXT_CFG, SET_VRF, SET_DSCP and
//! SET_CONNECTED only record what the next listen/connect sends ([`ext_config`], [`vrf`],
//! [`dscp`], [`connected_flag`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::MutexGuard;
use vcl_codec::msg::{CtrlMsg, Ip46, TransportAttr, TransportAttrMsg, TransportAttrReply};
use vcl_svm::fifo::segs::SESSION_CONN_HDR_LEN;

use super::{lookup, send_ctrl_to, until, Endpoint, Session, Sessions, State};
use crate::error::{Error, Result};
use crate::abi::*;
use crate::worker::Worker;

/// sizeof (vppcom_endpt_t) on LP64 (checked against the C struct in src/ffi/attr.rs).
pub const ENDPT_LEN: u32 = 48;

/// How long a transport attribute request waits for VPP's reply.
const TRANSPORT_ATTR_WAIT: Duration = Duration::from_secs(1);

/// `transport_endpt_ext_cfg_t` header (type u16, len u16) in front of its union.
const EXT_CFG_HDR: usize = 4;
/// sizeof (transport_endpt_ext_cfg_t) in v26.06 (crypto cfg of 284 bytes + header).
const EXT_CFG_CRYPTO_LEN: usize = 288;
const EXT_CFG_TYPE_NONE: u16 = 0;
const EXT_CFG_TYPE_CRYPTO: u16 = 1;
/// "Not set" for the crypto cfg's tls_profile_index and owner_app_wrk_index (ENDPOINT_INVALID).
const CRYPTO_IDX_UNSET: u32 = u32::MAX;

/// VPPCOM_PROTO_* numbers the ops look at.
const PROTO_UDP: u8 = 1;
const PROTO_TLS: u8 = 3;
const PROTO_QUIC: u8 = 4;
const PROTO_DTLS: u8 = 5;

/// Upstream's boolean session attributes (vcl_sess_attr_t), as bits of [`AttrState`].
mod bit {
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

/// The ext_config the next listen/connect carries (freed once sent, as upstream does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtConfig {
    /// SET_CKPAIR: a crypto config naming a cert/key pair.
    Crypto { ckpair_index: u32 },
    /// SET_ENDPT_EXT_CFG: the caller's bytes, as the union of a type-NONE ext config.
    Raw(Vec<u8>),
}

impl ExtConfig {
    /// The `transport_endpt_ext_cfg_t` blob (header included) to copy into the chunk.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            ExtConfig::Crypto { ckpair_index } => {
                let mut b = vec![0u8; EXT_CFG_CRYPTO_LEN];
                put_u16(&mut b, 0, EXT_CFG_TYPE_CRYPTO);
                // Upstream puts the size of the whole struct here, not of the payload.
                put_u16(&mut b, 2, EXT_CFG_CRYPTO_LEN as u16);
                let c = EXT_CFG_HDR;
                put_u32(&mut b, c, *ckpair_index);
                // ca_trust_index (c + 4) stays 0 as upstream leaves it. tls_profile_index and
                // owner_app_wrk_index are "unset" rather than upstream's zeros: VPP reads 0 as
                // profile 0 of app worker 0, which is some other app's worker (FACTS §6.6).
                put_u32(&mut b, c + 8, CRYPTO_IDX_UNSET);
                put_u32(&mut b, c + 12, CRYPTO_IDX_UNSET);
                b
            }
            ExtConfig::Raw(data) => {
                let mut b = vec![0u8; EXT_CFG_HDR + data.len()];
                put_u16(&mut b, 0, EXT_CFG_TYPE_NONE);
                // The header's len is 16 bits; upstream truncates the same way.
                put_u16(&mut b, 2, data.len() as u16);
                b[EXT_CFG_HDR..].copy_from_slice(data);
                b
            }
        }
    }
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_ne_bytes());
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

/// A TRANSPORT_ATTR request in flight for this session.
#[derive(Debug, Clone)]
struct Pending {
    seq: u64,
    /// (retval, attr) once the reply came.
    result: Option<(i32, TransportAttr)>,
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
    pub vrf: u32,
    pub dscp: u8,
    pub ext_config: Option<ExtConfig>,
    /// Attributes VPP pushed with TRANSPORT_ATTR (e.g. the original destination).
    pub tep_attrs: Vec<TransportAttr>,
    pending: Option<Pending>,
}

impl AttrState {
    fn has(&self, b: u16) -> bool {
        self.bits & b != 0
    }

    fn set(&mut self, b: u16, on: bool) {
        self.bits = (self.bits & !b) | if on { b } else { 0 };
    }

    fn tep(&self, ty: u8) -> Option<&TransportAttr> {
        self.tep_attrs.iter().find(|a| a.attr_type() == ty)
    }
}

/// VRF for the next listen/connect.
pub fn vrf(s: &Session) -> u32 {
    s.attr.vrf
}

/// DSCP for the next listen/connect.
pub fn dscp(s: &Session) -> u8 {
    s.attr.dscp
}

/// Whether SET_CONNECTED was called (listen sends TRANSPORT_CFG_F_CONNECTED then).
pub fn connected_flag(s: &Session) -> bool {
    s.attr.connected
}

/// The ext_config blob the next listen/connect should carry, if any.
pub fn ext_config(s: &Session) -> Option<Vec<u8>> {
    s.attr.ext_config.as_ref().map(ExtConfig::to_bytes)
}

/// Take the ext_config blob (upstream frees it once listen/connect sent it).
pub fn take_ext_config(s: &mut Session) -> Option<Vec<u8>> {
    s.attr.ext_config.take().map(|c| c.to_bytes())
}

/// An accepted session's original destination (ACCEPTED's original_dst_ip4/port, kept when
/// the peer is IPv4 and the port non-zero), as upstream records it: an EXT_ENDPT attribute
/// whose family field stays 0, so GET_ORIGINAL_DST reports IPv6: 12 zero bytes, then the IPv4.
pub fn note_original_dst(s: &mut Session, ip4: [u8; 4], port: u16) {
    let mut ip = [0u8; 16];
    ip[12..].copy_from_slice(&ip4);
    let ep = vcl_codec::msg::TransportEndpoint {
        ip: Ip46(ip),
        port,
        ..Default::default()
    };
    s.attr.tep_attrs.push(TransportAttr::ExtEndpt(ep));
}

/// TRANSPORT_ATTR_REPLY from the app mq: completes the request waiting on that session.
pub fn on_transport_attr_reply(ss: &mut Sessions, m: &TransportAttrReply) {
    let pending = ss
        .index_of_vpp(m.handle)
        .and_then(|i| ss.get_mut(i))
        .and_then(|s| s.attr.pending.as_mut());
    match pending {
        Some(p) if p.result.is_none() => p.result = Some((m.retval, m.attr)),
        _ => tracing::debug!("transport attr reply for {:#x}: nobody waits", m.handle),
    }
}

/// TRANSPORT_ATTR pushed by VPP: remember it (GET_ORIGINAL_DST, GET_EXT_ENDPT read it).
pub fn on_transport_attr(ss: &mut Sessions, m: &TransportAttrMsg) {
    match ss.index_of_vpp(m.handle).and_then(|i| ss.get_mut(i)) {
        Some(s) => s.attr.tep_attrs.push(m.attr),
        None => tracing::debug!("transport attr for unknown session {:#x}", m.handle),
    }
}

/// A value read from the caller's buffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Input {
    #[default]
    None,
    U8(u8),
    U32(u32),
    U64(u64),
    Endpt(Endpoint),
    Bytes(Vec<u8>),
}

/// An address to write into the caller's vppcom_endpt_t.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndptOut {
    pub is_ip4: bool,
    /// IPv4 in bytes 12..16.
    pub ip: Ip46,
    /// Network order, as vppcom_endpt_t keeps it.
    pub port_be: u16,
}

/// What to write into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    None,
    /// An `int`.
    Int(i32),
    U32(u32),
    U64(u64),
    /// A `size_t` (GET_RX_FIFO_LEN writes one, whatever `*buflen` says).
    SizeT(u64),
    Endpt(EndptOut),
}

/// The op's result: return value, buffer contents and the new `*buflen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub rv: i32,
    pub out: Output,
    pub buflen: Option<u32>,
}

impl Reply {
    const OK: Reply = Reply {
        rv: 0,
        out: Output::None,
        buflen: None,
    };

    fn ok() -> Reply {
        Reply::OK
    }

    fn ret(rv: i32) -> Reply {
        Reply { rv, ..Reply::OK }
    }

    /// Write `out`, leave `*buflen` alone.
    fn put(out: Output) -> Reply {
        Reply { out, ..Reply::OK }
    }

    /// Write an int and set `*buflen` to 4.
    fn int(v: i32) -> Reply {
        Reply {
            rv: 0,
            out: Output::Int(v),
            buflen: Some(4),
        }
    }
}

fn input_u32(input: &Input) -> u32 {
    match *input {
        Input::U32(v) => v,
        Input::U8(v) => v.into(),
        _ => 0,
    }
}

fn input_u64(input: &Input) -> u64 {
    match *input {
        Input::U64(v) => v,
        _ => 0,
    }
}

/// The address family upstream keeps once per session (transport.is_ip4): the peer's once a
/// connect or accept named one, else the local one.
pub fn transport_is_ip4(s: &Session) -> bool {
    if s.rmt != Endpoint::default() {
        s.rmt.is_ip4
    } else {
        s.lcl.is_ip4
    }
}

/// Datagram sessions not connected to one peer (upstream's vcl_session_is_cl).
fn is_cl(s: &Session) -> bool {
    s.proto == PROTO_UDP && !s.attr.connected
}

fn has_crypto(s: &Session) -> bool {
    matches!(s.proto, PROTO_TLS | PROTO_QUIC | PROTO_DTLS)
}

fn is_open(s: &Session) -> bool {
    matches!(s.state, State::Ready | State::VppClosing) || (s.state == State::Listen && is_cl(s))
}

fn not_open_error(s: &Session) -> Error {
    if s.state == State::Reset {
        Error::ConnReset
    } else {
        Error::NotConn
    }
}

/// Bytes (or, for datagrams, the next datagram's length; 1 for an empty one) readable now;
/// a listener's pending accepts (upstream's vcl_session_read_ready).
pub fn read_ready(s: &Session) -> Result<i32> {
    if s.is_vep {
        return Err(Error::BadFd);
    }
    if is_open(s) {
        let Some(rx) = s.fifos.as_ref().and_then(|f| f.rx.get().ok()) else {
            return Ok(0);
        };
        let max_deq = rx.max_dequeue_cons();
        if !s.is_dgram() {
            return Ok(max_deq as i32);
        }
        if max_deq as usize <= SESSION_CONN_HDR_LEN {
            return Ok(0);
        }
        let mut ph = [0u8; 8];
        if !matches!(rx.peek(0, &mut ph), Ok(8)) {
            return Ok(0);
        }
        let data_len = u32::from_ne_bytes([ph[0], ph[1], ph[2], ph[3]]);
        let whole = u64::from(data_len) + SESSION_CONN_HDR_LEN as u64;
        if whole > u64::from(max_deq) {
            return Ok(0);
        }
        return Ok(data_len.max(1) as i32);
    }
    if s.state == State::Listen {
        return Ok(s.accept_q.len() as i32);
    }
    Err(not_open_error(s))
}

/// Bytes writable now (datagrams: minus one datagram header); upstream's
/// vcl_session_write_ready.
pub fn write_ready(s: &Session) -> Result<i32> {
    if s.is_vep {
        return Err(Error::BadFd);
    }
    let tx = || s.fifos.as_ref().and_then(|f| f.tx.get().ok());
    if is_open(s) {
        let Some(tx) = tx() else { return Ok(0) };
        let max_enq = tx.max_enqueue_prod();
        if !s.is_dgram() {
            return Ok(max_enq as i32);
        }
        return Ok(max_enq.saturating_sub(SESSION_CONN_HDR_LEN as u32) as i32);
    }
    if s.state == State::Listen {
        return tx()
            .map(|t| t.max_enqueue_prod() as i32)
            .ok_or(Error::BadFd);
    }
    Err(not_open_error(s))
}

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
fn transport_attr(
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
        client_index: w.api_client_handle,
        handle: s.vpp_handle,
        attr,
        is_get,
    });
    let thread = s.vpp_thread;
    if send_ctrl_to(w, thread, &msg).is_ok() {
        until(w, ss, Some(TRANSPORT_ATTR_WAIT), |ss| {
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

fn need(ok: bool) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Inval)
    }
}

fn endpt(is_ip4: bool, ip: Ip46, port: u16) -> Output {
    Output::Endpt(EndptOut {
        is_ip4,
        ip,
        port_be: port.to_be(),
    })
}

/// The boolean attributes: (get op, set op, bit, bits that make the set fail). Upstream keeps
/// only whether TCP_KEEPIDLE/KEEPINTVL were set non-zero, and reports that; IP_PKTINFO can be
/// set once (a second set fails while the bit is on).
#[rustfmt::skip]
const BOOL_OPS: [(i32, i32, u16, u16); 9] = [
    (VPPCOM_ATTR_GET_REUSEADDR, VPPCOM_ATTR_SET_REUSEADDR, bit::REUSEADDR, bit::LISTEN),
    (VPPCOM_ATTR_GET_REUSEPORT, VPPCOM_ATTR_SET_REUSEPORT, bit::REUSEPORT, bit::LISTEN),
    (VPPCOM_ATTR_GET_BROADCAST, VPPCOM_ATTR_SET_BROADCAST, bit::BROADCAST, 0),
    (VPPCOM_ATTR_GET_V6ONLY, VPPCOM_ATTR_SET_V6ONLY, bit::V6ONLY, 0),
    (VPPCOM_ATTR_GET_KEEPALIVE, VPPCOM_ATTR_SET_KEEPALIVE, bit::KEEPALIVE, 0),
    (VPPCOM_ATTR_GET_TCP_NODELAY, VPPCOM_ATTR_SET_TCP_NODELAY, bit::TCP_NODELAY, 0),
    (VPPCOM_ATTR_GET_TCP_KEEPIDLE, VPPCOM_ATTR_SET_TCP_KEEPIDLE, bit::TCP_KEEPIDLE, 0),
    (VPPCOM_ATTR_GET_TCP_KEEPINTVL, VPPCOM_ATTR_SET_TCP_KEEPINTVL, bit::TCP_KEEPINTVL, 0),
    (VPPCOM_ATTR_GET_IP_PKTINFO, VPPCOM_ATTR_SET_IP_PKTINFO, bit::IP_PKTINFO, bit::IP_PKTINFO),
];

/// vppcom_session_attr on session `sh`: op `op`; `ok` says whether the caller's buffer passed
/// the op's check, `input` is what it held. `cfg_fifo` is vcl.conf's (rx, tx) fifo size,
/// reported before VPP gave the session fifos.
pub fn session_attr(
    w: &Worker,
    ss: &mut MutexGuard<'_, Sessions>,
    sh: u32,
    op: u32,
    ok: bool,
    input: &Input,
    cfg_fifo: (u32, u32),
) -> Result<Reply> {
    let i = lookup(w, ss, sh)?;
    let (is_get, req) = match op as i32 {
        VPPCOM_ATTR_GET_TCP_USER_MSS | VPPCOM_ATTR_SET_TCP_USER_MSS => (
            op as i32 == VPPCOM_ATTR_GET_TCP_USER_MSS,
            // The attribute's mss is 16 bits wide; the caller's u32 is truncated into it.
            TransportAttr::Mss(input_u32(input) as u16),
        ),
        VPPCOM_ATTR_GET_APP_PROTO_ERR_CODE | VPPCOM_ATTR_SET_APP_PROTO_ERR_CODE => (
            op as i32 == VPPCOM_ATTR_GET_APP_PROTO_ERR_CODE,
            TransportAttr::AppProtoErrCode(input_u64(input)),
        ),
        _ => {
            let s = ss.get_mut(i).ok_or(Error::BadFd)?;
            return local_attr(s, op, ok, input, cfg_fifo);
        }
    };
    need(ok)?;
    let got = transport_attr(w, ss, i, is_get, req).map_err(|_| Error::NoProtoOpt)?;
    if !is_get {
        return Ok(Reply::ok());
    }
    let word = union_word(&got);
    let out = match req {
        TransportAttr::Mss(_) => Output::U32(u32::from(word as u16)),
        _ => Output::U64(word),
    };
    // Both gets set *buflen to 4, also after writing the 8-byte error code.
    Ok(Reply {
        rv: 0,
        out,
        buflen: Some(4),
    })
}

/// The ops that stay in this process. `ok`: the op's buffer rule held.
pub(crate) fn local_attr(
    s: &mut Session,
    op: u32,
    ok: bool,
    input: &Input,
    cfg_fifo: (u32, u32),
) -> Result<Reply> {
    let op = op as i32;
    if let Some(&(get, _, bit, blocked)) = BOOL_OPS.iter().find(|e| op == e.0 || op == e.1) {
        let a = &mut s.attr;
        if op == get {
            need(ok)?;
            return Ok(Reply::int(i32::from(a.has(bit))));
        }
        need(ok && !a.has(blocked))?;
        a.set(bit, input_u32(input) != 0);
        return Ok(Reply::ok());
    }
    let a = &mut s.attr;
    match op {
        VPPCOM_ATTR_GET_NREAD => read_ready(s).map(Reply::ret),
        VPPCOM_ATTR_GET_NWRITE => write_ready(s).map(Reply::ret),
        VPPCOM_ATTR_GET_NWRITEQ => {
            need(ok)?;
            let tx = s.fifos.as_ref().and_then(|f| f.tx.get().ok());
            match tx {
                Some(tx) if s.state != State::Detached => {
                    Ok(Reply::put(Output::Int(tx.max_dequeue() as i32)))
                }
                _ => Err(Error::Inval),
            }
        }
        VPPCOM_ATTR_GET_FLAGS => {
            need(ok)?;
            let nb = if s.nonblocking { libc::O_NONBLOCK } else { 0 };
            Ok(Reply::int(libc::O_RDWR | nb))
        }
        VPPCOM_ATTR_SET_FLAGS => {
            need(ok)?;
            s.nonblocking = input_u32(input) & libc::O_NONBLOCK as u32 != 0;
            Ok(Reply::ok())
        }
        VPPCOM_ATTR_GET_PEER_ADDR | VPPCOM_ATTR_GET_LCL_ADDR => {
            need(ok)?;
            let e = if op == VPPCOM_ATTR_GET_PEER_ADDR {
                s.rmt
            } else {
                s.lcl
            };
            Ok(Reply {
                rv: 0,
                out: endpt(transport_is_ip4(s), e.ip, e.port),
                buflen: Some(ENDPT_LEN),
            })
        }
        VPPCOM_ATTR_GET_ORIGINAL_DST | VPPCOM_ATTR_GET_EXT_ENDPT => {
            let orig = op == VPPCOM_ATTR_GET_ORIGINAL_DST;
            if orig && !transport_is_ip4(s) {
                // Only IPv4 original destinations exist; checked before the buffer.
                return Err(Error::AfNoSupport);
            }
            need(ok)?;
            let Some(TransportAttr::ExtEndpt(te)) =
                s.attr.tep(vcl_codec::msg::attr_type::EXT_ENDPT)
            else {
                return Err(Error::Inval);
            };
            Ok(Reply {
                rv: 0,
                out: endpt(te.is_ip4, te.ip, te.port),
                buflen: orig.then_some(ENDPT_LEN),
            })
        }
        VPPCOM_ATTR_SET_LCL_ADDR => {
            need(ok)?;
            if let Input::Endpt(ep) = *input {
                s.lcl = ep;
            }
            Ok(Reply {
                buflen: Some(ENDPT_LEN),
                ..Reply::ok()
            })
        }
        VPPCOM_ATTR_GET_PROTOCOL => need(ok).map(|_| Reply::int(s.proto.into())),
        VPPCOM_ATTR_GET_LISTEN => need(ok).map(|_| Reply::int(a.has(bit::LISTEN).into())),
        VPPCOM_ATTR_GET_ERROR => need(ok).map(|_| Reply::int(0)),
        VPPCOM_ATTR_GET_TX_FIFO_LEN | VPPCOM_ATTR_GET_RX_FIFO_LEN => {
            need(ok)?;
            let tx = op == VPPCOM_ATTR_GET_TX_FIFO_LEN;
            let (set, cfg) = if tx {
                (a.sndbuf, cfg_fifo.1)
            } else {
                (a.rcvbuf, cfg_fifo.0)
            };
            let fifo = s
                .fifos
                .as_ref()
                .map(|f| if tx { &f.tx } else { &f.rx })
                .and_then(|f| f.get().ok())
                .map(|f| f.size());
            let v = if set != 0 { set } else { fifo.unwrap_or(cfg) };
            let out = if tx {
                Output::U32(v)
            } else {
                Output::SizeT(v.into())
            };
            Ok(Reply {
                rv: 0,
                out,
                buflen: Some(4),
            })
        }
        VPPCOM_ATTR_SET_TX_FIFO_LEN => need(ok).map(|_| a.sndbuf = input_u32(input)).map(ok_reply),
        VPPCOM_ATTR_SET_RX_FIFO_LEN => need(ok).map(|_| a.rcvbuf = input_u32(input)).map(ok_reply),
        VPPCOM_ATTR_GET_COOKIE => need(ok).map(|_| Reply::put(Output::U64(0))),
        VPPCOM_ATTR_SET_COOKIE => need(ok).map(ok_reply),
        VPPCOM_ATTR_SET_CONNECTED => {
            a.connected = true;
            Ok(Reply::ok())
        }
        VPPCOM_ATTR_SET_CKPAIR => {
            need(ok && has_crypto(s))?;
            let a = &mut s.attr;
            let idx = input_u32(input);
            match &mut a.ext_config {
                None => a.ext_config = Some(ExtConfig::Crypto { ckpair_index: idx }),
                Some(ExtConfig::Crypto { ckpair_index }) => *ckpair_index = idx,
                Some(ExtConfig::Raw(_)) => return Err(Error::Inval),
            }
            Ok(Reply::ok())
        }
        VPPCOM_ATTR_SET_VRF => need(ok).map(|_| a.vrf = input_u32(input)).map(ok_reply),
        VPPCOM_ATTR_GET_VRF => need(ok).map(|_| Reply {
            rv: 0,
            out: Output::U32(a.vrf),
            buflen: Some(4),
        }),
        VPPCOM_ATTR_GET_DOMAIN => {
            need(ok)?;
            let ip4 = transport_is_ip4(s);
            Ok(Reply::int(if ip4 { libc::AF_INET } else { libc::AF_INET6 }))
        }
        VPPCOM_ATTR_SET_ENDPT_EXT_CFG => {
            need(ok && a.ext_config.is_none())?;
            let data = match input {
                Input::Bytes(d) => d.clone(),
                _ => Vec::new(),
            };
            a.ext_config = Some(ExtConfig::Raw(data));
            Ok(Reply::ok())
        }
        VPPCOM_ATTR_SET_DSCP => need(ok)
            .map(|_| a.dscp = input_u32(input) as u8)
            .map(ok_reply),
        VPPCOM_ATTR_GET_STREAM_FLAGS => {
            need(ok)?;
            let uni = a.unidirectional;
            Ok(Reply::int(if uni {
                VPPCOM_STREAM_F_UNIDIRECTIONAL
            } else {
                0
            }))
        }
        VPPCOM_ATTR_SET_STREAM_FLAGS => {
            need(ok)?;
            a.unidirectional = input_u32(input) & VPPCOM_STREAM_F_UNIDIRECTIONAL as u32 != 0;
            Ok(Reply::ok())
        }
        _ => Err(Error::Inval),
    }
}

fn ok_reply(_: ()) -> Reply {
    Reply::ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(s: &mut Session, op: i32, ok: bool, input: Input) -> Result<Reply> {
        local_attr(s, op as u32, ok, &input, (1 << 20, 1 << 19))
    }

    #[test]
    fn ext_config_blobs() {
        let c = ExtConfig::Crypto { ckpair_index: 7 }.to_bytes();
        let u32_at = |o: usize| u32::from_ne_bytes(c[o..o + 4].try_into().unwrap());
        assert_eq!((c.len(), &c[..4]), (288, &[1, 0, 32, 1][..]));
        assert_eq!(
            (u32_at(4), u32_at(8), u32_at(12), u32_at(16)),
            (7, 0, !0, !0)
        );
        assert_eq!(
            ExtConfig::Raw(vec![9, 8, 7]).to_bytes(),
            [0, 0, 3, 0, 9, 8, 7]
        );
    }

    #[test]
    fn transport_attr_values_read_back_from_the_union() {
        assert_eq!(union_word(&TransportAttr::Mss(1460)), 1460);
        assert_eq!(union_word(&TransportAttr::AppProtoErrCode(!1)), !1);
    }

    #[test]
    fn local_ops_keep_upstream_quirks() {
        let mut s = Session::new(0, false);
        assert_eq!(read_ready(&s), Err(Error::NotConn));
        s.state = State::Listen;
        assert_eq!(
            (read_ready(&s), write_ready(&s)),
            (Ok(0), Err(Error::BadFd))
        );
        s.state = State::Reset;
        assert_eq!(write_ready(&s), Err(Error::ConnReset));
        assert_eq!(
            op(&mut s, VPPCOM_ATTR_SET_CKPAIR, true, Input::U32(1)),
            Err(Error::Inval)
        );
        let pktinfo = |s: &mut Session| op(s, VPPCOM_ATTR_SET_IP_PKTINFO, true, Input::U32(1));
        assert!(pktinfo(&mut s).is_ok());
        assert_eq!(pktinfo(&mut s), Err(Error::Inval), "set once");
        let r = op(&mut s, VPPCOM_ATTR_GET_RX_FIFO_LEN, true, Input::None).unwrap();
        assert_eq!((r.out, r.buflen), (Output::SizeT(1 << 20), Some(4)));
        let mut t = Session::new(PROTO_TLS, false);
        op(&mut t, VPPCOM_ATTR_SET_CKPAIR, true, Input::U32(3)).unwrap();
        op(&mut t, VPPCOM_ATTR_SET_CKPAIR, true, Input::U32(4)).unwrap();
        assert_eq!(
            t.attr.ext_config,
            Some(ExtConfig::Crypto { ckpair_index: 4 })
        );
        let raw = Input::Bytes(vec![1]);
        assert_eq!(
            op(&mut t, VPPCOM_ATTR_SET_ENDPT_EXT_CFG, true, raw),
            Err(Error::Inval)
        );
        assert!(take_ext_config(&mut t).is_some() && ext_config(&t).is_none());
        assert!(
            op(&mut t, 7, true, Input::None).is_err() && op(&mut t, 52, true, Input::None).is_err()
        );
    }
}
