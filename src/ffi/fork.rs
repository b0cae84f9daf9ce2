//! The pthread_atfork handlers (see `app::fork`), registered once per process by the first
//! app create.

use std::panic::catch_unwind;
use std::sync::Once;

use crate::app::fork;

static INSTALLED: Once = Once::new();

/// Register the fork handlers (once).
pub fn install_fork_handlers() {
    INSTALLED.call_once(|| {
        // three plain extern "C" functions that never unwind; pthread_atfork has no
        // other precondition.
        // SAFETY: see above.
        let rv = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        if rv != 0 {
            tracing::error!("pthread_atfork failed ({rv}): a forked child would share our workers");
        }
    });
}

extern "C" fn prepare() {
    let _ = catch_unwind(fork::prepare);
}

extern "C" fn parent() {
    let _ = catch_unwind(fork::parent);
}

extern "C" fn child() {
    let _ = catch_unwind(fork::child);
}
