//! UDP sessions backed by kernel UDP sockets on loopback: the part of VPP's udp.c /
//! udp_input.c and the session layer's dgram paths (session.c
//! `session_enqueue_dgram_connection*`, `session_dgram_connect_notify`, session_node.c's dgram
//! tx) a kernel socket can show. Every datagram crosses a fifo as a 47-byte
//! `session_dgram_hdr_t` plus payload (docs/wire.md#datagram-framing).
//!
//! - Connected sessions (CONNECT, `udp_open_connection`): a connected kernel socket; the session
//!   starts on the connectionless thread (`transport_cl_thread`: 1 with workers) and CONNECTED
//!   goes out at once. With more than one worker thread the first datagram received "lands" on
//!   another worker and the session migrates there (`session_dgram_connect_notify`: same
//!   fifos, new handle, MIGRATED to the app on the old thread), as VPP does when RSS puts the
//!   flow on another thread; a session migrates once.
//! - Listeners (LISTEN): one kernel socket per listener. Without TRANSPORT_CFG_F_CONNECTED
//!   they are connectionless: every listening app worker has its own session on thread 0 with
//!   fifos (`app_worker_alloc_wrk_cl_session`), BOUND carries them, datagrams go to one of them
//!   by a hash of the sender (`app_listener_select_wrk_cl_session`), the app transmits with
//!   TX_MAIN to any loopback address. With the flag, the first datagram of a new sender creates
//!   an accepted session for it (`udp_connection_accept`); its replies leave through the
//!   listener's socket.
//! - A datagram that does not fit in the rx fifo (header included) is dropped
//!   (UDP_ERROR_FIFO_FULL); datagrams to non-loopback destinations are dropped (no route).
//! - Faults (`Faults::udp_drop_every`, `udp_reorder`): drop every N-th datagram received from
//!   the network, swap each received pair.
//! - DTLS rides on the same sockets as plaintext (`crate::session::secure`, docs/wire.md#dtls).

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr, UdpSocket};

use vcl_codec::msg::{CtrlMsg, Ip46, Migrated, TransportEndpoint};
use vcl_codec::session_error::*;
use vcl_svm::fifo::segs::{SessionDgramHdr, SESSION_CONN_HDR_LEN};

use crate::transport::endpoint;
use crate::vpp::kinds::{Kind, UdpConn, UdpListen};
use crate::vpp::sessions::SessState;
use crate::vpp::state::{State, WrkEvt, INVALID};

/// Datagrams moved per service call and direction.
const DGRAM_BUDGET: usize = 256;
/// Largest datagram read from or written to a kernel socket.
pub const MAX_DGRAM: usize = 65_535;

/// `transport_cl_thread`: the first worker when there are workers.
pub fn cl_thread(st: &State) -> u8 {
    u8::from(st.threads > 1)
}

fn hdr_for(rmt: &TransportEndpoint, lcl: &TransportEndpoint) -> SessionDgramHdr {
    SessionDgramHdr {
        rmt_ip: rmt.ip.0,
        lcl_ip: lcl.ip.0,
        rmt_port: rmt.port.to_be(),
        lcl_port: lcl.port.to_be(),
        is_ip4: u8::from(rmt.is_ip4),
        ..Default::default()
    }
}

fn loopback(a: &SocketAddr) -> bool {
    a.ip().is_loopback()
}

impl State {
    pub fn udp(&self, h: u64) -> Option<&UdpConn> {
        match &self.sess(h)?.kind {
            Kind::Udp(u) => Some(u),
            _ => None,
        }
    }

    pub fn udp_mut(&mut self, h: u64) -> Option<&mut UdpConn> {
        match &mut self.sess_mut(h)?.kind {
            Kind::Udp(u) => Some(u),
            _ => None,
        }
    }

    pub fn udp_listen_mut(&mut self, ls: u64) -> Option<&mut UdpListen> {
        match &mut self.sess_mut(ls)?.kind {
            Kind::UdpListener(l) => Some(l),
            _ => None,
        }
    }

