//! A fork-safe mutex: one futex word, no waiter queue in user space and no hand-off (the
//! classic three-state futex lock, the algorithm std's Linux mutex uses).
//!
//! Why not parking_lot: its unlock may hand the lock straight to a queued waiter, and its
//! waiters queue in a process-global table guarded by word locks. Across fork the child
//! inherits that queue and those word locks, but not the threads: a lock handed to a waiter
//! that does not exist in the child stays locked forever. Here the whole lock is the word:
//! the thread that held it across fork (the atfork handlers do) unlocks it in the child with
//! a swap to 0, and a stale "contended" mark costs at most one spurious wake.
//!
//! Exposed through `lock_api` so guards keep `bump`, `unlocked` and Arc-owned `lock_arc`.
#![allow(unsafe_code)] // the futex syscall and lock_api's unsafe RawMutex contract

use std::sync::atomic::{AtomicU32, Ordering};

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
/// Locked, and some thread may sleep on the futex: unlock must wake one.
const CONTENDED: u32 = 2;
/// How long `bump` waits for a woken waiter to take the lock (a stale CONTENDED mark, whose
/// sleeper already left, costs this once).
const BUMP_YIELDS: u32 = 16;

/// The raw lock behind [`Mutex`].
pub struct RawFutexMutex {
    state: AtomicU32,
}

/// A mutex that a forked child can unlock and use (see the module doc).
pub type Mutex<T> = lock_api::Mutex<RawFutexMutex, T>;
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, RawFutexMutex, T>;
pub type ArcMutexGuard<T> = lock_api::ArcMutexGuard<RawFutexMutex, T>;

impl RawFutexMutex {
    #[cold]
    fn lock_contended(&self) {
        // a short spin first: critical sections here are short
        for _ in 0..100 {
            match self.state.load(Ordering::Relaxed) {
                UNLOCKED => {
                    if self
                        .state
                        .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return;
                    }
                }
                CONTENDED => break,
                _ => std::hint::spin_loop(),
            }
        }
        // from here on we may sleep, so whoever unlocks must wake: take it as CONTENDED
        while self.state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            futex_wait(&self.state, CONTENDED);
        }
    }
}

// SAFETY: the lock is held exactly from a successful lock/try_lock (an Acquire transition out
// of UNLOCKED) to unlock (a Release swap back to UNLOCKED), so it is mutually exclusive.
unsafe impl lock_api::RawMutex for RawFutexMutex {
    #[allow(clippy::declare_interior_mutable_const)] // lock_api's required initializer
    const INIT: Self = RawFutexMutex {
        state: AtomicU32::new(UNLOCKED),
    };

    // Guards may move between threads (the fork handlers lock and unlock on one thread, but
    // nothing here depends on the owner).
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    unsafe fn unlock(&self) {
        if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            futex_wake_one(&self.state);
        }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != UNLOCKED
    }
}

// SAFETY: unlock_fair and bump only combine the sound unlock and lock above.
unsafe impl lock_api::RawMutexFair for RawFutexMutex {
    unsafe fn unlock_fair(&self) {
        // SAFETY: the caller holds the lock (RawMutexFair's contract).
        unsafe { lock_api::RawMutex::unlock(self) }
    }

    /// Let a waiter in when there is one. There is no hand-off: after the wake, yield (a
    /// bounded number of times) until the woken thread has taken the lock, then queue again.
    unsafe fn bump(&self) {
        if self.state.load(Ordering::Relaxed) == CONTENDED {
            // SAFETY: the caller holds the lock (RawMutexFair's contract).
            unsafe { lock_api::RawMutex::unlock(self) };
            for _ in 0..BUMP_YIELDS {
                std::thread::yield_now();
                if self.state.load(Ordering::Relaxed) != UNLOCKED {
                    break;
                }
            }
            lock_api::RawMutex::lock(self);
        }
    }
}

/// Sleep while `*word == expected` (returns on wake, signal or a changed word).
fn futex_wait(word: &AtomicU32, expected: u32) {
    // `word` is a valid, aligned u32 for the duration of the call; a private futex
    // wait with no timeout reads it and takes no other pointer.
    // SAFETY: see above.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// Wake one thread sleeping on `word`.
fn futex_wake_one(word: &AtomicU32) {
    // SAFETY: a private futex wake only uses `word`'s address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1i32,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn excludes_under_contention() {
        let m = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let mut g = m.lock();
                        *g += 1;
                        MutexGuard::bump(&mut g);
                        *g += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 160_000);
    }

    /// The property fork needs: a lock held across fork while another thread sleeps on it is
    /// usable in the child once the holder unlocks it there (parking_lot could hand it to the
    /// sleeper, which the child does not have).
    #[test]
    fn child_unlocks_and_relocks_a_contended_lock() {
        use std::time::{Duration, Instant};
        let m = Arc::new(Mutex::new(()));
        let held = m.lock_arc();
        let waiter = {
            let m = m.clone();
            std::thread::spawn(move || drop(m.lock()))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // SAFETY: raw() is only read here (its state word), never unlocked behind the guard.
        let raw = unsafe { m.raw() };
        while raw.state.load(Ordering::Relaxed) != CONTENDED {
            assert!(Instant::now() < deadline, "waiter never slept on the lock");
            std::thread::yield_now();
        }
        // the child only does atomics, futex calls and _exit (no allocation, no lock
        // another thread could hold).
        // SAFETY: see above.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            drop(held);
            let ok = m.try_lock().is_some() && {
                drop(m.lock());
                true
            };
            // SAFETY: leaves the child at once, running nothing of the test harness.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        drop(held);
        waiter.join().unwrap();
        let start = Instant::now();
        let status = loop {
            let mut status = 0;
            // SAFETY: status is a valid int for the call; pid is our child.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                break status;
            }
            if start.elapsed() > Duration::from_secs(30) {
                // SAFETY: pid is our child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("child hung on the lock");
            }
            std::thread::sleep(Duration::from_millis(5)); // polling a child's exit
        };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }

    #[test]
    fn arc_guard_and_try_lock() {
        let m = Arc::new(Mutex::new(()));
        let g = m.lock_arc();
        assert!(m.try_lock().is_none());
        drop(g);
        assert!(m.try_lock().is_some());
    }
}
