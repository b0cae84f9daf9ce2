//! LISTEN and UNLISTEN: session_node.c `session_mq_listen_handler` /
//! `session_mq_unlisten_handler` → application.c `vnet_listen` (`app_listener_lookup`,
//! `app_listener_alloc`), application_worker.c `app_worker_start_listen` /
//! `app_worker_listen_sep` (a local-table CT listener when the app has local scope and the
//! endpoint is local, a global-table listener when it has global scope; one listener segment
//! manager per worker, its first segment created on the first accept) and
//! `app_worker_stop_listen`, `vnet_unlisten`. BOUND goes out on thread 0 and is flushed right
//! away (`app_wrk_flush_wrk_events (app_wrk, 0)`), UNLISTEN_REPLY on thread 0.
//!
//! Peer specifics (documented deviations): TCP, UDP (see `crate::transport::udp`), TLS and
//! DTLS (plaintext, see `secure`) and QUIC (see `crate::quic`) listen; others get BOUND with
//! SESSION_E_NOSUPPORT; the listen tables are keyed by
//! address and port only, so a TCP and a UDP listener cannot share a port; a global-scope
//! listener also opens a kernel listening socket, only ever
//! on a loopback address — `0.0.0.0`/`::` and 127.0.0.0/8 / `::1` are served on loopback, any
//! other address gets SESSION_E_NOINTF; a kernel port already taken by another process gives
//! SESSION_E_PORTINUSE; port 0 takes the kernel's ephemeral port (or one from 49152 up for
//! local-only listeners) and BOUND reports it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use vcl_codec::msg::{Bound, CtrlMsg, Ip46, Listen, TransportProto, Unlisten, UnlistenReply};
use vcl_codec::sapi::app_flags;
use vcl_codec::session_error::*;

use vcl_codec::ext_cfg::ExtCfg;

use crate::vpp::kinds::{Kind, UdpListen};
use crate::vpp::segment_manager::SegManager;
use crate::vpp::sessions::{AppListener, EpKey, ListenCrypto, SessState};
use crate::vpp::state::{State, WrkEvt, INVALID};

