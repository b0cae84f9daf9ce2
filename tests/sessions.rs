//! Sessions end to end through the in-process test peer: 100 concurrent connections echoing
//! checksummed data, over cut-through and over transport (kernel TCP behind the peer), with
//! blocking sessions and with non-blocking sessions driven by epoll, level- and edge-triggered.
//! The echo server is this test binary again, in a child process (its own VCL app).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vcl_testpeer::{Peer, PeerConfig, SockAddr};

#[repr(C)]
struct Endpt {
    unused: u8,
    is_ip4: u8,
    ip: *mut u8,
    port: u16,
    unused2: u64,
    app_tlv_len: u32,
    app_tlvs: *mut u8,
}

extern "C" {
    fn vppcom_app_create(name: *const std::ffi::c_char) -> i32;
    fn vppcom_app_destroy();
    fn vppcom_session_create(proto: u8, nb: u8) -> i32;
    fn vppcom_session_bind(sh: u32, ep: *mut Endpt) -> i32;
    fn vppcom_session_listen(sh: u32, q: u32) -> i32;
    fn vppcom_session_accept(sh: u32, ep: *mut Endpt, flags: u32) -> i32;
    fn vppcom_session_connect(sh: u32, ep: *mut Endpt) -> i32;
    fn vppcom_session_read(sh: u32, buf: *mut u8, n: usize) -> i32;
    fn vppcom_session_write(sh: u32, buf: *const u8, n: usize) -> i32;
    fn vppcom_session_close(sh: u32) -> i32;
    fn vppcom_epoll_create() -> i32;
    fn vppcom_epoll_ctl(vep: u32, op: i32, sh: u32, ev: *mut libc::epoll_event) -> i32;
    fn vppcom_epoll_wait(vep: u32, ev: *mut libc::epoll_event, max: i32, ms: f64) -> i32;
}

const EAGAIN: i32 = -libc::EAGAIN;
const EINPROGRESS: i32 = -libc::EINPROGRESS;
const N_SESSIONS: usize = 100;
const BYTES_PER_SESSION: usize = 64 << 10;
const CHUNK: usize = 4096;

static SERIAL: Mutex<()> = Mutex::new(());

