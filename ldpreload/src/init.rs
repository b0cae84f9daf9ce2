//! Lazy start-up (attach on the first AF_INET/AF_INET6 stream socket), the shim's own
//! settings, and the per-thread VCL workers.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::OnceLock;

use vcl_svm::sync::{Mutex, MutexGuard, RwLock, RwLockWriteGuard};

use vcl::api::{self, Worker};

const NOT_YET: u8 = 0;
const READY: u8 = 1;
const FAILED: u8 = 2;
/// A forked child: its sockets use the kernel stack (fork support is not done yet).
const FORKED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(NOT_YET);
static INIT_LOCK: Mutex<()> = Mutex::new(());
/// The worker of the thread that attached (or of a forked child's first user): the fallback
/// for threads that cannot register their own.
static WORKER0: RwLock<Option<Worker>> = RwLock::new(None);
static SETTINGS: OnceLock<Settings> = OnceLock::new();
/// The attached process (a vfork child shares our memory but has another pid).
static OWNER_PID: AtomicI32 = AtomicI32::new(0);

thread_local! {
    /// Set while this thread attaches: its own socket calls then go to the kernel.
    static IN_INIT: Cell<bool> = const { Cell::new(false) };
    static THREAD_WORKER: RefCell<Option<ThreadWorker>> = const { RefCell::new(None) };
}

/// Env var and vcl.conf key (`ldp-kernel`) naming what stays on the kernel stack.
pub const ENV_KERNEL: &str = "LDP_KERNEL";
/// Env var and vcl.conf key (`ldp-strict`): no kernel fallback when VPP is unreachable.
pub const ENV_STRICT: &str = "LDP_STRICT";

/// The library's env var for the busy-poll ceiling (`busy-poll-usec` in vcl.conf).
const ENV_BUSY_POLL: &str = "VCL_BUSY_POLL_USEC";
/// The ceiling in µs of the shim's busy-polling waits (see `spin`) unless `busy-poll-usec` is
/// given (the library's own waits keep its default): larger than that default because a preloaded program's waits also cover kernel fds and its
/// I/O comes in many small calls; a stream through VPP's TCP (VPP delivers every few hundred µs
/// to ms on a loaded machine) keeps pace with upstream's always-spinning shim only with a
/// window of milliseconds. The window adapts (see `spin`): an idle program spins once, then
/// ever shorter.
pub const BUSY_POLL_USEC: u32 = 5000;

/// One `ldp-kernel` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// 127.0.0.0/8 and ::1.
    Loopback,
    Prefix(IpAddr, u8),
    Port(u16),
}

#[derive(Debug, Default)]
pub struct Settings {
    pub kernel: Vec<Rule>,
    pub strict: bool,
    /// `busy-poll-usec` given in vcl.conf or the environment (else the shim's waits use
    /// [`BUSY_POLL_USEC`]).
    pub busy_poll_set: bool,
}

impl Settings {
    /// Whether a socket bound to or connecting to `a` stays in the kernel.
    pub fn is_kernel(&self, a: &SocketAddr) -> bool {
        self.kernel.iter().any(|r| match r {
            Rule::Loopback => a.ip().is_loopback(),
            Rule::Port(p) => a.port() == *p,
            Rule::Prefix(net, len) => in_prefix(&a.ip(), net, *len),
        })
    }
}

fn in_prefix(ip: &IpAddr, net: &IpAddr, len: u8) -> bool {
    let bits = |ip: &IpAddr| -> (u128, u8) {
        match ip {
            IpAddr::V4(v) => (u128::from(u32::from(*v)) << 96, 32),
            IpAddr::V6(v) => (u128::from(*v), 128),
        }
    };
    let ((a, fa), (b, fb)) = (bits(ip), bits(net));
    if fa != fb {
        return false;
    }
    let len = u32::from(len.min(fa));
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    a & mask == b & mask
}