/// `session_endpoint_is_local`: zero or loopback.
pub fn ip_is_local(ip: &Ip46, is_ip4: bool) -> bool {
    match ip.to_ip(is_ip4) {
        IpAddr::V4(a) => a.is_unspecified() || a.is_loopback(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_loopback(),
    }
}

/// The loopback address the peer serves `ip` on, if it may.
pub fn loopback_for(ip: &Ip46, is_ip4: bool) -> Option<IpAddr> {
    match ip.to_ip(is_ip4) {
        IpAddr::V4(a) if a.is_unspecified() => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V4(a) if a.is_loopback() => Some(IpAddr::V4(a)),
        IpAddr::V6(a) if a.is_unspecified() || a.is_loopback() => {
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        }
        _ => None,
    }
}

fn key(is_ip4: bool, ip: &Ip46, port: u16) -> EpKey {
    (is_ip4, ip.0, port)
}

impl State {
    /// Handle LISTEN (on the ctrl thread).
    pub fn mq_listen(&mut self, m: Listen) {
        let Some(app) = self.app_lookup(m.client_index) else {
            return;
        };
        let cfg = self.take_ext_config(m.ext_config);
        let r = self.vnet_listen(app, &m, cfg.as_ref());
        let Some(wrk) = self.worker_of(app, m.wrk_index) else {
            tracing::warn!(app, map = m.wrk_index, "LISTEN for unknown worker");
            return;
        };
        let bound = match r {
            Ok(handle) => self.bound_msg(m.context, handle, m.wrk_index),
            Err(rv) => Bound {
                context: m.context,
                retval: rv,
                ..Default::default()
            },
        };
        self.add_event(wrk, 0, WrkEvt::Msg(Box::new(CtrlMsg::Bound(bound))));
        // Flushed before the barrier drops, so no accept can overtake it.
        crate::events::flush_worker_now(self, wrk, 0);
    }

    /// `mq_send_session_bound_cb`; a connectionless listener's also names the worker's cl
    /// session, its fifos and the cl thread's queue.
    fn bound_msg(&self, context: u32, handle: u64, wrk_map: u32) -> Bound {
        let ls = self.sess(handle);
        let cl = match ls.map(|l| &l.kind) {
            Some(Kind::UdpListener(u)) => u.cl.get(&wrk_map).and_then(|&h| self.sess(h)),
            _ => None,
        };
        if let Some(c) = cl {
            let t = crate::transport::udp::cl_thread(self);
            return Bound {
                context,
                handle,
                retval: 0,
                lcl_is_ip4: c.lcl.is_ip4,
                lcl_ip: c.lcl.ip,
                lcl_port: c.lcl.port,
                vpp_evt_q: self.vpp_mq_offsets[usize::from(t)],
                mq_index: u32::from(t),
                cl_sh_handle: c.handle(),
                rx_fifo: c.rx.as_ref().map_or(0, |f| f.off),
                tx_fifo: c.tx.as_ref().map_or(0, |f| f.off),
                segment_handle: c.rx.as_ref().map_or(u64::MAX, |f| f.seg_handle),
            };
        }
        Bound {
            context,
            handle,
            retval: 0,
            lcl_is_ip4: ls.is_some_and(|l| l.lcl.is_ip4),
            lcl_ip: ls.map_or(Ip46::ZERO, |l| l.lcl.ip),
            lcl_port: ls.map_or(0, |l| l.lcl.port),
            vpp_evt_q: self.vpp_mq_offsets[0],
            mq_index: 0,
            ..Default::default()
        }
    }

    /// `vnet_listen`: the listener handle or a SESSION_E_* value.
    fn vnet_listen(&mut self, app: u32, m: &Listen, cfg: Option<&ExtCfg>) -> Result<u64, i32> {
        let wrk = self
            .worker_of(app, m.wrk_index)
            .ok_or(SESSION_E_INVALID_APPWRK)?;
        let crypto = match m.proto {
            TransportProto::Tcp | TransportProto::Udp => ListenCrypto::default(),
            TransportProto::Tls | TransportProto::Quic | TransportProto::Dtls => {
                self.crypto_listen(m.proto, cfg)?
            }
            _ => return Err(SESSION_E_NOSUPPORT),
        };
        let flags = self.apps.get(app).map_or(0, |a| a.flags);
        let local_scope = flags & app_flags::USE_LOCAL_SCOPE != 0;
        let global_scope = flags & app_flags::USE_GLOBAL_SCOPE != 0;
        let is_local = ip_is_local(&m.ip, m.is_ip4);
        let k = key(m.is_ip4, &m.ip, m.port);
        // app_listener_lookup: local table (local scope, local endpoint), then global table.
        let found = (local_scope && is_local)
            .then(|| self.sessions.local.get(&k).copied())
            .flatten()
            .or_else(|| self.sessions.global.get(&k).copied());
        let al = match found.and_then(|h| self.sess(h)).map(|ls| ls.al) {
            Some(al) => {
                if self.sessions.listeners.get(al).map(|l| l.app_index) != Some(app) {
                    return Err(SESSION_E_ALREADY_LISTENING);
                }
                al
            }
            None => {
                let al = self.listen_sep(app, m, local_scope && is_local, global_scope)?;
                if let Some(l) = self.sessions.listeners.get_mut(al) {
                    l.crypto = crypto;
                }
                al
            }
        };
        // app_worker_start_listen: one listener segment manager per worker.
        let l = self.sessions.listeners.get(al).ok_or(SESSION_E_INVALID)?;
        if l.workers.contains_key(&m.wrk_index) {
            return Err(SESSION_E_ALREADY_LISTENING);
        }
        let sm = self.sms.put(SegManager::new(wrk));
        let l = self
            .sessions
            .listeners
            .get_mut(al)
            .ok_or(SESSION_E_INVALID)?;
        l.workers.insert(m.wrk_index, sm);
        let (ls_handle, global) = (l.ls_handle, l.session);
        let cl = global
            .and_then(|g| self.sess(g))
            .is_some_and(|g| matches!(&g.kind, Kind::UdpListener(u) if !u.connected));
        if let (true, Some(g)) = (cl, global) {
            self.udp_alloc_cl_session(g, wrk, m.wrk_index, sm, m.context)?;
        }
        Ok(ls_handle)
    }

    /// `app_listener_alloc` + `app_worker_listen_sep`.
    fn listen_sep(&mut self, app: u32, m: &Listen, local: bool, global: bool) -> Result<u32, i32> {
        // The kernel socket first: it decides the port when 0 was asked for.
        let mut port = m.port;
        let mut sock = None;
        let mut udp = None;
        let dtls = m.proto == TransportProto::Dtls;
        if global && (m.proto == TransportProto::Udp || dtls) {
            let ip = loopback_for(&m.ip, m.is_ip4).ok_or(SESSION_E_NOINTF)?;
            let s = State::udp_listen_socket(ip, port)?;
            port = s.local_addr().map_err(|_| SESSION_E_SYSCALL)?.port();
            udp = Some(s);
        } else if global {
            let ip = loopback_for(&m.ip, m.is_ip4).ok_or(SESSION_E_NOINTF)?;
            let l = TcpListener::bind(SocketAddr::new(ip, port)).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    SESSION_E_PORTINUSE
                } else {
                    SESSION_E_SYSCALL
                }
            })?;
            l.set_nonblocking(true).map_err(|_| SESSION_E_SYSCALL)?;
            port = l.local_addr().map_err(|_| SESSION_E_SYSCALL)?.port();
            sock = Some(l);
        } else if port == 0 {
            port = self.sessions.next_local_port;
            self.sessions.next_local_port = self
                .sessions
                .next_local_port
                .checked_add(1)
                .unwrap_or(49152);
        }
        let al = self.sessions.listeners.put(AppListener {
            app_index: app,
            workers: BTreeMap::new(),
            accept_rotor: 0,
            session: None,
            local: None,
            ls_handle: u64::MAX,
            proto: m.proto,
            crypto: ListenCrypto::default(),
        });
        let mut lcl = vcl_codec::msg::TransportEndpoint {
            ip: m.ip,
            port,
            is_ip4: m.is_ip4,
            ..Default::default()
        };
        lcl.fib_index = m.vrf;
        let k = key(m.is_ip4, &m.ip, port);
        let alloc_ls = |st: &mut State, kind: Kind| {
            let h = st.session_alloc(0, kind);
            if let Some(s) = st.sess_mut(h) {
                s.state = SessState::Listening;
                s.al = al;
                s.lcl = lcl;
                s.app_wrk = INVALID;
            }
            h
        };
        if local {
            let h = alloc_ls(self, Kind::Listener(None));
            self.sessions.local.insert(k, h);
            if let Some(l) = self.sessions.listeners.get_mut(al) {
                l.local = Some(h);
                l.ls_handle = h;
            }
        }
        if global {
            let kind = match udp {
                Some(sock) => Kind::UdpListener(Box::new(UdpListen {
                    sock,
                    // tls.c listens for DTLS on UDP with TRANSPORT_CFG_F_CONNECTED
                    connected: m.flags & 1 != 0 || dtls,
                    cl: BTreeMap::new(),
                    flows: std::collections::HashMap::new(),
                    n_rx: 0,
                    held: None,
                    dtls,
                })),
                None => Kind::Listener(sock),
            };
            let h = alloc_ls(self, kind);
            self.sessions.global.insert(k, h);
            if let Some(l) = self.sessions.listeners.get_mut(al) {
                l.session = Some(h);
                l.ls_handle = h;
            }
        }
        if !local && !global {
            self.sessions.listeners.remove(al);
            return Err(SESSION_E_ALLOC);
        }
        Ok(al)
    }

    /// Handle UNLISTEN (on the ctrl thread): `vnet_unlisten`, UNLISTEN_REPLY on thread 0.
    pub fn mq_unlisten(&mut self, m: Unlisten) {
        let Some(app) = self.app_lookup(m.client_index) else {
            return;
        };
        let rv = match self.vnet_unlisten(app, m.handle, m.wrk_index) {
            Ok(()) => 0,
            Err(rv) => rv,
        };
        let Some(wrk) = self.worker_of(app, m.wrk_index) else {
            return;
        };
        let r = UnlistenReply {
            context: m.context,
            handle: m.handle,
            retval: rv,
        };
        self.add_event(wrk, 0, WrkEvt::Msg(Box::new(CtrlMsg::UnlistenReply(r))));
    }

    fn vnet_unlisten(&mut self, app: u32, handle: u64, wrk_map: u32) -> Result<(), i32> {
        let al = self
            .sess(handle)
            .filter(|s| s.kind.is_listener())
            .map(|s| s.al)
            .ok_or(SESSION_E_NOLISTEN)?;
        let owner = self.sessions.listeners.get(al).map(|l| l.app_index);
        if owner != Some(app) {
            return Err(SESSION_E_OWNER);
        }
        self.worker_of(app, wrk_map)
            .ok_or(SESSION_E_INVALID_APPWRK)?;
        self.stop_listen(al, wrk_map);
        Ok(())
    }

    /// `app_worker_stop_listen`: detach the worker's listener segment manager (freed now if it
    /// has no fifos, else with its last fifo) and free the listener with its last worker
    /// (`app_listener_cleanup`: table entries, listen sessions, kernel socket).
    pub fn stop_listen(&mut self, al: u32, wrk_map: u32) {
        let Some(l) = self.sessions.listeners.get_mut(al) else {
            return;
        };
        let Some(sm) = l.workers.remove(&wrk_map) else {
            return;
        };
        let empty = l.workers.is_empty();
        if let Some(g) = l.session {
            self.udp_free_cl_session(g, wrk_map);
        }
        if let Some(m) = self.sms.get_mut(sm) {
            m.detached = true;
        }
        let has_fifos = self.sms.get(sm).is_some_and(|m| {
            m.segments.iter().any(|(_, s)| {
                vcl_svm::fifo_segment::FifoSegment::attach(&s.seg)
                    .is_ok_and(|fs| fs.n_active_fifos() > 0)
            })
        });
        if !has_fifos {
            self.sms.remove(sm);
        }
        if !empty {
            return;
        }
        let Some(l) = self.sessions.listeners.remove(al) else {
            return;
        };
        for h in [l.local, l.session].into_iter().flatten() {
            self.sessions.local.retain(|_, v| *v != h);
            self.sessions.global.retain(|_, v| *v != h);
            if let Some(ls) = self.sessions.pools[0].remove(h as u32) {
                if let Kind::Listener(Some(sock)) = &ls.kind {
                    // Stop listening now, before the poll below ends.
                    let _ = nix::sys::socket::shutdown(
                        std::os::fd::AsRawFd::as_raw_fd(sock),
                        nix::sys::socket::Shutdown::Both,
                    );
                }
            }
        }
        // the port is free before the app hears of the unlisten (see transport::gate)
        self.io_gate.quiesce();
    }

    /// `app_listener_select_worker`: round robin over the listening workers starting after the
    /// rotor (so with workers 0 and 1 the first accept goes to 1). Returns (global worker index,
    /// that worker's listener segment manager).
    pub fn listener_select_worker(&mut self, al: u32) -> Option<(u32, u32)> {
        let l = self.sessions.listeners.get_mut(al)?;
        let next = l
            .workers
            .range(l.accept_rotor.saturating_add(1)..)
            .next()
            .or_else(|| l.workers.iter().next())
            .map(|(&m, &sm)| (m, sm))?;
        l.accept_rotor = next.0;
        let app = l.app_index;
        let wrk = self.worker_of(app, next.0)?;
        Some((wrk, next.1))
    }
}
