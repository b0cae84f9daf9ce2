//! The session table: plain data, below every behaviour. A worker's sessions, their state,
//! endpoints, fifos, attribute state and epoll registrations and ready queues live here, with
//! the small data operations on them (index by VPP handle, mark an epoll member ready, keep
//! or clear a drained session's rx has_event: a flag in the shared fifo, so that the waits
//! above, in `wait`, can clear it without importing the session layer).
//! Nothing here sends to VPP, waits or knows the C ABI: this module imports no other module
//! of the crate but `error`.
//!
//! The table lives in its worker; all session state is touched only under the worker's own
//! lock (a per-worker lock, never a global one).

pub(crate) mod attr;
pub(crate) mod epoll;
mod fifo;
mod kept;

use std::collections::{HashMap, VecDeque};

use slab::Slab;
use vcl_codec::msg::{Accepted, Ip46};

pub(crate) use epoll::{EpollState, Events, Registration};
pub use fifo::{FifoRef, Fifos};

use crate::error::{Error, Result};

/// Session states (upstream's vcl_session_state_t, reduced to what differs in behaviour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Created, maybe bound; VPP does not know it.
    Closed,
    /// CONNECT sent, CONNECTED not yet received.
    Connecting,
    /// LISTEN sent, BOUND not yet received.
    Binding,
    Listen,
    Ready,
    /// The peer closed (DISCONNECTED): remaining data can be read, then 0.
    VppClosing,
    /// Reset by VPP (RESET): reads and writes fail with ECONNRESET.
    Reset,
    /// The app closed it; waiting for VPP's CLEANUP.
    AppClosed,
    /// VPP forgot it (CLEANUP, failed connect/listen): only a close is left to do.
    Detached,
}

/// An IPv4/IPv6 address and port as VCL keeps them (address network order, port host order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub is_ip4: bool,
    pub ip: Ip46,
    pub port: u16,
}

/// One session.
pub struct Session {
    pub proto: u8,
    pub state: State,
    pub nonblocking: bool,
    pub is_vep: bool,
    /// VPP's session (or listener) handle; u64::MAX while VPP has none.
    pub vpp_handle: u64,
    /// A connectionless listener's per-worker VPP session (BOUND's cl_sh_handle): what the
    /// IO events of its fifos name.
    pub cl_vpp_handle: Option<u64>,
    /// Index of the VPP thread mq this session's messages go to.
    pub vpp_thread: usize,
    pub lcl: Endpoint,
    pub rmt: Endpoint,
    pub fifos: Option<Fifos>,
    /// Listener: ACCEPTED messages not yet accepted by the app.
    pub accept_q: VecDeque<Accepted>,
    pub n_accepted: u32,
    /// Accepted session: the listener it came from.
    pub listener: u32,
    /// VPP's SESSION_E_* reason when a connect or listen failed.
    pub vpp_error: i32,
    pub shut_rd: bool,
    /// The last read found bytes already queued (a stream arriving faster than it is read;
    /// see `session::io` on coalescing).
    pub rx_streaming: bool,
    pub shut_wr: bool,
    /// VPP's STREAM session flag (a QUIC stream): what vppcom_session_is_stream reports.
    pub stream: bool,
    /// VPP went away (its app socket hung up or its mq is corrupt) while this session was
    /// open: buffered data can still be read, then ECONNRESET; writes fail with EPIPE.
    pub vpp_gone: bool,
    /// A listener VPP forgot when it went away: listened again (same handle) on re-attach.
    pub relisten: bool,
    /// Its LISTEN was sent again (re-attach, fork): a blocking accept waits for the BOUND.
    pub relisten_pending: bool,
    /// An accept has returned this (relisten) listener's failure: like a socket error
    /// consumed on Linux, level-triggered readiness stops reporting it, so a server's loop
    /// sleeps instead of spinning until the listener is back.
    pub failure_taken: bool,
    /// What vppcom_session_attr sets and listen/connect read (see [`attr`]).
    pub attr: attr::AttrState,
    /// The epoll session watching this one, and with what.
    pub(crate) ep: Option<Registration>,
}

impl Session {
    pub(crate) fn new(proto: u8, nonblocking: bool) -> Session {
        Session {
            proto,
            state: State::Closed,
            nonblocking,
            is_vep: false,
            vpp_handle: u64::MAX,
            cl_vpp_handle: None,
            vpp_thread: 0,
            lcl: Endpoint::default(),
            rmt: Endpoint::default(),
            fifos: None,
            accept_q: VecDeque::new(),
            n_accepted: 0,
            listener: u32::MAX,
            vpp_error: 0,
            shut_rd: false,
            rx_streaming: false,
            shut_wr: false,
            stream: false,
            vpp_gone: false,
            relisten: false,
            relisten_pending: false,
            failure_taken: false,
            attr: attr::AttrState::default(),
            ep: None,
        }
    }