/// Parse `ldp-kernel` items: `loopback`, `port=N`, an address or `address/len`, separated by
/// commas or blanks.
pub fn parse_rules(s: &str) -> Result<Vec<Rule>, String> {
    let mut out = Vec::new();
    for item in s.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
        let bad = || format!("ldp-kernel: '{item}' is not loopback, port=N, ADDR or ADDR/LEN");
        if item == "loopback" {
            out.push(Rule::Loopback);
        } else if let Some(p) = item.strip_prefix("port=") {
            out.push(Rule::Port(p.parse().map_err(|_| bad())?));
        } else {
            let (a, len) = item.split_once('/').unwrap_or((item, ""));
            let ip: IpAddr = a.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = if len.is_empty() {
                max
            } else {
                len.parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(bad)?
            };
            out.push(Rule::Prefix(ip, len));
        }
    }
    Ok(out)
}

/// What the shim reads from the vcl.conf the library reads: its `ldp-*` lines, and whether it
/// sets `busy-poll-usec`.
#[derive(Default)]
struct ConfValues {
    kernel: Option<String>,
    strict: bool,
    busy_poll: bool,
}

fn conf_values() -> ConfValues {
    let path = std::env::var("VCL_CONFIG")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| vcl::api::CONF_DEFAULT.to_string());
    let Ok(text) = std::fs::read_to_string(path) else {
        return ConfValues::default();
    };
    let mut v = ConfValues::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        match line.split_once(char::is_whitespace) {
            Some(("ldp-kernel", k)) => v.kernel = Some(k.trim().to_string()),
            Some(("busy-poll-usec", _)) => v.busy_poll = true,
            _ if line == "ldp-strict" => v.strict = true,
            _ => {}
        }
    }
    v
}

fn load_settings() -> Settings {
    let conf = conf_values();
    let kernel = std::env::var(ENV_KERNEL).ok().or(conf.kernel);
    let strict = conf.strict || std::env::var_os(ENV_STRICT).is_some_and(|v| v != "0");
    let kernel = match kernel.as_deref().map(parse_rules) {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            eprintln!("vcl_ldpreload: {e}; no kernel rules apply");
            Vec::new()
        }
        None => Vec::new(),
    };
    let busy_poll_set = conf.busy_poll || std::env::var_os(ENV_BUSY_POLL).is_some();
    Settings {
        kernel,
        strict,
        busy_poll_set,
    }
}

pub fn settings() -> &'static Settings {
    SETTINGS.get_or_init(load_settings)
}

/// The busy-poll ceiling of the shim's waits, in µs.
pub fn spin_ceiling_us() -> u32 {
    if settings().busy_poll_set {
        api::busy_poll_usec()
    } else {
        BUSY_POLL_USEC
    }
}

/// What a new AF_INET/AF_INET6 stream socket should be.
pub enum Verdict {
    Vpp(Worker),
    Kernel,
    /// Strict mode and VPP unusable: fail with this errno.
    Fail(i32),
}

/// What the attach runs around the library's `app_create`: the shim's fork handlers must
/// be registered around the library's (which `app_create` registers), `before` it and `after`
/// it, also when it fails. Given by the caller, which sits above the fork handlers' module.
pub struct AttachHooks {
    pub before: fn(),
    pub after: fn(),
}

/// Attach on first use (running `hooks` around it); then pick the calling thread's worker.
pub fn verdict(hooks: &AttachHooks) -> Verdict {
    if IN_INIT.try_with(|c| c.get()).unwrap_or(true) {
        return Verdict::Kernel;
    }
    let state = match STATE.load(Ordering::Acquire) {
        NOT_YET => attach(hooks),
        s => s,
    };
    match state {
        READY => match thread_worker() {
            Some(w) => Verdict::Vpp(w),
            None => Verdict::Kernel,
        },
        FORKED => match child_worker() {
            Some(w) => Verdict::Vpp(w),
            None => Verdict::Kernel,
        },
        _ if settings().strict => Verdict::Fail(libc::EAFNOSUPPORT),
        _ => Verdict::Kernel,
    }
}