fn endpt(ip: &mut [u8; 4], port: u16) -> Endpt {
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

fn write_conf(sock: &str, local: bool) -> std::path::PathBuf {
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

/// The byte at offset `i` of session `s`'s stream.
fn pattern(s: usize, i: usize) -> u8 {
    (s.wrapping_mul(131) ^ i.wrapping_mul(7) ^ (i >> 9)) as u8
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------- the echo server (child)

/// Child mode: an epoll echo server serving `n` sessions, then exiting.
fn echo_server(port: u16, n: usize) {
    // SAFETY: all calls here are plain calls into our own C ABI with valid pointers.
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
                            events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
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

#[test]
fn child_echo_server() {
    if let (Ok(port), Ok(n)) = (
        std::env::var("VCL_TEST_ECHO_PORT"),
        std::env::var("VCL_TEST_ECHO_N"),
    ) {
        echo_server(port.parse().unwrap(), n.parse().unwrap());
    }
}

/// Run child-mode test `test` of this binary as its own VCL app (with `env`), and return once
/// it prints LISTENING.
fn spawn_child(test: &str, conf: &std::path::Path, env: &[(&str, String)]) -> Child {
    use std::io::BufRead;
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("VCL_CONFIG", conf)
        .stdout(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for l in lines.by_ref() {
        if l.unwrap().contains("LISTENING") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

fn spawn_server(conf: &std::path::Path, port: u16, n: usize) -> Child {
    let env = [
        ("VCL_TEST_ECHO_PORT", port.to_string()),
        ("VCL_TEST_ECHO_N", n.to_string()),
    ];
    spawn_child("child_echo_server", conf, &env)
}

fn wait_child(mut c: Child) {
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

// ---------------------------------------------------------------- clients

/// Blocking sessions: round-robin one chunk out and its echo back on every session.
fn blocking_clients(port: u16) {
    // SAFETY: all calls here are plain calls into our own C ABI with valid pointers.
    unsafe {
        let mut sh = Vec::new();
        for _ in 0..N_SESSIONS {
            let s = vppcom_session_create(0, 0);
            assert!(s >= 0);
            let mut ip = [127, 0, 0, 1];
            assert_eq!(
                vppcom_session_connect(s as u32, &mut endpt(&mut ip, port)),
                0
            );
            sh.push(s as u32);
        }
        let mut out = vec![0u8; CHUNK];
        let mut back = vec![0u8; CHUNK];
        for off in (0..BYTES_PER_SESSION).step_by(CHUNK) {
            for (k, &s) in sh.iter().enumerate() {
                for (j, b) in out.iter_mut().enumerate() {
                    *b = pattern(k, off + j);
                }
                assert_eq!(vppcom_session_write(s, out.as_ptr(), CHUNK), CHUNK as i32);
            }
            for (k, &s) in sh.iter().enumerate() {
                let mut got = 0;
                while got < CHUNK {
                    let r = vppcom_session_read(s, back[got..].as_mut_ptr(), CHUNK - got);
                    assert!(r > 0, "session {k}: read {r}");
                    got += r as usize;
                }
                for (j, &b) in back.iter().enumerate() {
                    assert_eq!(b, pattern(k, off + j), "session {k} byte {}", off + j);
                }
            }
        }
        for s in sh {
            assert_eq!(vppcom_session_close(s), 0);
        }
    }
}

/// Per-session progress of the non-blocking clients.
#[derive(Default, Clone)]
struct Progress {
    sent: usize,
    received: usize,
    connected: bool,
}

/// Non-blocking sessions on one epoll session: connect (EINPROGRESS, then EPOLLOUT), write
/// when writable, verify echoes when readable. `et`: edge-triggered, so drain until EAGAIN.
fn epoll_clients(port: u16, et: bool) {
    // SAFETY: all calls here are plain calls into our own C ABI with valid pointers.
    unsafe {
        let vep = vppcom_epoll_create() as u32;
        let mut sh = Vec::new();
        for k in 0..N_SESSIONS {
            let s = vppcom_session_create(0, 1) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(
                vppcom_session_connect(s, &mut endpt(&mut ip, port)),
                EINPROGRESS
            );
            let mut flags = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
            if et {
                flags |= libc::EPOLLET as u32;
            }
            let mut ev = libc::epoll_event {
                events: flags,
                u64: k as u64,
            };
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, s, &mut ev), 0);
            sh.push(s);
        }
        let mut p = vec![Progress::default(); N_SESSIONS];
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let mut buf = vec![0u8; CHUNK];
        let deadline = Instant::now() + Duration::from_secs(60);
        while p.iter().any(|x| x.received < BYTES_PER_SESSION) {
            assert!(Instant::now() < deadline, "epoll clients stalled");
            let n = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 64, 100.0);
            assert!(n >= 0, "epoll_wait {n}");
            for e in &evs[..n as usize] {
                let k = e.u64 as usize;
                let s = sh[k];
                assert_eq!(
                    e.events & (libc::EPOLLERR | libc::EPOLLHUP) as u32,
                    0,
                    "session {k} failed"
                );
                if e.events & libc::EPOLLOUT as u32 != 0 {
                    p[k].connected = true;
                }
                // write while there is room (ET: until EAGAIN)
                while p[k].connected && p[k].sent < BYTES_PER_SESSION {
                    let len = CHUNK.min(BYTES_PER_SESSION - p[k].sent);
                    for (j, b) in buf[..len].iter_mut().enumerate() {
                        *b = pattern(k, p[k].sent + j);
                    }
                    let w = vppcom_session_write(s, buf.as_ptr(), len);
                    if w == EAGAIN {
                        break;
                    }
                    assert!(w > 0, "session {k}: write {w}");
                    p[k].sent += w as usize;
                    if !et {
                        break;
                    }
                }
                loop {
                    let r = vppcom_session_read(s, buf.as_mut_ptr(), CHUNK);
                    if r == EAGAIN {
                        break;
                    }
                    assert!(r > 0, "session {k}: read {r}");
                    for (j, &b) in buf[..r as usize].iter().enumerate() {
                        assert_eq!(b, pattern(k, p[k].received + j), "session {k}");
                    }
                    p[k].received += r as usize;
                    if !et {
                        break;
                    }
                }
            }
        }
        for s in sh {
            vppcom_epoll_ctl(vep, libc::EPOLL_CTL_DEL, s, std::ptr::null_mut());
            assert_eq!(vppcom_session_close(s), 0);
        }
        vppcom_session_close(vep);
    }
}

/// One test's world: a fresh in-process peer, a vcl.conf for it (cut-through scope if `local`,
/// eventfd mode if `eventfd`), a server child started by `spawn`, and this process attached as
/// the client app while `client` runs.
fn with_peer(
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

fn run(tag: &str, local: bool, client: impl FnOnce(u16)) {
    let spawn = |conf: &std::path::Path, port| spawn_server(conf, port, N_SESSIONS);
    with_peer(tag, local, false, spawn, |port, _| {
        let t = Instant::now();
        client(port);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{tag}: {N_SESSIONS} sessions x {BYTES_PER_SESSION} B echoed in {secs:.2} s ({:.1} MB/s)",
            (N_SESSIONS * BYTES_PER_SESSION * 2) as f64 / secs / 1e6
        );
    });
}

#[test]
fn ct_blocking_100_sessions() {
    run("ct-blocking", true, blocking_clients);
}

#[test]
fn ct_epoll_lt_100_sessions() {
    run("ct-lt", true, |p| epoll_clients(p, false));
}

#[test]
fn ct_epoll_et_100_sessions() {
    run("ct-et", true, |p| epoll_clients(p, true));
}

#[test]
fn transport_blocking_100_sessions() {
    run("tpt-blocking", false, blocking_clients);
}

#[test]
fn transport_epoll_lt_100_sessions() {
    run("tpt-lt", false, |p| epoll_clients(p, false));
}

#[test]
fn transport_epoll_et_100_sessions() {
    run("tpt-et", false, |p| epoll_clients(p, true));
}

/// A waiter blocked 2 s on an idle session (epoll_wait: the same wait loop as a blocking read)
/// busy-polls only for its first window, then sleeps: its CPU time over the wait stays small.
#[test]
fn idle_blocked_waiter_sleeps_after_busy_poll() {
    let spawn = |conf: &std::path::Path, port| spawn_server(conf, port, 1);
    with_peer("idle", true, false, spawn, |port, _| {
        let cpu = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes into the valid timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
        };
        // SAFETY: plain calls into our own C ABI with valid pointers.
        unsafe {
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            let vep = vppcom_epoll_create() as u32;
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: u64::from(s),
            };
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, s, &mut ev), 0);
            let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
            let (c0, t0) = (cpu(), Instant::now());
            assert_eq!(vppcom_epoll_wait(vep, evs.as_mut_ptr(), 4, 2000.0), 0);
            let (used, waited) = (cpu() - c0, t0.elapsed());
            assert!(waited >= Duration::from_millis(1900), "returned early");
            assert!(used < 0.2, "idle waiter used {used:.3} s CPU in {waited:?}");
            println!(
                "idle blocked waiter: {:.1} ms CPU over {waited:?}",
                used * 1e3
            );
            vppcom_session_close(vep);
            assert_eq!(vppcom_session_close(s), 0);
        }
    });
}

// ------------------------------------------------- closes seen without epoll, mq epoll fd

extern "C" {
    fn vppcom_session_attr(sh: u32, op: u32, buf: *mut u8, len: *mut u32) -> i32;
    fn vppcom_worker_mqs_epfd() -> i32;
}

/// Child mode: accept one session, send `bye`, then hold it `hold_ms` and close it.
fn closer_server(port: u16, hold_ms: u64) {
    // SAFETY: all calls here are plain calls into our own C ABI with valid pointers.
    unsafe {
        assert_eq!(vppcom_app_create(c"closer".as_ptr()), 0);
        let ls = vppcom_session_create(0, 0) as u32;
        let mut ip = [0u8; 4];
        assert_eq!(vppcom_session_bind(ls, &mut endpt(&mut ip, port)), 0);
        assert_eq!(vppcom_session_listen(ls, 8), 0);
        println!("LISTENING");
        let mut pip = [0u8; 16];
        let mut pe = endpt(&mut [0; 4], 0);
        pe.ip = pip.as_mut_ptr();
        let cs = vppcom_session_accept(ls, &mut pe, 0);
        assert!(cs >= 0);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(vppcom_session_write(cs as u32, b"bye".as_ptr(), 3), 3);
        std::thread::sleep(Duration::from_millis(hold_ms));
        assert_eq!(vppcom_session_close(cs as u32), 0);
        std::thread::sleep(Duration::from_millis(200));
        vppcom_app_destroy();
    }
}

#[test]
fn child_closer_server() {
    if let (Ok(port), Ok(hold)) = (
        std::env::var("VCL_TEST_CLOSER_PORT"),
        std::env::var("VCL_TEST_CLOSER_HOLD"),
    ) {
        closer_server(port.parse().unwrap(), hold.parse().unwrap());
    }
}

fn spawn_closer(conf: &std::path::Path, port: u16, hold_ms: u64) -> Child {
    let env = [
        ("VCL_TEST_CLOSER_PORT", port.to_string()),
        ("VCL_TEST_CLOSER_HOLD", hold_ms.to_string()),
    ];
    spawn_child("child_closer_server", conf, &env)
}

/// Connect non-blocking, then spin on read without ever calling epoll: the data, then the
/// peer's close (0), must show up — upstream VCL misses the close in this loop.
fn busy_read_until_close(port: u16) -> Vec<i32> {
    // SAFETY: all calls here are plain calls into our own C ABI with valid pointers.
    unsafe {
        let s = vppcom_session_create(0, 1) as u32;
        let mut ip = [127, 0, 0, 1];
        assert_eq!(
            vppcom_session_connect(s, &mut endpt(&mut ip, port)),
            EINPROGRESS
        );
        let mut seen = Vec::new();
        let mut buf = [0u8; 16];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "close never seen: {seen:?}");
            let r = vppcom_session_read(s, buf.as_mut_ptr(), buf.len());
            if r == EAGAIN || r == -libc::ENOTCONN {
                continue;
            }
            seen.push(r);
            if r <= 0 {
                break;
            }
            assert_eq!(&buf[..r as usize], b"bye");
        }
        vppcom_session_close(s);
        seen
    }
}

