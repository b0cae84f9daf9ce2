//! What tests/detach.rs and tests/lifetimes.rs share: the C ABI they call, an app attached
//! to an in-process test peer, sessions through it to kernel sockets, and a worker thread.
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code, dead_code)]

use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use vcl::testing::app;
use vcl::testing::config::{Config, SapiAddr};
use vcl_testpeer::{Peer, PeerConfig, SockAddr};

#[path = "../capi/mod.rs"]
mod capi;
pub use capi::*;

pub static SERIAL: Mutex<()> = Mutex::new(());

/// How long a detection may take here (a loaded 2-core CI); typical is a few ms.
pub const DETECT: Duration = Duration::from_secs(3);

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    app::destroy();
    g
}

pub fn name(tag: &str) -> String {
    format!("vcl-detach-{tag}-{}", std::process::id())
}

pub fn attach(tag: &str, eventfd: bool) -> Peer {
    attach_with_reattach(tag, eventfd, true)
}

/// As [`attach`], the app never attaching again once VPP is gone (`reattach off`).
pub fn attach_for_good(tag: &str, eventfd: bool) -> Peer {
    attach_with_reattach(tag, eventfd, false)
}

pub fn attach_with_reattach(tag: &str, eventfd: bool, reattach: bool) -> Peer {
    let p = Peer::start(PeerConfig::new(SockAddr::Abstract(name(tag)))).expect("peer starts");
    let cfg = Config {
        app_socket_api: Some(SapiAddr::Abstract(name(tag).into_bytes())),
        segment_size: 32 << 20,
        rx_fifo_size: 64 << 10,
        tx_fifo_size: 64 << 10,
        app_scope_global: true,
        app_timeout: 2.0,
        use_mq_eventfd: eventfd,
        reattach,
        ..Config::default()
    };
    app::create(cfg, None).expect("attached");
    p
}

pub fn endpt(ip: &mut [u8; 4], port: u16) -> Endpt {
    Endpt {
        unused: 0,
        is_ip4: 1,
        ip: ip.as_mut_ptr(),
        port: port.to_be(),
        unused2: 0,
        app_tlv_len: 0,
        app_tlvs: std::ptr::null_mut(),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A blocking session connected (through the peer) to a kernel listener on `port`.
pub fn connect(port: u16) -> u32 {
    connect_proto(0, port)
}

/// A blocking UDP session connected (through the peer) to a kernel socket on `port`.
pub fn connect_udp(port: u16) -> u32 {
    connect_proto(1, port)
}

fn connect_proto(proto: u8, port: u16) -> u32 {
    let mut ip = [127, 0, 0, 1];
    let mut ep = endpt(&mut ip, port);
    // SAFETY: plain calls into our C ABI; ep and ip outlive them.
    unsafe {
        let sh = vppcom_session_create(proto, 0);
        assert!(sh >= 0);
        assert_eq!(vppcom_session_connect(sh as u32, &mut ep), 0);
        sh as u32
    }
}

pub fn listen(port: u16) -> u32 {
    let mut ip = [127, 0, 0, 1];
    let mut ep = endpt(&mut ip, port);
    // SAFETY: plain calls into our C ABI; ep and ip outlive them.
    unsafe {
        let sh = vppcom_session_create(0, 0);
        assert!(sh >= 0);
        assert_eq!(vppcom_session_bind(sh as u32, &mut ep), 0);
        assert_eq!(vppcom_session_listen(sh as u32, 10), 0);
        sh as u32
    }
}

pub fn read(sh: u32, buf: &mut [u8]) -> i32 {
    // SAFETY: buf is valid for its length.
    unsafe { vppcom_session_read(sh, buf.as_mut_ptr(), buf.len()) }
}

/// Run `f` on another thread of worker 0; its result, or None if it took longer than DETECT
/// after `start` was signalled.
pub fn on_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        app::set_current_worker(0);
        let _ = tx.send(f());
    });
    rx
}

pub fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for the call.
    let rv = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rv, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