fn attach(hooks: &AttachHooks) -> u8 {
    let _g = INIT_LOCK.lock();
    let s = STATE.load(Ordering::Acquire);
    if s != NOT_YET {
        return s;
    }
    IN_INIT.with(|c| c.set(true));
    let r = std::panic::catch_unwind(|| try_attach(hooks)).unwrap_or_else(|_| Err("panic".into()));
    IN_INIT.with(|c| c.set(false));
    let s = match r {
        Ok(()) => READY,
        Err(why) => {
            let then = if settings().strict {
                "socket() fails with EAFNOSUPPORT (ldp-strict)"
            } else {
                "sockets use the kernel stack"
            };
            // one write(2): eprintln! writes each formatted piece on its own, and another
            // process sharing stderr could land between them
            let line = format!("vcl_ldpreload: cannot attach to VPP: {why}; {then}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            FAILED
        }
    };
    STATE.store(s, Ordering::Release);
    s
}

fn try_attach(hooks: &AttachHooks) -> Result<(), String> {
    vcl::api::init_logging();
    settings();
    let parsed = vcl::api::load_config().map_err(|e| e.to_string())?;
    for w in parsed.warnings.iter().filter(|w| !w.contains("'ldp-")) {
        tracing::warn!("{w}");
    }
    let mut cfg = parsed.config;
    // Waiting on mixed fd sets needs the app mq's eventfd in the kernel's sets.
    cfg.use_mq_eventfd = true;
    // Every wait on a VPP socket is ours (sock.rs, poll.rs, epoll.rs), and each clears held
    // has_event flags before it sleeps (`wake::Sleeping`).
    vcl::api::set_caller_waits();
    // upstream's LDP_DEBUG: the shim's debug level, through the same tracing as VCL_DEBUG
    if let Some(n) = std::env::var("LDP_DEBUG")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        cfg.debug_level = cfg.debug_level.max(n);
        vcl::api::set_debug(cfg.debug_level);
    }
    if let Ok(name) = std::env::var("LDP_APP_NAME") {
        cfg.app_name = Some(name);
    }
    let sock = cfg
        .app_socket_api
        .as_ref()
        .map(vcl::api::addr_display)
        .ok_or("no app-socket-api in vcl.conf (VCL_CONFIG) nor VCL_VPP_SAPI_SOCKET")?;
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".into());
    let name = cfg
        .app_name
        .clone()
        .unwrap_or_else(|| format!("ldp-{}-{exe}", std::process::id()));
    // a forked child listens on an inherited listener only once it uses it (the fork module)
    api::set_fork_relisten(false);
    (hooks.before)();
    let created = api::app_create(cfg, Some(name));
    // also when it failed: the outer fork handlers end what the inner ones start
    (hooks.after)();
    created.map_err(|e| format!("attach at {sock} failed ({e}; VCL_DEBUG=1 says more)"))?;
    let w = api::worker_current().ok_or("no worker after attach")?;
    // SAFETY: getpid has no preconditions.
    OWNER_PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
    *WORKER0.write() = Some(w.clone());
    THREAD_WORKER.with(|t| *t.borrow_mut() = Some(ThreadWorker { w, owned: false }));
    Ok(())
}

/// For fork's prepare handler: start-up's locks (taken first: start-up takes the others, if
/// any, while holding them).
pub fn hold_for_fork() -> (
    MutexGuard<'static, ()>,
    RwLockWriteGuard<'static, Option<Worker>>,
) {
    (INIT_LOCK.lock(), WORKER0.write())
}

/// In a forked child the parent's VCL workers, sessions and queues must not be touched (they
/// are the parent's, in shared memory): forget this process's workers; new sockets get the
/// child's own worker on first use. Called by `fork_hooks`' child handler (which rewrites the
/// fd table next), with every lock of ours free.
pub fn after_fork_child() {
    if STATE.load(Ordering::Acquire) != READY {
        return;
    }
    // the library gave this thread's worker a VPP worker of the child's own (the fork module)
    if let Some(w) = api::worker_current().filter(|w| w.adopted()) {
        // SAFETY: getpid has no preconditions.
        OWNER_PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
        // (the fd table is rewritten by fork_hooks' handler, registered after this one)
        if let Some(mut w0) = WORKER0.try_write() {
            std::mem::forget(w0.replace(w));
        }
        return;
    }
    STATE.store(FORKED, Ordering::Release);
    OWNER_PID.store(0, Ordering::Relaxed);
    let _ = THREAD_WORKER.try_with(|t| t.try_borrow_mut().map(|mut t| std::mem::forget(t.take())));
    if let Some(mut w) = WORKER0.try_write() {
        std::mem::forget(w.take());
    }
}

