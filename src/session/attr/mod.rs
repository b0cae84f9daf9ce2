//! Session attributes: every VPPCOM_ATTR_* op of vppcom_session_attr, with upstream VCL
//! v26.06's value semantics, buffer-length checks, `*buflen` updates and error codes.
//!
//! The C layer (src/ffi/attr.rs) owns the caller's raw buffer: it checks it against the op's
//! rule, reads what the op takes into an [`Input`], calls [`session_attr`] and writes the
//! [`Reply`] back. Everything here is safe Rust over typed values; the order in which the
//! session state and the buffer check decide an op's error is upstream's.
//!
//! Four ops talk to VPP ([`transport`]): GET/SET_TCP_USER_MSS and GET/SET_APP_PROTO_ERR_CODE.
//! SET_CKPAIR, SET_ENDPT_EXT_CFG, SET_VRF, SET_DSCP and SET_CONNECTED only record what the
//! next listen/connect sends ([`crate::table::attr::AttrState`]). GET_NREAD and GET_NWRITE are
//! the session's readiness ([`super::ready`]).

mod transport;

use vcl_codec::ext_cfg::ExtCfgBody;
use vcl_codec::msg::{Ip46, TransportAttr};
use vcl_svm::sync::MutexGuard;

use super::ready::{read_ready, write_ready};
use super::{lookup, Endpoint, Session, Sessions, State};
use crate::abi::*;
use crate::error::{Error, Result};
use crate::table::attr::{bit, crypto_ext_cfg, raw_ext_cfg};
use crate::worker::Worker;

pub use transport::union_word;

/// sizeof (vppcom_endpt_t) on LP64 (checked against the C struct in src/ffi/attr.rs).
pub const ENDPT_LEN: u32 = 48;

/// VPPCOM_PROTO_* numbers the ops look at.
const PROTO_TLS: u8 = 3;
const PROTO_QUIC: u8 = 4;
const PROTO_DTLS: u8 = 5;

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

fn has_crypto(s: &Session) -> bool {
    matches!(s.proto, PROTO_TLS | PROTO_QUIC | PROTO_DTLS)
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
/// the op's check, `input` is what it held. `cfg_fifo` gives vcl.conf's (rx, tx) fifo size,
/// reported before VPP gave the session fifos (asked only by the ops that report it: it takes
/// the app's lock).
pub fn session_attr(
    w: &Worker,
    ss: &mut MutexGuard<'_, Sessions>,
    sh: u32,
    op: u32,
    ok: bool,
    input: &Input,
    cfg_fifo: impl FnOnce() -> (u32, u32),
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
    let got = transport::round_trip(w, ss, i, is_get, req).map_err(|_| Error::NoProtoOpt)?;
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
    cfg_fifo: impl FnOnce() -> (u32, u32),
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
            match s.fifos.as_ref() {
                Some(f) if s.state != State::Detached => {
                    Ok(Reply::put(Output::Int(f.tx.fifo().max_dequeue() as i32)))
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
                (a.sndbuf, cfg_fifo().1)
            } else {
                (a.rcvbuf, cfg_fifo().0)
            };
            let fifo = s
                .fifos
                .as_ref()
                .map(|f| if tx { &f.tx } else { &f.rx })
                .map(|f| f.fifo().size());
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
                None => a.ext_config = Some(crypto_ext_cfg(idx)),
                Some(c) => match &mut c.body {
                    ExtCfgBody::Crypto(cc) => cc.ckpair_index = idx,
                    ExtCfgBody::Raw(_) => return Err(Error::Inval),
                },
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
            a.ext_config = Some(raw_ext_cfg(data));
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
        local_attr(s, op as u32, ok, &input, || (1 << 20, 1 << 19))
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
        assert_eq!(t.attr.ext_config, Some(crypto_ext_cfg(4)));
        let raw = Input::Bytes(vec![1]);
        assert_eq!(
            op(&mut t, VPPCOM_ATTR_SET_ENDPT_EXT_CFG, true, raw),
            Err(Error::Inval)
        );
        assert!(t.attr.ext_config.take().is_some());
        assert!(
            op(&mut t, 7, true, Input::None).is_err() && op(&mut t, 52, true, Input::None).is_err()
        );
    }
}
