//! Cut-through sessions, as application_local.c does them: `ct_session_connect` (the scope
//! decision), `ct_connect` + `ct_accept_one` (server session and fifos in a custom segment per
//! (listener segment manager, client worker, server worker), segment_manager.c
//! `segment_manager_alloc_session_fifos_ct` / `sm_custom_alloc_segment`),
//! `ct_session_connect_notify` (client session once the server accepted), the event relay
//! (`ct_custom_tx` / `ct_session_tx`, `ct_app_rx_evt`) and close (`ct_session_close` →
//! `ct_session_postponed_cleanup`, run right away instead of by RPC).

use std::sync::atomic::Ordering;

use vcl_codec::msg::{Connected, CtrlMsg};
use vcl_codec::session_error::{SESSION_E_ALLOC, SESSION_E_REFUSED};
use vcl_svm::fifo::notify::SVM_FIFO_WANT_DEQ_NOTIF;

use crate::session::fifos::{free_pair, try_alloc_pair};
use crate::vpp::kinds::{CtConn, Kind, Quic};
use crate::vpp::segment_manager::{segment_handle, FifoLoc, SegOwner};
use crate::vpp::sessions::{thread_of, SessState};
use crate::vpp::state::{State, WrkEvt, INVALID};

/// Smallest CT segment VPP creates (`clib_max (props->segment_size, 128 << 20)`).
pub const CT_MIN_SEGMENT: u64 = 128 << 20;

/// `ct_client_seg_handle`.
pub fn ct_client_seg_handle(h: u64, client_wrk: u32) -> u64 {
    (u64::from(client_wrk) << 56) | h
}

impl State {
    fn ct(&self, h: u64) -> Option<&CtConn> {
        match &self.sess(h)?.kind {
            Kind::Ct(c) => Some(c),
            _ => None,
        }
    }

    fn ct_mut(&mut self, h: u64) -> Option<&mut CtConn> {
        match &mut self.sess_mut(h)?.kind {
            Kind::Ct(c) => Some(c),
            _ => None,
        }
    }

    /// `ct_connect` + `ct_accept_one`: the server session on a worker, CT fifos, ACCEPTED.
    /// Errors go back to the client as CONNECTED with a retval.
    pub fn ct_connect(&mut self, client_wrk: u32, ll: u64, ctx: u32, is_ip4: bool) {
        self.ct_connect_to(client_wrk, ll, ctx, is_ip4, None, Default::default());
    }

    /// [`State::ct_connect`] with the accepting (worker, segment manager) given instead of
    /// picked from `ll`'s app listener (QUIC streams are accepted on a connection), on `thread`
    /// if given. Returns the server session.
    pub fn ct_connect_to(
        &mut self,
        client_wrk: u32,
        ll: u64,
        ctx: u32,
        is_ip4: bool,
        target: Option<(u32, u32, u8)>,
        quic: Quic,
    ) -> Option<u64> {
        let thread = match target {
            Some((_, _, t)) => t,
            None => self.pick_thread(),
        };
        let (al, lcl) = match self.sess(ll) {
            Some(l) => (l.al, l.lcl),
            None => {
                self.connect_error(client_wrk, thread, ctx, SESSION_E_REFUSED);
                return None;
            }
        };
        let h = self.session_alloc(
            thread,
            Kind::Ct(Box::new(CtConn {
                is_client: false,
                peer: None,
                fifos: None,
                client_seg_handle: 0,
                reset: false,
                client_wrk,
                client_opaque: ctx,
                pending_client: true,
                quic,
            })),
        );
        let picked = match target {
            Some((w, sm, _)) => Some((w, sm)),
            None => self.listener_select_worker(al),
        };
        let Some((server_wrk, sm)) = picked else {
            self.sessions.pools[usize::from(thread)].remove(h as u32);
            self.connect_error(client_wrk, thread, ctx, SESSION_E_ALLOC);
            return None;
        };
        let fifos = self.ct_alloc_fifos(sm, server_wrk, client_wrk, thread);
        let Some((rx, tx, client_seg_handle)) = fifos else {
            self.sessions.pools[usize::from(thread)].remove(h as u32);
            self.connect_error(client_wrk, thread, ctx, SESSION_E_ALLOC);
            return None;
        };
        self.sessions.ct_refs.insert((rx.seg_handle, rx.off), 2);
        if let Some(s) = self.sess_mut(h) {
            s.listener_handle = ll;
            s.app_wrk = server_wrk;
            s.sm = sm;
            s.lcl = lcl;
            s.lcl.is_ip4 = is_ip4;
            s.rx = Some(rx.clone());
            s.tx = Some(tx.clone());
            s.state = SessState::Accepting;
            if let Kind::Ct(c) = &mut s.kind {
                c.fifos = Some((rx, tx));
                c.client_seg_handle = client_seg_handle;
            }
        }
        self.sess_event(h, WrkEvt::Accepted);
        Some(h)
    }

