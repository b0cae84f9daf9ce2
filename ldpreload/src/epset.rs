//! The VPP half of an app's epoll set: registrations of VPP sockets (level, edge, one-shot),
//! sets nested in it, and the workers whose eventfds sit in the kernel set. Computes what a
//! wait reports; the exported calls (epoll.rs) find sets through the fd table.

use std::ffi::c_int;
use std::sync::{Arc, Weak};

use libc::{epoll_event, EPOLLET, EPOLLONESHOT};
use vcl::api::{self, Worker};
use vcl_svm::sync::Mutex;

use crate::real;
use crate::sock::VSock;
use crate::wake::{check_dead, drain_evfd, is_dead, linux_bits};

/// epoll data of a worker's eventfd in the kernel set: "vcl\0" then the worker index.
pub const MARK: u64 = 0x7663_6c00_0000_0000;
pub const MARK_MASK: u64 = 0xffff_ffff_0000_0000;

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
            let extra = socks[k]
                .as_ref()
                .map_or(0, |s| crate::udp::idle_out(s, it.1));
            got[k] |= linux_bits(it.2 | extra, it.1);
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

    pub fn ctl_nested(&self, op: c_int, fd: c_int, inner: &Arc<EpSet>, ev: Option<epoll_event>) {
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

    pub fn ctl(
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
    pub fn scan(&self, out: &mut [epoll_event]) -> (usize, Vec<u64>) {
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

    pub fn has_evfd(&self, idx: u64) -> Option<c_int> {
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

    /// The set's workers and those of sets nested in it (for [`crate::wake::Sleeping`]).
    pub fn all_workers(&self) -> Vec<Worker> {
        let (mut workers, nested): (Vec<Worker>, Vec<_>) = {
            let g = self.inner.lock();
            let w = g.workers.iter().map(|(w, _)| w.clone()).collect();
            (w, g.nested.iter().filter_map(|x| x.set.upgrade()).collect())
        };
        for i in nested {
            for w in i.all_workers() {
                if !workers.iter().any(|x| x.same(&w)) {
                    workers.push(w);
                }
            }
        }
        workers
    }

    /// An idle wait looks whether VPP went away for any of the set's workers.
    pub fn check_dead(&self) {
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

    pub fn all_evfd(&self) -> bool {
        self.inner.lock().workers.iter().all(|(_, e)| e.is_some())
    }
}