    /// CONNECT for UDP (and DTLS): a connected kernel socket, the session on the cl thread,
    /// CONNECTED. A DTLS client first sends the peer's handshake datagram.
    pub fn udp_connect(
        &mut self,
        wrk: u32,
        ctx: u32,
        dst: SocketAddr,
        lcl: Option<SocketAddr>,
        dtls: bool,
    ) -> Result<(), i32> {
        let any: SocketAddr = match dst.ip() {
            IpAddr::V4(_) => ([127, 0, 0, 1], 0).into(),
            IpAddr::V6(_) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
        };
        let sock = UdpSocket::bind(lcl.unwrap_or(any)).map_err(|_| SESSION_E_PORTINUSE)?;
        sock.connect(dst).map_err(|_| SESSION_E_NOROUTE)?;
        sock.set_nonblocking(true).map_err(|_| SESSION_E_SYSCALL)?;
        let local = sock.local_addr().map_err(|_| SESSION_E_SYSCALL)?;
        if dtls {
            sock.send(crate::session::secure::DTLS_HELLO)
                .map_err(|_| SESSION_E_TLS_HANDSHAKE)?;
        }
        let thread = cl_thread(self);
        let sm = self.wrks.get(wrk).map_or(INVALID, |w| w.sm_index);
        let (rx, tx) = self.alloc_session_fifos(sm, thread)?;
        let conn = UdpConn {
            sock: Some(sock),
            ls: u64::MAX,
            peer: dst,
            // DTLS: VPP migrates the UDP session under its TLS context; the app never sees it
            migrated: dtls,
            tx_pending: false,
            held: None,
            n_rx: 0,
            dtls,
        };
        let h = self.session_alloc(thread, Kind::Udp(Box::new(conn)));
        if let Some(s) = self.sess_mut(h) {
            s.app_wrk = wrk;
            s.sm = sm;
            s.rx = Some(rx);
            s.tx = Some(tx);
            s.lcl = endpoint(local);
            s.rmt = endpoint(dst);
            s.app_session_index = ctx;
            s.state = SessState::Ready;
        }
        self.sess_event(h, WrkEvt::Connected);
        Ok(())
    }

    /// Put one datagram from `from` into session `h`'s rx fifo (dropped if it does not fit)
    /// and notify the app.
    fn udp_enqueue(&mut self, h: u64, from: SocketAddr, data: &[u8]) {
        let Some(s) = self.sess(h) else { return };
        let Some(rx) = s.rx.clone() else { return };
        let hdr = hdr_for(&endpoint(from), &s.lcl);
        let need = (data.len() + SESSION_CONN_HDR_LEN) as u64;
        if u64::from(rx.fifo().max_enqueue_prod()) < need {
            tracing::debug!(len = data.len(), "udp: rx fifo full, datagram dropped");
            return;
        }
        if rx.fifo().enqueue_dgram(&hdr, &[data]).is_ok() {
            self.enqueue_notify(h);
        }
    }

    /// Whether the fault settings drop or hold back the `n`-th datagram (1-based).
    fn udp_fault_drop(&self, n: u64) -> bool {
        self.faults
            .udp_drop_every
            .is_some_and(|k| k > 0 && n % u64::from(k) == 0)
    }

    /// Datagrams waiting on a connected session's socket.
    pub fn udp_rx(&mut self, h: u64, buf: &mut [u8]) {
        for _ in 0..DGRAM_BUDGET {
            let Some(u) = self.udp(h) else { return };
            let Some(sock) = &u.sock else { return };
            let peer = u.peer;
            let n = match sock.recv(buf) {
                Ok(n) => n,
                Err(_) => return,
            };
            let h = self.udp_maybe_migrate(h);
            let reorder = self.faults.udp_reorder;
            let count = self.udp_count_rx(h);
            if self.udp_fault_drop(count) {
                continue;
            }
            let data = buf[..n].to_vec();
            if reorder {
                let Some(u) = self.udp_mut(h) else { return };
                match u.held.take() {
                    None => {
                        u.held = Some(data);
                        continue;
                    }
                    Some(first) => {
                        self.udp_enqueue(h, peer, &data);
                        self.udp_enqueue(h, peer, &first);
                        continue;
                    }
                }
            }
            self.udp_enqueue(h, peer, &data);
        }
    }

