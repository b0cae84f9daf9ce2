//! The per-thread worker state table.
//!
//! A VCL worker is one app worker in VPP: its own app socket, its own app message queue (in
//! its first fifo segment), the segments VPP shares with it, and its session table. The
//! worker drains its app mq into that table (`session_events`) and sends to VPP's queues
//! (`send`). Worker 0 is
//! created by attach; `vppcom_worker_register` adds one per thread. The table of workers lives
//! in the app ([`crate::app`]); each thread caches a reference to its current worker, so
//! finding it on a hot path takes no lock and no reference-count traffic. The app marks a
//! worker retired when it leaves the table (unregister, destroy, fork): a thread whose cached
//! worker is retired drops it on its next call (or when it exits).

mod detach;
mod events;
mod fork;
mod send;
mod session_events;

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use vcl_svm::mq::MsgQueue;
use vcl_svm::sync::Mutex;
use vcl_svm::Segment;

pub(crate) use detach::{reattaches, set_reattaches, CLOSE_SETTLE, ON_DETACH};
pub(crate) use fork::disown_sessions;
pub use send::{HandleMsg, ReplyKind};

use crate::error::Error;
use crate::sapi::SapiSocket;
use crate::table::Sessions;

/// "No worker" (upstream's ~0).
pub const INVALID: u32 = u32::MAX;

/// VPP's per-thread message queues (the process maps them once; every worker sends into them).
pub struct VppMqs {
    pub mqs: Vec<MsgQueue<Arc<Segment>>>,
    /// Index of the queue VPP handles control messages on (thread 1 when VPP has workers).
    pub ctrl: usize,
}

/// What ties a worker to one VPP instance: replaced as a whole when the app re-attaches after
/// VPP restarted (see `app::reattach`); sessions keep the segments their fifos live in.
pub struct Conn {
    /// VPP's wrk_map_index for this worker (0 for the attach worker).
    pub vpp_wrk_index: u32,
    /// The handle VPP knows this worker's socket by; every control message carries it.
    pub api_client_handle: u32,
    pub app_index: u32,
    pub vpp: Arc<VppMqs>,
    pub app_mq: MsgQueue<Arc<Segment>>,
    sock: Mutex<SapiSocket>,
    segments: Mutex<HashMap<u64, Arc<Segment>>>,
}

/// One VCL worker.
pub struct Worker {
    /// Our index (the high byte of the worker's session handles).
    pub index: u32,
    conn: Mutex<Arc<Conn>>,
    /// The worker's sessions (touched by its own thread; the lock is per worker). In an Arc
    /// so that fork's prepare handler can hold every worker's lock across the fork.
    pub sessions: Arc<Mutex<Sessions>>,
    /// epoll fd over the app mq eventfd and the socket (use-mq-eventfd only); the same fd
    /// across a re-attach (the app may have it in its own epoll set), a new one in a forked
    /// child (the inherited fd names the parent's epoll instance).
    mqs_epfd: Mutex<Option<Epoll>>,
    /// In a forked child: the parent's worker, never to be used here (see `fork`).
    foreign: AtomicBool,
    /// In a forked child that took this worker over: the parent's (api client handle, VPP
    /// worker index), to stop the parent's listening on its behalf.
    parent_ids: Mutex<Option<(u32, u32)>>,
    /// vppcom_select's watch sets (read, write, except), reused between calls.
    pub select_scratch: Mutex<[Vec<u64>; 3]>,
    detached: AtomicBool,
    /// Out of the app's table: threads that still cache it must let it go.
    retired: AtomicBool,
    /// When its socket was last probed (coarse monotonic clock, µs).
    last_probe: AtomicU64,
}

/// What a new worker is made of, as attach or worker-add received it.
pub struct WorkerParts {
    pub vpp_wrk_index: u32,
    pub api_client_handle: u32,
    pub app_index: u32,
    pub vpp: Arc<VppMqs>,
    pub sock: SapiSocket,
    pub first_segment: (u64, Arc<Segment>),
    /// The app mq without its eventfd (see `mq_eventfd`).
    pub app_mq: MsgQueue<Arc<Segment>>,
    /// The app mq's eventfd, when VPP sent one (use-mq-eventfd).
    pub mq_eventfd: Option<OwnedFd>,
}

impl Conn {
    fn new(mut p: WorkerParts) -> Conn {
        if let Some(fd) = p.mq_eventfd.take() {
            p.app_mq.set_eventfd(fd);
        }
        let mut segments = HashMap::new();
        segments.insert(p.first_segment.0, p.first_segment.1);
        Conn {
            vpp_wrk_index: p.vpp_wrk_index,
            api_client_handle: p.api_client_handle,
            app_index: p.app_index,
            vpp: p.vpp,
            app_mq: p.app_mq,
            sock: Mutex::new(p.sock),
            segments: Mutex::new(segments),
        }
    }
}

impl Worker {
    /// Assemble a worker; with `use_mq_eventfd` also its epoll fd over the mq eventfd and the
    /// socket (events 0: only HUP/ERR, which is how a VPP restart shows).
    pub fn new(index: u32, p: WorkerParts, use_mq_eventfd: bool) -> Result<Worker, Error> {
        let conn = Conn::new(p);
        let mqs_epfd = if use_mq_eventfd {
            let ep = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(errno)?;
            mqs_epoll_add(&ep, &conn)?;
            Some(ep)
        } else {
            None
        };
        Ok(Worker {
            index,
            conn: Mutex::new(Arc::new(conn)),
            sessions: Default::default(),
            mqs_epfd: Mutex::new(mqs_epfd),
            foreign: AtomicBool::new(false),
            parent_ids: Mutex::new(None),
            select_scratch: Mutex::new(Default::default()),
            detached: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            last_probe: AtomicU64::new(0),
        })
    }

