//! The process-wide application: configuration, the worker table, attach and detach.
//!
//! Attach (worker 0) and worker add follow VPP v26.06's app socket API (docs/wire.md#attach):
//! one socket per worker, the reply's fds in VPP's order, the vpp mqs segment mapped once per
//! process. Destroy detaches the current worker on the ctrl mq, closes every socket, unmaps
//! every segment and leaves no fd behind.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;
use vcl_codec::msg::{AppDetach, CtrlMsg};
use vcl_codec::sapi::{fd_flags, msg_type, opt, Attach, SapiMsg, WorkerAddDel};
use vcl_codec::session_error::session_error_str;
use vcl_svm::mq::{discover_vpp_mqs, MsgQueue};
use vcl_svm::sync::Mutex;
use vcl_svm::Segment;

use crate::config::{Config, SapiAddr};
use crate::error::Error;
use crate::sapi::{self, SapiSocket};
use crate::worker::{self, VppMqs, Worker, WorkerParts};

pub(crate) mod fork;
mod reattach;

/// What the app knows once vppcom_app_create succeeded.
struct App {
    cfg: Config,
    addr: SapiAddr,
    name: String,
    /// Which create this is (a re-attach started for one app never touches the next).
    gen: u64,
    app_index: u32,
    vpp: Arc<VppMqs>,
    workers: Slab<Arc<Worker>>,
    /// A re-attach's attach socket when worker 0 was unregistered (it keeps the app in VPP).
    spare: Option<WorkerParts>,
}

impl App {
    fn retire_workers(&self) {
        for (_, w) in &self.workers {
            w.retire();
        }
    }
}

impl Drop for App {
    /// Every way the app goes (destroy, a fork's re-attach) retires its workers, so threads
    /// that cache one stop using it.
    fn drop(&mut self) {
        self.retire_workers();
    }
}

/// Let a destroyed app go. Its workers retire now; closing its fds and unmapping its segments
/// (milliseconds once thousands of fifo pages were touched: the page tables go too) happens on
/// a short-lived thread, so destroy returns at once. Inline if no thread can be started.
fn release(app: App) {
    app.retire_workers();
    let spawned = std::thread::Builder::new()
        .name("vcl-release".into())
        .spawn(move || drop(app));
    // on failure the closure, and the app with it, was dropped here
    if let Err(e) = spawned {
        tracing::debug!("app released inline: no thread: {e}");
    }
}

static APP: Mutex<Option<App>> = Mutex::new(None);
static GEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long destroy waits for VPP to acknowledge APP_DETACH by closing the socket.
const DETACH_WAIT: Duration = Duration::from_millis(500);

/// Why app create failed, as the C ABI reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateError {
    /// A VCL error code (e.g. EEXIST when already initialised).
    Vcl(Error),
    /// Upstream's bare -1: no app socket, or the attach exchange failed.
    AttachFailed,
}

fn failed<E>(_: E) -> CreateError {
    CreateError::AttachFailed
}

fn sock_timeout(cfg: &Config) -> Duration {
    bounded_secs(cfg.app_timeout, 600.0, 3600.0)
}

/// `secs` as a duration in [1 ms, `hi`]; NaN (e.g. from a vppcom_cfg_t) means `default`.
fn bounded_secs(secs: f64, default: f64, hi: f64) -> Duration {
    let secs = if secs.is_nan() { default } else { secs };
    Duration::from_secs_f64(secs.clamp(0.001, hi))
}

