//! poll/ppoll/select/pselect over mixed sets: kernel fds are polled by the kernel together with
//! the eventfd of each worker owning a VPP socket in the set, so the call sleeps until either
//! kind is ready. select is done as a poll.

use std::ffi::c_int;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::{
    fd_set, nfds_t, pollfd, sigset_t, timespec, timeval, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT,
    EPOLLRDHUP, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLLRDHUP,
};
use vcl::api::{self, Worker};

use crate::fdtab;
use crate::real;
use crate::sock::VSock;
use crate::wake::{check_dead, drain_evfd, is_dead, linux_bits, CAP};
use crate::{guard, ret};

fn to_epoll(ev: i16) -> u32 {
    let mut e = 0;
    if ev & POLLIN != 0 {
        e |= EPOLLIN;
    }
    if ev & POLLOUT != 0 {
        e |= EPOLLOUT;
    }
    if ev & POLLRDHUP != 0 {
        e |= EPOLLRDHUP;
    }
    e as u32
}

fn to_poll(b: u32) -> i16 {
    let mut r = 0;
    for (e, p) in [
        (EPOLLIN, POLLIN),
        (EPOLLOUT, POLLOUT),
        (EPOLLRDHUP, POLLRDHUP),
        (EPOLLHUP, POLLHUP),
        (EPOLLERR, POLLERR),
    ] {
        if b & e as u32 != 0 {
            r |= p;
        }
    }
    r
}

/// Readiness (poll bits) of the set's VPP sockets into `vrev`; returns how many are ready.
fn look(
    fds: &[pollfd],
    vpp: &[(usize, Arc<VSock>)],
    workers: &[Worker],
    vrev: &mut [i16],
) -> usize {
    vrev.iter_mut().for_each(|r| *r = 0);
    for w in workers {
        let mut items = Vec::new();
        let mut idx = Vec::new();
        for (k, (i, s)) in vpp.iter().enumerate() {
            if s.w.same(w) {
                for sh in std::iter::once(s.sh).chain(s.twin.get().copied()) {
                    items.push((sh, to_epoll(fds[*i].events), 0));
                    idx.push(k);
                }
            }
        }
        if is_dead(w) {
            items
                .iter_mut()
                .for_each(|it| it.2 = (EPOLLERR | EPOLLHUP) as u32);
        } else {
            api::readiness(w, &mut items);
        }
        for (k, it) in idx.into_iter().zip(items) {
            let got = it.2 | crate::udp::idle_out(&vpp[k].1, it.1);
            vrev[k] |= to_poll(linux_bits(got, it.1));
        }
    }
    vrev.iter().filter(|r| **r != 0).count()
}

