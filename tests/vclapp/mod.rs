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
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    vcl::testing::app::destroy();
    let sock = format!("vcl-sessions-{tag}-{}", std::process::id());
    let peer = Peer::start(PeerConfig::new(SockAddr::Abstract(sock.clone()))).unwrap();
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