/// Attach to VPP with `cfg` under `name` (or `vcl_app_<pid>`).
pub fn create(cfg: Config, name: Option<String>) -> Result<(), CreateError> {
    let mut app = APP.lock();
    if app.is_some() {
        tracing::debug!("already initialized");
        return Err(CreateError::Vcl(Error::Exist));
    }
    crate::logging::set_debug(cfg.debug_level);
    let name = name.unwrap_or_else(|| format!("vcl_app_{}", std::process::id()));
    let Some(addr) = cfg.app_socket_api.clone() else {
        tracing::error!(
            "no app-socket-api in the configuration (nor VCL_VPP_SAPI_SOCKET): this vcl only \
             speaks VPP's app socket API"
        );
        return Err(CreateError::AttachFailed);
    };
    let fd = sapi::connect_app_socket(&addr).map_err(failed)?;
    let (vpp, parts) = attach_exchange(fd, &cfg, &addr, &name)?;
    let (app_index, api_client_handle) = (parts.app_index, parts.api_client_handle);
    let mut workers = Slab::new();
    let entry = workers.vacant_entry();
    crate::wait::set_busy_poll_usec(cfg.busy_poll_usec);
    let w = Arc::new(Worker::new(entry.key() as u32, parts, cfg.use_mq_eventfd).map_err(failed)?);
    entry.insert(w.clone());
    worker::set_current(0, Some(&w));
    tracing::info!(
        "attached to VPP at {} as '{name}': app index {app_index}, api client handle \
         {api_client_handle:#x}",
        sapi::addr_display(&addr),
    );
    reattach::enable(cfg.reattach);
    // the handlers are C callbacks, so they live with the C ABI (the one place for unsafe)
    crate::ffi::install_fork_handlers();
    *app = Some(App {
        cfg,
        addr,
        name,
        gen: GEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
        app_index,
        vpp,
        workers,
        spare: None,
    });
    Ok(())
}

/// ATTACH over the new app socket `fd`: VPP's mqs and what makes worker 0.
fn attach_exchange(
    fd: OwnedFd,
    cfg: &Config,
    addr: &SapiAddr,
    name: &str,
) -> Result<(Arc<VppMqs>, WorkerParts), CreateError> {
    let mut sock = SapiSocket::new(fd, sock_timeout(cfg)).map_err(failed)?;
    sock.send(&SapiMsg::Attach(attach_msg(cfg, name)))
        .map_err(failed)?;
    let (reply, fds) = sock.recv_reply(msg_type::ATTACH_REPLY).map_err(failed)?;
    let SapiMsg::AttachReply(r) = reply else {
        return Err(CreateError::AttachFailed);
    };
    if r.retval != 0 {
        tracing::error!(
            "attach to VPP at {} refused: {} ({})",
            sapi::addr_display(addr),
            session_error_str(r.retval),
            r.retval
        );
        return Err(CreateError::AttachFailed);
    }
    let mut fds = ReplyFds::new(fds, r.n_fds, r.fd_flags)?;
    let vpp_seg = fds.take(fd_flags::VPP_MQ_SEGMENT, "vpp mq segment")?;
    let vpp = map_vpp_mqs(vpp_seg, r.vpp_ctrl_mq, r.vpp_ctrl_mq_thread)?;
    let parts = worker_parts(
        &mut fds,
        (r.segment_handle, r.app_mq),
        sock,
        (0, r.api_client_handle, r.app_index),
        vpp.clone(),
    )?;
    Ok((vpp, parts))
}

fn attach_msg(cfg: &Config, name: &str) -> Attach {
    let mut a = Attach::new(name);
    let o = &mut a.options;
    o[opt::FLAGS] = cfg.attach_flags();
    o[opt::PROXY_TRANSPORT] = cfg.proxy_transport_mask();
    o[opt::SEGMENT_SIZE] = cfg.segment_size;
    o[opt::ADD_SEGMENT_SIZE] = cfg.add_segment_size;
    o[opt::RX_FIFO_SIZE] = u64::from(cfg.rx_fifo_size);
    o[opt::TX_FIFO_SIZE] = u64::from(cfg.tx_fifo_size);
    o[opt::PREALLOC_FIFO_PAIRS] = u64::from(cfg.preallocated_fifo_pairs);
    o[opt::EVT_QUEUE_SIZE] = u64::from(cfg.event_queue_size);
    o[opt::TLS_ENGINE] = cfg.tls_engine_option();
    a
}

/// The fds of an attach or worker-add reply, taken in VPP's order as fd_flags announce them.
struct ReplyFds {
    fds: std::vec::IntoIter<OwnedFd>,
    flags: u8,
}

impl ReplyFds {
    fn new(fds: Vec<OwnedFd>, n_fds: u8, flags: u8) -> Result<ReplyFds, CreateError> {
        if n_fds == 0 || fds.len() != usize::from(n_fds) {
            tracing::error!("VPP's reply announced {n_fds} fds, {} arrived", fds.len());
            return Err(CreateError::AttachFailed);
        }
        Ok(ReplyFds {
            fds: fds.into_iter(),
            flags,
        })
    }