/// poll over a set with VPP sockets (busy-polled first, see [`crate::spin`]). `timeout` None
/// waits forever.
fn mixed(fds: &mut [pollfd], timeout: Option<Duration>, mask: *const sigset_t) -> c_int {
    let deadline = timeout.map(|t| Instant::now() + t);
    let vpp: Vec<(usize, Arc<VSock>)> = fds
        .iter()
        .enumerate()
        .filter_map(|(i, p)| fdtab::sock(p.fd).map(|s| (i, s)))
        .collect();
    let mut workers: Vec<Worker> = Vec::new();
    for (_, s) in &vpp {
        s.used();
        if !workers.iter().any(|w| w.same(&s.w)) {
            workers.push(s.w.clone());
        }
    }
    let mut kfds: Vec<pollfd> = fds.to_vec();
    for (i, _) in &vpp {
        kfds[*i].fd = -1; // the kernel skips it
    }
    let nk = kfds.len();
    let cap = if workers.iter().all(|w| w.mq_eventfd().is_some()) {
        CAP
    } else {
        Duration::from_millis(1)
    };
    for w in &workers {
        if let Some(e) = w.mq_eventfd() {
            kfds.push(pollfd {
                fd: e,
                events: POLLIN,
                revents: 0,
            });
        }
    }
    let mut vrev = vec![0i16; vpp.len()];
    let mut first = true;
    loop {
        let mut nv = look(fds, &vpp, &workers, &mut vrev);
        if nv == 0 && first {
            first = false;
            // Kernel fds (the VPP ones are -1 there) get a zero-timeout look every few spins.
            let kernel = &mut kfds[..nk];
            let has_kernel = kernel.iter().any(|p| p.fd >= 0);
            crate::spin::spin(deadline, |i| {
                nv = look(fds, &vpp, &workers, &mut vrev);
                nv > 0
                    || (has_kernel
                        && i % crate::spin::KERNEL_EVERY == 0
                        // SAFETY: a valid array of kernel.len() pollfds; no wait.
                        && unsafe { real::poll(kernel.as_mut_ptr(), kernel.len() as nfds_t, 0) }
                            != 0)
            });
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let sleeping = (nv == 0).then(|| crate::wake::Sleeping::new(&workers));
        let kt = if nv > 0 || sleeping.as_ref().is_some_and(|s| s.data) {
            Duration::ZERO
        } else {
            left.unwrap_or(cap).min(cap)
        };
        let ts = timespec {
            tv_sec: kt.as_secs() as libc::time_t,
            tv_nsec: kt.subsec_nanos() as libc::c_long,
        };
        // SAFETY: kfds is a valid array of kfds.len() pollfds; ts and mask valid or NULL.
        let k = unsafe { real::ppoll(kfds.as_mut_ptr(), kfds.len() as nfds_t, &ts, mask) };
        drop(sleeping);
        if k < 0 && nv == 0 {
            return -1;
        }
        for p in &kfds[nk..] {
            if p.revents != 0 {
                drain_evfd(p.fd);
            }
        }
        let mut total = 0;
        for (i, f) in fds.iter_mut().enumerate() {
            f.revents = if k >= 0 { kfds[i].revents } else { 0 };
        }
        for ((i, _), r) in vpp.iter().zip(&vrev) {
            fds[*i].revents = *r;
        }
        for f in fds.iter() {
            total += i32::from(f.revents != 0);
        }
        if total > 0 || left.is_some_and(|l| l.is_zero()) {
            if total > 0 && !first {
                crate::spin::woke();
            }
            return total;
        }
        if k == 0 {
            workers.iter().for_each(|w| {
                check_dead(w);
            });
        }
    }
}

fn any_ours(fds: &[pollfd]) -> bool {
    fds.iter().any(|p| fdtab::is_ours(p.fd))
}

/// # Safety
/// `fds` valid for `n` pollfds.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn fds_of<'a>(fds: *mut pollfd, n: nfds_t) -> Option<&'a mut [pollfd]> {
    if n == 0 || fds.is_null() {
        return None;
    }
    // SAFETY: fds holds n pollfds per poll(2).
    Some(unsafe { std::slice::from_raw_parts_mut(fds, n as usize) })
}

fn ts_duration(t: &timespec) -> Result<Duration, i32> {
    if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
        return Err(libc::EINVAL);
    }
    Ok(Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
}

#[no_mangle]
// SAFETY: callers uphold poll's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    // SAFETY: as poll(2).
    match unsafe { fds_of(fds, n) } {
        Some(f) if any_ours(f) => {
            let t = (timeout >= 0).then(|| Duration::from_millis(timeout as u64));
            guard(-1, || mixed(f, t, std::ptr::null()))
        }
        // SAFETY: the caller's arguments, passed on.
        _ => unsafe { real::poll(fds, n, timeout) },
    }
}

#[no_mangle]
// SAFETY: callers uphold ppoll's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: as ppoll(2).
    match unsafe { fds_of(fds, n) } {
        Some(f) if any_ours(f) => {
            // SAFETY: t is NULL or a valid timespec per ppoll(2).
            let t = match unsafe { t.as_ref() }.map(ts_duration).transpose() {
                Ok(t) => t,
                Err(e) => return ret(Err(e)),
            };
            guard(-1, || mixed(f, t, mask))
        }
        // SAFETY: the caller's arguments, passed on.
        _ => unsafe { real::ppoll(fds, n, t, mask) },
    }
}

#[no_mangle]
// SAFETY: callers uphold poll_chk's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn __poll_chk(fds: *mut pollfd, n: nfds_t, t: c_int, len: usize) -> c_int {
    if (n as usize).saturating_mul(std::mem::size_of::<pollfd>()) > len {
        std::process::abort();
    }
    // SAFETY: as poll.
    unsafe { poll(fds, n, t) }
}

