//! Re-attach after VPP restarted: once a worker found VPP gone (its app socket hung up), one
//! thread of ours waits for VPP to come back on the same app socket, attaches the app again
//! (same name and configuration), registers every other worker again, and gives each worker
//! its new socket, queues and first segment. Listeners that were open are listened again
//! from the same session, so the app's handles stay valid; connected sessions stay failed
//! (their fifos died with VPP). Retries back off from 10 ms to 200 ms: a failed connect to
//! the app socket costs microseconds, and a longer cap only delays the first client once VPP
//! is back. Three log lines per episode: detached (per worker, in `worker::detach`),
//! re-attaching, re-attached.
//!
//! Upstream (vcl_api_retry_attach in src/vcl/vppcom.c) re-attaches from inside epoll_wait and
//! select with use-mq-eventfd only; this one works in every mode and needs no caller. The app
//! lock is taken only for snapshots and the final swap, never across socket I/O.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{add_worker_exchange, attach_exchange, sock_timeout, APP};
use crate::config::{Config, SapiAddr};
use crate::sapi;
use crate::session;
use crate::worker::{self, Worker, WorkerParts, ON_DETACH};

/// First retry delay; doubled after every failed attempt up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_millis(200);

/// How long the re-attach waits for VPP to confirm a listener's LISTEN.
const RELISTEN_WAIT: Duration = Duration::from_secs(5);

/// `reattach on|off` of the current app.
static ENABLED: AtomicBool = AtomicBool::new(true);
/// A re-attach thread is running (one at a time).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Set at app create: whether a detach starts a re-attach.
pub(super) fn enable(on: bool) {
    ENABLED.store(on, Ordering::Release);
    worker::set_reattaches(on);
    let _ = ON_DETACH.set(on_worker_detached);
}

/// In a forked child: the app is the parent's (a re-attach here would make a second app),
/// and the parent's re-attach thread does not exist here.
pub(super) fn forked() {
    ENABLED.store(false, Ordering::Release);
    worker::set_reattaches(false);
    RUNNING.store(false, Ordering::Release);
}

/// The worker layer's detach hook: start the re-attach thread unless one runs or it is off.
fn on_worker_detached() {
    if !ENABLED.load(Ordering::Acquire) || RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("vcl-reattach".into())
        .spawn(run);
    if let Err(e) = spawned {
        tracing::error!("cannot start the re-attach thread: {e}");
        RUNNING.store(false, Ordering::Release);
    }
}

/// What a re-attach needs from the app, copied under its lock.
struct Snapshot {
    gen: u64,
    cfg: Config,
    addr: SapiAddr,
    name: String,
    workers: Vec<Arc<Worker>>,
}

fn snapshot(gen: Option<u64>) -> Option<Snapshot> {
    let guard = APP.lock();
    let app = guard.as_ref().filter(|a| gen.is_none_or(|g| g == a.gen))?;
    Some(Snapshot {
        gen: app.gen,
        cfg: app.cfg.clone(),
        addr: app.addr.clone(),
        name: app.name.clone(),
        workers: app
            .workers
            .iter()
            .map(|(_, w)| w.clone())
            .filter(|w| !w.is_foreign())
            .collect(),
    })
}

fn run() {
    let (gen, reattached) = reattach();
    RUNNING.store(false, Ordering::Release);
    // A detach seen while this thread ran started nothing (one thread at a time): the app
    // this thread served may have been destroyed and a new one lost VPP meanwhile, or VPP
    // died again right after the re-attach. Look once more now that the slot is free (not
    // for an app this thread gave up on: that would loop).
    let again = snapshot(None).is_some_and(|s| {
        (s.gen != gen || reattached) && s.workers.iter().any(|w| w.known_detached())
    });
    if again {
        on_worker_detached();
    }
}

/// The re-attach loop: the generation of the app it served (u64::MAX: none) and whether it
/// re-attached it.
fn reattach() -> (u64, bool) {
    let Some(first) = snapshot(None) else {
        return (u64::MAX, false);
    };
    // A worker dropped on its own (a corrupt app mq) while VPP still serves the app is not a
    // restart: attaching again would make a second app.
    if first.workers.iter().any(|w| !w.sock_gone()) {
        tracing::info!("not re-attaching: VPP still holds the app's socket");
        return (first.gen, false);
    }
    for w in &first.workers {
        w.mark_detached("VPP closed the app socket");
    }
    tracing::warn!(
        "re-attaching to VPP at {} (retrying every 10 ms to 200 ms)",
        sapi::addr_display(&first.addr)
    );
    let started = std::time::Instant::now();
    let mut delay = FIRST_DELAY;
    let mut attempts = 0u32;
    loop {
        if !ENABLED.load(Ordering::Acquire) {
            return (first.gen, false);
        }
        // the app may have been destroyed (or re-created) meanwhile
        let Some(snap) = snapshot(Some(first.gen)) else {
            return (first.gen, false);
        };
        attempts += 1;
        match attempt(&snap) {
            Ok(None) => return (first.gen, false), // the app was destroyed meanwhile
            Ok(Some((workers, listeners))) => {
                tracing::warn!(
                    "re-attached to VPP at {} after {:?} ({attempts} attempts): {workers} \
                     workers, {listeners} listeners listening again",
                    sapi::addr_display(&snap.addr),
                    started.elapsed()
                );
                return (first.gen, true);
            }
            Err(why) => tracing::debug!("re-attach attempt {attempts}: {why}"),
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// One try: attach, add the other workers, then swap each worker over. Returns (workers,
/// listeners listened again), or None if the app was destroyed meanwhile.
fn attempt(snap: &Snapshot) -> Result<Option<(usize, usize)>, String> {
    let fd = sapi::connect_app_socket_quiet(&snap.addr).map_err(|e| e.desc().to_string())?;
    let (vpp, parts0) = attach_exchange(fd, &snap.cfg, &snap.addr, &snap.name)
        .map_err(|_| "attach failed".to_string())?;
    let app_index = parts0.app_index;
    let timeout = sock_timeout(&snap.cfg);
    let mut parts: Vec<(Arc<Worker>, WorkerParts)> = Vec::new();
    let mut spare = Some(parts0);
    for w in &snap.workers {
        if w.index == 0 {
            if let Some(p) = spare.take() {
                parts.push((w.clone(), p));
            }
            continue;
        }
        let fd = sapi::connect_app_socket_quiet(&snap.addr).map_err(|e| e.desc().to_string())?;
        let p = add_worker_exchange(fd, timeout, app_index, vpp.clone())
            .map_err(|e| format!("worker {} not added: {e}", w.index))?;
        parts.push((w.clone(), p));
    }
    {
        let mut guard = APP.lock();
        let Some(app) = guard.as_mut().filter(|a| a.gen == snap.gen) else {
            return Ok(None); // what was made closes with `parts`: VPP drops it
        };
        app.vpp = vpp;
        app.app_index = app_index;
        app.spare = spare;
    }
    let n_workers = parts.len();
    let mut n_listeners = 0;
    for (w, p) in parts {
        let mut ss = w.sessions.lock();
        // fail what VPP's death left behind first, if no waiter of this worker did yet
        w.apply_detach(&mut ss);
        if let Err(e) = w.replace_conn(p) {
            tracing::error!("worker {}: not re-attached: {e}", w.index);
            continue;
        }
        ss.detached = false;
        n_listeners += session::relisten(&w, &mut ss, RELISTEN_WAIT, None);
    }
    Ok(Some((n_workers, n_listeners)))
}
