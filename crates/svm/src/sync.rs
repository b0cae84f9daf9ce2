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
//!
//! [`RwLock`] is the reader-writer counterpart, in the same spirit: one futex word holding the
//! reader count or the writer mark plus two flags, no queue; a release that may have sleepers
//! wakes them all and they compete again.
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
// SAFETY: see above.
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
    // SAFETY: the caller holds what lock_api's contract says it holds; this only releases it.
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
    // SAFETY: the caller holds what lock_api's contract says it holds; this only releases it.
    unsafe fn unlock_fair(&self) {
        // SAFETY: the caller holds the lock (RawMutexFair's contract).
        unsafe { lock_api::RawMutex::unlock(self) }
    }

    /// Let a waiter in when there is one. There is no hand-off: after the wake, yield (a
    /// bounded number of times) until the woken thread has taken the lock, then queue again.
    // SAFETY: the caller holds the lock (RawMutexFair's contract); it is released and retaken.
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

/// A reader-writer lock that a forked child can unlock and use (see the module doc).
pub type RwLock<T> = lock_api::RwLock<RawFutexRwLock, T>;
pub type RwLockReadGuard<'a, T> = lock_api::RwLockReadGuard<'a, RawFutexRwLock, T>;
pub type RwLockWriteGuard<'a, T> = lock_api::RwLockWriteGuard<'a, RawFutexRwLock, T>;

/// The raw lock behind [`RwLock`]. The word: the low 30 bits count readers, or are all ones
/// while a writer holds it; [`RW_SLEEPERS`] says a thread may sleep on the word (a release
/// wakes everyone); [`RW_WRITER_WAITS`] holds new readers back so writers are not starved.
pub struct RawFutexRwLock {
    state: AtomicU32,
}

const RW_MASK: u32 = (1 << 30) - 1;
const RW_WRITER: u32 = RW_MASK;
const RW_MAX_READERS: u32 = RW_MASK - 1;
const RW_SLEEPERS: u32 = 1 << 30;
const RW_WRITER_WAITS: u32 = 1 << 31;
/// Spins before a contended lock sleeps (critical sections here are short).
const RW_SPINS: u32 = 100;

impl RawFutexRwLock {
    /// Take the lock for readers or the writer: `take` gives the word to swap in when the one
    /// seen allows it (None: wait). A waiter spins briefly, then sleeps marking `extra`.
    fn acquire(&self, take: impl Fn(u32) -> Option<u32>, extra: u32) {
        let mut spins = 0;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if let Some(new) = take(s) {
                if self
                    .state
                    .compare_exchange_weak(s, new, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if spins < RW_SPINS {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            self.sleep_on(s, extra);
        }
    }

    /// Mark `seen` as having a sleeper (plus `extra`) and sleep until the word changes.
    /// Returns at once if the word moved meanwhile.
    fn sleep_on(&self, seen: u32, extra: u32) {
        let want = seen | RW_SLEEPERS | extra;
        if want != seen
            && self
                .state
                .compare_exchange(seen, want, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        futex_wait(&self.state, want);
    }

    /// After a release that left the word free: wake every sleeper if `old` (the word before)
    /// said there may be some.
    fn released(&self, old: u32) {
        if old & RW_SLEEPERS != 0 {
            futex_wake_all(&self.state);
        }
    }
}

// SAFETY: shared holders are counted in the word and an exclusive holder is the RW_WRITER
// value, reached only from a count of 0 (Acquire CAS) and left only by unlock_exclusive
// (Release swap); a shared lock is taken only while the word holds no writer (Acquire CAS),
// so readers and a writer never hold it together and two writers never do.
// SAFETY: see above.
unsafe impl lock_api::RawRwLock for RawFutexRwLock {
    #[allow(clippy::declare_interior_mutable_const)] // lock_api's required initializer
    const INIT: Self = RawFutexRwLock {
        state: AtomicU32::new(0),
    };

    type GuardMarker = lock_api::GuardSend;

    fn lock_shared(&self) {
        let free = |s: u32| s & RW_WRITER_WAITS == 0 && s & RW_MASK < RW_MAX_READERS;
        // `then`, not `then_some`: the count must not be computed from a word that is not free
        // (all ones while a writer holds it with both flags set)
        self.acquire(|s| free(s).then(|| s + 1), 0);
    }

    fn try_lock_shared(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & RW_WRITER_WAITS != 0 || s & RW_MASK >= RW_MAX_READERS {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    // SAFETY: the caller holds what lock_api's contract says it holds; this only releases it.
    unsafe fn unlock_shared(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            // the last reader out clears the flags (sleepers woken now set them again)
            let new = if s & RW_MASK == 1 { 0 } else { s - 1 };
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if new == 0 {
                        self.released(s);
                    }
                    return;
                }
                Err(now) => s = now,
            }
        }
    }

    fn lock_exclusive(&self) {
        // taking it clears RW_WRITER_WAITS: other waiting writers mark it again
        let take = |s: u32| (s & RW_MASK == 0).then_some(RW_WRITER | (s & RW_SLEEPERS));
        self.acquire(take, RW_WRITER_WAITS);
    }

    fn try_lock_exclusive(&self) -> bool {
        let s = self.state.load(Ordering::Relaxed);
        s & RW_MASK == 0
            && self
                .state
                .compare_exchange(
                    s,
                    RW_WRITER | (s & RW_SLEEPERS),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    // SAFETY: the caller holds what lock_api's contract says it holds; this only releases it.
    unsafe fn unlock_exclusive(&self) {
        let old = self.state.swap(0, Ordering::Release);
        self.released(old);
    }

    fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & RW_MASK != 0
    }

    fn is_locked_exclusive(&self) -> bool {
        self.state.load(Ordering::Relaxed) & RW_MASK == RW_WRITER
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

/// Wake every thread sleeping on `word`.
fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: a private futex wake only uses `word`'s address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod rw_tests;

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
        super::rw_tests::assert_child_ok(pid);
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