    /// CT fifos in the pair's custom segment, created (and announced to both workers) on first
    /// use. Returns (server rx, server tx, client's segment handle).
    fn ct_alloc_fifos(
        &mut self,
        sm: u32,
        server_wrk: u32,
        client_wrk: u32,
        thread: u8,
    ) -> Option<(FifoLoc, FifoLoc, u64)> {
        let (rx_size, tx_size, props) = self.fifo_sizes_of_wrk(server_wrk)?;
        let key = (sm, client_wrk, server_wrk);
        let idx = match self.sessions.ct_segs.get(&key).copied() {
            Some(i) if self.sms.get(sm).is_some_and(|m| m.segments.contains(i)) => i,
            _ => {
                let owner = SegOwner {
                    app_index: self.wrks.get(server_wrk)?.app_index,
                    wrk_index: server_wrk,
                    threads: self.threads,
                    max_size: self.max_segment_size,
                };
                let size = props.segment_size.max(CT_MIN_SEGMENT);
                let counter = &mut self.seg_name_counter;
                let m = self.sms.get_mut(sm)?;
                let i = m.add_segment(&props, owner, size, counter).ok()??;
                if let Some(s) = m.segments.get_mut(i) {
                    s.custom = true;
                }
                self.sessions.ct_segs.insert(key, i);
                let h = segment_handle(sm, i);
                self.add_event(server_wrk, thread, WrkEvt::AddSegment(h));
                let ch = ct_client_seg_handle(h, client_wrk);
                self.add_event(client_wrk, thread, WrkEvt::AddSegment(ch));
                i
            }
        };
        let seg = self.sms.get(sm)?.seg(idx)?;
        let (r, t) = try_alloc_pair(&seg, u32::from(thread), rx_size, tx_size)?;
        let h = segment_handle(sm, idx);
        let loc = |off| FifoLoc::new(seg.clone(), h, off);
        Some((loc(r)?, loc(t)?, ct_client_seg_handle(h, client_wrk)))
    }

    /// `app_worker_connect_notify (wrk, 0, err, opaque)`: CONNECTED with only context+retval.
    pub fn connect_error(&mut self, wrk: u32, thread: u8, ctx: u32, err: i32) {
        let m = CtrlMsg::Connected(Connected {
            context: ctx,
            retval: err,
            ..Default::default()
        });
        self.add_event(wrk, thread, WrkEvt::Msg(Box::new(m)));
    }

