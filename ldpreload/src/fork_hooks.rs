//! Plugs fork's rules (fork.rs) into the fd table and the process's fork handlers. Kept apart
//! so that the table and start-up stay below fork (which uses both).

use std::sync::{Arc, Once};

use crate::fdtab::{self, Adopt};
use crate::fork::{self, Inherited};
use crate::sock::VSock;

impl Adopt for Inherited {
    fn adopt(&self, fd: i32) -> Option<Arc<VSock>> {
        fork::adopt(fd, self)
    }
}

/// In a forked child, before anything else runs: rewrite the fd table (see [`fork::convert`]).
extern "C" fn child() {
    fdtab::fork_child(fork::convert);
}

/// Install the child handler, once per process (a forked child inherits it): called before the
/// first VPP socket enters the table.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // registers a plain function as a fork child handler; it does only memory
        // operations (no lock another thread could hold, no call into the library).
        // SAFETY: see above.
        unsafe { libc::pthread_atfork(None, None, Some(child)) };
    });
}
