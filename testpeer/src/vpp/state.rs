//! The emulated session layer's object model, mirroring VPP's own tables so indices and
//! handles come out the same: apps (`app_main.app_pool`), app workers (`app_workers`, global
//! `wrk_index`) with per-app worker maps (`wrk_map_index`), segment managers, the namespace's
//! sapi sockets (index 0 is the listener), the api-client-index → app table, and cert/key pairs.
//! Also each worker's pending events per VPP thread (`app_wrk->wrk_evts`), flushed to its app mq
//! by that thread's loop. The whole state sits behind one mutex, which plays the part of VPP's
//! worker barrier.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::config::Faults;
use crate::log::{Dir, MsgKind, MsgLog};
use crate::pool::Pool;
use crate::sapi::socket;
use crate::vpp::segment_manager::{SegManager, SmProps};
use crate::vpp::segments::AppMq;
use crate::vpp::sessions::Sessions;

/// The only app namespace the peer has: `default`, index 0.
pub const NS_INDEX: u32 = 0;
/// `APP_INVALID_INDEX`.
pub const INVALID: u32 = u32::MAX;

/// An application (`application_t`).
pub struct App {
    pub name: Vec<u8>,
    pub flags: u64,
    pub props: SmProps,
    /// wrk_map_index → global app worker index.
    pub worker_maps: Pool<u32>,
}

/// An event waiting for delivery on a worker's app mq (`session_event_t` in `wrk_evts`).
/// Session events carry the session index on the thread whose queue holds them; their message
/// is built when the thread flushes them, from the session as it is then (session_input.c
/// `app_worker_flush_events_inline`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrkEvt {
    /// APP_ADD_SEGMENT: SEND_FDS on the worker's socket, then the mq message.
    AddSegment(u64),
    /// APP_DEL_SEGMENT.
    DelSegment(u64),
    /// A message built when queued (BOUND, UNLISTEN_REPLY, a failed CONNECTED).
    Msg(Box<vcl_codec::msg::CtrlMsg>),
    /// ACCEPTED for session index.
    Accepted(u32),
    /// CONNECTED (success) for session index.
    Connected(u32),
    /// DISCONNECTED.
    Disconnected(u32),
    /// RESET.
    Reset(u32),
    /// CLEANUP of the given type (SESSION frees the session once delivered).
    Cleanup(u32, vcl_codec::msg::CleanupType),
    /// IO RX (`builtin_app_rx_callback` = `mq_send_io_rx_event`).
    IoRx(u32),
    /// IO TX (`mq_send_io_tx_event`).
    IoTx(u32),
}

impl WrkEvt {
    /// The mq ring the event goes on (`mq_event_ring_index`).
    pub fn ring(&self) -> u32 {
        match self {
            WrkEvt::IoRx(_) | WrkEvt::IoTx(_) => vcl_svm::mq::IO_RING,
            _ => vcl_svm::mq::CTRL_RING,
        }
    }
}

/// An app worker (`app_worker_t`).
pub struct AppWorker {
    pub app_index: u32,
    pub wrk_map_index: u32,
    pub api_client_index: u32,
    pub sm_index: u32,
    pub mq: Option<AppMq>,
    /// Pending events per VPP thread.
    pub evts: Vec<VecDeque<WrkEvt>>,
    /// Threads on which delivery found the mq busy or full (`wrk_mq_congested`).
    pub congested: Vec<bool>,
}

/// One sapi connection (`clib_socket_t` in `app_ns->app_sockets`).
pub struct Sock {
    /// None for the listener's slot and for connections VPP stopped polling but never freed.
    pub fd: Option<OwnedFd>,
    /// `aah_app_wrk_index`: the global app worker this connection was last attached to.
    pub app_wrk_index: u32,
    /// Datagrams received (fault injection counts them).
    pub n_rx: u32,
}

