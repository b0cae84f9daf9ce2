//! epoll over mixed sets. The app's epoll fd is a real kernel epoll: kernel fds live there as
//! usual. VPP sockets added to it are kept in an [`EpSet`] in the fd table under the epoll
//! fd's number, and the eventfd of each worker owning one of them is added to the kernel set,
//! so `epoll_wait` sleeps in the kernel and wakes for either kind. On waking, the workers'
//! events are drained and VPP sockets' readiness is reported with the app's data.

use std::ffi::c_int;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::{epoll_event, sigset_t, timespec};
use vcl_svm::sync::{Mutex, MutexGuard};

use crate::epset::{EpSet, MARK, MARK_MASK};
use crate::fdtab::{self, Entry};
use crate::real;
use crate::wake::{drain_evfd, CAP};
use crate::{guard, ret};

static CREATE: Mutex<()> = Mutex::new(());

/// For fork's prepare handler.
pub fn hold_create() -> MutexGuard<'static, ()> {
    CREATE.lock()
}

/// The set for `epfd`, creating it; EINVAL if `epfd` is not an epoll fd.
fn set_for(epfd: c_int, probe_fd: c_int) -> Result<Arc<EpSet>, i32> {
    let _g = CREATE.lock();
    match fdtab::get(epfd) {
        Some(Entry::Epoll(s)) => return Ok(s),
        Some(Entry::Sock(_)) | Some(Entry::Inherited(_)) => return Err(libc::EINVAL),
        None => {}
    }
    // A DEL of a descriptor not in the set tells an epoll fd (ENOENT) from anything else.
    // SAFETY: a NULL event is allowed for EPOLL_CTL_DEL.
    let r = unsafe { real::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, probe_fd, std::ptr::null_mut()) };
    if r == 0 || real::errno() != libc::ENOENT {
        return Err(if r == 0 { libc::EINVAL } else { real::errno() });
    }
    let s = Arc::new(EpSet::default());
    fdtab::set(epfd, Entry::Epoll(s.clone())).map_err(|_| libc::EINVAL)?;
    Ok(s)
}

/// The set for `epfd`, known to be an epoll fd (a kernel epoll_ctl on it just succeeded).
fn set_known(epfd: c_int) -> Option<Arc<EpSet>> {
    let _g = CREATE.lock();
    match fdtab::get(epfd) {
        Some(Entry::Epoll(s)) => Some(s),
        Some(_) => None,
        None => {
            let s = Arc::new(EpSet::default());
            fdtab::set(epfd, Entry::Epoll(s.clone())).ok()?;
            Some(s)
        }
    }
}

#[no_mangle]
// SAFETY: callers uphold epoll_ctl's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut epoll_event,
) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        let r = unsafe { real::epoll_ctl(epfd, op, fd, ev) };
        if r == 0 {
            if let Some(Entry::Epoll(inner)) = fdtab::get(fd) {
                // SAFETY: ev is NULL or a valid event per epoll_ctl(2); read unaligned (packed).
                let e = (!ev.is_null()).then(|| unsafe { std::ptr::read_unaligned(ev) });
                guard((), || {
                    if let Some(outer) = set_known(epfd) {
                        outer.ctl_nested(op, fd, &inner, e);
                    }
                });
            }
        }
        return r;
    };
    guard(-1, || {
        if epfd == fd {
            return ret(Err(libc::EINVAL));
        }
        let set = match set_for(epfd, fd) {
            Ok(s) => s,
            Err(e) => return ret(Err(e)),
        };
        // SAFETY: ev is NULL or a valid event per epoll_ctl(2); read unaligned (packed).
        let e = (!ev.is_null()).then(|| unsafe { std::ptr::read_unaligned(ev) });
        if op != libc::EPOLL_CTL_DEL && e.is_some() {
            s.used(); // before the set's lock: a forked child's listener may listen here now
        }
        ret(set.ctl(epfd, op, fd, &s, e).map(|_| 0))
    })
}

