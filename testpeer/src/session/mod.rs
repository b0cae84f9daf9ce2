//! The session layer (session.c) over the objects of `vpp::sessions`: lookups in the session
//! pools, allocation and thread placement, and the generic state machine the transports drive:
//! `session_transport_closing_notify`, `session_transport_reset_notify`,
//! `session_transport_closed_notify`, `session_transport_delete_notify`, `session_close`,
//! `session_reset`, `session_transport_close`, `session_transport_reset` and the cleanup
//! notifications.
//! Everything runs under the state lock (VPP's barrier); the notifications are queued per
//! worker per thread and built when the thread flushes them (`crate::events`).

pub mod api;
pub mod fifos;
pub mod listen;
pub mod secure;

use vcl_codec::msg::{CleanupType, TransportEndpoint};

use crate::vpp::kinds::Kind;
use crate::vpp::sessions::{index_of, thread_of, SessState, Session};
use crate::vpp::state::{State, WrkEvt, INVALID};

impl State {
    pub fn sess(&self, h: u64) -> Option<&Session> {
        self.sessions
            .pools
            .get(usize::from(thread_of(h)))?
            .get(index_of(h))
    }

    pub fn sess_mut(&mut self, h: u64) -> Option<&mut Session> {
        self.sessions
            .pools
            .get_mut(usize::from(thread_of(h)))?
            .get_mut(index_of(h))
    }

    /// `session_alloc (thread)`.
    pub fn session_alloc(&mut self, thread: u8, kind: Kind) -> u64 {
        match &kind {
            Kind::Ct(_) => self.sessions.ever.0 += 1,
            k if !k.is_listener() => self.sessions.ever.1 += 1,
            _ => {}
        }
        let pool = &mut self.sessions.pools[usize::from(thread)];
        let index = pool.put_with(|index| Session {
            thread,
            index,
            state: SessState::Created,
            app_wrk: INVALID,
            listener_handle: u64::MAX,
            rx_ready: false,
            app_closed: false,
            rx_evt: false,
            app_session_index: 0,
            rx: None,
            tx: None,
            sm: INVALID,
            lcl: TransportEndpoint::default(),
            rmt: TransportEndpoint::default(),
            al: INVALID,
            kind,
        });
        (u64::from(thread) << 32) | u64::from(index)
    }

    /// The thread a new connection lands on: round robin over the workers, skipping main when
    /// there are workers (application_local.c `ct_program_connect_to_wrk`; for TCP VPP relies
    /// on RSS, which the peer replaces with the same rotation).
    pub fn pick_thread(&mut self) -> u8 {
        self.sessions.n_sessions = self.sessions.n_sessions.wrapping_add(1);
        let n_workers = u32::from(self.threads) - 1;
        if n_workers == 0 {
            0
        } else {
            (self.sessions.n_sessions % n_workers + 1) as u8
        }
    }

    /// Queue a session event for the session's worker on the session's thread
    /// (application_worker.c `app_worker_add_event`).
    pub fn sess_event(&mut self, h: u64, evt: fn(u32) -> WrkEvt) {
        let Some(s) = self.sess(h) else {
            return;
        };
        let (wrk, thread, si) = (s.app_wrk, s.thread, s.index);
        self.add_event(wrk, thread, evt(si));
    }

    /// session.c `session_enqueue_notify`: one RX notification per flush (`SESSION_F_RX_EVT`).
    pub fn enqueue_notify(&mut self, h: u64) {
        let Some(s) = self.sess_mut(h) else {
            return;
        };
        if s.rx_evt || s.app_wrk == INVALID {
            return;
        }
        s.rx_evt = true;
        self.sess_event(h, WrkEvt::IoRx);
    }

    /// session.c `session_dequeue_notify`: clear the tx deq-notification request and tell the
    /// app there is space.
    pub fn dequeue_notify(&mut self, h: u64) {
        let Some(s) = self.sess(h) else {
            return;
        };
        if let Some(tx) = &s.tx {
            tx.fifo().clear_deq_ntf();
        }
        if s.app_wrk != INVALID {
            self.sess_event(h, WrkEvt::IoTx);
        }
    }

    fn set_state(&mut self, h: u64, st: SessState) {
        if let Some(s) = self.sess_mut(h) {
            s.state = st;
        }
    }

    fn state_of(&self, h: u64) -> Option<SessState> {
        self.sess(h).map(|s| s.state)
    }

    /// `session_transport_closing_notify`.
    pub fn transport_closing_notify(&mut self, h: u64) {
        let Some(st) = self.state_of(h) else { return };
        if st >= SessState::TransportClosing {
            return;
        }
        self.set_state(h, SessState::TransportClosing);
        // Wait for the accept reply before notifying: the accept might be refused.
        if st != SessState::Accepting {
            self.sess_event(h, WrkEvt::Disconnected);
        }
    }

    /// `session_transport_reset_notify`.
    pub fn transport_reset_notify(&mut self, h: u64) {
        let Some(st) = self.state_of(h) else { return };
        if st >= SessState::TransportClosing {
            return;
        }
        self.set_state(h, SessState::TransportClosing);
        if st != SessState::Accepting {
            self.sess_event(h, WrkEvt::Reset);
        }
    }