fn run_closer(tag: &str, local: bool, hold_ms: u64, client: impl FnOnce(u16, &Peer)) {
    let spawn = |conf: &std::path::Path, port| spawn_closer(conf, port, hold_ms);
    with_peer(tag, local, true, spawn, client);
}

#[test]
fn busy_nonblocking_read_sees_peer_close_transport() {
    run_closer("close-tpt", false, 100, |port, _| {
        assert_eq!(busy_read_until_close(port), vec![3, 0]);
    });
}

#[test]
fn busy_nonblocking_read_sees_peer_close_ct() {
    run_closer("close-ct", true, 100, |port, _| {
        assert_eq!(busy_read_until_close(port), vec![3, 0]);
    });
}

#[test]
fn busy_nonblocking_read_sees_reset() {
    run_closer("reset", false, 3000, |port, peer| {
        // SAFETY: all calls here are plain calls into our own C ABI with valid pointers.
        unsafe {
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            let mut flags = libc::O_NONBLOCK as u32;
            let mut len = 4u32;
            assert_eq!(
                vppcom_session_attr(s, 3, &mut flags as *mut u32 as *mut u8, &mut len),
                0
            );
            let mut buf = [0u8; 16];
            let deadline = Instant::now() + Duration::from_secs(10);
            while vppcom_session_read(s, buf.as_mut_ptr(), 16) != 3 {
                assert!(Instant::now() < deadline, "no data");
            }
            // reset every session of ours the peer knows (the client side of this one)
            let mine: Vec<u64> = peer
                .sessions()
                .iter()
                .filter(|x| !x.is_listener && x.state != "closed")
                .map(|x| x.handle)
                .collect();
            assert!(
                mine.iter().any(|&h| peer.reset_session(h)),
                "peer reset nothing: {mine:?}"
            );
            loop {
                assert!(Instant::now() < deadline, "reset never seen");
                let r = vppcom_session_read(s, buf.as_mut_ptr(), 16);
                if r == EAGAIN {
                    continue;
                }
                assert!(r == -libc::ECONNRESET || r == 0, "read after reset: {r}");
                break;
            }
            vppcom_session_close(s);
        }
    });
}