    /// An epoll session.
    pub(crate) fn new_vep() -> Session {
        let mut s = Session::new(u8::MAX, false);
        s.is_vep = true;
        s
    }

    /// Datagram protocols: UDP, DTLS, SRTP.
    pub fn is_dgram(&self) -> bool {
        matches!(self.proto, 1 | 5 | 6)
    }

    /// Bytes readable from the rx fifo now.
    pub(crate) fn rx_ready(&self) -> u32 {
        self.fifos
            .as_ref()
            .map_or(0, |f| f.rx.fifo().max_dequeue_cons())
    }

    /// Bytes writable into the tx fifo now.
    pub(crate) fn tx_space(&self) -> u32 {
        self.fifos
            .as_ref()
            .map_or(0, |f| f.tx.fifo().max_enqueue_prod())
    }
}

/// A worker's sessions and what indexes them.
#[derive(Default)]
pub struct Sessions {
    pub(crate) slab: Slab<Session>,
    /// VPP handle -> session index, for the events that name sessions by handle.
    pub(crate) by_vpp: HashMap<u64, u32>,
    /// Sessions VPP closed (true: reset) while still in an accept queue.
    pub(crate) early_close: HashMap<u64, bool>,
    pub(crate) epoll: EpollState,
    /// The worker's detach was applied to these sessions (see `worker::detach`).
    pub(crate) detached: bool,
    /// A blocking session whose drained rx fifo still has has_event set (see
    /// [`Sessions::hold_rx`]).
    pub(crate) held_rx: Option<u32>,
    /// Threads asleep in a wait on this worker's sessions (they cleared the held flag before
    /// sleeping; while one sleeps, nothing is held: its wake-up needs VPP's events).
    pub(crate) sleepers: u32,
    /// The app waits on several sessions at once here (epoll, select or poll): a blocking read
    /// must not make it wait for more bytes (`session::io` coalescing), the other sessions
    /// would wait with it.
    pub(crate) multiplexed: bool,
    /// Drained non-blocking sessions whose rx chunks are still kept (see [`Sessions::keep_rx`]).
    pub(crate) kept_rx: kept::KeptRx,
}

/// Session handles carry the worker index in the top 8 bits.
pub fn handle(wrk: u32, index: u32) -> u32 {
    (wrk << 24) | (index & 0x00FF_FFFF)
}

/// Split a handle into (worker, session index).
pub fn parse_handle(sh: u32) -> (u32, u32) {
    (sh >> 24, sh & 0x00FF_FFFF)
}

impl Sessions {
    pub fn get(&self, index: u32) -> Option<&Session> {
        self.slab.get(index as usize)
    }

    pub fn get_mut(&mut self, index: u32) -> Option<&mut Session> {
        self.slab.get_mut(index as usize)
    }

    /// The session handle `sh` names on worker `wrk` (EBADFD if none, or closed by the app).
    pub(crate) fn lookup(&self, wrk: u32, sh: u32) -> Result<u32> {
        let (w, index) = parse_handle(sh);
        match self.get(index) {
            Some(s) if w == wrk && s.state != State::AppClosed => Ok(index),
            _ => Err(Error::BadFd),
        }
    }

    /// Add a session; returns its index (None once the 24-bit index space is full).
    pub(crate) fn alloc(&mut self, s: Session) -> Option<u32> {
        if self.slab.vacant_key() > 0x00FF_FFFF {
            return None;
        }
        Some(self.slab.insert(s) as u32)
    }

    /// Remember VPP's handle for session `index`. A handle VPP gave the session before (a
    /// listen on a session that was connected) stops naming it: otherwise it would outlive the
    /// session and route that VPP session's events to a freed or reused slot.
    pub fn bind_vpp(&mut self, index: u32, vpp_handle: u64) {
        let Some(s) = self.slab.get_mut(index as usize) else {
            return;
        };
        let old = std::mem::replace(&mut s.vpp_handle, vpp_handle);
        if old != vpp_handle && self.by_vpp.get(&old) == Some(&index) {
            self.by_vpp.remove(&old);
        }
        self.by_vpp.insert(vpp_handle, index);
    }

    pub(crate) fn index_of_vpp(&self, vpp_handle: u64) -> Option<u32> {
        self.by_vpp.get(&vpp_handle).copied()
    }

