//! A mutex biased towards one thread: the first thread that takes it afterwards enters and
//! leaves with plain loads and stores, no locked instruction and no fence. Any other thread
//! that takes it revokes the bias for good, and from then on it is the [`sync`](crate::sync)
//! futex mutex for everyone.
//!
//! Why: a worker's session table is locked once per read and per write, and nearly always by
//! the one thread that uses the worker (VCL's model: a worker per thread). The futex mutex's
//! two locked instructions are full barriers: each waits for the store buffer, which after a
//! copy into a fifo holds stores to lines the reading core still has, so the lock cost ~7% of
//! a cut-through stream of 1 KiB writes (docs/benchmarking.md, "Session lock").
//!
//! The protocol (asymmetric Dekker, as in userspace RCU's membarrier flavour):
//! - the bias holder: `owner_in = 1`, compiler fence, check `bias` is still its own, enter;
//!   leave with `owner_in = 0` (Release);
//! - a revoker, holding the inner mutex: `bias = REVOKED`, then `membarrier` (every running
//!   thread of the process passes a full barrier), then wait until `owner_in` is 0.
//!
//! After the barrier either the holder's `owner_in = 1` is visible to the revoker (which waits
//! for it to leave), or the holder's check comes after the barrier and sees REVOKED (it backs
//! out to the inner mutex, which the revoker holds). A bias is only given in a process where
//! `membarrier` registration succeeded.
//!
//! Fork: the library's atfork prepare handler takes every session lock on the forking thread,
//! which revokes any other thread's bias first; so in the child the bias, if any, belongs to
//! the one thread there is. A revoker in the child registers for `membarrier` itself.
//!
//! Threat model: none of this is shared memory; it is a lock between the process's threads.
// The membarrier and getpid syscalls and lock_api's unsafe RawMutex contract.
#![allow(unsafe_code)]

use std::sync::atomic::{compiler_fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::sync::RawFutexMutex;

/// A mutex biased towards the first thread that takes it after creation (see the module doc).
pub type BiasedMutex<T> = lock_api::Mutex<RawBiasedMutex, T>;
pub type BiasedMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawBiasedMutex, T>;
pub type BiasedArcMutexGuard<T> = lock_api::ArcMutexGuard<RawBiasedMutex, T>;

/// `bias` before anyone holds it.
const NONE: usize = 0;
/// `bias` once another thread took the lock: the inner mutex only, for good.
const REVOKED: usize = 1;
/// A thread whose token cannot be read (during its TLS teardown): never a bias holder.
const NO_TOKEN: usize = 2;

/// linux/membarrier.h
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// The raw lock behind [`BiasedMutex`].
pub struct RawBiasedMutex {
    inner: RawFutexMutex,
    /// The bias holder's token, or NONE / REVOKED.
    bias: AtomicUsize,
    /// 1 while the bias holder is in, or trying to get in, through the fast path.
    owner_in: AtomicU32,
    /// The lock is held through the fast path (written by its holder only).
    held_fast: AtomicBool,
}

thread_local! {
    /// Its address is the thread's token: unique among live threads, and a thread that gets
    /// a dead holder's address inherits a bias nobody else uses.
    static TOKEN: u8 = const { 0 };
}

#[inline(always)]
fn token() -> usize {
    TOKEN
        .try_with(|t| t as *const u8 as usize)
        .unwrap_or(NO_TOKEN)
}

fn getpid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

fn membarrier(cmd: libc::c_int) -> bool {
    // SAFETY: membarrier takes two integers and touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0u32, 0i32) == 0 }
}

/// The pid that registered for private expedited membarrier (0: none yet).
static REGISTERED: AtomicU32 = AtomicU32::new(0);
/// The pid whose registration failed: no bias in that process.
static REFUSED: AtomicU32 = AtomicU32::new(0);

/// Whether this process may give a bias: it registered for `membarrier`, or does now.
fn barrier_ready(pid: u32) -> bool {
    if REGISTERED.load(Ordering::Relaxed) == pid {
        return true;
    }
    if REFUSED.load(Ordering::Relaxed) == pid {
        return false;
    }
    if membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) {
        REGISTERED.store(pid, Ordering::Relaxed);
        true
    } else {
        tracing::debug!("membarrier refused: session locks stay plain mutexes");
        REFUSED.store(pid, Ordering::Relaxed);
        false
    }
}

/// Spin briefly, then yield, until `done` (the other side is inside a short critical section).
fn wait_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        spins += 1;
        if spins < 100 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Every running thread of this process passes a full barrier before this returns.
fn heavy_barrier() {
    if membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) {
        return;
    }
    // Not expected (the process registered before it gave the bias). A fence of our own
    // makes our store visible; a millisecond is ages for the holder's store buffer to drain.
    std::sync::atomic::fence(Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(1));
    std::sync::atomic::fence(Ordering::SeqCst);
}

impl RawBiasedMutex {
    /// The bias holder's way in: `false` when the lock is not (or no longer) biased to it.
    #[inline(always)]
    fn enter_fast(&self, me: usize) -> bool {
        // held_fast: already in (a lock of our own, or a guard we handed to another thread)
        if self.bias.load(Ordering::Relaxed) != me || self.held_fast.load(Ordering::Relaxed) {
            return false;
        }
        self.owner_in.store(1, Ordering::Relaxed);
        // The revoker's membarrier supplies the hardware barrier; this keeps the compiler
        // from moving the check above the store.
        compiler_fence(Ordering::SeqCst);
        if self.bias.load(Ordering::Acquire) == me {
            self.held_fast.store(true, Ordering::Relaxed);
            return true;
        }
        self.owner_in.store(0, Ordering::Release);
        false
    }