/// A cert/key pair (`app_cert_key_pair_t`).
pub struct CertKey {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// A reply to send on a sapi socket after the state lock is released.
pub struct SapiReply {
    pub sock: u32,
    pub bytes: [u8; vcl_codec::sapi::SAPI_MSG_LEN],
    pub fds: Vec<OwnedFd>,
}

/// Everything the emulated VPP knows.
pub struct State {
    pub threads: u8,
    /// Largest segment the peer agrees to create (hostile sizes fail like a failed memfd).
    pub max_segment_size: u64,
    pub faults: Faults,
    pub apps: Pool<App>,
    pub wrks: Pool<AppWorker>,
    pub sms: Pool<SegManager>,
    pub socks: Pool<Sock>,
    /// `app_main.app_by_api_client_index`.
    pub api_table: HashMap<u32, u32>,
    pub ckpairs: Pool<CertKey>,
    /// `smm->seg_name_counter`.
    pub seg_name_counter: u32,
    /// Offsets of the VPP thread mqs in the vpp mqs segment.
    pub vpp_mq_offsets: Vec<u64>,
    /// The vpp mqs segment's memfd (sent with every attach reply).
    pub vpp_mqs_fd: RawFd,
    /// The vpp mqs segment itself (apps place ext configs in chunks of it).
    pub vpp_mqs_seg: Option<std::sync::Arc<vcl_svm::Segment>>,
    /// The last ext configs received (tests look at them).
    pub ext_configs: std::collections::VecDeque<Option<vcl_codec::ext_cfg::ExtCfg>>,
    /// Closed connections whose fds the sapi thread drops once it is not polling them.
    pub graveyard: Vec<OwnedFd>,
    /// The I/O thread's poll, waited out after closing a socket it may be polling.
    pub io_gate: std::sync::Arc<crate::transport::gate::IoGate>,
    pub log: MsgLog,
    /// Set when a fault asks the whole peer to die.
    pub dead: bool,
    /// Sessions, listeners and lookup tables.
    pub sessions: Sessions,
    /// How long after bytes come in the tx pass of the ACK owed for them runs
    /// ([`crate::vpp::kinds::ACK_PASS`] unless a test widens it).
    pub tcp_ack_pass: std::time::Duration,
}

/// Duplicate an fd we own so a reply can carry it after the lock is released.
#[allow(unsafe_code)] // state objects keep fds by number; this names one to duplicate it
pub fn dup_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: callers pass fds owned by live state objects; the borrow ends before they can go.
    unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()
}

impl State {
    pub fn new(
        threads: u8,
        faults: Faults,
        vpp_mq_offsets: Vec<u64>,
        vpp_mqs_fd: RawFd,
        log_cap: usize,
    ) -> State {
        let mut st = State {
            threads,
            max_segment_size: u64::MAX,
            faults,
            apps: Pool::default(),
            wrks: Pool::default(),
            sms: Pool::default(),
            socks: Pool::default(),
            api_table: HashMap::new(),
            ckpairs: Pool::default(),
            seg_name_counter: 0,
            vpp_mq_offsets,
            vpp_mqs_fd,
            vpp_mqs_seg: None,
            ext_configs: Default::default(),
            graveyard: Vec::new(),
            io_gate: Default::default(),
            log: MsgLog::new(log_cap),
            tcp_ack_pass: crate::vpp::kinds::ACK_PASS,
            dead: false,
            sessions: Sessions::default(),
        };
        st.sessions.pools = (0..threads).map(|_| Pool::default()).collect();
        st.sessions.next_local_port = 49152;
        // The namespace listener takes socket index 0 (session_api.c
        // `appns_sapi_add_ns_socket` allocates it first).
        st.socks.put(Sock {
            fd: None,
            app_wrk_index: INVALID,
            n_rx: 0,
        });
        // Cert/key index 0 is reserved (application_crypto.c: "Index 0 is invalid").
        st.ckpairs.put(CertKey {
            cert: Vec::new(),
            key: Vec::new(),
        });
        st
    }