    /// Leave session `i`'s rx has_event set although a read drained the fifo, until a waiter
    /// of this worker is about to sleep ([`Sessions::release_held_rx`]). While the flag is set
    /// VPP sends no RX event for new bytes (it checks the flag first), which is what a blocking
    /// reader that looks at the fifo itself wants: in a stream, clearing it on every drain made
    /// VPP queue an event (and an eventfd wake-up) per write it relayed, and made the flag's
    /// cache line, which also holds the fifo's size and chunk list, bounce between the writer
    /// and the reader (docs/wire.md#fifos). One session at a time: holding another releases it.
    /// Not while another thread sleeps on this worker: it would learn of the bytes only at its
    /// next periodic look. The session it displaces keeps its rx chunks as a drained
    /// non-blocking one does ([`Sessions::keep_rx`]): released at once, they are the chunks the
    /// writer grows its fifos with next while still in this core's cache (an epoll loop over
    /// blocking sessions, such as VPP's `vcl_test_server`, switches at every drain).
    pub(crate) fn hold_rx(&mut self, i: u32) {
        if self.sleepers > 0 {
            self.release_rx(i);
            return;
        }
        if let Some(prev) = self.held_rx.replace(i) {
            if prev != i {
                self.unhold_rx(prev);
                self.keep_rx(prev);
            }
        }
    }

    /// A thread is about to sleep on this worker's events: release what is held (see
    /// [`Sessions::release_held_rx`]; true: look again first) and hold nothing until
    /// [`Sessions::end_sleep`].
    pub(crate) fn begin_sleep(&mut self) -> bool {
        self.sleepers += 1;
        for i in self.kept_rx.take_all().into_iter().flatten() {
            self.release_kept(i);
        }
        self.release_held_rx()
    }

    /// A non-blocking read drained session `i`: its reads' kept rx chunks stay kept while the
    /// app goes on reading (see the `kept` module), until a thread of this worker is about to
    /// sleep or the session is one of more than [`kept::KEPT_SLOTS`] so drained.
    pub(crate) fn keep_rx(&mut self, i: u32) {
        if let Some(old) = self.kept_rx.add(i) {
            self.release_kept(old);
        }
    }

    /// Give back the rx chunks session `i`'s reads kept ([`fifo::Fifos::release_kept`]).
    fn release_kept(&self, i: u32) {
        if let Some(f) = self.get(i).and_then(|s| s.fifos.as_ref()) {
            f.release_kept();
        }
    }

    pub(crate) fn end_sleep(&mut self) {
        self.sleepers = self.sleepers.saturating_sub(1);
    }

    /// Clear the held session's has_event before a wait sleeps, so that VPP signals its next
    /// bytes again; bytes that arrived meanwhile (unsignalled) mark it readable here. True if
    /// some had.
    pub(crate) fn release_held_rx(&mut self) -> bool {
        match self.held_rx.take() {
            Some(i) => self.release_rx(i),
            None => false,
        }
    }

    /// Give back `i`'s kept rx chunks, then [`Sessions::unhold_rx`].
    fn release_rx(&mut self, i: u32) -> bool {
        self.release_kept(i);
        self.unhold_rx(i)
    }

    /// Clear has_event on `i`'s rx fifo and re-check it: VPP's reader protocol on a drain.
    fn unhold_rx(&mut self, i: u32) -> bool {
        let Some(f) = self.get(i).and_then(|s| s.fifos.as_ref()) else {
            return false;
        };
        let (rx, sig) = (f.rx.fifo(), f.rx_sig.fifo());
        sig.unset_event();
        let data = rx.max_dequeue_cons() > 0;
        if data && sig.set_event() {
            self.notify(i, Events::IN);
        }
        data
    }