    fn udp_count_rx(&mut self, h: u64) -> u64 {
        let Some(u) = self.udp_mut(h) else { return 0 };
        u.n_rx += 1;
        u.n_rx
    }

    /// `session_dgram_connect_notify`: the first datagram of a connected session arrived on
    /// another worker thread (the peer always picks the next worker when there are two or
    /// more): clone the session there with the same fifos, tell the app (MIGRATED, on the old
    /// thread), free the old one. Returns the session's handle now.
    fn udp_maybe_migrate(&mut self, h: u64) -> u64 {
        let n_workers = self.threads.saturating_sub(1);
        let Some(s) = self.sess(h) else { return h };
        let migrated = matches!(&s.kind, Kind::Udp(u) if u.migrated || u.ls != u64::MAX);
        if n_workers < 2 || migrated || s.state != SessState::Ready {
            return h;
        }
        let old_thread = s.thread;
        let new_thread = old_thread % n_workers + 1;
        let Some(mut old) = self.sessions.pools[usize::from(old_thread)].remove(h as u32) else {
            return h;
        };
        if let Kind::Udp(u) = &mut old.kind {
            u.migrated = true;
        }
        let wrk = old.app_wrk;
        let pool = &mut self.sessions.pools[usize::from(new_thread)];
        let mut old = Some(old);
        let index = pool.put_with(|index| {
            let mut s = old.take().expect("once");
            s.thread = new_thread;
            s.index = index;
            s
        });
        let new_h = (u64::from(new_thread) << 32) | u64::from(index);
        let m = Migrated {
            vpp_evt_q: self.vpp_mq_offsets[usize::from(new_thread)],
            handle: h,
            new_handle: new_h,
            segment_handle: u64::MAX,
            vpp_thread_index: u32::from(new_thread),
        };
        self.add_event(wrk, old_thread, WrkEvt::Msg(Box::new(CtrlMsg::Migrated(m))));
        tracing::debug!(
            old = format_args!("{h:#x}"),
            new = format_args!("{new_h:#x}"),
            "udp session migrated"
        );
        new_h
    }

    /// Service TX / TX_FLUSH / TX_MAIN: every whole datagram in the tx fifo goes out (to the
    /// connected peer, or to its header's address for connectionless sessions).
    pub fn udp_tx(&mut self, h: u64) {
        let Some(s) = self.sess(h) else { return };
        let Some(tx) = s.tx.clone() else { return };
        if s.state >= SessState::TransportClosed && !matches!(s.kind, Kind::UdpCl(_)) {
            tx.fifo().unset_event();
            return;
        }
        let dtls = matches!(&s.kind, Kind::Udp(u) if u.dtls);
        let ls = match &s.kind {
            Kind::UdpCl(ls) => Some(*ls),
            Kind::Udp(u) if u.sock.is_none() => Some(u.ls),
            Kind::Udp(_) => None,
            _ => return,
        };
        let mut buf = vec![0u8; MAX_DGRAM];
        let mut sent = 0usize;
        let mut blocked = false;
        for _ in 0..DGRAM_BUDGET {
            let Ok(Some((hdr, n))) = tx.fifo().dequeue_dgram(&mut buf, true) else {
                break;
            };
            let dst = SocketAddr::new(
                Ip46(hdr.rmt_ip).to_ip(hdr.is_ip4 != 0),
                u16::from_be(hdr.rmt_port),
            );
            let r = match (ls, self.sess(h).map(|s| &s.kind)) {
                // tls_openssl.c drops what does not fit a DTLS record
                _ if dtls && n > crate::session::secure::DTLS_MAX_RECORD => Some(Ok(n)),
                (None, Some(Kind::Udp(u))) => u.sock.as_ref().map(|s| s.send(&buf[..n])),
                (Some(ls), Some(kind)) => {
                    let to = match kind {
                        Kind::Udp(u) => u.peer,
                        _ => dst,
                    };
                    match self.sess(ls).map(|l| &l.kind) {
                        Some(Kind::UdpListener(l)) if loopback(&to) => {
                            Some(l.sock.send_to(&buf[..n], to))
                        }
                        // no route: dropped
                        _ => Some(Ok(n)),
                    }
                }
                _ => None,
            };
            match r {
                Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                // sent, or refused by the kernel (too big, no listener): either way gone
                _ => {
                    let whole = SESSION_CONN_HDR_LEN as u32 + hdr.data_length;
                    let _ = tx.fifo().dequeue_drop(whole);
                    sent += whole as usize;
                }
            }
        }
        tx.fifo().unset_event();
        let left = tx.fifo().max_dequeue() > 0;
        let resched = left && tx.fifo().set_event();
        if let Some(u) = self.udp_mut(h) {
            u.tx_pending = resched;
        }
        if blocked {
            tracing::trace!(
                handle = format_args!("{h:#x}"),
                "udp tx: kernel buffer full"
            );
        }
        if sent > 0 && tx.fifo().needs_deq_ntf(sent as u32) {
            self.dequeue_notify(h);
        }
    }

