//! epoll over mixed sets. The app's epoll fd is a real kernel epoll: kernel fds live there as
//! usual. VPP sockets added to it are kept here (an [`EpSet`] in the fd table under the epoll
//! fd's number) and the eventfd of each worker owning one of them is added to the kernel set,
//! so `epoll_wait` sleeps in the kernel and wakes for either kind. On waking, the workers'
//! events are drained and VPP sockets' readiness is reported with the app's data.

use std::ffi::c_int;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use libc::{epoll_event, sigset_t, timespec, EPOLLET, EPOLLONESHOT};
use parking_lot::Mutex;
use vcl::api::{self, Worker};

use crate::fdtab::{self, Entry};
use crate::poll::{check_dead, drain_evfd, is_dead, linux_bits, CAP};
use crate::real;
use crate::sock::VSock;
use crate::{guard, ret};

/// epoll data of a worker's eventfd in the kernel set: "vcl\0" then the worker index.
const MARK: u64 = 0x7663_6c00_0000_0000;
const MARK_MASK: u64 = 0xffff_ffff_0000_0000;

struct Reg {
    fd: c_int,
    sock: Weak<VSock>,
    events: u32,
    data: u64,
    /// Ready bits seen at the last look (edge-triggered: report only new ones).
    last: u32,
    /// The socket's I/O epoch at the last look: I/O since then re-arms every edge, since the
    /// app may have consumed what was reported and new data is then a new edge.
    epoch: u32,
    /// One-shot registration already fired (until EPOLL_CTL_MOD).
    fired: bool,
}

#[derive(Default)]
struct Inner {
    regs: Vec<Reg>,
    /// Workers whose eventfd is in the kernel set, with that eventfd.
    workers: Vec<(Worker, Option<c_int>)>,
    /// Where the next scan starts, so a full `maxevents` does not starve later sockets.
    cursor: usize,
    /// Epoll fds with VPP members nested in this one.
    nested: Vec<Nested>,
}

/// A nested epoll set: also in the kernel set (its kernel fds and worker eventfds wake us);
/// here so that its VPP sockets' readiness reports it readable.
struct Nested {
    fd: c_int,
    set: Weak<EpSet>,
    data: u64,
}

/// The VPP half of an epoll set.
#[derive(Default)]
pub struct EpSet {
    inner: Mutex<Inner>,
}

static CREATE: Mutex<()> = Mutex::new(());

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

/// Readiness (Linux bits) of every registration now, with the sockets it was computed for.
fn ready_now(g: &Inner) -> (Vec<Option<Arc<VSock>>>, Vec<u32>) {
    let socks: Vec<Option<Arc<VSock>>> = g.regs.iter().map(|r| r.sock.upgrade()).collect();
    let mut got = vec![0u32; g.regs.len()];
    for (w, _) in &g.workers {
        let mut items = Vec::new();
        let mut idx = Vec::new();
        for (k, (r, s)) in g.regs.iter().zip(&socks).enumerate() {
            if let Some(s) = s.as_ref().filter(|s| s.w.same(w)) {
                if !r.fired {
                    for sh in std::iter::once(s.sh).chain(s.twin.get().copied()) {
                        items.push((sh, r.events, 0));
                        idx.push(k);
                    }
                }
            }
        }
        if items.is_empty() {
            continue;
        }
        if is_dead(w) {
            items
                .iter_mut()
                .for_each(|it| it.2 = (libc::EPOLLERR | libc::EPOLLHUP) as u32);
        } else {
            api::readiness(w, &mut items);
        }
        for (k, it) in idx.into_iter().zip(items) {
            got[k] |= linux_bits(it.2, it.1);
        }
    }
    (socks, got)
}

/// Whether `r` reports something now (`now` ready, ET edges re-armed by the app's I/O).
fn rearm(r: &mut Reg, s: Option<&Arc<VSock>>) {
    if let Some(s) = s {
        let e = s.epoch.load(std::sync::atomic::Ordering::Relaxed);
        if e != r.epoch {
            r.epoch = e;
            r.last = 0;
        }
    }
}

fn report_of(r: &Reg, now: u32) -> u32 {
    if r.fired {
        0
    } else if r.events & EPOLLET as u32 != 0 {
        now & !r.last
    } else {
        now
    }
}

impl EpSet {
    /// Whether a wait would report something now (nothing is consumed): a nested set is
    /// readable.
    fn peek(&self) -> bool {
        let g = self.inner.lock();
        let (socks, got) = ready_now(&g);
        let mine = g.regs.iter().zip(&socks).zip(&got).any(|((r, s), &now)| {
            let mut r2 = Reg {
                sock: Weak::new(),
                ..*r
            };
            rearm(&mut r2, s.as_ref());
            report_of(&r2, now) != 0
        });
        mine || g
            .nested
            .iter()
            .any(|n| n.set.upgrade().is_some_and(|i| i.peek()))
    }

    fn ctl_nested(&self, op: c_int, fd: c_int, inner: &Arc<EpSet>, ev: Option<epoll_event>) {
        let mut g = self.inner.lock();
        g.nested.retain(|n| n.fd != fd);
        if op != libc::EPOLL_CTL_DEL {
            if let Some(ev) = ev {
                g.nested.push(Nested {
                    fd,
                    set: Arc::downgrade(inner),
                    data: ev.u64,
                });
            }
        }
    }