    /// `ct_session_connect_notify` after the server's ACCEPTED_REPLY: the client session, its
    /// own (signal) fifos in its connects segment manager, CONNECTED.
    pub fn ct_connect_notify(&mut self, ss: u64) {
        let Some(c) = self.ct(ss) else { return };
        let (client_wrk, opaque) = (c.client_wrk, c.client_opaque);
        let fifos = c.fifos.clone();
        let client_seg_handle = c.client_seg_handle;
        let quic = c.quic.client_side();
        let Some(ssess) = self.sess(ss) else { return };
        let (thread, lcl) = (ssess.thread, ssess.lcl);
        if let Some(c) = self.ct_mut(ss) {
            c.pending_client = false;
        }
        let Some(client_sm) = self.wrks.get(client_wrk).map(|w| w.sm_index) else {
            // Client went away while waiting for the server.
            self.ct_force_disconnect_server(ss);
            return;
        };
        let cs = self.session_alloc(
            thread,
            Kind::Ct(Box::new(CtConn {
                is_client: true,
                peer: Some(ss),
                fifos,
                client_seg_handle,
                reset: false,
                client_wrk,
                client_opaque: opaque,
                pending_client: false,
                quic,
            })),
        );
        let own = self.alloc_session_fifos(client_sm, thread);
        let Ok((rx, tx)) = own else {
            self.sessions.pools[usize::from(thread)].remove(cs as u32);
            self.ct_force_disconnect_server(ss);
            self.ct_release_side(ss);
            return self.connect_error(client_wrk, thread, opaque, SESSION_E_ALLOC);
        };
        if let Some(s) = self.sess_mut(cs) {
            s.app_wrk = client_wrk;
            s.listener_handle = u64::MAX;
            s.sm = client_sm;
            s.rx = Some(rx);
            s.tx = Some(tx);
            s.app_session_index = opaque;
            s.lcl.port = 0;
            s.lcl.is_ip4 = lcl.is_ip4;
            s.state = SessState::Ready;
        }
        if let Some(c) = self.ct_mut(ss) {
            c.peer = Some(cs);
        }
        self.sess_event(cs, WrkEvt::Connected);
    }

    /// `ct_session_force_disconnect_server`.
    fn ct_force_disconnect_server(&mut self, ss: u64) {
        if let Some(c) = self.ct_mut(ss) {
            c.peer = None;
        }
        self.transport_closing_notify(ss);
    }

    /// `ct_custom_tx` + `ct_session_tx`: a TX event from one side becomes an RX notification
    /// to the other, carrying the dequeue-notification request along.
    pub fn ct_tx(&mut self, h: u64) {
        let Some(s) = self.sess(h) else { return };
        if let Some(tx) = &s.tx {
            tx.fifo().unset_event();
        }
        if !matches!(
            s.state,
            SessState::Ready | SessState::Closing | SessState::AppClosed
        ) {
            return;
        }
        let want = s.tx.as_ref().map(|f| f.fifo().want_deq_ntf());
        let Some(peer) = self.ct(h).and_then(|c| c.peer) else {
            return;
        };
        let Some(ps) = self.sess(peer) else { return };
        if ps.state >= SessState::TransportClosing {
            return;
        }
        if let (Some(w), Some(prx)) = (want.filter(|&w| w != 0), &ps.rx) {
            prx.fifo()
                .shared()
                .signals
                .want_deq_ntf
                .store(w, Ordering::Release);
        }
        self.enqueue_notify(peer);
    }

    /// `ct_app_rx_evt`: the app dequeued and asks for the peer to be told there is space.
    pub fn ct_app_rx_evt(&mut self, h: u64) {
        let Some(s) = self.sess(h) else { return };
        if s.state < SessState::Ready {
            return;
        }
        let rx = s.rx.clone();
        let Some(peer) = self.ct(h).and_then(|c| c.peer) else {
            return;
        };
        let Some(ps) = self.sess(peer) else { return };
        if ps.state >= SessState::TransportClosing {
            return;
        }
        let peer_tx_full = ps
            .tx
            .as_ref()
            .map(|f| f.fifo().max_enqueue() == 0)
            .unwrap_or(false);
        if let Some(rx) = &rx {
            rx.fifo().reset_has_deq_ntf();
        }
        if peer_tx_full {
            // Filled again while the notification travelled: ask for another one.
            if let Some(rx) = &rx {
                rx.fifo().add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
            }
            return;
        }
        self.dequeue_notify(peer);
    }

