//! TLS/DTLS/QUIC specifics: the ext config a LISTEN, CONNECT or CONNECT_STREAM carries, QUIC
//! streams (vppcom_session_stream_connect) and which QUIC sessions accept streams.
//!
//! The ext config travels the way upstream's `vcl_msg_add_ext_config` sends it: copied into a
//! chunk the app allocates in VPP's mqs segment (slice 0), whose fsh offset goes in the
//! message's `ext_config`; VPP reads it and frees the chunk (docs/wire.md#tls-and-quic).

use std::time::Duration;

use vcl_codec::msg::{Connect, CtrlMsg, Ip46, TransportProto};
use vcl_svm::fifo_segment::FifoSegment;

use crate::error::{Error, Result};
use crate::table::{Session, Sessions, State};
use crate::wait::{self, Naps};
use crate::worker::Worker;

/// VPPCOM_PROTO_QUIC.
const PROTO_QUIC: u8 = TransportProto::Quic as u8;
/// TRANSPORT_CFG_F_UNIDIRECTIONAL (transport_types.h).
const CFG_F_UNIDIRECTIONAL: u8 = 1 << 1;

/// Take the session's pending ext config (upstream frees it once sent, whether or not a chunk
/// could be had) and place it in a chunk of VPP's mqs segment; the chunk's offset, or 0 (no
/// config, or no room: the message then goes without one, as upstream's does).
pub(crate) fn place_ext_config(w: &Worker, s: &mut Session) -> u64 {
    let Some(cfg) = s.attr.ext_config.take() else {
        return 0;
    };
    let bytes = cfg.encode();
    let conn = w.conn();
    let Some(q) = conn.vpp.mqs.first() else {
        return 0;
    };
    let placed = FifoSegment::attach(q.segment()).and_then(|fs| {
        let want = u32::try_from(cfg.chunk_len()).unwrap_or(u32::MAX);
        Ok(fs.alloc_chunk(0, want)?.and_then(|c| {
            if c.write_at(0, &bytes) {
                Some(c.off)
            } else {
                // a multi-chunk list: VPP reads one contiguous chunk, so give it back
                let _ = fs.collect_chunks(0, c.off);
                None
            }
        }))
    });
    match placed {
        Ok(Some(off)) => off,
        Ok(None) => {
            tracing::error!("no room for an ext config in VPP's mqs segment");
            0
        }
        Err(e) => {
            tracing::error!("VPP's mqs segment: {e}");
            0
        }
    }
}

/// Upstream's `vcl_session_is_connectable_listener`: a QUIC session that is not a listener
/// and either was connected by the app or accepted from a listener (a QUIC connection, on
/// which streams are opened or accepted), not a stream.
pub fn is_connectable_listener(ss: &Sessions, i: u32) -> bool {
    let Some(s) = ss.get(i) else { return false };
    if s.proto != PROTO_QUIC || s.is_vep {
        return false;
    }
    match ss.get(s.listener) {
        None => !matches!(s.state, State::Listen | State::Binding),
        Some(l) => l.state == State::Listen,
    }
}

/// A session ACCEPTED messages may name as their listener: a listener, or a QUIC connection.
pub(crate) fn accepts(ss: &Sessions, i: u32) -> bool {
    ss.get(i).is_some_and(|s| s.state == State::Listen) || is_connectable_listener(ss, i)
}

/// vppcom_session_stream_connect: CONNECT_STREAM on the parent's VPP thread, then (blocking
/// sessions) wait for CONNECTED. Like upstream, the parent's protocol is not checked here: VPP
/// refuses streams on a transport without them (SESSION_E_TRANSPORT_NO_REG), and the connect
/// fails with ECONNREFUSED.
pub fn stream_connect(w: &Worker, sh: u32, parent_sh: u32, timeout: Duration) -> Result<()> {
    let mut ss = w.sessions.lock();
    let i = ss.lookup(w.index, sh)?;
    let pi = ss.lookup(w.index, parent_sh)?;
    let p = ss.get(pi).expect("looked up");
    let (parent_handle, parent_thread, parent_ready) = (
        p.vpp_handle,
        p.vpp_thread,
        matches!(p.state, State::Ready | State::VppClosing) && !p.is_vep,
    );
    let s = ss.get_mut(i).expect("looked up");
    s.stream = true;
    match s.state {
        _ if s.is_vep => return Err(Error::BadFd),
        State::Ready | State::VppClosing => return Ok(()),
        State::Connecting => return Err(Error::InProgress),
        State::Closed | State::Detached => s.vpp_error = 0,
        _ => return Err(Error::BadFd),
    }
    // Upstream would send on a parent without a VPP session (and crash on its null queue):
    // there is nothing to open a stream on.
    if !parent_ready {
        return Err(Error::NotConn);
    }
    s.listener = pi;
    s.vpp_thread = parent_thread;
    let ext_config = place_ext_config(w, s);
    let msg = CtrlMsg::ConnectStream(Connect {
        client_index: w.conn().api_client_handle,
        context: i,
        wrk_index: w.conn().vpp_wrk_index,
        vrf: 0,
        port: 0,
        lcl_port: 0,
        proto: TransportProto::from_u8(s.proto).ok_or(Error::AfNoSupport)?,
        is_ip4: false,
        ip: Ip46::ZERO,
        lcl_ip: Ip46::ZERO,
        parent_handle,
        ckpair_index: 0,
        crypto_engine: 0,
        flags: if s.attr.unidirectional {
            CFG_F_UNIDIRECTIONAL
        } else {
            0
        },
        dscp: 0,
        ext_config,
    });
    s.state = State::Connecting;
    let nonblocking = s.nonblocking;
    w.send_ctrl(parent_thread, &msg)?;
    if nonblocking {
        return Err(Error::InProgress);
    }
    let done = wait::until(w, &mut ss, Some(timeout), Naps::Backoff, |ss| {
        ss.get(i).is_none_or(|s| s.state != State::Connecting)
    })
    .is_done();
    match ss.get(i).map(|s| s.state) {
        Some(State::Ready) => {
            if let Some(p) = ss.get_mut(pi) {
                p.n_accepted += 1;
            }
            Ok(())
        }
        _ if !done => Err(Error::TimedOut),
        _ => Err(Error::ConnRefused),
    }
}