    /// Datagrams waiting on a listener's socket.
    pub fn udp_listener_rx(&mut self, ls: u64, buf: &mut [u8]) {
        for _ in 0..DGRAM_BUDGET {
            let Some(l) = self.udp_listen_mut(ls) else {
                return;
            };
            let (n, from) = match l.sock.recv_from(buf) {
                Ok(r) => r,
                Err(_) => return,
            };
            if l.dtls && &buf[..n] == crate::session::secure::DTLS_HELLO {
                // handshakes are reliable (retransmitted): no fault applies
                let new = !l.flows.contains_key(&from);
                if new {
                    self.udp_accept(ls, from);
                }
                continue;
            }
            l.n_rx += 1;
            let count = l.n_rx;
            if self.udp_fault_drop(count) {
                continue;
            }
            let mut data = vec![(from, buf[..n].to_vec())];
            if self.faults.udp_reorder {
                let Some(l) = self.udp_listen_mut(ls) else {
                    return;
                };
                match l.held.take() {
                    None => {
                        l.held = Some(data.remove(0));
                        continue;
                    }
                    Some(first) => data.push(first),
                }
            }
            for (from, d) in data {
                self.udp_listener_deliver(ls, from, &d);
            }
        }
    }

    fn udp_listener_deliver(&mut self, ls: u64, from: SocketAddr, data: &[u8]) {
        let Some(l) = self.udp_listen_mut(ls) else {
            return;
        };
        if !l.connected {
            // app_listener_select_wrk_cl_session: a hash of the flow picks the worker
            let n = l.cl.len();
            if n == 0 {
                return;
            }
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            from.hash(&mut hasher);
            let k = (hasher.finish() % n as u64) as usize;
            let Some(&h) = l.cl.values().nth(k) else {
                return;
            };
            return self.udp_enqueue(h, from, data);
        }
        if let Some(&h) = l.flows.get(&from) {
            return self.udp_enqueue(h, from, data);
        }
        if l.dtls {
            // no handshake from this sender: DTLS drops the record
            return;
        }
        if let Some(h) = self.udp_accept(ls, from) {
            self.udp_enqueue(h, from, data);
        }
    }