    /// The next fd, which must be of kind `flag` (None if the reply has no such fd).
    fn opt(&mut self, flag: u8, what: &str) -> Result<Option<OwnedFd>, CreateError> {
        if self.flags & flag == 0 {
            return Ok(None);
        }
        match self.fds.next() {
            Some(fd) => Ok(Some(fd)),
            None => {
                tracing::error!("VPP's reply announced a {what} fd but sent none");
                Err(CreateError::AttachFailed)
            }
        }
    }

    fn take(&mut self, flag: u8, what: &str) -> Result<OwnedFd, CreateError> {
        self.opt(flag, what)?.ok_or_else(|| {
            tracing::error!("VPP's reply has no {what} (fd flags {:#x})", self.flags);
            CreateError::AttachFailed
        })
    }
}

fn svm_failed(what: &str) -> impl Fn(vcl_svm::SvmError) -> CreateError + '_ {
    move |e| {
        tracing::error!("{what}: {e}");
        CreateError::AttachFailed
    }
}

/// Map the vpp mqs segment, find every VPP thread's queue and check the ctrl mq is among them.
fn map_vpp_mqs(fd: OwnedFd, ctrl_off: u64, ctrl_thread: u8) -> Result<Arc<VppMqs>, CreateError> {
    let seg = Arc::new(Segment::map(fd).map_err(svm_failed("vpp mq segment"))?);
    let mqs = discover_vpp_mqs(seg, Vec::new()).map_err(svm_failed("vpp mq segment"))?;
    let ctrl = usize::from(ctrl_thread);
    match mqs.get(ctrl) {
        Some(q) if q.offset() == ctrl_off => Ok(Arc::new(VppMqs { mqs, ctrl })),
        _ => {
            tracing::error!(
                "VPP's ctrl mq (thread {ctrl}, offset {ctrl_off}) is not one of its {} queues",
                mqs.len()
            );
            Err(CreateError::AttachFailed)
        }
    }
}

/// Map a worker's first segment, attach its app mq, and gather what makes the worker.
fn worker_parts(
    fds: &mut ReplyFds,
    (seg_handle, mq_off): (u64, u64),
    sock: SapiSocket,
    (vpp_wrk_index, api_client_handle, app_index): (u32, u32, u32),
    vpp: Arc<VppMqs>,
) -> Result<WorkerParts, CreateError> {
    if seg_handle == u64::MAX {
        tracing::error!("VPP's reply has an invalid segment handle");
        return Err(CreateError::AttachFailed);
    }
    let seg_fd = fds.take(fd_flags::MEMFD_SEGMENT, "fifo segment")?;
    let seg = Arc::new(Segment::map(seg_fd).map_err(svm_failed("first fifo segment"))?);
    seg.set_client_pid();
    let app_mq = MsgQueue::attach(seg.clone(), mq_off).map_err(svm_failed("app mq"))?;
    let mq_eventfd = fds.opt(fd_flags::MQ_EVENTFD, "mq eventfd")?;
    if let Some(fd) = &mq_eventfd {
        nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(fd),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(failed)?;
    }
    Ok(WorkerParts {
        vpp_wrk_index,
        api_client_handle,
        app_index,
        vpp,
        sock,
        first_segment: (seg_handle, seg),
        app_mq,
        mq_eventfd,
    })
}

