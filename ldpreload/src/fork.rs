//! fork: a child never touches the parent's VCL worker, queues or sessions (they live in
//! shared memory and are the parent's). Right after fork the child only rewrites its copy of
//! the fd table: inherited listeners are remembered, every other VPP descriptor becomes the
//! plain kernel socket it reserves. On the child's first use of an inherited listener (or its
//! first new socket) it registers its own VCL worker over a new app-socket connection, and the
//! listener is listened again from that worker: VPP adds the worker to the app's listener
//! (nginx's master/worker model). If the parent never accepted on that listener nor waited on
//! it, the parent's worker stops listening, so VPP does not hand it connections nobody takes.
//! A child that only uses kernel fds (system(), popen()) costs nothing more.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vcl::api::{self, Worker};

use crate::fdtab::{self, Entry};
use crate::init;
use crate::sock::VSock;

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

/// In the child, right after fork: listeners become [`Inherited`], the rest are forgotten.
/// Only memory operations (no lock another thread could have held, no call into the library).
pub fn convert(e: Entry) -> Option<Entry> {
    match e {
        Entry::Sock(s) => {
            let r = s.listen_addr.get().map(|addr| {
                Entry::Inherited(Arc::new(Inherited {
                    addr: *addr,
                    family: s.family,
                    nonblock: s.nonblock.load(Ordering::Relaxed),
                    parent: (s.w.clone(), s.sh, s.twin.get().copied()),
                    parent_active: s.active.load(Ordering::Relaxed),
                }))
            });
            // never dropped here: that would close the parent's session in VPP
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
