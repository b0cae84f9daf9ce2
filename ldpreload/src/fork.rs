//! fork: the library does the work (vcl's `app::fork`, pthread_atfork): in the child, the
//! forking thread's VCL worker gets a VPP worker of the child's own, its other sessions stay
//! the parent's, and every other worker is the parent's, inert here. Listeners are the shim's
//! business (the library is told not to listen again at fork): as upstream's vls does, a child
//! listens on an inherited listener only when it first uses it (accept, or adding it to an
//! epoll/poll/select set), and only then, if the parent never used it, stops the parent's VPP
//! worker listening there, so that VPP does not hand the parent connections nobody takes.
//! A child that never uses it (`fork()` + `_exit`, a helper process) changes nothing: VPP never
//! counts it among the listening workers, so its exit cannot leave the listener without one.
//! Connections VPP handed the parent before a child took over stay the parent's (VPP queues
//! accepts per worker).
//!
//! Right after fork the fd table is rewritten:
//! - a listener on the worker the library took over stays what it is (same descriptor, same
//!   session), dormant until its first use (`VSock::take_over`);
//! - a listener on another (inert) worker is remembered and listened again from this
//!   process's worker on first use ([`adopt`]), with the same unlisten on the parent's behalf;
//! - every other VPP descriptor becomes the plain kernel socket it reserves.
//!
//! A child that only uses kernel fds costs one worker registration at fork (as upstream).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vcl::api::{self, Worker};

use crate::fdtab::{self, Entry};
use crate::init;
use crate::sock::{VSock, DORMANT_PARENT_ACTIVE, DORMANT_PARENT_IDLE};

/// A listener the child inherited from its parent.
pub struct Inherited {
    addr: SocketAddr,
    family: i32,
    nonblock: bool,
    /// The parent's worker and sessions (for the unlisten on its behalf; a dual-stack
    /// listener has two).
    parent: (Worker, u32, Option<u32>),
    parent_active: bool,
}

/// In the child, right after fork (the library's handler has run): see the module comment.
/// No lock another thread could have held at fork is taken here.
pub fn convert(e: Entry) -> Option<Entry> {
    match e {
        Entry::Sock(s) if s.opts.is_locked() => {
            // a thread of the parent was inside its options at fork (a socket too new for
            // the prepare handler to hold): what they say is unknown here
            tracing::warn!("an inherited VPP socket was in use at fork: not usable here");
            std::mem::forget(s);
            None
        }
        Entry::Sock(s) if s.w.adopted() && s.listen_addr.get().is_some() => {
            let d = if s.active.swap(false, Ordering::Relaxed) {
                DORMANT_PARENT_ACTIVE
            } else {
                DORMANT_PARENT_IDLE
            };
            s.dormant.store(d, Ordering::Release);
            Some(Entry::Sock(s))
        }
        Entry::Sock(s) => {
            let r = s
                .listen_addr
                .get()
                .filter(|_| s.w.is_foreign())
                .map(|addr| {
                    Entry::Inherited(Arc::new(Inherited {
                        addr: *addr,
                        family: s.family,
                        nonblock: s.nonblock.load(Ordering::Relaxed),
                        parent: (s.w.clone(), s.sh, s.twin.get().copied()),
                        parent_active: s.active.load(Ordering::Relaxed),
                    }))
                });
            // never dropped here: the session is the parent's
            std::mem::forget(s);
            r
        }
        Entry::Epoll(e) => {
            std::mem::forget(e);
            None
        }
        Entry::Inherited(i) => Some(Entry::Inherited(i)),
    }
}

/// Listen on the inherited listener from this process's own worker; `fd` then names that.
pub fn adopt(fd: i32, inh: &Inherited) -> Option<Arc<VSock>> {
    let w = init::child_worker()?;
    let sh = match api::session_create(&w, true) {
        Ok(sh) => sh,
        Err(e) => {
            tracing::warn!("fd {fd}: inherited listener not re-created: {e}");
            return None;
        }
    };
    let s = Arc::new(VSock::new(w, sh, inh.family, inh.nonblock));
    if let Err(e) = s.bind(inh.addr).and_then(|_| s.listen()) {
        tracing::warn!(
            "fd {fd}: inherited listener {} not re-listened: errno {e}",
            inh.addr
        );
        return None;
    }
    if !inh.parent_active {
        let (pw, psh, twin) = &inh.parent;
        for sh in std::iter::once(*psh).chain(*twin) {
            if let Err(e) = api::unlisten_worker(pw, sh) {
                tracing::debug!("fd {fd}: the parent's listen not stopped: {e}");
            }
        }
    }
    let old = fdtab::set(fd, Entry::Sock(s.clone())).ok().flatten();
    std::mem::forget(old); // the Inherited entry: holds the parent's worker, never dropped
    tracing::debug!(
        "fd {fd}: inherited listener {} now listens from this process",
        inh.addr
    );
    Some(s)
}