/// Register the calling thread as a new worker: its own socket, ADD_DEL_WORKER, its segment.
/// The app lock is not held across the socket round trip (up to app-timeout): other threads'
/// listen/connect/attr calls must not stall behind it.
pub fn register_worker() -> Result<u32, Error> {
    if let Some(w) = worker::current() {
        tracing::debug!("worker register: thread already has worker {}", w.index);
        return Err(Error::Exist);
    }
    let (addr, timeout, app_index, vpp) = {
        let guard = APP.lock();
        let app = guard.as_ref().ok_or_else(|| {
            tracing::error!("worker register: the app is not attached to VPP");
            Error::Exist
        })?;
        let cap = app.cfg.max_workers.clamp(1, 0x100) as usize;
        if app.workers.len() >= cap {
            tracing::error!(
                "worker register: max-workers ({}) reached",
                app.cfg.max_workers
            );
            return Err(Error::Exist);
        }
        (
            app.addr.clone(),
            sock_timeout(&app.cfg),
            app.app_index,
            app.vpp.clone(),
        )
    };
    let fd = sapi::connect_app_socket(&addr).map_err(|_| Error::Exist)?;
    let parts = add_worker_exchange(fd, timeout, app_index, vpp.clone())?;
    let vpp_wrk_index = parts.vpp_wrk_index;
    let mut guard = APP.lock();
    // the app may have been destroyed (or re-created) meanwhile: then the new worker's socket
    // closes with `parts` and VPP forgets it
    let app = guard
        .as_mut()
        .filter(|a| Arc::ptr_eq(&a.vpp, &vpp))
        .ok_or(Error::Exist)?;
    let entry = app.workers.vacant_entry();
    let index = entry.key() as u32;
    if index >= app.cfg.max_workers.max(1) || index > 0xFF {
        tracing::error!(
            "worker register: max-workers ({}) reached",
            app.cfg.max_workers
        );
        return Err(Error::Exist);
    }
    let w = Arc::new(Worker::new(index, parts, app.cfg.use_mq_eventfd)?);
    entry.insert(w.clone());
    worker::set_current(index, Some(&w));
    tracing::debug!("worker {index} registered, vpp worker {vpp_wrk_index}");
    Ok(index)
}

/// ADD_DEL_WORKER (add) over the new app socket `fd`: what makes the new worker.
fn add_worker_exchange(
    fd: OwnedFd,
    timeout: Duration,
    app_index: u32,
    vpp: Arc<VppMqs>,
) -> Result<WorkerParts, Error> {
    let mut sock = SapiSocket::new(fd, timeout)?;
    sock.send(&SapiMsg::AddDelWorker(WorkerAddDel {
        app_index,
        wrk_index: 0,
        is_add: true,
    }))?;
    let (reply, fds) = sock.recv_reply(msg_type::ADD_DEL_WORKER_REPLY)?;
    let SapiMsg::AddDelWorkerReply(r) = reply else {
        return Err(Error::Exist);
    };
    if r.retval != 0 || !r.is_add {
        tracing::error!(
            "worker add refused by VPP: {} ({})",
            session_error_str(r.retval),
            r.retval
        );
        return Err(Error::Exist);
    }
    let as_exist = |_| Error::Exist;
    let mut fds = ReplyFds::new(fds, r.n_fds, r.fd_flags).map_err(as_exist)?;
    worker_parts(
        &mut fds,
        (r.segment_handle, r.app_event_queue_address),
        sock,
        (r.wrk_index, r.api_client_handle, app_index),
        vpp,
    )
    .map_err(as_exist)
}

/// Unregister the calling thread's worker: ADD_DEL_WORKER delete, then close its socket.
pub fn unregister_worker() {
    let Some(w) = worker::current() else {
        worker::set_current(worker::INVALID, None);
        return;
    };
    w.settle_closes(worker::CLOSE_SETTLE);
    let mut guard = APP.lock();
    if let Some(app) = guard.as_mut() {
        let del = SapiMsg::AddDelWorker(WorkerAddDel {
            app_index: app.app_index,
            wrk_index: w.conn().vpp_wrk_index,
            is_add: false,
        });
        if let Err(e) = w.with_sock(|s| s.send(&del)) {
            tracing::warn!("worker {}: delete not sent: {e}", w.index);
        }
        if let Some(w) = app.workers.try_remove(w.index as usize) {
            w.retire();
        }
    }
    worker::set_current(worker::INVALID, None);
}

/// Point the calling thread at worker `index` (vppcom_worker_index_set).
pub fn set_current_worker(index: u32) {
    let guard = APP.lock();
    let w = guard
        .as_ref()
        .and_then(|a| a.workers.get(index as usize).cloned());
    worker::set_current(index, w.as_ref());
}

