//! A worker in a forked child (see `app::fork`). The child's copy of every worker names the
//! parent's queues, sockets and fifos, which live on in the parent: the child must never
//! drain those queues, send as those workers or close their sessions in VPP.
//! - The forking thread's worker is taken over: it gets a VPP worker of its own (new socket,
//!   app mq, segment: [`Worker::adopt`]), its listeners listen again from it (same handles;
//!   VPP adds the worker to the app's listener), and its other sessions, the parent's, are
//!   disowned ([`disown_sessions`]).
//! - Every other worker is [`Worker::disown`]ed: inert, detached, nothing sent or drained.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use nix::sys::epoll::{Epoll, EpollCreateFlags};
use vcl_codec::session_error::SESSION_E_INVALID;

use super::detach::{sweep, Sweep};
use super::{errno, mqs_epoll_add, Conn, Worker, WorkerParts};
use crate::error::Error;
use crate::table::{Sessions, State};

impl Worker {
    /// Whether this is the parent's worker in a forked child.
    pub(crate) fn is_foreign(&self) -> bool {
        self.foreign.load(Ordering::Acquire)
    }

    /// Make the parent's worker inert in this child: detached (without starting a re-attach),
    /// never drained, our copies of its socket and mqs epoll fd closed. Locks a vanished
    /// thread held at fork are only tried.
    pub(crate) fn disown(&self) {
        self.foreign.store(true, Ordering::Release);
        self.detached.store(true, Ordering::Release);
        if let Some(conn) = self.conn.try_lock() {
            if let Some(mut s) = conn.sock.try_lock() {
                s.orphan();
            }
        }
        if let Some(mut ep) = self.mqs_epfd.try_lock() {
            ep.take();
        }
    }

    /// Take the parent's worker over in this child with the VPP worker `p` registered here:
    /// the parent's ids are kept (see [`Worker::parent_ids`]); a new mqs epoll fd.
    pub(crate) fn adopt(&self, p: WorkerParts, use_mq_eventfd: bool) -> Result<(), Error> {
        let conn = Arc::new(Conn::new(p));
        let ep = if use_mq_eventfd {
            let ep = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(errno)?;
            mqs_epoll_add(&ep, &conn)?;
            Some(ep)
        } else {
            None
        };
        let mut cur = self.conn.try_lock().ok_or(Error::Again)?;
        *self.parent_ids.lock() = Some((cur.api_client_handle, cur.vpp_wrk_index));
        *cur = conn; // the parent's conn goes: our copies of its fds close
        *self.mqs_epfd.lock() = ep;
        self.foreign.store(false, Ordering::Release);
        self.detached.store(false, Ordering::Release);
        Ok(())
    }

    /// In a child that took this worker over: the parent's (api client handle, VPP worker
    /// index).
    pub(crate) fn parent_ids(&self) -> Option<(u32, u32)> {
        *self.parent_ids.lock()
    }
}

/// The child's view of the sessions of a worker it took over: listeners are to listen again
/// from the child's worker (their queued accepts are the parent's); connected sessions are
/// the parent's: they report ERR|HUP here, have no fifos and a close frees only our handle;
/// sessions the parent closed or was still opening are dropped or failed.
pub(crate) fn disown_sessions(ss: &mut Sessions) {
    ss.detached = false;
    sweep(ss, |s| {
        match s.state {
            State::Listen => {
                s.accept_q.clear();
                s.state = State::Detached;
                s.vpp_error = 0;
                s.relisten = true;
                return Sweep::Keep;
            }
            State::Ready | State::VppClosing | State::Reset => {
                s.fifos = None;
                s.state = State::Detached;
                s.vpp_error = 0;
            }
            State::Binding | State::Connecting => {
                s.state = State::Detached;
                s.vpp_error = SESSION_E_INVALID;
            }
            State::AppClosed => return Sweep::Free,
            State::Closed | State::Detached => return Sweep::Keep,
        }
        Sweep::Fail
    });
}