    /// Holding the inner mutex: give the bias if nobody has it, or take it away from the
    /// thread that has it and wait until that thread is out.
    #[cold]
    fn after_inner(&self, me: usize) {
        match self.bias.load(Ordering::Relaxed) {
            NONE => {
                if me > NO_TOKEN && barrier_ready(getpid()) {
                    self.bias.store(me, Ordering::Relaxed);
                }
            }
            REVOKED => {}
            // the fast path is held: by a guard of ours that another thread releases (or by
            // ourselves: a deadlock, as re-locking any mutex)
            b if b == me => wait_until(|| !self.held_fast.load(Ordering::Acquire)),
            _ => self.revoke(),
        }
    }

    /// Take the bias away for good and wait until its holder is out.
    #[cold]
    fn revoke(&self) {
        self.revoke_no_wait();
        wait_until(|| self.owner_in.load(Ordering::Acquire) == 0);
    }

    /// Take the bias away for good; after this the holder is either out for good or visibly
    /// in (`owner_in` is 1).
    #[cold]
    fn revoke_no_wait(&self) {
        self.bias.store(REVOKED, Ordering::Relaxed);
        // a forked child registers anew (heavy_barrier copes if it cannot)
        barrier_ready(getpid());
        heavy_barrier();
    }

    /// Whether the lock was biased to a thread and no longer is (for tests and the bench).
    pub fn is_revoked(&self) -> bool {
        self.bias.load(Ordering::Relaxed) == REVOKED
    }

    /// Whether the calling thread holds the bias.
    pub fn is_biased_to_me(&self) -> bool {
        self.bias.load(Ordering::Relaxed) == token()
    }
}

// SAFETY: a thread is inside either through the inner mutex or through the fast path. Two
// inner holders exclude each other; a fast holder and an inner holder exclude each other by
// the protocol in the module doc (the inner holder revokes and waits for `owner_in` to be 0,
// and a fast entrant that sees REVOKED backs out); only one thread can match `bias`.
unsafe impl lock_api::RawMutex for RawBiasedMutex {
    #[allow(clippy::declare_interior_mutable_const)] // lock_api's required initializer
    const INIT: Self = RawBiasedMutex {
        inner: <RawFutexMutex as lock_api::RawMutex>::INIT,
        bias: AtomicUsize::new(NONE),
        owner_in: AtomicU32::new(0),
        held_fast: AtomicBool::new(false),
    };

    // A guard may be released on another thread: `held_fast` says how it was taken.
    type GuardMarker = lock_api::GuardSend;

    #[inline(always)]
    fn lock(&self) {
        let me = token();
        if !self.enter_fast(me) {
            self.inner.lock();
            self.after_inner(me);
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        let me = token();
        if self.enter_fast(me) {
            return true;
        }
        if !self.inner.try_lock() {
            return false;
        }
        let held = match self.bias.load(Ordering::Relaxed) {
            NONE => {
                self.after_inner(me);
                false
            }
            REVOKED => false,
            b if b == me => self.held_fast.load(Ordering::Acquire),
            _ => {
                // the bias goes all the same; no waiting for its holder here
                self.revoke_no_wait();
                self.owner_in.load(Ordering::Acquire) != 0
            }
        };
        if held {
            // SAFETY: we hold the inner mutex, taken above.
            unsafe { self.inner.unlock() };
        }
        !held
    }

    #[inline(always)]
    // SAFETY: the caller holds the lock (lock_api's contract); this only releases it.
    unsafe fn unlock(&self) {
        if self.held_fast.load(Ordering::Relaxed) {
            self.held_fast.store(false, Ordering::Relaxed);
            self.owner_in.store(0, Ordering::Release);
        } else {
            // SAFETY: not held through the fast path, so held through the inner mutex.
            unsafe { self.inner.unlock() };
        }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.held_fast.load(Ordering::Relaxed) || self.inner.is_locked()
    }
}

// SAFETY: unlock_fair and bump only combine the sound unlock and lock above, or delegate to
// the inner mutex's own.
unsafe impl lock_api::RawMutexFair for RawBiasedMutex {
    // SAFETY: the caller holds the lock (RawMutexFair's contract); this only releases it.
    unsafe fn unlock_fair(&self) {
        // SAFETY: as above.
        unsafe { lock_api::RawMutex::unlock(self) }
    }

    /// Let a waiter in when there is one: a fast holder's waiter is a revoker (the bias is
    /// gone); an inner holder's is the inner mutex's.
    // SAFETY: the caller holds the lock (RawMutexFair's contract); it is released and retaken.
    unsafe fn bump(&self) {
        if self.held_fast.load(Ordering::Relaxed) {
            if self.bias.load(Ordering::Relaxed) == REVOKED {
                // SAFETY: held, through the fast path.
                unsafe { lock_api::RawMutex::unlock(self) };
                lock_api::RawMutex::lock(self);
            }
        } else {
            // SAFETY: held through the inner mutex.
            unsafe { lock_api::RawMutexFair::bump(&self.inner) }
        }
    }
}

#[cfg(test)]
#[path = "biased_tests.rs"]
mod tests;
