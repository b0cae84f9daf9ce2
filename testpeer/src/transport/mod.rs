//! TCP sessions backed by kernel sockets on loopback: the transport side VPP's tcp.c /
//! tcp_input.c plays, reduced to what a kernel socket shows. Accept
//! (`session_stream_accept` + `session_stream_accept_notify`), connect completion
//! (`session_stream_connect_notify`; a refused kernel connect is the RST on SYN_SENT →
//! SESSION_E_REFUSED), data (session_node.c `session_tx_fifo_read_and_snd_i` with
//! `session_tx_maybe_reschedule` and the tx dequeue notification; rx enqueue with
//! `session_enqueue_notify`, a full rx fifo closing the window with
//! `transport_rx_fifo_req_deq_ntf`; the ACK owed for received bytes, `tcp_program_ack`,
//! marking the tx fifo for a tx pass `vpp::kinds::ACK_PASS` later), and close:
//! `tcp_connection_close` (FIN once tx drained, RST when the app closes with unread rx data),
//! `tcp_session_half_close`, `tcp_session_reset`, peer FIN (`tcp_rcv_fin`: CLOSE_WAIT →
//! closing notify; FIN_WAIT → TIME_WAIT → closed notify), peer RST (`tcp_rcv_rst` /
//! `tcp_handle_rst`), and the delete notification after `tcp_cfg.cleanup_time` (100 ms).
//! Deviations: the peer's FIN is acknowledged by the kernel, so LAST_ACK completes at once,
//! and TIME_WAIT lasts [`TIME_WAIT`] instead of 10 s.

pub mod gate;
pub mod io;
pub mod udp;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use vcl_codec::msg::{Ip46, TransportEndpoint};
use vcl_codec::session_error::SESSION_E_REFUSED;
use vcl_svm::fifo::notify::SVM_FIFO_WANT_DEQ_NOTIF;

use crate::vpp::kinds::{HalfOpen, Kind, TcpConn, TcpSt};
use crate::vpp::sessions::SessState;
use crate::vpp::state::{State, WrkEvt, INVALID};

/// `tcp_cfg.cleanup_time`.
pub const CLEANUP_TIME: Duration = Duration::from_millis(100);
/// Shortened TIME_WAIT (VPP: `tcp_cfg.timewait_time` = 10 s).
pub const TIME_WAIT: Duration = Duration::from_millis(100);
/// How long FIN_WAIT_1/2 wait for the peer's FIN (`tcp_cfg.finwait2_time`).
pub const FIN_WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes moved per service call and direction (bounds the time the state lock is held).
pub const IO_BUDGET: usize = 1 << 20;
/// Copy buffer for one read/write.
const CHUNK: usize = 16 << 10;

/// `transport_endpoint_t` of a socket address.
pub fn endpoint(a: SocketAddr) -> TransportEndpoint {
    let (ip, is_ip4) = Ip46::from_ip(a.ip());
    TransportEndpoint {
        ip,
        port: a.port(),
        is_ip4,
        ..Default::default()
    }
}

/// Close with RST: SO_LINGER {1, 0} then close.
pub fn send_rst(sock: TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(&sock.as_fd(), nix::sys::socket::sockopt::Linger, &l);
    drop(sock);
}

impl State {
    pub fn tcp(&self, h: u64) -> Option<&TcpConn> {
        match &self.sess(h)?.kind {
            Kind::Tcp(t) => Some(t),
            _ => None,
        }
    }

    pub fn tcp_mut(&mut self, h: u64) -> Option<&mut TcpConn> {
        match &mut self.sess_mut(h)?.kind {
            Kind::Tcp(t) => Some(t),
            _ => None,
        }
    }

    fn program_cleanup(&mut self, h: u64, after: Duration) {
        if let Some(t) = self.tcp_mut(h) {
            t.cleanup_at = Some(Instant::now() + after);
        }
    }

