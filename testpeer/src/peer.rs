//! [`Peer`]: starts the emulated VPP in the calling process (the vpp mqs segment, the sapi
//! listener, one sapi thread and one thread per emulated VPP thread), offers introspection and
//! test actions (segment add/delete), and shuts everything down on [`Peer::stop`] or drop.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::config::{PeerConfig, SockAddr};
use crate::log::LogEntry;
use crate::sapi::{self, socket};
use crate::shared::Shared;
use crate::vpp::segments::create_vpp_mqs;
use crate::vpp::state::State;
use crate::vpp::thread as vpp_thread;

/// One app worker as the peer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Global app worker index (`wrk_index`).
    pub wrk_index: u32,
    /// Index within the app (`wrk_map_index`, what VCL calls `vpp_wrk_index`).
    pub wrk_map_index: u32,
    /// `api_client_handle` = `(ns << 16) | socket index`.
    pub api_client_index: u32,
    /// Handles of the segments of its connects segment manager.
    pub segment_handles: Vec<u64>,
    /// App mq offset in its first segment (None if it did not fit).
    pub app_mq: Option<u64>,
    /// Events not yet delivered to its app mq, all threads.
    pub pending_events: usize,
}

/// One attached app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    pub app_index: u32,
    pub name: String,
    pub workers: Vec<WorkerInfo>,
}

/// The running test peer.
pub struct Peer {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Peer {
    /// Create the vpp mqs segment, bind the sapi socket and start the threads.
    pub fn start(cfg: PeerConfig) -> io::Result<Peer> {
        let threads = cfg.threads.max(1);
        let vpp_mqs = create_vpp_mqs(threads, cfg.wrk_mq_length, cfg.wrk_mqs_segment_size)?;
        let offsets = vpp_mqs.mqs.iter().map(|q| q.offset()).collect();
        let mut state = State::new(
            threads,
            cfg.faults.clone(),
            offsets,
            vpp_mqs.seg.fd(),
            cfg.log_capacity,
        );
        state.vpp_mqs_seg = Some(vpp_mqs.seg.clone());
        state.reserve_builtins(cfg.builtin_apps);
        state.max_segment_size = cfg.max_segment_size;
        let listener = socket::bind_listener(&cfg.socket)?;
        let wake = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(io::Error::from)?;
        let shared = Arc::new(Shared::new(
            PeerConfig { threads, ..cfg },
            state,
            wake,
            vpp_mqs,
        ));
        let mut handles = Vec::new();
        let s = shared.clone();
        handles.push(spawn("vpp-sapi", move || sapi::run(s, listener))?);
        let s = shared.clone();
        handles.push(spawn("vpp-io", move || crate::transport::io::run(s))?);
        for t in 0..threads {
            let s = shared.clone();
            let name = if t == 0 {
                "vpp-main".to_string()
            } else {
                format!("vpp-wk-{}", t - 1)
            };
            handles.push(spawn(&name, move || vpp_thread::run(s, t))?);
        }
        tracing::info!(socket = %shared.cfg.socket, threads, "test peer started");
        Ok(Peer {
            shared,
            threads: handles,
        })
    }