#[no_mangle]
// SAFETY: callers uphold ppoll_chk's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
    len: usize,
) -> c_int {
    if (n as usize).saturating_mul(std::mem::size_of::<pollfd>()) > len {
        std::process::abort();
    }
    // SAFETY: as ppoll.
    unsafe { ppoll(fds, n, t, mask) }
}

/// The fds set in any of the three sets, below `n`, as pollfds; None if none is ours.
///
/// # Safety
/// Each set NULL or a valid fd_set.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn sets_to_poll(n: c_int, sets: [*mut fd_set; 3]) -> Option<Vec<pollfd>> {
    let n = n.clamp(0, libc::FD_SETSIZE as c_int);
    let mut out = Vec::new();
    let mut mine = false;
    for fd in 0..n {
        let mut ev = 0;
        for (k, s) in sets.iter().enumerate() {
            // SAFETY: s is a valid fd_set and fd < FD_SETSIZE.
            if !s.is_null() && unsafe { libc::FD_ISSET(fd, *s) } {
                ev |= [POLLIN, POLLOUT, POLLPRI][k];
            }
        }
        if ev != 0 {
            mine |= fdtab::is_ours(fd);
            out.push(pollfd {
                fd,
                events: ev,
                revents: 0,
            });
        }
    }
    mine.then_some(out)
}

/// select's answer from a poll's: EBADF for a closed fd, else the sets rewritten.
///
/// # Safety
/// Each set NULL or a valid fd_set.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn poll_to_sets(r: c_int, pfds: &[pollfd], sets: [*mut fd_set; 3]) -> c_int {
    if r < 0 {
        return r;
    }
    if pfds.iter().any(|p| p.revents & POLLNVAL != 0) {
        return ret(Err(libc::EBADF));
    }
    for s in sets.iter().filter(|s| !s.is_null()) {
        // SAFETY: s is a valid fd_set.
        unsafe { libc::FD_ZERO(*s) };
    }
    let mut n = 0;
    for p in pfds {
        let ready = [
            p.revents & (POLLIN | POLLHUP | POLLERR) != 0 && p.events & POLLIN != 0,
            p.revents & (POLLOUT | POLLERR) != 0 && p.events & POLLOUT != 0,
            p.revents & POLLPRI != 0,
        ];
        for (k, s) in sets.iter().enumerate() {
            if ready[k] && !s.is_null() {
                // SAFETY: s is a valid fd_set and p.fd < FD_SETSIZE.
                unsafe { libc::FD_SET(p.fd, *s) };
                n += 1;
            }
        }
    }
    n
}

#[no_mangle]
// SAFETY: callers uphold select's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *mut timeval,
) -> c_int {
    let sets = [r, w, e];
    // SAFETY: the sets are NULL or valid per select(2).
    let Some(mut pfds) = (unsafe { sets_to_poll(n, sets) }) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::select(n, r, w, e, t) };
    };
    // SAFETY: t is NULL or a valid timeval per select(2).
    let timeout = match unsafe { t.as_ref() } {
        None => None,
        Some(tv) if tv.tv_sec < 0 || tv.tv_usec < 0 => return ret(Err(libc::EINVAL)),
        Some(tv) => {
            Some(Duration::new(tv.tv_sec as u64, 0) + Duration::from_micros(tv.tv_usec as u64))
        }
    };
    let rc = guard(-1, || mixed(&mut pfds, timeout, std::ptr::null()));
    // SAFETY: as above.
    unsafe { poll_to_sets(rc, &pfds, sets) }
}

#[no_mangle]
// SAFETY: callers uphold pselect's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let sets = [r, w, e];
    // SAFETY: the sets are NULL or valid per pselect(2).
    let Some(mut pfds) = (unsafe { sets_to_poll(n, sets) }) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::pselect(n, r, w, e, t, mask) };
    };
    // SAFETY: t is NULL or a valid timespec per pselect(2).
    let timeout = match unsafe { t.as_ref() }.map(ts_duration).transpose() {
        Ok(t) => t,
        Err(e) => return ret(Err(e)),
    };
    let rc = guard(-1, || mixed(&mut pfds, timeout, mask));
    // SAFETY: as above.
    unsafe { poll_to_sets(rc, &pfds, sets) }
}
