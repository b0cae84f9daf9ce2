//! Session messages from apps, as session_node.c handles them: CONNECT
//! (`session_mq_connect_handler` → application.c `vnet_connect`: local scope first through
//! `ct_session_connect`, then the transport), ACCEPTED_REPLY
//! (`session_mq_accepted_reply_handler`), DISCONNECT / SHUTDOWN / TERMINATE,
//! DISCONNECTED_REPLY / RESET_REPLY, and the IO events (TX / TX_FLUSH → the session's tx
//! function, RX → `transport_app_rx_evt`). Also what an app worker's removal does to its
//! sessions and listeners, and the test-facing introspection.
//!
//! Peer specifics: transport connects are TCP, UDP, TLS and DTLS (plaintext, `secure`) and QUIC
//! (`crate::quic`; other protocols: CONNECTED with SESSION_E_NOSUPPORT) and reach 127.0.0.0/8
//! and ::1 only (anything else: SESSION_E_NOROUTE, as if VPP had no route).

use std::net::{IpAddr, SocketAddr};

use vcl_codec::event::EventType;
use vcl_codec::msg::{
    AcceptedReply, Connect, Ip46, SessionHandleMsg, SessionReplyMsg, TransportProto,
};
use vcl_codec::sapi::app_flags;
use vcl_codec::session_error::*;

use vcl_codec::ext_cfg::ExtCfg;

use crate::session::listen::ip_is_local;
use crate::session::secure::has_crypto;
use crate::vpp::kinds::Kind;
use crate::vpp::sessions::SessState;
use crate::vpp::state::{State, WrkEvt, INVALID};

/// One session as tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub handle: u64,
    pub app_index: u32,
    pub app_wrk: u32,
    pub state: String,
    pub is_ct: bool,
    pub is_listener: bool,
}

impl State {
    /// CONNECT on thread `t`.
    pub fn mq_connect(&mut self, t: u8, m: Connect) {
        if t > u8::from(self.threads > 1) {
            tracing::warn!(thread = t, "connect on wrong thread, dropping");
            return;
        }
        let Some(app) = self.app_lookup(m.client_index) else {
            return;
        };
        let Some(wrk) = self.worker_of(app, m.wrk_index) else {
            tracing::warn!(app, map = m.wrk_index, "CONNECT for unknown worker");
            return;
        };
        let cfg = self.take_ext_config(m.ext_config);
        if let Err(rv) = self.vnet_connect(app, wrk, &m, cfg.as_ref()) {
            self.connect_error(wrk, t, m.context, rv);
        }
    }

    fn vnet_connect(
        &mut self,
        app: u32,
        wrk: u32,
        m: &Connect,
        cfg: Option<&ExtCfg>,
    ) -> Result<(), i32> {
        if m.ip == Ip46::ZERO {
            return Err(SESSION_E_INVALID_RMT_IP);
        }
        match m.proto {
            TransportProto::Tcp | TransportProto::Udp => {}
            TransportProto::Tls | TransportProto::Dtls => {
                self.crypto_check(m.proto, cfg)?;
            }
            TransportProto::Quic => {
                self.crypto_check(m.proto, cfg)?;
                return self.quic_connect(app, wrk, m);
            }
            _ => return Err(SESSION_E_NOSUPPORT),
        }
        let flags = self.apps.get(app).map_or(0, |a| a.flags);
        if flags & app_flags::USE_LOCAL_SCOPE != 0 {
            match self.ct_session_connect(app, wrk, m, flags) {
                Err(SESSION_E_LOCAL_CONNECT) => {}
                r => return r,
            }
        }
        self.handshake_check(m.proto, m.is_ip4, m.ip, m.port)?;
        let dst = m.ip.to_ip(m.is_ip4);
        if !dst.is_loopback() {
            return Err(SESSION_E_NOROUTE);
        }
        let lcl_ip = m.lcl_ip.to_ip(m.is_ip4);
        let lcl = (lcl_ip.is_loopback() || m.lcl_port != 0).then(|| {
            let ip = if lcl_ip.is_loopback() {
                lcl_ip
            } else if m.is_ip4 {
                IpAddr::from([127, 0, 0, 1])
            } else {
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            };
            SocketAddr::new(ip, m.lcl_port)
        });
        let dst = SocketAddr::new(dst, m.port);
        if matches!(m.proto, TransportProto::Udp | TransportProto::Dtls) {
            let dtls = m.proto == TransportProto::Dtls;
            return self.udp_connect(wrk, m.context, dst, lcl, dtls);
        }
        self.tcp_connect_start(wrk, m.context, dst, lcl)
    }