    /// `udp_connection_accept` + `session_stream_accept`: a new sender on a connected listener.
    fn udp_accept(&mut self, ls: u64, from: SocketAddr) -> Option<u64> {
        let (al, lcl) = self.sess(ls).map(|l| (l.al, l.lcl))?;
        let dtls = self.udp_listen_mut(ls)?.dtls;
        let (wrk, sm) = self.listener_select_worker(al)?;
        let thread = self.pick_thread();
        let (rx, tx) = self.alloc_session_fifos(sm, thread).ok()?;
        let conn = UdpConn {
            sock: None,
            ls,
            peer: from,
            migrated: true,
            tx_pending: false,
            held: None,
            n_rx: 0,
            dtls,
        };
        let h = self.session_alloc(thread, Kind::Udp(Box::new(conn)));
        let s = self.sess_mut(h)?;
        s.listener_handle = ls;
        s.app_wrk = wrk;
        s.sm = sm;
        s.rx = Some(rx);
        s.tx = Some(tx);
        s.lcl = lcl;
        s.rmt = endpoint(from);
        s.state = SessState::Accepting;
        self.udp_listen_mut(ls)?.flows.insert(from, h);
        self.sess_event(h, WrkEvt::Accepted);
        Some(h)
    }

    /// `udp_session_close`: the transport goes at once (no handshake), then the session.
    pub fn udp_close(&mut self, h: u64) {
        let Some(s) = self.sess(h) else { return };
        let ls = match &s.kind {
            Kind::Udp(u) => u.ls,
            _ => u64::MAX,
        };
        let peer = self.udp(h).map(|u| u.peer);
        if let (Some(l), Some(peer)) = (self.udp_listen_mut(ls), peer) {
            l.flows.remove(&peer);
        }
        if let Some(u) = self.udp_mut(h) {
            u.sock = None;
            // the port is free before the app hears of the close (VPP frees it at once)
            self.io_gate.quiesce();
        }
        self.transport_closed_notify(h);
        self.transport_delete_notify(h);
    }

    /// Retry connected sessions whose tx the kernel refused for now.
    pub fn udp_timers(&mut self) {
        let pending: Vec<u64> = self
            .sessions
            .pools
            .iter()
            .flat_map(|p| p.iter())
            .filter(|(_, s)| match &s.kind {
                Kind::Udp(u) => u.tx_pending,
                Kind::UdpCl(_) => s.tx.as_ref().is_some_and(|f| f.fifo().max_dequeue() > 0),
                _ => false,
            })
            .map(|(_, s)| s.handle())
            .collect();
        for h in pending {
            self.udp_tx(h);
        }
    }

    /// A UDP listener's kernel socket on loopback (`port` 0: the kernel picks one).
    pub fn udp_listen_socket(ip: IpAddr, port: u16) -> Result<UdpSocket, i32> {
        let s = UdpSocket::bind(SocketAddr::new(ip, port)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                SESSION_E_PORTINUSE
            } else {
                SESSION_E_SYSCALL
            }
        })?;
        s.set_nonblocking(true).map_err(|_| SESSION_E_SYSCALL)?;
        Ok(s)
    }

    /// `app_worker_alloc_wrk_cl_session`: worker `wrk` (map index `map`) listens on
    /// connectionless listener `ls`: its own session on thread 0 with fifos from `sm`.
    pub fn udp_alloc_cl_session(
        &mut self,
        ls: u64,
        wrk: u32,
        map: u32,
        sm: u32,
        ctx: u32,
    ) -> Result<u64, i32> {
        let lcl = self.sess(ls).map(|l| l.lcl).ok_or(SESSION_E_INVALID)?;
        let (rx, tx) = self.alloc_session_fifos(sm, 0)?;
        let h = self.session_alloc(0, Kind::UdpCl(ls));
        if let Some(s) = self.sess_mut(h) {
            s.state = SessState::Listening;
            s.rx_ready = true;
            s.app_wrk = wrk;
            s.sm = sm;
            s.rx = Some(rx);
            s.tx = Some(tx);
            s.lcl = lcl;
            s.app_session_index = ctx;
        }
        if let Some(l) = self.udp_listen_mut(ls) {
            l.cl.insert(map, h);
        }
        Ok(h)
    }

    /// `app_worker_free_wrk_cl_session`.
    pub fn udp_free_cl_session(&mut self, ls: u64, map: u32) {
        let Some(h) = self.udp_listen_mut(ls).and_then(|l| l.cl.remove(&map)) else {
            return;
        };
        if let Some(s) = self.sessions.pools[0].remove(h as u32) {
            self.dealloc_session_fifos(&s);
        }
    }
}