    /// A connection arrived on listen session `ls`: `session_stream_accept` (fifos in the
    /// selected worker's listener segment manager) then `session_stream_accept_notify`.
    pub fn tcp_accept(&mut self, ls: u64, sock: TcpStream) {
        let Some(al) = self.sess(ls).map(|l| l.al) else {
            return;
        };
        let (lcl, rmt) = match (sock.local_addr(), sock.peer_addr()) {
            (Ok(l), Ok(r)) => (endpoint(l), endpoint(r)),
            _ => return,
        };
        let _ = sock.set_nonblocking(true);
        let _ = sock.set_nodelay(true);
        let thread = self.pick_thread();
        let h = self.session_alloc(thread, Kind::Tcp(Box::new(TcpConn::new(sock))));
        let sel = self.listener_select_worker(al);
        let fifos = sel.map(|(_, sm)| self.alloc_session_fifos(sm, thread));
        let (Some((wrk, sm)), Some(Ok((rx, tx)))) = (sel, fifos) else {
            tracing::warn!(
                ls = format_args!("{ls:#x}"),
                "accept failed: no worker or fifos"
            );
            if let Some(s) = self.sessions.pools[usize::from(thread)].remove(h as u32) {
                if let Kind::Tcp(mut t) = s.kind {
                    if let Some(sock) = t.sock.take() {
                        send_rst(sock);
                    }
                }
            }
            return;
        };
        if let Some(s) = self.sess_mut(h) {
            s.listener_handle = ls;
            s.app_wrk = wrk;
            s.sm = sm;
            s.rx = Some(rx);
            s.tx = Some(tx);
            s.lcl = lcl;
            s.rmt = rmt;
            s.state = SessState::Accepting;
        }
        self.sess_event(h, WrkEvt::Accepted);
    }

    /// `session_stream_connect_notify`: the kernel connect finished (`err` = 0 on success).
    pub fn tcp_connect_notify(&mut self, ho: HalfOpen, err: i32) {
        let ctrl = u8::from(self.threads > 1);
        if !self.wrks.contains(ho.app_wrk) {
            return;
        }
        if err != 0 {
            return self.connect_error(ho.app_wrk, ctrl, ho.ctx, err);
        }
        let sock = TcpStream::from(ho.sock);
        let (lcl, rmt) = match (sock.local_addr(), sock.peer_addr()) {
            (Ok(l), Ok(r)) => (endpoint(l), endpoint(r)),
            _ => return self.connect_error(ho.app_wrk, ctrl, ho.ctx, SESSION_E_REFUSED),
        };
        let _ = sock.set_nodelay(true);
        let thread = self.pick_thread();
        let sm = self.wrks.get(ho.app_wrk).map_or(INVALID, |w| w.sm_index);
        let h = self.session_alloc(thread, Kind::Tcp(Box::new(TcpConn::new(sock))));
        let fifos = self.alloc_session_fifos(sm, thread);
        let (rx, tx) = match fifos {
            Ok(f) => f,
            Err(rv) => {
                if let Some(s) = self.sessions.pools[usize::from(thread)].remove(h as u32) {
                    if let Kind::Tcp(mut t) = s.kind {
                        if let Some(sock) = t.sock.take() {
                            send_rst(sock);
                        }
                    }
                }
                return self.connect_error(ho.app_wrk, ctrl, ho.ctx, rv);
            }
        };
        if let Some(s) = self.sess_mut(h) {
            s.app_wrk = ho.app_wrk;
            s.sm = sm;
            s.rx = Some(rx);
            s.tx = Some(tx);
            s.lcl = lcl;
            s.rmt = rmt;
            // Stamped from CONNECT.context (docs/wire.md#io-events-carry-the-apps-session-index).
            s.app_session_index = ho.ctx;
            s.state = SessState::Ready;
        }
        self.sess_event(h, WrkEvt::Connected);
    }