    /// `ct_session_connect`: Ok when a CT connect was started, LOCAL_CONNECT to fall back to
    /// the transport, another error to fail the connect.
    fn ct_session_connect(
        &mut self,
        app: u32,
        wrk: u32,
        m: &Connect,
        flags: u64,
    ) -> Result<(), i32> {
        let exact = (m.is_ip4, m.ip.0, m.port);
        let wild = (m.is_ip4, Ip46::ZERO.0, m.port);
        let owner = |st: &State, h: u64| {
            st.sess(h)
                .and_then(|l| st.sessions.listeners.get(l.al))
                .map_or(INVALID, |al| al.app_index)
        };
        // VPP's lookup tables key on the protocol too: another protocol's listener is no match
        let same_proto = |st: &State, h: u64| {
            st.sess(h)
                .and_then(|l| st.sessions.listeners.get(l.al))
                .is_none_or(|al| al.proto == m.proto)
        };
        let handshake = |st: &State, h: u64| {
            let ck = st
                .sess(h)
                .and_then(|l| st.sessions.listeners.get(l.al))
                .map_or(0, |al| al.crypto.ckpair);
            if has_crypto(m.proto) && !st.ckpair_usable(ck) {
                return Err(SESSION_E_TLS_HANDSHAKE);
            }
            Ok(())
        };
        let local = self
            .sessions
            .local
            .get(&exact)
            .or_else(|| self.sessions.local.get(&wild))
            .copied();
        if let Some(ll) = local {
            if same_proto(self, ll) && owner(self, ll) != app {
                handshake(self, ll)?;
                self.ct_connect(wrk, ll, m.context, m.is_ip4);
                return Ok(());
            }
        }
        if ip_is_local(&m.ip, m.is_ip4) {
            return Err(SESSION_E_NOROUTE);
        }
        if flags & app_flags::USE_GLOBAL_SCOPE == 0 {
            return Err(SESSION_E_SCOPE);
        }
        let global = self
            .sessions
            .global
            .get(&exact)
            .or_else(|| self.sessions.global.get(&wild))
            .copied();
        if let Some(ll) = global {
            if same_proto(self, ll) && owner(self, ll) != app {
                handshake(self, ll)?;
                self.ct_connect(wrk, ll, m.context, m.is_ip4);
                return Ok(());
            }
        }
        Err(SESSION_E_LOCAL_CONNECT)
    }

    /// ACCEPTED_REPLY.
    pub fn mq_accepted_reply(&mut self, m: AcceptedReply) {
        let h = m.handle;
        let Some(s) = self.sess(h) else { return };
        let owner = self.wrks.get(s.app_wrk).map_or(INVALID, |w| w.app_index);
        if owner != m.context {
            tracing::warn!(handle = format_args!("{h:#x}"), "app doesn't own session");
            return;
        }
        if m.retval != 0 {
            // Server not interested: disconnect, no further notifications
            // (docs/wire.md#accepted_reply-with-an-error).
            self.session_close(h);
            if let Some(s) = self.sess_mut(h) {
                s.app_wrk = INVALID;
            }
            // The close may already have queued cleanups; with no worker they free directly.
            return;
        }
        let Some(s) = self.sess_mut(h) else { return };
        s.app_session_index = m.app_session_index;
        s.rx_ready = true;
        if s.is_ct() {
            s.state = SessState::Ready;
            self.ct_connect_notify(h);
            return;
        }
        let old = s.state;
        s.state = SessState::Ready;
        let has_data =
            s.rx.as_ref()
                .map(|f| f.fifo().max_dequeue_prod() > 0)
                .unwrap_or(false);
        if has_data {
            self.enqueue_notify(h);
        }
        // Closed while waiting for the reply: resend the close.
        if old >= SessState::TransportClosing {
            self.sess_event(h, WrkEvt::Disconnected);
            if let Some(s) = self.sess_mut(h) {
                s.state = old;
            }
        }
    }

    /// The session `h` if app `app` owns it (`vnet_disconnect_session` checks).
    fn owned(&self, h: u64, app: u32) -> Result<(), i32> {
        let s = self.sess(h).ok_or(SESSION_E_NOSESSION)?;
        let owner = self.wrks.get(s.app_wrk).map(|w| w.app_index);
        if owner != Some(app) {
            return Err(SESSION_E_OWNER);
        }
        Ok(())
    }

    /// DISCONNECT / SHUTDOWN / TERMINATE.
    pub fn mq_close(&mut self, ty: EventType, m: SessionHandleMsg) {
        let Some(app) = self.app_lookup(m.client_index) else {
            return;
        };
        if let Err(rv) = self.owned(m.handle, app) {
            tracing::debug!(
                rv,
                handle = format_args!("{:#x}", m.handle),
                ?ty,
                "close refused"
            );
            return;
        }
        match ty {
            EventType::Shutdown => self.session_half_close(m.handle),
            EventType::Terminate => self.session_reset(m.handle),
            _ => self.session_close(m.handle),
        }
    }

    /// DISCONNECTED_REPLY / RESET_REPLY (context = api client handle).
    pub fn mq_close_reply(&mut self, ty: EventType, m: SessionReplyMsg) {
        if m.retval != 0 {
            tracing::warn!(retval = m.retval, "client objected to close");
            return;
        }
        let Some(app) = self.app_lookup(m.context) else {
            return;
        };
        if ty == EventType::ResetReply
            && self
                .sess(m.handle)
                .is_none_or(|s| s.state < SessState::TransportClosing)
        {
            return;
        }
        if self.owned(m.handle, app).is_ok() {
            self.session_close(m.handle);
        }
    }

