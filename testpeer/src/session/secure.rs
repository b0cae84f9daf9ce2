//! TLS, DTLS and QUIC as far as the peer checks them: the ext config an app places in a chunk
//! of the vpp mqs segment (session_node.c `session_mq_get_ext_config` /
//! `session_mq_free_ext_config`) and what tls.c `tls_start_listen` / `tls_connect` refuse.
//!
//! Peer specifics (documented in docs/wire.md#tls-and-quic and the README): no crypto at all.
//! The peer checks the ext config (present, of type crypto, an engine it has, a cert/key pair
//! that exists) and carries TLS as plaintext over kernel TCP on loopback (or cut-through), DTLS
//! as plaintext datagrams over kernel UDP (docs/wire.md#dtls). A "handshake" fails when the
//! listener reached is not of the same protocol or its cert/key pair is unusable (index 0, or
//! deleted since): the client gets CONNECTED with SESSION_E_TLS_HANDSHAKE. Host names, ALPN,
//! verification flags and the certificates themselves are recorded, not checked.

use vcl_codec::ext_cfg::{ExtCfg, ExtCfgBody, ExtCfgType};
use vcl_codec::msg::{Ip46, TransportProto};
use vcl_codec::sapi::crypto_engine;
use vcl_codec::session_error::*;
use vcl_svm::fifo_segment::FifoSegment;

use crate::vpp::sessions::ListenCrypto;
use crate::vpp::state::State;

/// The datagram a DTLS client's socket sends first, standing in for the handshake: the
/// listener accepts a sender on it (tls.c accepts the app session once the handshake is done).
pub const DTLS_HELLO: &[u8] = b"vcl-testpeer DTLS handshake (plaintext stand-in)\0";

/// tls_openssl.h `DTLSO_MAX_BUFSIZE`: a larger datagram from the app is dropped.
pub const DTLS_MAX_RECORD: usize = 16 << 10;

/// Protocols that need a crypto ext config.
pub fn has_crypto(p: TransportProto) -> bool {
    matches!(
        p,
        TransportProto::Tls | TransportProto::Dtls | TransportProto::Quic
    )
}

impl State {
    /// Read and free the ext config an app placed at fsh offset `off` of the vpp mqs segment
    /// (0: none). A chunk that does not validate or decode counts as no config.
    pub fn take_ext_config(&mut self, off: u64) -> Option<ExtCfg> {
        if off == 0 {
            return None;
        }
        let seg = self.vpp_mqs_seg.clone()?;
        let fs = FifoSegment::attach(&seg).ok()?;
        let c = match fs.chunk(off) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%e, off, "ext config chunk refused");
                return None;
            }
        };
        let mut buf = vec![0u8; (c.len as usize).min(64 * 1024)];
        let read = c.read_at(0, &mut buf);
        if let Err(e) = fs.collect_chunks(0, off) {
            tracing::warn!(%e, off, "ext config chunk not freed");
        }
        if !read {
            self.ext_configs.push_back(None);
            return None;
        }
        let cfg = ExtCfg::decode(&buf).ok();
        tracing::debug!(?cfg, "ext config");
        if self.ext_configs.len() == 16 {
            self.ext_configs.pop_front();
        }
        self.ext_configs.push_back(cfg.clone());
        cfg
    }

    /// What tls.c checks before listening or connecting: a crypto ext config (NOEXTCFG) and an
    /// engine the peer "has" (NOCRYPTOENG: OpenSSL for TLS/DTLS, picotls for QUIC, or the
    /// default). Returns the cert/key pair index asked for.
    pub fn crypto_check(&self, p: TransportProto, cfg: Option<&ExtCfg>) -> Result<u32, i32> {
        let c = match cfg.map(|c| (c.cfg_type, &c.body)) {
            Some((ExtCfgType::Crypto, ExtCfgBody::Crypto(c))) => c,
            _ => return Err(SESSION_E_NOEXTCFG),
        };
        let engine_ok = match c.crypto_engine {
            crypto_engine::NONE => true,
            crypto_engine::OPENSSL => p != TransportProto::Quic,
            crypto_engine::PICOTLS => p == TransportProto::Quic,
            _ => false,
        };
        if !engine_ok {
            return Err(SESSION_E_NOCRYPTOENG);
        }
        Ok(c.ckpair_index)
    }

    /// `tls_start_listen`: a listener's cert/key pair must exist if one is named (the engine's
    /// start_listen fails otherwise and VPP reports -1).
    pub fn crypto_listen(
        &self,
        p: TransportProto,
        cfg: Option<&ExtCfg>,
    ) -> Result<ListenCrypto, i32> {
        let ckpair = self.crypto_check(p, cfg)?;
        if ckpair != 0 && !self.ckpair_usable(ckpair) {
            return Err(SESSION_E_UNKNOWN);
        }
        Ok(ListenCrypto { ckpair })
    }

    /// A cert/key pair that exists and has a cert and a key.
    pub fn ckpair_usable(&self, i: u32) -> bool {
        i != 0
            && self
                .ckpairs
                .get(i)
                .is_some_and(|c| !c.cert.is_empty() && !c.key.is_empty())
    }

    /// The "handshake" of a TLS connect to `(ip, port)`: fails when the peer's listener there
    /// is not of the same protocol or has no usable cert/key pair. Ok when nothing of the
    /// peer's listens there (the kernel connect then decides).
    pub fn handshake_check(
        &self,
        p: TransportProto,
        is_ip4: bool,
        ip: Ip46,
        port: u16,
    ) -> Result<(), i32> {
        if !has_crypto(p) {
            return Ok(());
        }
        let k = (is_ip4, ip.0, port);
        let wild = (is_ip4, Ip46::ZERO.0, port);
        let Some(h) = self
            .sessions
            .global
            .get(&k)
            .or_else(|| self.sessions.global.get(&wild))
        else {
            // DTLS needs the peer's listener (the other side of the stand-in handshake); VPP
            // would retry its handshake instead
            if p == TransportProto::Dtls {
                return Err(SESSION_E_TLS_HANDSHAKE);
            }
            return Ok(());
        };
        let Some(al) = self
            .sess(*h)
            .and_then(|l| self.sessions.listeners.get(l.al))
        else {
            return Ok(());
        };
        if al.proto != p || !self.ckpair_usable(al.crypto.ckpair) {
            tracing::debug!(port, "tls handshake refused by the listener");
            return Err(SESSION_E_TLS_HANDSHAKE);
        }
        Ok(())
    }
}
