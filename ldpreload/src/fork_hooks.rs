//! The shim's fork handlers: fork's rules (fork.rs) applied to the fd table and start-up's
//! state, and the shim's locks made safe across fork. Kept apart so that the table and
//! start-up stay below fork (which uses both).
//!
//! A lock another thread holds at fork stays held in the child, where that thread does not
//! exist: the child would wait for it forever. As the library does for its own locks, prepare
//! handlers take the shim's locks so that no other thread is inside one at fork, and the
//! child releases them. They are `vcl_svm::sync` locks, a bare futex word, which a child can
//! release (parking_lot's could hand the lock to a waiter the child does not have). Two
//! registrations bracket the library's handlers, following the lock order of the code paths:
//! - "outer", registered after the library's (its prepare runs first, its child handler
//!   last): start-up's locks, epoll creation's, and every socket's options (code holding
//!   them calls into the library, which takes its own locks);
//! - "inner", registered before the library's (its prepare runs after the library's): every
//!   fd table slot (the library holds its locks while it calls the C library, which we
//!   interpose, and the table is looked up there). From there until our outer child or
//!   parent handler, the forking thread's calls bypass the table (`fdtab::set_bypass`): the
//!   library's handlers close and open descriptors of their own.
//!
//! Epoll sets' locks are not taken: the child drops every epoll set from its table unused.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Once};

use vcl::api::Worker;
use vcl_svm::sync::{ArcMutexGuard, MutexGuard, RwLockWriteGuard};

use crate::fdtab::{self, Adopt, Entry, Frozen};
use crate::fork::{self, Inherited};
use crate::sock::{Opts, VSock};

impl Adopt for Inherited {
    fn adopt(&self, fd: i32) -> Option<Arc<VSock>> {
        fork::adopt(fd, self)
    }
}

/// What the outer prepare holds across fork (dropped in this order).
struct Held {
    _opts: Vec<ArcMutexGuard<Opts>>,
    _create: MutexGuard<'static, ()>,
    _init: (
        MutexGuard<'static, ()>,
        RwLockWriteGuard<'static, Option<Worker>>,
    ),
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
    static FROZEN: RefCell<Option<Frozen>> = const { RefCell::new(None) };
}

/// Before fork, before the library's prepare: see the module doc. A socket that enters the
/// table after the look here may have its options' lock held at fork: the child then drops
/// it (see [`fork::convert`]).
extern "C" fn outer_prepare() {
    let init = crate::init::hold_for_fork();
    let create = crate::epoll::hold_create();
    let mut seen = HashSet::new();
    let opts = fdtab::snapshot()
        .into_iter()
        .filter_map(|e| match e {
            Entry::Sock(s) if seen.insert(Arc::as_ptr(&s) as usize) => Some(s.opts.lock_arc()),
            _ => None,
        })
        .collect();
    let held = Held {
        _opts: opts,
        _create: create,
        _init: init,
    };
    let _ = HELD.try_with(|h| *h.borrow_mut() = Some(held));
}

/// Before fork, after the library's prepare: freeze the table and bypass it.
extern "C" fn inner_prepare() {
    let frozen = fdtab::freeze();
    let _ = FROZEN.try_with(|f| *f.borrow_mut() = Some(frozen));
    fdtab::set_bypass(true);
}

/// After fork, before the library's handler (parent and child): unfreeze the table (this
/// thread still bypasses it).
extern "C" fn inner_after() {
    let _ = FROZEN.try_with(|f| f.borrow_mut().take());
}

/// After fork, in the parent, after the library's handler.
extern "C" fn outer_parent() {
    fdtab::set_bypass(false);
    let _ = HELD.try_with(|h| h.borrow_mut().take());
}

/// After fork, in the child (only this thread exists), after the library's handler: release,
/// forget the parent's workers ([`crate::init::after_fork_child`]), rewrite the fd table
/// ([`fork::convert`]).
extern "C" fn outer_child() {
    fdtab::set_bypass(false);
    let _ = HELD.try_with(|h| h.borrow_mut().take());
    crate::init::after_fork_child();
    fdtab::fork_child(fork::convert);
}

/// The attach's hooks (`init::verdict`): the inner fork handlers before the library
/// registers its own, the outer ones after.
pub static ATTACH: crate::init::AttachHooks = crate::init::AttachHooks {
    before: install_inner,
    after: install,
};

/// Register the inner handlers: before the library's (attach); once per process (a forked
/// child inherits them).
pub fn install_inner() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // registers plain functions that never unwind (no panic path but allocation
        // failure, which aborts).
        // SAFETY: see above.
        unsafe { libc::pthread_atfork(Some(inner_prepare), Some(inner_after), Some(inner_after)) };
    });
}

/// Register the outer handlers: after the library's (attach), before the first VPP socket
/// enters the table; once per process (a forked child inherits them).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // as above.
        // SAFETY: see above.
        unsafe { libc::pthread_atfork(Some(outer_prepare), Some(outer_parent), Some(outer_child)) };
    });
}