/// A forked child's own worker, registered over a new app-socket connection on first use
/// (None: the kernel stack, after one stderr line if registering failed).
pub fn child_worker() -> Option<Worker> {
    if STATE.load(Ordering::Acquire) == READY {
        return thread_worker();
    }
    let _g = INIT_LOCK.lock();
    match STATE.load(Ordering::Acquire) {
        READY => return thread_worker(),
        FORKED => {}
        _ => return None,
    }
    IN_INIT.with(|c| c.set(true));
    api::fork_child_forget_worker();
    let r = std::panic::catch_unwind(api::worker_register);
    IN_INIT.with(|c| c.set(false));
    match r {
        Ok(Ok(w)) => {
            *WORKER0.write() = Some(w.clone());
            THREAD_WORKER.with(|t| {
                *t.borrow_mut() = Some(ThreadWorker {
                    w: w.clone(),
                    owned: false,
                })
            });
            // SAFETY: getpid has no preconditions.
            OWNER_PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
            STATE.store(READY, Ordering::Release);
            Some(w)
        }
        r => {
            let why = match r {
                Ok(Err(e)) => e.to_string(),
                _ => "panic".into(),
            };
            eprintln!(
                "vcl_ldpreload: forked child: no VCL worker ({why}); sockets use the kernel stack"
            );
            STATE.store(FAILED, Ordering::Release);
            None
        }
    }
}

/// Whether we run in a vfork child of the attached process (sharing its memory): then the
/// fd table and the sessions must be left alone.
pub fn in_vfork_child() -> bool {
    let owner = OWNER_PID.load(Ordering::Relaxed);
    // SAFETY: getpid has no preconditions.
    owner != 0 && owner != unsafe { libc::getpid() }
}

/// A thread's worker; registered ones are released at thread exit if no session is left.
struct ThreadWorker {
    w: Worker,
    owned: bool,
}

impl Drop for ThreadWorker {
    fn drop(&mut self) {
        // Sessions the app closed only wait for VPP's cleanup, which deleting the worker does.
        if self.owned && self.w.open_session_count() == 0 {
            let _ = std::panic::catch_unwind(api::worker_unregister);
        }
    }
}

/// The calling thread's worker, registering one on first use (worker 0 if that fails).
fn thread_worker() -> Option<Worker> {
    // The library's own thread-local must be set up before ours so that it is destroyed
    // after ours at thread exit (destructors run in reverse order of first use).
    let current = api::worker_current();
    let mine = THREAD_WORKER.try_with(|t| {
        if let Some(tw) = &*t.borrow() {
            return Some(tw.w.clone());
        }
        let (w, owned) = match current {
            Some(w) => (w, false),
            None => match api::worker_register() {
                Ok(w) => (w, true),
                Err(e) => {
                    tracing::warn!("worker register failed ({e}); this thread shares worker 0");
                    (WORKER0.read().clone()?, false)
                }
            },
        };
        *t.borrow_mut() = Some(ThreadWorker {
            w: w.clone(),
            owned,
        });
        Some(w)
    });
    mine.ok().flatten().or_else(|| WORKER0.read().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_match() {
        let s = Settings {
            kernel: parse_rules("loopback, 10.1.0.0/16 port=8080 fd00::/8").unwrap(),
            strict: false,
            busy_poll_set: false,
        };
        let m = |a: &str| s.is_kernel(&a.parse().unwrap());
        assert!(m("127.0.0.5:1"));
        assert!(m("[::1]:1"));
        assert!(m("10.1.2.3:1"));
        assert!(!m("10.2.0.1:1"));
        assert!(m("192.0.2.1:8080"));
        assert!(m("[fd12::1]:5"));
        assert!(!m("[fe80::1]:5"));
        assert!(parse_rules("port=x").is_err());
        assert!(parse_rules("10.0.0.0/33").is_err());
        assert_eq!(
            parse_rules("1.2.3.4").unwrap(),
            vec![Rule::Prefix("1.2.3.4".parse().unwrap(), 32)]
        );
    }
}