    /// `appns_sapi_socket_handle`.
    pub fn sock_handle(sock: u32) -> u32 {
        (NS_INDEX << 16) | (sock & 0xffff)
    }

    /// Take indices for builtin apps (one app, one worker, one segment manager and one segment
    /// name each), as VPP's builtin apps (tls, http, ...) do before any external attach.
    pub fn reserve_builtins(&mut self, n: u32) {
        for _ in 0..n {
            let props = SmProps::from_options(&[0; vcl_codec::sapi::opt::N_OPTIONS], 1, false);
            let app = self.apps.put(App {
                name: b"builtin".to_vec(),
                flags: vcl_codec::sapi::app_flags::IS_BUILTIN,
                props,
                worker_maps: Pool::default(),
            });
            let wrk = self.wrks.put(AppWorker {
                app_index: app,
                wrk_map_index: 0,
                api_client_index: INVALID,
                sm_index: INVALID,
                mq: None,
                evts: Vec::new(),
                congested: Vec::new(),
            });
            self.sms.put(SegManager::new(wrk));
            self.seg_name_counter += 1;
        }
    }

    /// Log a message.
    pub fn note(&mut self, dir: Dir, kind: MsgKind, ctx: u32) {
        self.log.push(dir, kind, ctx);
    }

    /// `application_lookup`: the app a client index was registered for, if still valid.
    pub fn app_lookup(&self, api_client_index: u32) -> Option<u32> {
        let a = *self.api_table.get(&api_client_index)?;
        self.apps.contains(a).then_some(a)
    }

    /// Global worker index of `wrk_map_index` in `app`.
    pub fn worker_of(&self, app: u32, wrk_map_index: u32) -> Option<u32> {
        self.apps.get(app)?.worker_maps.get(wrk_map_index).copied()
    }

