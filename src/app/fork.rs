//! fork for vppcom apps (pthread_atfork handlers, installed at app create by the C ABI and
//! the Rust API), modelled on upstream's vls (vls_app_fork_child_handler in
//! src/vcl/vcl_locked.c): the child gets a VCL worker of its own in VPP and never touches the
//! parent's state (see `worker::fork`).
//!
//! - prepare (parent, before fork): take every worker's session lock, then the app lock, so
//!   no other thread holds them at fork (the child would wait forever for a thread it does
//!   not have). Same order as the code paths that take both (session lock, then app lock).
//!   These are `vcl_svm::sync` mutexes, a bare futex word: threads still parked on them at
//!   fork leave nothing behind that an unlock in the child could hand the lock to.
//! - parent (after fork): release them.
//! - child: release them (only this thread exists now), make every worker but this thread's
//!   inert, and register this thread's worker with VPP again over a new app-socket
//!   connection (ADD_DEL_WORKER, as `vppcom_worker_register` does): its handles stay valid,
//!   its listeners listen again from the child's VPP worker (VPP adds it to the app's
//!   listener and spreads new connections over the listening workers), its connected
//!   sessions stay the parent's. The child's destroy sends APP_DETACH with its own api client
//!   handle, which detaches only the child's workers (`application_detach_process` in
//!   src/vnet/session/application.c); its exit closes only its own socket. A re-attach's
//!   spare attach socket is the parent's too: the child's copy goes.
//!
//! A child that cannot register (VPP gone, socket not reachable) keeps no worker: its calls
//! fail as after a detach.
//!
//! The LD_PRELOAD shim turns the listen at fork off ([`set_relisten_at_fork`]) and has a child
//! listen only when it first uses a listener (`api::relisten`), as upstream's vls does: a
//! child that never accepts (a `fork()` + `_exit`, a helper process) then neither takes a share
//! of the connections nor drops one when it exits.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vcl_svm::sync::ArcMutexGuard;
use vcl_svm::sync::MutexGuard;

use super::{add_worker_exchange, sock_timeout, App, APP};
use crate::sapi;
use crate::session;
use crate::table::Sessions;
use crate::worker::{self, disown_sessions, Worker};

/// How long the child waits for VPP to confirm each inherited listener's LISTEN.
const RELISTEN_WAIT: Duration = Duration::from_secs(5);

/// Whether a forked child's listeners listen again at fork (see the module doc).
static RELISTEN_AT_FORK: AtomicBool = AtomicBool::new(true);

/// Whether a forked child's listeners listen again from it at fork (the default) or stay the
/// parent's until `api::relisten`.
pub fn set_relisten_at_fork(on: bool) {
    RELISTEN_AT_FORK.store(on, Ordering::Relaxed);
}

/// The locks prepare took, released after fork on the same thread.
struct Held {
    _sessions: Vec<ArcMutexGuard<Sessions>>,
    _app: MutexGuard<'static, Option<App>>,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

fn workers() -> Vec<Arc<Worker>> {
    APP.lock()
        .as_ref()
        .map(|a| a.workers.iter().map(|(_, w)| w.clone()).collect())
        .unwrap_or_default()
}

/// Before fork: hold every worker's session lock and the app lock.
pub fn prepare() {
    let sessions = workers().iter().map(|w| w.sessions.lock_arc()).collect();
    let app = APP.lock();
    HELD.with(|h| {
        *h.borrow_mut() = Some(Held {
            _sessions: sessions,
            _app: app,
        })
    });
}

/// After fork, in the parent.
pub fn parent() {
    HELD.with(|h| h.borrow_mut().take());
}

/// After fork, in the child (single-threaded now).
pub fn child() {
    HELD.with(|h| h.borrow_mut().take());
    super::reattach::forked();
    let (addr, timeout, app_index, vpp, use_evfd, workers) = {
        let mut guard = APP.lock();
        let Some(app) = guard.as_mut() else {
            return;
        };
        // a re-attach's spare attach socket is the parent's: our copy goes
        if let Some(spare) = app.spare.as_mut() {
            spare.sock.orphan();
        }
        (
            app.addr.clone(),
            sock_timeout(&app.cfg),
            app.app_index,
            app.vpp.clone(),
            app.cfg.use_mq_eventfd,
            app.workers
                .iter()
                .map(|(_, w)| w.clone())
                .collect::<Vec<_>>(),
        )
    };
    // known_detached, not is_detached: its socket probe would lock the parent's socket, which
    // a thread sharing this worker may have held at fork (a VPP gone unnoticed so far fails
    // the registration below instead)
    let mine = worker::current().filter(|w| !w.is_foreign() && !w.known_detached());
    for w in &workers {
        if !mine.as_ref().is_some_and(|m| Arc::ptr_eq(m, w)) {
            w.disown();
        }
    }
    let Some(w) = mine else {
        return;
    };
    let registered = sapi::connect_app_socket(&addr)
        .map_err(|e| crate::error::Error::from_errno(e as i32))
        .and_then(|fd| add_worker_exchange(fd, timeout, app_index, vpp))
        .and_then(|parts| w.adopt(parts, use_evfd));
    if let Err(e) = registered {
        tracing::warn!(
            "forked child {}: no VCL worker of its own ({e}); its calls fail as after a detach",
            std::process::id()
        );
        w.disown();
        return;
    }
    let mut ss = w.sessions.lock();
    disown_sessions(&mut ss);
    let n = if RELISTEN_AT_FORK.load(Ordering::Relaxed) {
        session::relisten(&w, &mut ss, RELISTEN_WAIT, None)
    } else {
        0
    };
    tracing::debug!(
        "forked child {}: worker {} registered as VPP worker {}; {n} listeners listen here too",
        std::process::id(),
        w.index,
        w.conn().vpp_wrk_index
    );
}