    /// Forget session `index` and its VPP handle.
    pub(crate) fn free(&mut self, index: u32) {
        if self.held_rx == Some(index) {
            self.held_rx = None;
        }
        self.kept_rx.forget(index);
        if let Some(s) = self.slab.try_remove(index as usize) {
            if self.by_vpp.get(&s.vpp_handle) == Some(&index) {
                self.by_vpp.remove(&s.vpp_handle);
            }
        }
        self.epoll.forget(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_carry_worker_and_index() {
        let h = handle(3, 0x12_3456);
        assert_eq!(h, 0x0312_3456);
        assert_eq!(parse_handle(h), (3, 0x12_3456));
    }

    #[test]
    fn freeing_forgets_the_vpp_handle() {
        let mut ss = Sessions::default();
        let i = ss.alloc(Session::new(0, false)).unwrap();
        ss.bind_vpp(i, 0xabc);
        assert_eq!(ss.index_of_vpp(0xabc), Some(i));
        ss.free(i);
        assert_eq!(ss.index_of_vpp(0xabc), None);
        assert!(ss.get(i).is_none());
    }

    /// `n` sessions with 4 MiB rx fifos, each a drained stream that keeps consumed chunks.
    fn drained_streams(
        n: usize,
    ) -> (
        std::sync::Arc<vcl_svm::Segment>,
        Sessions,
        Vec<(u32, fifo::FifoRef)>,
    ) {
        use std::sync::Arc;
        use vcl_svm::fifo_segment::FifoSegment;
        use vcl_svm::Segment;

        let seg = Arc::new(Segment::create("kept-rx", 64 << 20, 8192).unwrap());
        let fs = FifoSegment::init(&seg, 1).unwrap();
        let mut ss = Sessions::default();
        let mut fifos = Vec::new();
        for _ in 0..n {
            let rx = fs.alloc_fifo(0, 4 << 20).unwrap().offset();
            let tx = fs.alloc_fifo(0, 4096).unwrap().offset();
            let rx = fifo::FifoRef::new(seg.clone(), rx)
                .unwrap()
                .keeping_consumed();
            let tx = fifo::FifoRef::new(seg.clone(), tx).unwrap();
            let i = ss.alloc(Session::new(0, false)).unwrap();
            ss.get_mut(i).unwrap().fifos = Some(fifo::Fifos::plain(rx.clone(), tx));
            // a drained stream: 1 MiB through, all of it still kept
            let (f, mut buf) = (rx.fifo(), vec![0u8; 64 << 10]);
            for _ in 0..16 {
                assert_eq!(f.enqueue(&buf).unwrap(), buf.len());
                assert_eq!(f.dequeue(&mut buf).unwrap(), buf.len());
            }
            assert!(f.chunk_list().unwrap().0 > 1, "chunks kept");
            fifos.push((i, rx));
        }
        (seg, ss, fifos)
    }

    /// Kept rx chunks go back when one drained session too many displaces the oldest, when a
    /// thread is about to sleep, and never from a freed session's fifos.
    #[test]
    fn kept_rx_chunks_go_back_when_displaced_or_asleep() {
        let (_seg, mut ss, fifos) = drained_streams(kept::KEPT_SLOTS + 2);
        let kept = |rx: &fifo::FifoRef| rx.fifo().chunk_list().unwrap().0 > 1;
        for &(i, _) in &fifos[..kept::KEPT_SLOTS] {
            ss.keep_rx(i);
        }
        ss.free(fifos[1].0);
        ss.keep_rx(fifos[kept::KEPT_SLOTS].0);
        assert!(!kept(&fifos[0].1), "the oldest was displaced and released");
        assert!(kept(&fifos[1].1), "a freed session's fifos are not touched");
        assert!(kept(&fifos[2].1));
        let _ = ss.begin_sleep();
        ss.end_sleep();
        for (k, (_, rx)) in fifos.iter().enumerate() {
            let want = k == 1 || k == kept::KEPT_SLOTS + 1;
            assert_eq!(kept(rx), want, "session {k} after a sleep");
        }
    }

    /// A blocking session displaced from hold by another's drain gets its has_event cleared
    /// but keeps its rx chunks, as a drained non-blocking session does, until one drained
    /// session too many displaces it or a thread is about to sleep.
    #[test]
    fn a_displaced_held_session_keeps_its_rx_chunks() {
        let (_seg, mut ss, fifos) = drained_streams(kept::KEPT_SLOTS + 2);
        let kept = |rx: &fifo::FifoRef| rx.fifo().chunk_list().unwrap().0 > 1;
        let has_event = |rx: &fifo::FifoRef| rx.fifo().has_event();
        for &(i, ref rx) in &fifos {
            assert!(rx.fifo().set_event());
            ss.hold_rx(i);
        }
        let last = fifos.len() - 1;
        for (k, (_, rx)) in fifos.iter().enumerate() {
            assert_eq!(
                has_event(rx),
                k == last,
                "session {k}: only the held one keeps the flag"
            );
            // the held one and the last KEPT_SLOTS displaced keep their chunks
            assert_eq!(
                kept(rx),
                k + kept::KEPT_SLOTS >= last,
                "session {k}'s chunks"
            );
        }
        let _ = ss.begin_sleep();
        ss.end_sleep();
        for (k, (_, rx)) in fifos.iter().enumerate() {
            assert!(!kept(rx), "session {k} after a sleep");
            assert!(!has_event(rx), "session {k} after a sleep");
        }
    }

    #[test]
    fn lookup_checks_worker_and_app_close() {
        let mut ss = Sessions::default();
        let i = ss.alloc(Session::new(0, false)).unwrap();
        assert_eq!(ss.lookup(2, handle(2, i)), Ok(i));
        assert_eq!(ss.lookup(1, handle(2, i)), Err(Error::BadFd));
        ss.get_mut(i).unwrap().state = State::AppClosed;
        assert_eq!(ss.lookup(2, handle(2, i)), Err(Error::BadFd));
    }
}
