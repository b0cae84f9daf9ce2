//! Bounds for tests that must never hang: a hang fails the test instead of stalling CI.
// unsafe here: raw libc calls (fds, processes, mappings) the test needs.
#![allow(unsafe_code)]
#![allow(dead_code)]

use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Run `f` on its own thread and return its result; fail if it has not finished within `limit`
/// (the stuck thread is left behind: the test binary exits after reporting).
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = channel();
    let h = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(limit) {
        Ok(()) => h.join().unwrap(),
        Err(RecvTimeoutError::Timeout) => panic!("{what}: not done after {limit:?} (a hang)"),
        Err(RecvTimeoutError::Disconnected) => match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        },
    }
}

/// A forked child that is killed (and reaped) if the test leaves it behind.
pub struct Child(pub libc::pid_t);

impl Child {
    /// The child's wait status once it exits; kills it and fails if that takes over `limit`.
    pub fn wait(mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            let mut st = 0;
            // SAFETY: waits, without blocking, for our own child.
            let r = unsafe { libc::waitpid(self.0, &mut st, libc::WNOHANG) };
            if r == self.0 {
                self.0 = 0;
                return st;
            }
            assert!(r == 0, "waitpid: {}", std::io::Error::last_os_error());
            assert!(
                Instant::now() < deadline,
                "child still running after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the child is still running (it has not exited; it is not reaped here).
    pub fn alive(&self) -> bool {
        if self.0 <= 0 {
            return false;
        }
        // SAFETY: an all-zero siginfo_t is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: WNOWAIT leaves our own child waitable; info is a live siginfo_t.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.0 as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is readable once waitid has filled (or left zeroed) info.
        r == 0 && unsafe { info.si_pid() } == 0
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
}