    /// Service a TX event or a writable socket: copy tx fifo → kernel, reschedule if data
    /// remains, dequeue notification, FIN when drained and pending.
    pub fn tcp_tx(&mut self, h: u64) {
        let Some(s) = self.sess(h) else { return };
        let state = s.state;
        let Some(tx) = s.tx.clone() else { return };
        if state >= SessState::TransportClosed {
            tx.fifo().unset_event();
            return;
        }
        if state < SessState::Ready {
            // Not ready yet: keep the event for later (`session_evt_add_old`).
            if let Some(t) = self.tcp_mut(h) {
                t.tx_pending = true;
            }
            return;
        }
        let Some(t) = self.tcp_mut(h) else { return };
        let fin_sent = t.fin_sent;
        let Some(sock) = t.sock.as_mut().filter(|_| !fin_sent) else {
            tx.fifo().unset_event();
            return;
        };
        let mut buf = [0u8; CHUNK];
        let mut sent = 0usize;
        let mut blocked = false;
        let mut failed = false;
        while sent < IO_BUDGET {
            let n = tx.fifo().peek(0, &mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            match sock.write(&buf[..n]) {
                Ok(w) => {
                    // Fails only on a fifo the app corrupted, which the next peek reports too.
                    let _ = tx.fifo().dequeue_drop(w as u32);
                    sent += w;
                    if w < n {
                        blocked = true;
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            tx.fifo().unset_event();
            return self.tcp_rcv_rst(h);
        }
        // session_tx_maybe_reschedule
        tx.fifo().unset_event();
        let left = tx.fifo().max_dequeue();
        let resched = left > 0 && tx.fifo().set_event();
        if let Some(t) = self.tcp_mut(h) {
            t.tx_pending = resched;
            t.tx_blocked = resched && blocked;
        }
        if sent > 0 && tx.fifo().needs_deq_ntf(sent as u32) {
            self.dequeue_notify(h);
        }
        if left == 0 {
            self.tcp_maybe_send_fin(h);
        }
    }

    /// `tcp_program_ack` → `session_add_self_custom_tx_evt`: bytes came in, so an ACK is owed
    /// on the next loop, and VPP marks the tx fifo (has_event 0 -> 1) as it schedules that tx
    /// pass. An app that writes before then finds has_event set and sends no TX event: its
    /// bytes leave in that pass (docs/wire.md#fifos). Already set: a tx pass is coming anyway.
    fn tcp_program_ack(&mut self, h: u64) {
        let Some(tx) = self.sess(h).and_then(|s| s.tx.clone()) else {
            return;
        };
        let after = self.tcp_ack_pass;
        let Some(t) = self.tcp_mut(h) else { return };
        if t.ack_due.is_none() && tx.fifo().set_event() {
            t.ack_due = Some(Instant::now() + after);
        }
    }

    /// Pending FIN and tx drained: send it (shutdown(WR)) and move on.
    fn tcp_maybe_send_fin(&mut self, h: u64) {
        let Some(t) = self.tcp_mut(h) else { return };
        if !t.fin_pending {
            return;
        }
        t.fin_pending = false;
        self.tcp_send_fin(h);
    }

    fn tcp_send_fin(&mut self, h: u64) {
        let Some(t) = self.tcp_mut(h) else { return };
        if let Some(sock) = &t.sock {
            let _ = sock.shutdown(Shutdown::Write);
        }
        t.fin_sent = true;
        match t.st {
            // Our FIN is acknowledged at once by the kernel peer: LAST_ACK completes.
            TcpSt::CloseWait | TcpSt::LastAck => self.tcp_fin_acked_closed(h),
            TcpSt::FinWait1 if t.fin_rcvd => self.tcp_fin_acked_closed(h),
            _ => {}
        }
    }

    fn tcp_fin_acked_closed(&mut self, h: u64) {
        if let Some(t) = self.tcp_mut(h) {
            t.st = TcpSt::Closed;
        }
        self.transport_closed_notify(h);
        self.program_cleanup(h, CLEANUP_TIME);
    }

    /// Read from the kernel into the rx fifo (I/O thread).
    pub fn tcp_rx(&mut self, h: u64, buf: &mut [u8]) {
        let Some(s) = self.sess(h) else { return };
        if s.state >= SessState::TransportClosed {
            return;
        }
        let Some(rx) = s.rx.clone() else { return };
        let Some(t) = self.tcp_mut(h) else { return };
        if t.rd_eof || t.sock.is_none() {
            return;
        }
        let mut got = 0usize;
        let mut eof = false;
        let mut failed = false;
        while got < IO_BUDGET {
            if !t.pending_rx.is_empty() {
                let n = rx.fifo().enqueue(&t.pending_rx).unwrap_or(0);
                t.pending_rx.drain(..n);
                got += n;
                if !t.pending_rx.is_empty() {
                    // window closed with bytes in hand: the app must tell us when it dequeues
                    rx.fifo().add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
                    t.rx_paused = true;
                    break;
                }
            }
            let space = rx.fifo().max_enqueue_prod() as usize;
            if space == 0 {
                // Window closed: ask the app to tell us when it dequeues.
                rx.fifo().add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
                t.rx_paused = rx.fifo().max_enqueue_prod() == 0;
                if t.rx_paused {
                    break;
                }
                continue;
            }
            let want = space.min(buf.len());
            let Some(sock) = t.sock.as_mut() else { break };
            match sock.read(&mut buf[..want]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    let q = rx.fifo().enqueue(&buf[..n]).unwrap_or(0);
                    got += q;
                    if q < n {
                        t.pending_rx.extend_from_slice(&buf[q..n]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if got > 0 {
            self.tcp_program_ack(h);
            self.enqueue_notify(h);
        }
        if failed {
            self.tcp_rcv_rst(h);
        } else if eof {
            self.tcp_rcv_fin(h);
        }
    }

    /// The app dequeued from a paused rx fifo (IO RX from the app, `tcp_session_app_rx_evt`).
    pub fn tcp_app_rx_evt(&mut self, h: u64) {
        if let Some(t) = self.tcp_mut(h) {
            t.rx_paused = false;
        }
    }

    /// `tcp_rcv_fin`.
    fn tcp_rcv_fin(&mut self, h: u64) {
        let Some(t) = self.tcp_mut(h) else { return };
        t.rd_eof = true;
        match t.st {
            TcpSt::Established => {
                t.st = TcpSt::CloseWait;
                self.transport_closing_notify(h);
            }
            TcpSt::FinWait1 | TcpSt::FinWait2 if !t.fin_sent => t.fin_rcvd = true,
            TcpSt::FinWait1 | TcpSt::FinWait2 => {
                t.st = TcpSt::TimeWait;
                self.transport_closed_notify(h);
                self.program_cleanup(h, TIME_WAIT);
            }
            _ => {}
        }
    }

    /// `tcp_rcv_rst` + `tcp_handle_rst`: the kernel reported a reset or an error.
    pub fn tcp_rcv_rst(&mut self, h: u64) {
        let Some(t) = self.tcp_mut(h) else { return };
        let st = t.st;
        t.sock = None;
        t.st = TcpSt::Closed;
        match st {
            TcpSt::Established => {
                self.transport_reset_notify(h);
                self.transport_closed_notify(h);
            }
            TcpSt::CloseWait | TcpSt::FinWait1 | TcpSt::FinWait2 | TcpSt::LastAck => {
                self.transport_closed_notify(h);
            }
            TcpSt::Closed | TcpSt::TimeWait => return,
        }
        self.program_cleanup(h, CLEANUP_TIME);
    }

    /// `tcp_connection_close` (through `session_transport_close`).
    pub fn tcp_close(&mut self, h: u64) {
        let unread = self
            .sess(h)
            .and_then(|s| s.rx.as_ref())
            .map(|f| f.fifo().max_dequeue())
            .unwrap_or(0);
        let tx_left = self
            .sess(h)
            .and_then(|s| s.tx.as_ref())
            .map(|f| f.fifo().max_dequeue())
            .unwrap_or(0);
        let Some(t) = self.tcp_mut(h) else { return };
        match t.st {
            TcpSt::Established if unread > 0 => {
                // Closing with unread data resets the connection.
                if let Some(sock) = t.sock.take() {
                    send_rst(sock);
                }
                t.st = TcpSt::Closed;
                self.transport_closed_notify(h);
                self.program_cleanup(h, CLEANUP_TIME);
            }
            TcpSt::Established => {
                t.st = TcpSt::FinWait1;
                t.fin_wait_until = Some(Instant::now() + FIN_WAIT_TIMEOUT);
                if tx_left == 0 {
                    self.tcp_send_fin(h);
                } else {
                    t.fin_pending = true;
                }
            }
            TcpSt::CloseWait => {
                if tx_left == 0 {
                    t.st = TcpSt::LastAck;
                    self.tcp_send_fin(h);
                } else {
                    t.fin_pending = true;
                }
            }
            _ => {}
        }
    }

    /// `tcp_session_half_close`: only ESTABLISHED; FIN once tx drained.
    pub fn tcp_half_close(&mut self, h: u64) {
        let tx_left = self
            .sess(h)
            .and_then(|s| s.tx.as_ref())
            .map(|f| f.fifo().max_dequeue())
            .unwrap_or(0);
        let Some(t) = self.tcp_mut(h) else { return };
        if t.st != TcpSt::Established {
            return;
        }
        t.st = TcpSt::FinWait1;
        t.fin_wait_until = Some(Instant::now() + FIN_WAIT_TIMEOUT);
        if tx_left == 0 {
            self.tcp_send_fin(h);
        } else {
            t.fin_pending = true;
        }
    }

    /// `tcp_session_reset`: RST, CLOSED, closed notify, cleanup.
    pub fn tcp_reset(&mut self, h: u64) {
        let Some(t) = self.tcp_mut(h) else { return };
        if matches!(t.st, TcpSt::Closed | TcpSt::TimeWait) {
            return;
        }
        if let Some(sock) = t.sock.take() {
            send_rst(sock);
        }
        t.st = TcpSt::Closed;
        self.transport_closed_notify(h);
        self.program_cleanup(h, CLEANUP_TIME);
    }

    /// Move bytes held in `pending_rx` into the rx fifo (see `tcp_timers`).
    fn flush_pending_rx(&mut self, h: u64) {
        let Some(rx) = self.sess(h).and_then(|s| s.rx.clone()) else {
            return;
        };
        let Some(t) = self.tcp_mut(h) else { return };
        let n = rx.fifo().enqueue(&t.pending_rx).unwrap_or(0);
        t.pending_rx.drain(..n);
        if !t.pending_rx.is_empty() {
            rx.fifo().add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
            t.rx_paused = rx.fifo().max_enqueue_prod() == 0;
        }
        if n > 0 {
            self.enqueue_notify(h);
        }
    }

    /// Timers of one connection (I/O thread): transport deletion, paused rx, postponed tx.
    pub fn tcp_timers(&mut self, h: u64, now: Instant) {
        let state = self.sess(h).map(|s| s.state);
        let rx_space = self
            .sess(h)
            .and_then(|s| s.rx.as_ref())
            .map(|f| f.fifo().max_enqueue_prod())
            .unwrap_or(0);
        let Some(t) = self.tcp_mut(h) else { return };
        if t.cleanup_at.is_some_and(|at| now >= at) {
            // tcp_connection_cleanup → session_transport_delete_notify
            t.cleanup_at = None;
            t.st = TcpSt::Closed;
            if let Some(sock) = t.sock.take() {
                drop(sock);
            }
            self.transport_delete_notify(h);
            return;
        }
        let fin_wait = matches!(t.st, TcpSt::FinWait1 | TcpSt::FinWait2);
        if fin_wait && t.fin_wait_until.is_some_and(|at| now >= at) {
            // The peer never closed: give up on it (RST) and close.
            t.fin_wait_until = None;
            if let Some(sock) = t.sock.take() {
                send_rst(sock);
            }
            t.st = TcpSt::Closed;
            self.transport_closed_notify(h);
            self.program_cleanup(h, CLEANUP_TIME);
            return;
        }
        if t.rx_paused && rx_space > 0 {
            t.rx_paused = false;
        }
        // Bytes read from the kernel before the fifo filled: the socket may have nothing more
        // to read (no POLLIN, so no tcp_rx), so they move here once there is room.
        let flush = !t.rx_paused && !t.pending_rx.is_empty() && rx_space > 0;
        // the owed ACK's pass: sends what the app wrote meanwhile, or clears has_event
        let ack_pass = t.ack_due.is_some_and(|at| now >= at);
        if ack_pass {
            t.ack_due = None;
        }
        let scheduled =
            t.tx_pending && !t.tx_blocked && state.is_some_and(|s| s >= SessState::Ready);
        if ack_pass || scheduled {
            self.tcp_tx(h);
        }
        if flush {
            self.flush_pending_rx(h);
        }
    }
}