    /// The raw fd of the socket behind an api client handle.
    pub fn sock_fd_of_handle(&self, handle: u32) -> Option<BorrowedFd<'_>> {
        if handle >> 16 != NS_INDEX {
            return None;
        }
        let s = self.socks.get(handle & 0xffff)?;
        s.fd.as_ref().map(|f| f.as_fd())
    }

    /// session_api.c `sapi_socket_close_w_handle`: close a connection from VPP's side and free
    /// its socket index. The fd is shut down now and dropped by the sapi thread later.
    pub fn close_socket_w_handle(&mut self, handle: u32) {
        if handle >> 16 != NS_INDEX || handle & 0xffff == 0 {
            return;
        }
        let idx = handle & 0xffff;
        if let Some(s) = self.socks.remove(idx) {
            if let Some(fd) = s.fd {
                socket::shutdown(fd.as_raw_fd());
                self.graveyard.push(fd);
                self.note(Dir::Tx, MsgKind::Close, idx);
            }
        }
    }

    /// A connection VPP keeps in its table but no longer reads (it saw EOF on a socket with no
    /// worker): close our end, keep the index allocated, as VPP never frees it.
    pub fn zombify(&mut self, sock: u32) {
        if let Some(s) = self.socks.get_mut(sock) {
            if let Some(fd) = s.fd.take() {
                self.graveyard.push(fd);
            }
        }
    }

    /// application_worker.c `app_worker_free` for what the peer models: pending events go,
    /// the connects segment manager and its segments are freed (no DEL_SEGMENT: the manager
    /// is detached first), then the worker index.
    pub fn app_worker_free(&mut self, wrk: u32) {
        if !self.wrks.contains(wrk) {
            return;
        }
        self.worker_sessions_detach(wrk);
        let Some(w) = self.wrks.remove(wrk) else {
            return;
        };
        if w.sm_index != INVALID {
            self.sms.remove(w.sm_index);
        }
        tracing::debug!(wrk, app = w.app_index, "app worker freed");
    }

    /// application.c `application_free`: frees every worker (their sockets stay open and the
    /// api table keeps their entries, exactly as VPP leaves them) and the app index.
    pub fn application_free(&mut self, app: u32) {
        let Some(a) = self.apps.remove(app) else {
            return;
        };
        for (_, &wrk) in a.worker_maps.iter() {
            self.app_worker_free(wrk);
        }
        tracing::debug!(app, "app freed");
    }

    /// application.c `vnet_app_worker_add_del` (delete): drop the api table entry, close the
    /// worker's socket, free the worker and its map entry, and the app with its last worker.
    pub fn worker_del(&mut self, app: u32, wrk_map_index: u32) -> Result<(), i32> {
        use vcl_codec::session_error::SESSION_E_INVALID;
        let wrk = self
            .worker_of(app, wrk_map_index)
            .ok_or(SESSION_E_INVALID)?;
        let handle = self
            .wrks
            .get(wrk)
            .map(|w| w.api_client_index)
            .ok_or(SESSION_E_INVALID)?;
        self.api_table.remove(&handle);
        self.close_socket_w_handle(handle);
        self.app_worker_free(wrk);
        let left = self.apps.get_mut(app).map(|a| {
            a.worker_maps.remove(wrk_map_index);
            a.worker_maps.len()
        });
        if left == Some(0) {
            self.application_free(app);
        }
        Ok(())
    }

    /// session_node.c `app_mq_detach_handler`: look the app up by client index and detach the
    /// workers registered with that client index (docs/wire.md#app_detach-scope), each losing
    /// its socket. False if no app has that client index.
    pub fn app_detach(&mut self, api_client_index: u32) -> bool {
        let Some(app) = self.app_lookup(api_client_index) else {
            tracing::debug!(client = api_client_index, "APP_DETACH for unknown client");
            return false;
        };
        tracing::debug!(app, client = api_client_index, "APP_DETACH");
        self.detach_process(app, api_client_index);
        true
    }

    /// application.c `application_detach_process`: delete the app's workers registered with
    /// `api_client_index` (closing their sockets); if none matches, free the whole app.
    pub fn detach_process(&mut self, app: u32, api_client_index: u32) {
        let Some(a) = self.apps.get(app) else {
            return;
        };
        let maps: Vec<u32> = a
            .worker_maps
            .iter()
            .filter(|(_, &w)| {
                self.wrks
                    .get(w)
                    .is_some_and(|w| w.api_client_index == api_client_index)
            })
            .map(|(m, _)| m)
            .collect();
        if maps.is_empty() {
            self.application_free(app);
            return;
        }
        for m in maps {
            let _ = self.worker_del(app, m);
        }
    }

    /// session_api.c `sapi_socket_detach`: the connection broke; delete the worker it was
    /// attached to (VPP RPCs `vnet_app_worker_add_del` to main).
    pub fn socket_detach(&mut self, sock: u32) {
        let Some(wrk) = self.socks.get(sock).map(|s| s.app_wrk_index) else {
            return;
        };
        let Some((app, map)) = self.wrks.get(wrk).map(|w| (w.app_index, w.wrk_map_index)) else {
            return;
        };
        let _ = self.worker_del(app, map);
    }

    /// application.c `application_force_detach` (on the main thread): free the whole app.
    pub fn force_detach(&mut self, app: u32) {
        tracing::warn!(app, "force detaching app");
        self.application_free(app);
    }

    /// Queue an event for a worker on VPP thread `thread` (`app_worker_add_event_custom`).
    pub fn add_event(&mut self, wrk: u32, thread: u8, evt: WrkEvt) {
        if let Some(w) = self.wrks.get_mut(wrk) {
            if let Some(q) = w.evts.get_mut(usize::from(thread)) {
                q.push_back(evt);
            }
        }
    }

    /// Number of live apps / workers (builtin placeholders included).
    pub fn counts(&self) -> (usize, usize) {
        (self.apps.len(), self.wrks.len())
    }
}