    fn ctl(
        &self,
        epfd: c_int,
        op: c_int,
        fd: c_int,
        s: &Arc<VSock>,
        ev: Option<epoll_event>,
    ) -> Result<(), i32> {
        let mut g = self.inner.lock();
        g.regs.retain(|r| r.sock.strong_count() > 0);
        let pos = g
            .regs
            .iter()
            .position(|r| r.fd == fd && r.sock.upgrade().is_some_and(|x| Arc::ptr_eq(&x, s)));
        match (op, pos) {
            (libc::EPOLL_CTL_ADD, Some(_)) => return Err(libc::EEXIST),
            (libc::EPOLL_CTL_MOD, None) | (libc::EPOLL_CTL_DEL, None) => return Err(libc::ENOENT),
            (libc::EPOLL_CTL_DEL, Some(p)) => {
                g.regs.remove(p);
                return Ok(());
            }
            (libc::EPOLL_CTL_ADD, None) | (libc::EPOLL_CTL_MOD, Some(_)) => {}
            _ => return Err(libc::EINVAL),
        }
        let ev = ev.ok_or(libc::EFAULT)?;
        s.active.store(true, std::sync::atomic::Ordering::Relaxed);
        let reg = Reg {
            fd,
            sock: Arc::downgrade(s),
            events: ev.events,
            data: ev.u64,
            last: 0,
            epoch: s.epoch.load(std::sync::atomic::Ordering::Relaxed),
            fired: false,
        };
        match pos {
            Some(p) => g.regs[p] = reg,
            None => g.regs.push(reg),
        }
        if !g.workers.iter().any(|(w, _)| w.same(&s.w)) {
            let evfd = s.w.mq_eventfd();
            if let Some(e) = evfd {
                let mut kev = epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: MARK | u64::from(s.w.index()),
                };
                // SAFETY: kev is a valid event for the duration of the call.
                let r = unsafe { real::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, e, &mut kev) };
                if r < 0 && real::errno() != libc::EEXIST {
                    return Err(real::errno());
                }
            }
            g.workers.push((s.w.clone(), evfd));
        }
        Ok(())
    }

    /// Fill `out` with ready VPP sockets and readable nested sets; returns how many, and the
    /// data of the nested sets reported (the kernel may report them too).
    fn scan(&self, out: &mut [epoll_event]) -> (usize, Vec<u64>) {
        let mut g = self.inner.lock();
        g.regs.retain(|r| r.sock.strong_count() > 0);
        let (socks, got) = ready_now(&g);
        let len = g.regs.len();
        let start = if len == 0 { 0 } else { g.cursor % len };
        let mut n = 0;
        for j in 0..len {
            if n == out.len() {
                g.cursor = start + j;
                break;
            }
            let k = (start + j) % len;
            let r = &mut g.regs[k];
            rearm(r, socks[k].as_ref());
            let now = got[k];
            let report = report_of(r, now);
            r.last = now;
            if report == 0 {
                continue;
            }
            out[n] = epoll_event {
                events: report,
                u64: r.data,
            };
            n += 1;
            if r.events & EPOLLONESHOT as u32 != 0 {
                r.fired = true;
            }
        }
        let mut nested = Vec::new();
        g.nested.retain(|x| x.set.strong_count() > 0);
        for x in &g.nested {
            let Some(inner) = x.set.upgrade() else {
                continue;
            };
            // Its workers' eventfds make the nested epoll fd readable in the kernel: consume
            // them (the peek drains what they announced) so only real readiness shows there.
            inner.drain_signals();
            if n < out.len() && inner.peek() {
                out[n] = epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: x.data,
                };
                n += 1;
                nested.push(x.data);
            }
        }
        (n, nested)
    }

    fn has_evfd(&self, idx: u64) -> Option<c_int> {
        let g = self.inner.lock();
        g.workers
            .iter()
            .find(|(w, _)| u64::from(w.index()) == idx)
            .and_then(|(_, e)| *e)
    }

    /// Consume the eventfd counters of the set's workers (and of sets nested in it).
    fn drain_signals(&self) {
        let g = self.inner.lock();
        for fd in g.workers.iter().filter_map(|(_, e)| *e) {
            drain_evfd(fd);
        }
        for x in &g.nested {
            if let Some(i) = x.set.upgrade() {
                i.drain_signals();
            }
        }
    }

    /// An idle wait looks whether VPP went away for any of the set's workers.
    fn check_dead(&self) {
        let workers: Vec<Worker> = self
            .inner
            .lock()
            .workers
            .iter()
            .map(|(w, _)| w.clone())
            .collect();
        for w in &workers {
            check_dead(w);
        }
    }

    fn all_evfd(&self) -> bool {
        self.inner.lock().workers.iter().all(|(_, e)| e.is_some())
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
        ret(set.ctl(epfd, op, fd, &s, e).map(|_| 0))
    })
}

/// Wait on a set that holds VPP sockets.
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
    loop {
        let (n, nested) = set.scan(out);
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let kt = if n > 0 {
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