    /// `ct_session_close` / `ct_session_reset`, with the postponed cleanup run right away:
    /// the peer learns of the close (RESET if this side left unread data or reset), this side's
    /// transport is closed and deleted (CLEANUP TRANSPORT then SESSION once the app closed).
    pub fn ct_close(&mut self, h: u64, reset: bool) {
        self.quic_conn_closing(h);
        let Some(c) = self.ct_mut(h) else { return };
        c.reset |= reset;
        let (peer, pending, client_wrk, opaque) =
            (c.peer, c.pending_client, c.client_wrk, c.client_opaque);
        if let Some(p) = peer {
            if let Some(pc) = self.ct_mut(p) {
                pc.peer = None;
            }
        }
        if pending {
            // The client was still waiting for the server: refuse its connect.
            if let Some(c) = self.ct_mut(h) {
                c.pending_client = false;
            }
            let thread = thread_of(h);
            self.connect_error(client_wrk, thread, opaque, SESSION_E_REFUSED);
            self.ct_release_side(h);
        }
        if let Some(p) = peer {
            if self.ct_close_is_reset(h) {
                self.transport_reset_notify(p);
            } else {
                self.transport_closing_notify(p);
            }
        }
        self.transport_closed_notify(h);
        if let Some(c) = self.ct_mut(h) {
            c.peer = None;
        }
        self.transport_delete_notify(h);
    }

    /// `ct_close_is_reset`.
    fn ct_close_is_reset(&self, h: u64) -> bool {
        let Some(c) = self.ct(h) else { return false };
        if c.reset {
            return true;
        }
        let unread = |f: Option<&FifoLoc>| f.map(|f| f.fifo().max_dequeue() > 0).unwrap_or(false);
        if c.is_client {
            // The client reads the server's tx fifo.
            unread(c.fifos.as_ref().map(|(_, tx)| tx))
        } else {
            unread(self.sess(h).and_then(|s| s.rx.as_ref()))
        }
    }

    /// Drop one side's reference on the CT fifos (the client half of a refused connect or a
    /// freed session); the second release frees them, and an empty CT segment is deleted with
    /// APP_DEL_SEGMENT to both workers (segment_manager.c `segment_manager_dealloc_fifos_ct`).
    fn ct_release_side(&mut self, h: u64) {
        let Some(c) = self.ct_mut(h) else { return };
        let Some(f) = c.fifos.take() else { return };
        let wrks = (c.client_wrk, self.sess(h).map_or(INVALID, |s| s.app_wrk));
        let thread = thread_of(h);
        self.ct_release(f, wrks, thread);
    }

    /// Called from `session_cleanup` with the freed session's CT state.
    pub fn ct_release_fifos(&mut self, ct: &CtConn, app_wrk: u32, thread: u8) {
        if let Some(f) = ct.fifos.clone() {
            let wrks = if ct.is_client {
                (app_wrk, INVALID)
            } else {
                (ct.client_wrk, app_wrk)
            };
            self.ct_release(f, wrks, thread);
        }
    }

    fn ct_release(&mut self, (rx, tx): (FifoLoc, FifoLoc), wrks: (u32, u32), thread: u8) {
        let key = (rx.seg_handle, rx.off);
        let left = match self.sessions.ct_refs.get_mut(&key) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => return,
        };
        if left > 0 {
            return;
        }
        self.sessions.ct_refs.remove(&key);
        free_pair(&rx, &tx);
        let empty = vcl_svm::fifo_segment::FifoSegment::attach(rx.seg())
            .is_ok_and(|fs| fs.n_active_fifos() == 0);
        if !empty {
            return;
        }
        let sm = ((rx.seg_handle >> 32) & 0xff_ffff) as u32;
        let idx = rx.seg_handle as u32;
        let Some(m) = self.sms.get_mut(sm) else {
            return;
        };
        m.segments.remove(idx);
        let server_wrk = m.app_wrk_index;
        let detached = m.detached;
        self.sessions
            .ct_segs
            .retain(|k, v| !(k.0 == sm && *v == idx));
        // The client is told first, then the server as the segment goes.
        let client = wrks.0;
        if self.wrks.contains(client) {
            let ch = ct_client_seg_handle(rx.seg_handle, client);
            self.add_event(client, thread, WrkEvt::DelSegment(ch));
        }
        if !detached {
            self.add_event(server_wrk, thread, WrkEvt::DelSegment(rx.seg_handle));
        }
    }
}
