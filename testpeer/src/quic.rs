//! QUIC, modelled inside the peer (no UDP, no crypto): a QUIC connection is a cut-through pair
//! of sessions (the server side ACCEPTED on the QUIC listener, the client CONNECTED), and each
//! stream is another cut-through pair whose accepting side is the other end's connection:
//! ACCEPTED there names the connection as its listener and carries the STREAM flag, as
//! quic.c's `quic_accept_stream` does. CONNECT_STREAM is handled as session_node.c
//! `session_mq_connect_stream_handler` → session.c `session_open_stream` →
//! `transport_connect_stream` / quic.c `quic_connect_stream` refuse it: on the parent's
//! thread only (else dropped), SESSION_E_TRANSPORT_NO_REG for a protocol without streams,
//! SESSION_E_UNKNOWN when the parent is not a QUIC connection. A stream reset is the pair's
//! reset; closing a connection closes every stream of it on both ends.
//!
//! Peer specifics (docs/wire.md#tls-and-quic): reachable only between apps of this peer; a
//! connect with no QUIC listener there is refused at once (VPP would time out); stream data
//! moves through cut-through fifos; the UNIDIRECTIONAL flag reaches the accepting side (ACCEPTED
//! flags) but is not enforced.

use vcl_codec::msg::{Connect, Ip46, TransportProto};
use vcl_codec::session_error::*;

use crate::vpp::kinds::{Kind, Quic};
use crate::vpp::sessions::thread_of;
use crate::vpp::state::{State, INVALID};

impl State {
    fn quic_of(&self, h: u64) -> Quic {
        match self.sess(h).map(|s| &s.kind) {
            Some(Kind::Ct(c)) => c.quic,
            _ => Quic::No,
        }
    }

    /// A QUIC CONNECT: a connection to a QUIC listener of this peer.
    pub fn quic_connect(&mut self, _app: u32, wrk: u32, m: &Connect) -> Result<(), i32> {
        let keys = [(m.is_ip4, m.ip.0, m.port), (m.is_ip4, Ip46::ZERO.0, m.port)];
        let ll = keys
            .iter()
            .flat_map(|k| [self.sessions.global.get(k), self.sessions.local.get(k)])
            .flatten()
            .copied()
            .find(|&h| {
                self.sess(h)
                    .and_then(|l| self.sessions.listeners.get(l.al))
                    .is_some_and(|al| al.proto == TransportProto::Quic)
            })
            .ok_or(SESSION_E_REFUSED)?;
        let ck = self
            .sess(ll)
            .and_then(|l| self.sessions.listeners.get(l.al))
            .map_or(0, |al| al.crypto.ckpair);
        if !self.ckpair_usable(ck) {
            return Err(SESSION_E_TLS_HANDSHAKE);
        }
        self.ct_connect_to(wrk, ll, m.context, m.is_ip4, None, Quic::Conn);
        Ok(())
    }

    /// CONNECT_STREAM on thread `t`.
    pub fn mq_connect_stream(&mut self, t: u8, m: Connect) {
        if thread_of(m.parent_handle) != t {
            tracing::warn!(thread = t, "connect stream on wrong thread, dropping");
            return;
        }
        let Some(app) = self.app_lookup(m.client_index) else {
            return;
        };
        let Some(wrk) = self.worker_of(app, m.wrk_index) else {
            return;
        };
        let _ = self.take_ext_config(m.ext_config);
        if let Err(rv) = self.open_stream(wrk, t, &m) {
            self.connect_error(wrk, t, m.context, rv);
        }
    }

    fn open_stream(&mut self, wrk: u32, t: u8, m: &Connect) -> Result<(), i32> {
        let parent = m.parent_handle;
        self.sess(parent).ok_or(SESSION_E_INVALID)?;
        if m.proto != TransportProto::Quic {
            return Err(SESSION_E_TRANSPORT_NO_REG);
        }
        if self.quic_of(parent) != Quic::Conn {
            return Err(SESSION_E_UNKNOWN);
        }
        let other = match self.sess(parent).map(|s| &s.kind) {
            Some(Kind::Ct(c)) => c.peer.ok_or(SESSION_E_UNKNOWN)?,
            _ => return Err(SESSION_E_UNKNOWN),
        };
        let o = self.sess(other).ok_or(SESSION_E_UNKNOWN)?;
        let (owrk, osm, is_ip4) = (o.app_wrk, o.sm, o.lcl.is_ip4);
        if owrk == INVALID {
            return Err(SESSION_E_UNKNOWN);
        }
        let role = Quic::Stream {
            conn: other,
            other: parent,
            unidir: m.flags & vcl_codec::msg::cfg_flags::UNIDIRECTIONAL != 0,
        };
        self.ct_connect_to(wrk, other, m.context, is_ip4, Some((owrk, osm, t)), role);
        Ok(())
    }

    /// A QUIC connection side is closing (its app closed or reset it, or the other end did):
    /// every stream of the connection, on both ends, is closed by the transport.
    pub fn quic_conn_closing(&mut self, h: u64) {
        if self.quic_of(h) != Quic::Conn {
            return;
        }
        let mut streams = Vec::new();
        for pool in &self.sessions.pools {
            for (_, s) in pool.iter() {
                if let Kind::Ct(c) = &s.kind {
                    if let Quic::Stream { conn, other, .. } = c.quic {
                        if conn == h || other == h {
                            streams.push(s.handle());
                        }
                    }
                }
            }
        }
        for s in streams {
            self.transport_closing_notify(s);
        }
    }
}