#[test]
fn the_mq_epoll_fd_wakes_an_app_owned_epoll() {
    run_closer("mqsepfd", true, 300, |port, _| {
        // SAFETY: all calls here are plain calls with valid pointers into our C ABI and libc.
        unsafe {
            let epfd = vppcom_worker_mqs_epfd();
            assert!(epfd >= 0, "use-mq-eventfd gives an epoll fd");
            let s = vppcom_session_create(0, 0) as u32;
            let mut ip = [127, 0, 0, 1];
            assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
            let vep = vppcom_epoll_create() as u32;
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 7,
            };
            assert_eq!(vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, s, &mut ev), 0);
            // the app's own event loop: the kernel epoll over VCL's mq eventfd
            let mut kev = [libc::epoll_event { events: 0, u64: 0 }; 4];
            let mut got = 0;
            let deadline = Instant::now() + Duration::from_secs(5);
            while got == 0 {
                assert!(
                    Instant::now() < deadline,
                    "no VCL event through the mq epoll fd"
                );
                assert!(libc::epoll_wait(epfd, kev.as_mut_ptr(), 4, 1000) >= 0);
                let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
                got = vppcom_epoll_wait(vep, out.as_mut_ptr(), 4, 0.0);
                if got > 0 {
                    let (events, data) = (out[0].events, out[0].u64);
                    assert_eq!(data, 7);
                    assert_ne!(events & libc::EPOLLIN as u32, 0);
                }
            }
            vppcom_session_close(s);
            vppcom_session_close(vep);
        }
    });
}