    /// An IO event on thread `t` for VPP session index `si`.
    pub fn mq_io(&mut self, t: u8, ty: u8, si: u32) {
        let mut h = (u64::from(t) << 32) | u64::from(si);
        // TX_MAIN names a session of the main thread (session_node.c), whichever queue it
        // came on; one naming no connectionless session there is taken as a plain TX
        if ty == EventType::IoTxMain.as_u8()
            && self
                .sess(u64::from(si))
                .is_some_and(|s| matches!(s.kind, Kind::UdpCl(_)))
        {
            h = u64::from(si);
        }
        let Some(s) = self.sess(h) else { return };
        let is_ct = s.is_ct();
        match EventType::from_u8(ty) {
            Ok(EventType::IoTx) | Ok(EventType::IoTxFlush) | Ok(EventType::IoTxMain) => {
                if s.kind.is_udp() {
                    self.udp_tx(h);
                } else if is_ct {
                    self.ct_tx(h);
                } else if matches!(s.kind, Kind::Tcp(_)) {
                    self.tcp_tx(h);
                }
            }
            Ok(EventType::IoRx) => {
                if s.state >= SessState::TransportClosed {
                    return;
                }
                if is_ct {
                    self.ct_app_rx_evt(h);
                } else if s.kind.is_udp() {
                    // udp has no window: dequeue notifications need nothing
                } else {
                    self.tcp_app_rx_evt(h);
                }
            }
            _ => tracing::debug!(thread = t, ty, si, "io event ignored"),
        }
    }

    /// An app worker is going away (`app_worker_free`): it stops listening, its connects in
    /// progress are dropped, and its sessions are closed with no further notification to it.
    pub fn worker_sessions_detach(&mut self, wrk: u32) {
        let Some((app, map)) = self.wrks.get(wrk).map(|w| (w.app_index, w.wrk_map_index)) else {
            return;
        };
        // a later worker reusing this index must get CT segments announced afresh
        self.sessions.ct_segs.retain(|k, _| k.1 != wrk);
        let als: Vec<u32> = self
            .sessions
            .listeners
            .iter()
            .filter(|(_, l)| l.app_index == app && l.workers.contains_key(&map))
            .map(|(i, _)| i)
            .collect();
        for al in als {
            self.stop_listen(al, map);
        }
        let hos: Vec<u32> = self
            .sessions
            .half_opens
            .iter()
            .filter(|(_, h)| h.app_wrk == wrk)
            .map(|(i, _)| i)
            .collect();
        for i in hos {
            self.sessions.half_opens.remove(i);
        }
        let owned: Vec<u64> = self
            .sessions
            .pools
            .iter()
            .flat_map(|p| p.iter())
            .filter(|(_, s)| s.app_wrk == wrk)
            .map(|(_, s)| s.handle())
            .collect();
        for h in owned {
            if let Some(s) = self.sess_mut(h) {
                s.app_wrk = INVALID;
            }
            // VPP closes (not resets) a detaching worker's sessions
            // (segment_manager.c segment_manager_del_sessions -> session_close): data the app
            // queued before it went still goes out.
            self.session_close(h);
            if self
                .sess(h)
                .is_some_and(|s| s.state >= SessState::TransportDeleted)
            {
                self.session_cleanup(h);
            }
        }
    }

    /// Sessions for tests.
    pub fn session_infos(&self) -> Vec<SessionInfo> {
        self.sessions
            .pools
            .iter()
            .flat_map(|p| p.iter())
            .map(|(_, s)| {
                let app_index = match &s.kind {
                    Kind::Listener(_) | Kind::UdpListener(_) => self
                        .sessions
                        .listeners
                        .get(s.al)
                        .map_or(INVALID, |l| l.app_index),
                    _ => self.wrks.get(s.app_wrk).map_or(INVALID, |w| w.app_index),
                };
                SessionInfo {
                    handle: s.handle(),
                    app_index,
                    app_wrk: s.app_wrk,
                    state: format!("{:?}", s.state),
                    is_ct: s.is_ct(),
                    is_listener: s.kind.is_listener(),
                }
            })
            .collect()
    }

    /// Fault: the transport of session `h` resets (a kernel RST for TCP, a peer reset for CT).
    pub fn fault_reset(&mut self, h: u64) -> bool {
        let Some(s) = self.sess(h) else { return false };
        match &s.kind {
            Kind::Tcp(_) => {
                if let Some(sock) = self.tcp_mut(h).and_then(|t| t.sock.take()) {
                    crate::transport::send_rst(sock);
                }
                self.tcp_rcv_rst(h);
                true
            }
            Kind::Ct(_) => {
                self.transport_reset_notify(h);
                true
            }
            Kind::Udp(_) => {
                self.transport_reset_notify(h);
                true
            }
            Kind::Listener(_) | Kind::UdpListener(_) | Kind::UdpCl(_) => false,
        }
    }
}