    /// `session_transport_closed_notify` (the TRANSPORT_CLOSED event it queues has no mq
    /// callback, so apps see nothing from it).
    pub fn transport_closed_notify(&mut self, h: u64) {
        let Some(st) = self.state_of(h) else { return };
        if st >= SessState::TransportClosed {
            return;
        }
        if st == SessState::Ready {
            self.transport_closing_notify(h);
            self.set_state(h, SessState::TransportClosed);
        } else if st <= SessState::Closing {
            self.set_state(h, SessState::TransportClosed);
        } else if st == SessState::AppClosed {
            self.set_state(h, SessState::Closed);
        }
    }

    /// `session_transport_delete_notify` (also `session_transport_delete_request`, which sends
    /// the same notifications).
    pub fn transport_delete_notify(&mut self, h: u64) {
        let Some(st) = self.state_of(h) else { return };
        match st {
            SessState::Created => self.session_cleanup(h),
            SessState::Accepting
            | SessState::TransportClosing
            | SessState::Closing
            | SessState::TransportClosed => {
                self.set_state(h, SessState::TransportDeleted);
                self.cleanup_notify(h, CleanupType::Transport);
            }
            SessState::AppClosed => {
                self.set_state(h, SessState::TransportDeleted);
                self.cleanup_notify(h, CleanupType::Transport);
                self.session_transport_close(h);
            }
            SessState::TransportDeleted => {}
            _ => {
                self.set_state(h, SessState::TransportDeleted);
                self.cleanup_notify(h, CleanupType::Transport);
                self.cleanup_notify(h, CleanupType::Session);
            }
        }
    }

    /// `session_cleanup_notify`: with no app worker a transport cleanup is dropped and a
    /// session cleanup frees everything right away.
    pub fn cleanup_notify(&mut self, h: u64, ty: CleanupType) {
        let Some(s) = self.sess(h) else { return };
        if s.app_wrk == INVALID || !self.wrks.contains(s.app_wrk) {
            if ty == CleanupType::Session {
                self.session_cleanup(h);
            }
            return;
        }
        let (wrk, thread, si) = (s.app_wrk, s.thread, s.index);
        self.add_event(wrk, thread, WrkEvt::Cleanup(si, ty));
    }

    /// `session_close` (vnet_disconnect_session): app-initiated close.
    pub fn session_close(&mut self, h: u64) {
        self.app_close(h, false);
    }

    /// `session_reset`: app-initiated abortive close.
    pub fn session_reset(&mut self, h: u64) {
        self.app_close(h, true);
    }

    /// What `session_close` and `session_reset` share: once per session, stop dequeue
    /// notifications and close (or reset) the transport, unless it is already going away.
    fn app_close(&mut self, h: u64, reset: bool) {
        let Some(s) = self.sess_mut(h) else { return };
        if s.app_closed {
            return;
        }
        s.app_closed = true;
        let st = s.state;
        if st < SessState::Closing {
            // App closed: stop propagating dequeue notifications.
            if let Some(tx) = &s.tx {
                tx.fifo().clear_deq_ntf();
            }
            s.state = SessState::Closing;
        } else if st != SessState::TransportClosed && st != SessState::TransportDeleted {
            return;
        }
        self.transport_close_or_reset(h, reset);
    }

    /// `session_transport_close`.
    pub fn session_transport_close(&mut self, h: u64) {
        self.transport_close_or_reset(h, false);
    }

    /// `session_transport_reset`.
    pub fn session_transport_reset(&mut self, h: u64) {
        self.transport_close_or_reset(h, true);
    }

    fn transport_close_or_reset(&mut self, h: u64, reset: bool) {
        let Some(st) = self.state_of(h) else { return };
        if st >= SessState::AppClosed {
            if st == SessState::TransportClosed {
                self.set_state(h, SessState::Closed);
            } else if st >= SessState::TransportDeleted {
                self.cleanup_notify(h, CleanupType::Session);
            }
            return;
        }
        self.set_state(h, SessState::AppClosed);
        let is_ct = self.sess(h).is_some_and(Session::is_ct);
        let is_udp = self.sess(h).is_some_and(|s| s.kind.is_udp());
        match (is_ct, reset) {
            (true, r) => self.ct_close(h, r),
            (false, _) if is_udp => self.udp_close(h),
            (false, false) => self.tcp_close(h),
            (false, true) => self.tcp_reset(h),
        }
    }

    /// `session_half_close` → `session_transport_half_close`: only READY sessions.
    pub fn session_half_close(&mut self, h: u64) {
        if self.state_of(h) == Some(SessState::Ready) && !self.sess(h).is_some_and(Session::is_ct) {
            self.tcp_half_close(h);
        }
    }

    /// `session_cleanup`: free the fifos and the session.
    pub fn session_cleanup(&mut self, h: u64) {
        let t = usize::from(thread_of(h));
        let Some(s) = self
            .sessions
            .pools
            .get_mut(t)
            .and_then(|p| p.remove(index_of(h)))
        else {
            return;
        };
        self.dealloc_session_fifos(&s);
        if let Kind::Ct(ct) = &s.kind {
            self.ct_release_fifos(ct, s.app_wrk, s.thread);
        }
        tracing::debug!(handle = format_args!("{h:#x}"), "session freed");
    }
}