// ------------------------------------------------- one worker per thread (Envoy's model)

extern "C" {
    fn vppcom_worker_register() -> i32;
    fn vppcom_worker_unregister();
    fn vppcom_worker_index() -> i32;
}

/// Each of 4 threads registers its own VCL worker, opens 10 sessions on it and echoes through
/// them with blocking calls; handles carry the thread's worker index.
fn per_thread_workers(port: u16) {
    std::thread::scope(|sc| {
        for t in 0..4 {
            sc.spawn(move || {
                // SAFETY: all calls here are plain calls into our own C ABI with valid pointers.
                unsafe {
                    assert_eq!(vppcom_worker_register(), 0);
                    let wrk = vppcom_worker_index();
                    assert!(wrk > 0);
                    let mut sh = Vec::new();
                    for _ in 0..10 {
                        let s = vppcom_session_create(0, 0);
                        assert!(s >= 0);
                        assert_eq!(s >> 24, wrk, "handle names the thread's worker");
                        let mut ip = [127, 0, 0, 1];
                        assert_eq!(
                            vppcom_session_connect(s as u32, &mut endpt(&mut ip, port)),
                            0
                        );
                        sh.push(s as u32);
                    }
                    let mut back = [0u8; 1024];
                    for (k, &s) in sh.iter().enumerate() {
                        let out: Vec<u8> = (0..1024).map(|i| pattern(t * 100 + k, i)).collect();
                        assert_eq!(vppcom_session_write(s, out.as_ptr(), out.len()), 1024);
                        let mut got = 0;
                        while got < 1024 {
                            let r = vppcom_session_read(s, back[got..].as_mut_ptr(), 1024 - got);
                            assert!(r > 0, "thread {t} session {k}: read {r}");
                            got += r as usize;
                        }
                        assert_eq!(&back[..], &out[..]);
                    }
                    for s in sh {
                        assert_eq!(vppcom_session_close(s), 0);
                    }
                    vppcom_worker_unregister();
                }
            });
        }
    });
}

fn run_n(tag: &str, local: bool, n: usize, client: impl FnOnce(u16)) {
    let spawn = |conf: &std::path::Path, port| spawn_server(conf, port, n);
    with_peer(tag, local, false, spawn, |port, _| client(port));
}

#[test]
fn per_thread_workers_ct() {
    run_n("wrk-ct", true, 40, per_thread_workers);
}

#[test]
fn per_thread_workers_transport() {
    run_n("wrk-tpt", false, 40, per_thread_workers);
}