    /// The worker's current tie to VPP (a new one after a re-attach).
    pub fn conn(&self) -> Arc<Conn> {
        self.conn.lock().clone()
    }

    /// Install what a re-attach made (the caller holds the sessions lock, so no session call
    /// runs meanwhile) and clear the detached mark. The old socket and app mq go with the old
    /// conn; the mqs epoll fd stays the same fd, now over the new eventfd and socket.
    pub(crate) fn replace_conn(&self, p: WorkerParts) -> Result<(), Error> {
        let conn = Arc::new(Conn::new(p));
        if let Some(ep) = &*self.mqs_epfd.lock() {
            let old = self.conn();
            if let Some(fd) = old.app_mq.eventfd_fd() {
                let _ = ep.delete(fd);
            }
            let _ = ep.delete(old.sock.lock().as_fd());
            mqs_epoll_add(ep, &conn)?;
        }
        *self.conn.lock() = conn;
        self.detached.store(false, Ordering::Release);
        Ok(())
    }

    /// Whether the app mq signals through an eventfd (use-mq-eventfd).
    pub fn uses_eventfd(&self) -> bool {
        self.conn().app_mq.eventfd().is_some()
    }

    /// The worker's mqs epoll fd, or -1 without use-mq-eventfd.
    pub fn mqs_epfd(&self) -> RawFd {
        self.mqs_epfd
            .lock()
            .as_ref()
            .map_or(-1, |ep| ep.0.as_raw_fd())
    }

    /// Run `f` with the worker's app socket.
    pub fn with_sock<T>(&self, f: impl FnOnce(&mut SapiSocket) -> T) -> T {
        f(&mut self.conn().sock.lock())
    }

    /// Whether the worker's app socket hung up (VPP died or dropped the worker).
    pub(crate) fn sock_gone(&self) -> bool {
        self.conn().sock.lock().peer_gone()
    }

    /// Whether VPP dropped this worker (its socket hung up, or its app mq is corrupt).
    pub fn is_detached(&self) -> bool {
        if !self.known_detached() && self.sock_gone() {
            self.mark_detached("VPP closed the app socket");
        }
        self.detached.load(Ordering::Acquire)
    }

    /// Map a segment VPP shared with this worker under `handle`.
    pub fn add_segment(&self, handle: u64, seg: Segment) {
        seg.set_client_pid();
        tracing::debug!(
            handle,
            len = seg.len(),
            "worker {}: segment mapped",
            self.index
        );
        self.conn().segments.lock().insert(handle, Arc::new(seg));
    }

    /// Unmap the segment `handle` (its fd closes when the last fifo on it is gone).
    pub fn del_segment(&self, handle: u64) -> bool {
        let found = self.conn().segments.lock().remove(&handle).is_some();
        tracing::debug!(handle, found, "worker {}: segment unmapped", self.index);
        found
    }

    /// The segment VPP shared under `handle`, if mapped.
    pub fn segment(&self, handle: u64) -> Option<Arc<Segment>> {
        self.conn().segments.lock().get(&handle).cloned()
    }

    /// Handles of the segments this worker maps.
    pub fn segment_handles(&self) -> Vec<u64> {
        self.conn().segments.lock().keys().copied().collect()
    }
}

fn errno(e: nix::errno::Errno) -> Error {
    Error::from_errno(e as i32)
}

fn mqs_epoll_add(ep: &Epoll, conn: &Conn) -> Result<(), Error> {
    if let Some(evfd) = conn.app_mq.eventfd_fd() {
        ep.add(evfd, EpollEvent::new(EpollFlags::EPOLLIN, 0))
            .map_err(errno)?;
    }
    ep.add(
        conn.sock.lock().as_fd(),
        EpollEvent::new(EpollFlags::empty(), u64::MAX),
    )
    .map_err(errno)
}

thread_local! {
    /// This thread's worker index and worker. A strong reference, so the hot path borrows it
    /// without touching reference counts; [`Worker::retire`] makes the next look drop it.
    static CURRENT: RefCell<(u32, Option<Arc<Worker>>)> = const { RefCell::new((INVALID, None)) };
}

impl Worker {
    /// The app no longer has this worker: threads caching it forget it on their next call.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }
}

/// This thread's worker index, or [`INVALID`].
pub fn current_index() -> u32 {
    CURRENT.with(|c| c.borrow().0)
}

/// Run `f` on this thread's worker, if it has one that the app still holds. No lock and no
/// reference counting; `f` must not change the thread's worker ([`set_current`]).
pub fn with_current<T>(f: impl FnOnce(&Arc<Worker>) -> T) -> Option<T> {
    CURRENT.with(|c| {
        {
            let cur = c.borrow();
            match &cur.1 {
                Some(w) if !w.retired.load(Ordering::Acquire) => return Some(f(w)),
                None => return None,
                Some(_) => {}
            }
        }
        // retired: let it go (the index stays, as a dead weak reference's did)
        c.borrow_mut().1 = None;
        None
    })
}

/// This thread's worker, if it still exists.
pub fn current() -> Option<Arc<Worker>> {
    with_current(Arc::clone)
}

/// Make `w` (or nothing) this thread's worker.
pub fn set_current(index: u32, w: Option<&Arc<Worker>>) {
    let old = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), (index, w.cloned())));
    drop(old); // outside the borrow: a worker's drop closes its socket and unmaps segments
}