/// Detach from VPP and forget the app; a later create starts afresh.
pub fn destroy() {
    let Some(app) = APP.lock().take() else {
        return;
    };
    // once VPP is gone there is nobody to tell (and its queue may be locked for good)
    if let Some(w) = worker::current().filter(|w| !w.is_detached()) {
        let detach = CtrlMsg::AppDetach(AppDetach {
            client_index: w.conn().api_client_handle,
            context: 0,
        });
        match app.vpp.send_ctrl(app.vpp.ctrl, &detach) {
            // VPP closes the worker's socket once it has detached it (docs/wire.md#attach),
            // after everything queued ahead of the detach. Closing ours first would let the
            // close overtake them: VPP frees the socket index (= api client handle) when the
            // close deletes the worker, and the queued detach and session closes could then
            // hit the next app to attach under that index. So wait (briefly) for the hang-up.
            Ok(()) => {
                if !w.with_sock(|s| s.wait_peer_close(DETACH_WAIT)) {
                    tracing::debug!("VPP did not close the app socket after detach");
                }
            }
            Err(e) => tracing::warn!("app detach not delivered: {e}"),
        }
    }
    worker::set_current(worker::INVALID, None);
    release(app); // closes every socket and eventfd, unmaps every segment
    tracing::info!("detached from VPP");
}

/// Whether vppcom_app_create has succeeded and destroy has not run since.
pub fn is_attached() -> bool {
    APP.lock().is_some()
}

/// Register a certificate + key with VPP over the current worker's socket: the request, then
/// the payload (cert then key) as a second datagram, then the reply (docs/wire.md#attach).
pub fn add_cert_key_pair(cert: &[u8], key: &[u8]) -> Result<u32, Error> {
    use vcl_codec::sapi::CertKeyAddDel;
    let w = worker::current().ok_or(Error::BadFd)?;
    let total = cert.len() + key.len();
    let (Ok(cert_len), Ok(certkey_len)) = (u16::try_from(cert.len()), u16::try_from(total)) else {
        tracing::error!("cert/key pair of {total} bytes does not fit VPP's 16-bit lengths");
        return Err(Error::Inval);
    };
    let mut payload = Vec::with_capacity(total);
    payload.extend_from_slice(cert);
    payload.extend_from_slice(key);
    let req = SapiMsg::AddDelCertKey(CertKeyAddDel {
        context: w.index,
        index: 0,
        cert_len,
        certkey_len,
        is_add: true,
    });
    cert_key_exchange(&w, &req, Some(&payload))
}

/// Remove a certificate + key pair VPP knows by `index`.
pub fn del_cert_key_pair(index: u32) -> Result<u32, Error> {
    use vcl_codec::sapi::CertKeyAddDel;
    let w = worker::current().ok_or(Error::BadFd)?;
    let req = SapiMsg::AddDelCertKey(CertKeyAddDel {
        context: w.index,
        index,
        cert_len: 0,
        certkey_len: 0,
        is_add: false,
    });
    cert_key_exchange(&w, &req, None).map(|_| 0)
}

fn cert_key_exchange(w: &Worker, req: &SapiMsg, payload: Option<&[u8]>) -> Result<u32, Error> {
    w.with_sock(|s| {
        match payload {
            Some(p) => s.send_with_payload(req, p)?,
            None => s.send(req)?,
        }
        match s.recv_reply(msg_type::ADD_DEL_CERT_KEY_REPLY)?.0 {
            SapiMsg::AddDelCertKeyReply(r) if r.retval == 0 => Ok(r.index),
            SapiMsg::AddDelCertKeyReply(r) => {
                tracing::error!(
                    "cert/key request refused by VPP: {} ({})",
                    session_error_str(r.retval),
                    r.retval
                );
                Err(Error::Errno(-r.retval))
            }
            _ => Err(Error::Inval),
        }
    })
}

/// How long blocking listen and connect wait for VPP (vcl.conf session-timeout).
pub fn session_timeout() -> Duration {
    let secs = APP.lock().as_ref().map_or(600.0, |a| a.cfg.session_timeout);
    bounded_secs(secs, 600.0, 1e9)
}

/// The configured (rx, tx) fifo sizes, for attrs of sessions that have no fifos yet.
pub fn fifo_sizes() -> (u32, u32) {
    APP.lock().as_ref().map_or((1 << 20, 1 << 20), |a| {
        (a.cfg.rx_fifo_size, a.cfg.tx_fifo_size)
    })
}
