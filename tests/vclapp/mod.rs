//! What tests/sessions.rs and tests/closes.rs share: the C ABI calls they make, endpoints, a
//! vcl.conf for the in-process peer, child processes that are this test binary again (their own
//! VCL app, bounded by deadlines), and one test's world (`with_peer`).
#![allow(dead_code)]

use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vcl_testpeer::{Peer, PeerConfig, SockAddr};

#[path = "../capi/mod.rs"]
mod capi;
pub use capi::*;

pub const EAGAIN: i32 = -libc::EAGAIN;
pub const EINPROGRESS: i32 = -libc::EINPROGRESS;

pub static SERIAL: Mutex<()> = Mutex::new(());

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

pub fn write_conf(sock: &str, local: bool) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "vcl-sessions-{}-{}.conf",
        std::process::id(),
        if local { "ct" } else { "tpt" }
    ));
    let scope = if local {
        "app-scope-local\n  app-scope-global"
    } else {
        "app-scope-global"
    };
    std::fs::write(
        &p,
        format!(
            "vcl {{\n  rx-fifo-size 65536\n  tx-fifo-size 65536\n  segment-size 67108864\n  \
             {scope}\n  app-socket-api abstract:{sock}\n}}\n"
        ),
    )
    .unwrap();
    p
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run child-mode test `test` of this binary as its own VCL app (with `env`), and return once
/// it prints LISTENING.
pub fn spawn_child(test: &str, conf: &std::path::Path, env: &[(&str, String)]) -> Child {
    use std::io::BufRead;
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("VCL_CONFIG", conf)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for l in lines {
            if l.is_ok_and(|l| l.contains("LISTENING")) {
                if let Some(t) = tx.take() {
                    let _ = t.send(());
                }
            }
        }
    });
    // a child that never listens fails the test instead of hanging it
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{test} did not start listening");
    }
    child
}

pub fn wait_child(mut c: Child) {
    drop(c.stdin.take()); // EOF: a closer server closes and detaches
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            assert!(st.success(), "echo server failed: {st}");
            return;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("echo server did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One test's world: a fresh in-process peer, a vcl.conf for it (cut-through scope if `local`,
/// eventfd mode if `eventfd`), a server child started by `spawn`, and this process attached as
/// the client app while `client` runs.
pub fn with_peer(
    tag: &str,
    local: bool,
    eventfd: bool,
    spawn: impl FnOnce(&std::path::Path, u16) -> Child,
    client: impl FnOnce(u16, &Peer),
) {
    with_peer_cfg(tag, local, eventfd, |c| c, spawn, client)
}

/// [`with_peer`] with the peer's configuration adjusted by `cfg` (faults).
pub fn with_peer_cfg(
    tag: &str,
    local: bool,
    eventfd: bool,
    cfg: impl FnOnce(PeerConfig) -> PeerConfig,
    spawn: impl FnOnce(&std::path::Path, u16) -> Child,
    client: impl FnOnce(u16, &Peer),
) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    vcl::testing::app::destroy();
    let sock = format!("vcl-sessions-{tag}-{}", std::process::id());
    let peer = Peer::start(cfg(PeerConfig::new(SockAddr::Abstract(sock.clone())))).unwrap();
    let conf = write_conf(&sock, local);
    if eventfd {
        let text = std::fs::read_to_string(&conf)
            .unwrap()
            .replace("}\n", "  use-mq-eventfd\n}\n");
        std::fs::write(&conf, text).unwrap();
    }
    let port = free_port();
    let server = spawn(&conf, port);
    std::env::set_var("VCL_CONFIG", &conf);
    // SAFETY: a plain call into our own C ABI.
    assert_eq!(unsafe { vppcom_app_create(c"sessions-client".as_ptr()) }, 0);
    client(port, &peer);
    // SAFETY: a plain call into our own C ABI.
    unsafe { vppcom_app_destroy() };
    wait_child(server);
    peer.stop();
}

/// Child mode: an epoll echo server serving `n` sessions, then exiting.
pub fn echo_server(port: u16, n: usize) {
    echo_server_with(port, n, 0);
}

/// [`echo_server`] registering its sessions with `extra` epoll flags too (EPOLLET). It reads
/// until EAGAIN on every event, so it works either way.
pub fn echo_server_with(port: u16, n: usize, extra: u32) {
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        assert_eq!(vppcom_app_create(c"echo-server".as_ptr()), 0);
        let ls = vppcom_session_create(0, 1);
        let mut ip = [0u8; 4];
        let mut ep = endpt(&mut ip, port);
        assert_eq!(vppcom_session_bind(ls as u32, &mut ep), 0);
        assert_eq!(vppcom_session_listen(ls as u32, 128), 0);
        println!("LISTENING");
        let vep = vppcom_epoll_create() as u32;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: ls as u64,
        };
        assert_eq!(
            vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, ls as u32, &mut ev),
            0
        );
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let mut buf = vec![0u8; 65536];
        let (mut done, deadline) = (0, Instant::now() + Duration::from_secs(60));
        while done < n && Instant::now() < deadline {
            let k = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 64, 100.0);
            for e in &evs[..k.max(0) as usize] {
                let sh = e.u64 as u32;
                if sh == ls as u32 {
                    let mut pip = [0u8; 16];
                    let mut pe = endpt(&mut [0; 4], 0);
                    pe.ip = pip.as_mut_ptr();
                    while let cs @ 0.. =
                        vppcom_session_accept(ls as u32, &mut pe, libc::O_NONBLOCK as u32)
                    {
                        let mut ev = libc::epoll_event {
                            events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 | extra,
                            u64: cs as u64,
                        };
                        vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, cs as u32, &mut ev);
                    }
                    continue;
                }
                loop {
                    let r = vppcom_session_read(sh, buf.as_mut_ptr(), buf.len());
                    if r == EAGAIN {
                        break;
                    }
                    if r <= 0 {
                        vppcom_epoll_ctl(vep, libc::EPOLL_CTL_DEL, sh, std::ptr::null_mut());
                        vppcom_session_close(sh);
                        done += 1;
                        break;
                    }
                    let mut off = 0;
                    while off < r as usize {
                        let w = vppcom_session_write(sh, buf[off..].as_ptr(), r as usize - off);
                        if w > 0 {
                            off += w as usize;
                        } else if w != EAGAIN {
                            break;
                        }
                    }
                }
            }
        }
        vppcom_app_destroy();
        assert_eq!(done, n, "server saw {done} of {n} sessions end");
    }
}
