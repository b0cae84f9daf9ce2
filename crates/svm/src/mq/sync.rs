//! Blocking primitives of a message queue: the process-shared robust pthread mutex and condvar
//! that live in the queue header (driven through glibc, since both sides must agree on the
//! exact object), eventfd signalling, and absolute CLOCK_REALTIME deadlines.
//!
//! A robust mutex whose owner died is handed to the next locker with `EOWNERDEAD`; we mark it
//! consistent and carry on (the queue's indices are only ever changed under the lock or by the
//! lock-free consumer, so there is nothing further to repair), and unlock/broadcast normally.
// Shared memory / fds: the process-shared pthread mutex and condvar VPP puts in the queue header.
#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::time::Duration;

use crate::segment::{Result, SvmError};

/// The mutex and condvar of one queue header. Plain pointers into the mapping, checked by the
/// owning [`super::MsgQueue`] at attach time (in bounds, 8-byte aligned).
#[derive(Clone, Copy)]
pub(crate) struct ShmLock {
    pub mutex: *mut libc::pthread_mutex_t,
    pub cond: *mut libc::pthread_cond_t,
}

/// Initialise a process-shared robust mutex and a process-shared condvar (default clock,
/// CLOCK_REALTIME, as VPP does) in place.
pub(crate) fn init_shm_lock(l: ShmLock) -> Result<()> {
    // SAFETY: attribute objects live on our stack and are initialised before use; `l` points at
    // zeroed, 8-byte aligned, writable shared memory of the right sizes (checked by the caller).
    unsafe {
        let mut ma: libc::pthread_mutexattr_t = std::mem::zeroed();
        check(
            "pthread_mutexattr_init",
            libc::pthread_mutexattr_init(&mut ma),
        )?;
        let rc = libc::pthread_mutexattr_setpshared(&mut ma, libc::PTHREAD_PROCESS_SHARED);
        check("pthread_mutexattr_setpshared", rc)?;
        let rc = libc::pthread_mutexattr_setrobust(&mut ma, libc::PTHREAD_MUTEX_ROBUST);
        check("pthread_mutexattr_setrobust", rc)?;
        check("pthread_mutex_init", libc::pthread_mutex_init(l.mutex, &ma))?;
        libc::pthread_mutexattr_destroy(&mut ma);

        let mut ca: libc::pthread_condattr_t = std::mem::zeroed();
        check(
            "pthread_condattr_init",
            libc::pthread_condattr_init(&mut ca),
        )?;
        let rc = libc::pthread_condattr_setpshared(&mut ca, libc::PTHREAD_PROCESS_SHARED);
        check("pthread_condattr_setpshared", rc)?;
        check("pthread_cond_init", libc::pthread_cond_init(l.cond, &ca))?;
        libc::pthread_condattr_destroy(&mut ca);
    }
    Ok(())
}

fn check(what: &'static str, rc: i32) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(SvmError::Os(what, rc))
    }
}

impl ShmLock {
    /// Map a lock result: EOWNERDEAD means we own a mutex whose previous owner died.
    fn after_lock(&self, what: &'static str, rc: i32) -> Result<()> {
        match rc {
            0 => Ok(()),
            libc::EOWNERDEAD => {
                tracing::warn!("mq mutex owner died; marking the mutex consistent");
                // SAFETY: we hold the mutex (EOWNERDEAD transfers ownership); it is a valid,
                // initialised robust mutex in mapped memory.
                let rc = unsafe { libc::pthread_mutex_consistent(self.mutex) };
                if rc != 0 {
                    // SAFETY: as above; release what we hold before reporting.
                    unsafe { libc::pthread_mutex_unlock(self.mutex) };
                    return Err(SvmError::Os("pthread_mutex_consistent", rc));
                }
                Ok(())
            }
            e => Err(SvmError::Os(what, e)),
        }
    }

    /// Take the mutex, waiting at most [`LOCK_PATIENCE`]. The mutex is shared with VPP and every
    /// other app on the queue's segment: one that stopped (or misbehaves) while holding it must
    /// not freeze us, so a longer hold is an error (ETIMEDOUT), never an endless wait.
    pub fn lock(&self) -> Result<()> {
        let deadline = monotonic_deadline(LOCK_PATIENCE);
        // SAFETY: `mutex` points at an initialised process-shared mutex in mapped memory;
        // `deadline` is a valid timespec on CLOCK_MONOTONIC.
        let rc = unsafe { pthread_mutex_clocklock(self.mutex, libc::CLOCK_MONOTONIC, &deadline) };
        if rc == libc::ETIMEDOUT {
            return Err(SvmError::Os(
                "mq mutex: held by another thread or process for longer than 1 s",
                libc::ETIMEDOUT,
            ));
        }
        self.after_lock("pthread_mutex_clocklock", rc)
    }