    /// Stop the threads, close every connection, unmap everything and remove the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.shared.wake.write(1);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        {
            let mut st = self.shared.lock();
            st.graveyard.clear();
            // Kernel sockets go with their sessions.
            for p in st.sessions.pools.iter_mut() {
                *p = crate::pool::Pool::default();
            }
            st.sessions.half_opens = crate::pool::Pool::default();
            for i in st.socks.indices() {
                if let Some(s) = st.socks.get_mut(i) {
                    s.fd = None;
                }
            }
        }
        if let SockAddr::Path(p) = &self.shared.cfg.socket {
            let _ = std::fs::remove_file(p);
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &PeerConfig {
        &self.shared.cfg
    }

    /// Where the sapi socket listens.
    pub fn socket_addr(&self) -> &SockAddr {
        &self.shared.cfg.socket
    }

    /// Whether an abrupt-exit fault fired (the peer then serves nothing).
    pub fn is_dead(&self) -> bool {
        self.shared.lock().dead
    }

    /// Attached external apps (builtin placeholders excluded).
    pub fn apps(&self) -> Vec<AppInfo> {
        let st = self.shared.lock();
        let first = self.shared.cfg.builtin_apps;
        st.apps
            .iter()
            .filter(|(i, _)| *i >= first)
            .map(|(i, a)| AppInfo {
                app_index: i,
                name: String::from_utf8_lossy(&a.name).into_owned(),
                workers: a
                    .worker_maps
                    .iter()
                    .filter_map(|(m, &w)| worker_info(&st, m, w))
                    .collect(),
            })
            .collect()
    }

    /// Number of attached external apps.
    pub fn n_apps(&self) -> usize {
        self.apps().len()
    }

    /// Number of app workers of external apps.
    pub fn n_workers(&self) -> usize {
        self.apps().iter().map(|a| a.workers.len()).sum()
    }

    /// The message log (oldest first).
    pub fn log(&self) -> Vec<LogEntry> {
        self.shared.lock().log.snapshot()
    }

    /// Live cert/key pair indices (index 0 is VPP's reserved entry and is not listed).
    pub fn cert_keys(&self) -> Vec<u32> {
        let st = self.shared.lock();
        st.ckpairs
            .indices()
            .into_iter()
            .filter(|&i| i != 0)
            .collect()
    }

    /// Offsets of the VPP thread mqs in the vpp mqs segment.
    pub fn vpp_mq_offsets(&self) -> Vec<u64> {
        self.shared.vpp_mqs.mqs.iter().map(|q| q.offset()).collect()
    }

    /// Poll `cond` until it holds or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, cond: impl Fn(&Peer) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Give worker `wrk_map_index` of `app_index` a new segment of `size` bytes and announce
    /// it: SEND_FDS on its socket, then APP_ADD_SEGMENT on its app mq
    /// (docs/wire.md#segment-announcements), delivered by VPP thread 0 within a few ms.
    /// Returns the segment handle `(sm << 32) | seg`.
    pub fn add_segment(&self, app_index: u32, wrk_map_index: u32, size: u64) -> io::Result<u64> {
        self.shared
            .lock()
            .add_segment(app_index, wrk_map_index, size)
    }

    /// Connection sessions ever allocated (listeners not counted): (cut-through, transport).
    pub fn sessions_ever(&self) -> (u32, u32) {
        self.shared.lock().sessions.ever
    }

    /// Sessions and listeners (all threads), for introspection.
    pub fn sessions(&self) -> Vec<crate::SessionInfo> {
        self.shared.lock().session_infos()
    }

    /// The last ext configs apps sent with LISTEN/CONNECT/CONNECT_STREAM (at most 16, oldest
    /// first), as decoded from their chunks; None for a chunk that did not decode.
    pub fn ext_configs(&self) -> Vec<Option<vcl_codec::ext_cfg::ExtCfg>> {
        self.shared.lock().ext_configs.iter().cloned().collect()
    }

    /// Faults on datagrams UDP sessions receive from the network from now on: drop every
    /// `drop_every`-th (per socket), deliver pairs swapped.
    pub fn set_udp_faults(&self, drop_every: Option<u32>, reorder: bool) {
        let mut st = self.shared.lock();
        st.faults.udp_drop_every = drop_every;
        st.faults.udp_reorder = reorder;
    }

    /// When the tx pass of the ACK owed for received TCP bytes runs, after they come in
    /// (default `vpp::kinds::ACK_PASS`; tests widen it to act inside the window).
    pub fn set_tcp_ack_pass(&self, after: std::time::Duration) {
        self.shared.lock().tcp_ack_pass = after;
    }

    /// Fault: make session `handle` reset as if its transport peer had sent a RST (the kernel
    /// socket of a TCP session is reset too). False if there is no such session.
    pub fn reset_session(&self, handle: u64) -> bool {
        self.shared.lock().fault_reset(handle)
    }

    /// Fault: hold the shared mutex of VPP thread `thread`'s mq for `d` from another thread,
    /// as a stopped or hostile app attached to it would. Returns once the mutex is held.
    pub fn hold_vpp_mq_mutex(&self, thread: usize, d: Duration) -> JoinHandle<()> {
        let shared = self.shared.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            if let Some(q) = shared.vpp_mqs.mqs.get(thread) {
                if let Err(e) = q.hold_shm_lock_for(d, || {
                    let _ = tx.send(());
                }) {
                    tracing::error!(%e, "fault: could not hold the vpp mq mutex");
                }
            }
        });
        let _ = rx.recv();
        tracing::warn!(thread, ?d, "fault: vpp mq mutex held");
        h
    }

    /// Fault: try to shrink every segment of app `app_index` (see
    /// [`crate::faults::shrink_segment`]); the first error (EPERM when sealed) if any.
    pub fn shrink_app_segments(&self, app_index: u32) -> io::Result<()> {
        let st = self.shared.lock();
        let mut r = Ok(());
        for (_, w) in st.wrks.iter().filter(|(_, w)| w.app_index == app_index) {
            let Some(sm) = st.sms.get(w.sm_index) else {
                continue;
            };
            for (_, s) in sm.segments.iter() {
                if let (Err(e), Ok(())) = (crate::faults::shrink_segment(&s.seg), &r) {
                    r = Err(e);
                }
            }
        }
        r
    }

    /// Fault: corrupt the app mq of every worker of app `app_index` (see
    /// [`crate::faults::corrupt_live_mq`]). False if the app has no worker with an mq.
    pub fn corrupt_app_mq(&self, app_index: u32) -> bool {
        let st = self.shared.lock();
        let mut any = false;
        for (_, w) in st.wrks.iter().filter(|(_, w)| w.app_index == app_index) {
            if let Some(m) = &w.mq {
                any |= crate::faults::corrupt_live_mq(&m.mq);
            }
        }
        any
    }

    /// Fault: handle an APP_DETACH for api client handle `client` now, as a late one naming a
    /// reused handle does to whichever app holds it (`application_detach_process`: that
    /// app's workers registered with the handle are deleted and lose their sockets). False if
    /// no app has that handle.
    pub fn app_detach(&self, client: u32) -> bool {
        self.shared.lock().app_detach(client)
    }

    /// Delete a segment: it is unmapped and closed now and APP_DEL_SEGMENT is sent to its
    /// worker.
    pub fn del_segment(&self, handle: u64) -> io::Result<()> {
        self.shared.lock().del_segment(handle)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
        }
    }
}

fn worker_info(st: &State, map: u32, wrk: u32) -> Option<WorkerInfo> {
    let w = st.wrks.get(wrk)?;
    let segment_handles = st
        .sms
        .get(w.sm_index)
        .map(|sm| {
            sm.segments
                .indices()
                .into_iter()
                .map(|s| crate::vpp::segment_manager::segment_handle(w.sm_index, s))
                .collect()
        })
        .unwrap_or_default();
    Some(WorkerInfo {
        wrk_index: wrk,
        wrk_map_index: map,
        api_client_index: w.api_client_index,
        segment_handles,
        app_mq: w.mq.as_ref().map(|m| m.offset()),
        pending_events: w.evts.iter().map(|q| q.len()).sum(),
    })
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_string()).spawn(f)
}