/// Wait on a set that holds VPP sockets (busy-polled first, see [`crate::spin`]).
fn wait(
    epfd: c_int,
    set: &EpSet,
    out: &mut [epoll_event],
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> c_int {
    let deadline = timeout.map(|t| Instant::now() + t);
    let cap = if set.all_evfd() {
        CAP
    } else {
        Duration::from_millis(1)
    };
    let mut first = true;
    loop {
        let (mut n, mut nested) = set.scan(out);
        if n == 0 && first {
            first = false;
            // The kernel set (its fds and the workers' eventfds) gets a zero-timeout look every
            // few spins: an epoll fd polls readable when it has events.
            let mut kp = libc::pollfd {
                fd: epfd,
                events: libc::POLLIN,
                revents: 0,
            };
            crate::spin::spin(deadline, |i| {
                (n, nested) = set.scan(out);
                n > 0
                    || (i % crate::spin::KERNEL_EVERY == 0
                        // SAFETY: one valid pollfd; no wait.
                        && unsafe { real::poll(&mut kp, 1, 0) } > 0)
            });
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let workers = if n > 0 { Vec::new() } else { set.all_workers() };
        let sleeping = crate::wake::Sleeping::new(&workers);
        let kt = if n > 0 || sleeping.data {
            Duration::ZERO
        } else {
            left.unwrap_or(cap).min(cap)
        };
        // milliseconds, rounded up (epoll_pwait2 needs Linux 5.11)
        let ms = kt.as_micros().div_ceil(1000).min(i32::MAX as u128) as c_int;
        let rest = &mut out[n..];
        let k = if rest.is_empty() {
            0
        } else {
            // SAFETY: rest is writable for rest.len() events; mask is valid or NULL.
            unsafe { real::epoll_pwait(epfd, rest.as_mut_ptr(), rest.len() as c_int, ms, mask) }
        };
        drop(sleeping);
        if k < 0 {
            return if n > 0 { n as c_int } else { -1 };
        }
        let mut kept = 0;
        for i in 0..k as usize {
            let e = rest[i];
            let data = e.u64;
            if data & MARK_MASK == MARK {
                if let Some(fd) = set.has_evfd(data & !MARK_MASK) {
                    drain_evfd(fd);
                    continue;
                }
            }
            if nested.contains(&data) {
                continue; // reported by the scan already
            }
            rest[kept] = e;
            kept += 1;
        }
        let total = n + kept;
        if total > 0 || left.is_some_and(|l| l.is_zero()) {
            if total > 0 && !first {
                crate::spin::woke();
            }
            return total as c_int;
        }
        if k == 0 {
            set.check_dead();
        }
    }
}

fn ours(epfd: c_int) -> Option<Arc<EpSet>> {
    match fdtab::get(epfd)? {
        Entry::Epoll(s) => Some(s),
        _ => None,
    }
}

/// # Safety
/// `ev` writable for `max` events.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn wait_c(
    epfd: c_int,
    set: Arc<EpSet>,
    ev: *mut epoll_event,
    max: c_int,
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> c_int {
    if max <= 0 {
        return ret(Err(libc::EINVAL));
    }
    if ev.is_null() {
        return ret(Err(libc::EFAULT));
    }
    // SAFETY: ev is writable for max events per epoll_wait(2).
    let out = unsafe { std::slice::from_raw_parts_mut(ev, max as usize) };
    guard(-1, || wait(epfd, &set, out, timeout, mask))
}

fn ms(timeout: c_int) -> Option<Duration> {
    (timeout >= 0).then(|| Duration::from_millis(timeout as u64))
}

#[no_mangle]
// SAFETY: callers uphold epoll_wait's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    t: c_int,
) -> c_int {
    let Some(set) = ours(epfd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::epoll_wait(epfd, ev, max, t) };
    };
    // SAFETY: as epoll_wait(2).
    unsafe { wait_c(epfd, set, ev, max, ms(t), std::ptr::null()) }
}

#[no_mangle]
// SAFETY: callers uphold epoll_pwait's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    t: c_int,
    mask: *const sigset_t,
) -> c_int {
    let Some(set) = ours(epfd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::epoll_pwait(epfd, ev, max, t, mask) };
    };
    // SAFETY: as epoll_pwait(2).
    unsafe { wait_c(epfd, set, ev, max, ms(t), mask) }
}

#[no_mangle]
// SAFETY: callers uphold epoll_pwait2's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let Some(set) = ours(epfd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::epoll_pwait2(epfd, ev, max, t, mask) };
    };
    // SAFETY: t is NULL or a valid timespec per epoll_pwait2(2).
    let timeout = match unsafe { t.as_ref() } {
        None => None,
        Some(t) if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) => {
            return ret(Err(libc::EINVAL))
        }
        Some(t) => Some(Duration::new(t.tv_sec as u64, t.tv_nsec as u32)),
    };
    // SAFETY: as epoll_pwait2(2).
    unsafe { wait_c(epfd, set, ev, max, timeout, mask) }
}