    /// Take the mutex if free: Ok(false) when someone else holds it.
    pub fn try_lock(&self) -> Result<bool> {
        // SAFETY: as in `lock`.
        let rc = unsafe { libc::pthread_mutex_trylock(self.mutex) };
        if rc == libc::EBUSY {
            return Ok(false);
        }
        self.after_lock("pthread_mutex_trylock", rc).map(|()| true)
    }

    /// Release the mutex (must be held by this thread).
    pub fn unlock(&self) {
        // SAFETY: called only by a guard that holds the mutex.
        let rc = unsafe { libc::pthread_mutex_unlock(self.mutex) };
        if rc != 0 {
            tracing::warn!(rc, "pthread_mutex_unlock failed on an mq mutex");
        }
    }

    /// Wake every waiter (call with the mutex held so no waiter can miss it).
    pub fn broadcast(&self) {
        // SAFETY: `cond` points at an initialised process-shared condvar in mapped memory.
        unsafe { libc::pthread_cond_broadcast(self.cond) };
    }

    /// Wait on the condvar (mutex held) until signalled or `deadline` (absolute, on
    /// CLOCK_MONOTONIC, so a wall-clock step neither stretches nor cuts the wait).
    /// Returns Ok(false) on timeout.
    pub fn wait(&self, deadline: Option<&libc::timespec>) -> Result<bool> {
        let rc = match deadline {
            // SAFETY: mutex held by us; both objects initialised and process-shared.
            None => unsafe { libc::pthread_cond_wait(self.cond, self.mutex) },
            // SAFETY: as above; `d` is a valid timespec on CLOCK_MONOTONIC.
            Some(d) => unsafe {
                pthread_cond_clockwait(self.cond, self.mutex, libc::CLOCK_MONOTONIC, d)
            },
        };
        if rc == libc::ETIMEDOUT {
            return Ok(false);
        }
        self.after_lock("pthread_cond_wait", rc).map(|()| true)
    }
}

/// How long [`ShmLock::lock`] waits for a mutex someone else holds.
pub const LOCK_PATIENCE: Duration = Duration::from_secs(1);

// glibc >= 2.30: the timed waits on an explicit clock (the libc crate does not bind them).
extern "C" {
    fn pthread_mutex_clocklock(
        m: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
    fn pthread_cond_clockwait(
        c: *mut libc::pthread_cond_t,
        m: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// The absolute CLOCK_MONOTONIC time `timeout` from now, with the fraction carried correctly
/// (VPP's own deadline helper drops that carry: docs/wire.md#timed-waits).
pub(crate) fn monotonic_deadline(timeout: Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    add_duration(now, timeout)
}

pub(crate) fn add_duration(t: libc::timespec, d: Duration) -> libc::timespec {
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
    let mut sec = t.tv_sec.saturating_add(secs);
    let mut nsec = t.tv_nsec + i64::from(d.subsec_nanos());
    if nsec >= 1_000_000_000 {
        sec = sec.saturating_add(1);
        nsec -= 1_000_000_000;
    }
    libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

/// Signal an eventfd (add 1 to its counter).
pub(crate) fn evt_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to a file descriptor.
    let rc = unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
    if rc != 8 {
        tracing::warn!(fd, "mq eventfd signal failed");
    }
}

/// Wait until the eventfd is readable or `timeout` passes, then consume its counter without
/// blocking. Returns whether it was readable.
pub(crate) fn evt_wait(fd: RawFd, timeout: Duration) -> Result<bool> {
    // Round up so a sub-millisecond wait still sleeps instead of spinning.
    let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
    if !poll_in(fd, ms)? {
        return Ok(false);
    }
    evt_drain(fd);
    Ok(true)
}

fn poll_in(fd: RawFd, ms: i32) -> Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, ms) };
    if rc < 0 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if e == libc::EINTR {
            return Ok(false); // the caller re-checks the queue and its deadline
        }
        return Err(SvmError::Os("poll mq eventfd", e));
    }
    Ok(rc > 0 && p.revents & libc::POLLIN != 0)
}

/// Read the eventfd counter without blocking, even if the fd (shared with VPP) is in blocking
/// mode: `preadv2(RWF_NOWAIT)` where the kernel supports it, else poll-then-read.
pub(crate) fn evt_drain(fd: RawFd) {
    let mut v: u64 = 0;
    let iov = libc::iovec {
        iov_base: &mut v as *mut u64 as *mut libc::c_void,
        iov_len: 8,
    };
    // SAFETY: one iovec describing our live u64.
    let rc = unsafe { libc::preadv2(fd, &iov, 1, -1, libc::RWF_NOWAIT) };
    if rc >= 0 {
        return;
    }
    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if e == libc::EAGAIN {
        return;
    }
    // Older kernels: a readable eventfd's read does not block (racy only if another reader of
    // the same eventfd drains it between the poll and the read).
    if matches!(poll_in(fd, 0), Ok(true)) {
        // SAFETY: reads 8 bytes into our live u64.
        unsafe { libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
    }
}
