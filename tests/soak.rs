//! Soak: T threads (each its own VCL worker) × S sessions each, all open at once, moving bytes
//! both ways through the test peer's transport (kernel TCP on loopback) to kernel sockets.
//! Every byte is checked against a per-session, per-direction generated stream (so a lost,
//! duplicated or reordered byte fails), and RSS and open fds are sampled at the start (all
//! connected), middle (half the bytes moved) and end (all moved), then after closing.
//!
//!   VCL_SOAK_THREADS (default 2), VCL_SOAK_SESSIONS per thread (default 50),
//!   VCL_SOAK_BYTES in total, both directions (default 16 MiB)
//!
//! `make soak` runs the full one in release: 8 threads × 1,000 sessions, 10 GiB.
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vcl::testing::app;
use vcl::testing::config::{Config, SapiAddr};
use vcl_testpeer::{Peer, PeerConfig, SockAddr};

#[path = "common/vcl_peer.rs"]
mod util;
use util::{connect, vppcom_epoll_create, vppcom_epoll_ctl, vppcom_epoll_wait};
use util::{vppcom_session_attr, vppcom_session_close, vppcom_session_read};
use util::{vppcom_session_write, DETECT};

extern "C" {
    fn vppcom_worker_register() -> i32;
    fn vppcom_worker_unregister();
}

/// No byte moved for this long: the soak failed (hung).
const STALL: Duration = Duration::from_secs(60);

static MOVED: AtomicU64 = AtomicU64::new(0);
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(d)
}

/// A reproducible byte stream per (session, direction): xorshift64* words.
struct Stream {
    s: u64,
    word: [u8; 8],
    used: usize,
}

impl Stream {
    fn new(id: u64, dir: u64) -> Stream {
        Stream {
            s: ((id << 1) | dir).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            word: [0; 8],
            used: 8,
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.used == 8 {
                self.s ^= self.s >> 12;
                self.s ^= self.s << 25;
                self.s ^= self.s >> 27;
                self.word = self.s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
                self.used = 0;
            }
            *b = self.word[self.used];
            self.used += 1;
        }
    }

    /// Whether `got` is the stream's next bytes.
    fn check(&mut self, got: &[u8], scratch: &mut Vec<u8>) -> bool {
        scratch.resize(got.len(), 0);
        self.fill(scratch);
        scratch[..] == *got
    }
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The kernel side of one thread's sessions: accept `n`, then per connection read the 8-byte
/// session id, check `per` bytes from it and send `per` bytes to it.
fn kernel_side(l: TcpListener, n: usize, per: u64) {
    struct Conn {
        s: TcpStream,
        id: Option<u64>,
        hdr: Vec<u8>,
        up: Option<Stream>,
        down: Option<Stream>,
        got: u64,
        sent: u64,
    }
    let mut conns: Vec<Conn> = Vec::new();
    let (mut buf, mut scratch, mut out) = (vec![0u8; 64 << 10], Vec::new(), vec![0u8; 64 << 10]);
    let deadline = Instant::now() + Duration::from_secs(3600);
    let (mut idle_since, mut reported) = (Instant::now(), false);
    loop {
        if conns.len() < n {
            l.set_nonblocking(true).unwrap();
            while let Ok((s, _)) = l.accept() {
                s.set_nonblocking(true).unwrap();
                ACCEPTED.fetch_add(1, Relaxed);
                conns.push(Conn {
                    s,
                    id: None,
                    hdr: Vec::new(),
                    up: None,
                    down: None,
                    got: 0,
                    sent: 0,
                });
            }
        }
        let mut busy = false;
        let mut done = 0;
        for c in conns.iter_mut() {
            if c.id.is_none() {
                let mut h = [0u8; 8];
                match c.s.read(&mut h[..8 - c.hdr.len()]) {
                    Ok(0) => panic!("kernel side: EOF before the session id"),
                    Ok(k) => c.hdr.extend_from_slice(&h[..k]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(e) => panic!("kernel side: {e}"),
                }
                if c.hdr.len() == 8 {
                    let id = u64::from_le_bytes(c.hdr[..8].try_into().unwrap());
                    (c.id, c.up, c.down) =
                        (Some(id), Some(Stream::new(id, 0)), Some(Stream::new(id, 1)));
                }
                busy = true;
                continue;
            }
            if c.got < per {
                let want = ((per - c.got) as usize).min(buf.len());
                match c.s.read(&mut buf[..want]) {
                    Ok(0) => panic!("session {:?}: EOF after {} of {per} bytes", c.id, c.got),
                    Ok(k) => {
                        let up = c.up.as_mut().unwrap();
                        assert!(
                            up.check(&buf[..k], &mut scratch),
                            "session {:?}: bytes differ at {}",
                            c.id,
                            c.got
                        );
                        c.got += k as u64;
                        MOVED.fetch_add(k as u64, Relaxed);
                        busy = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("session {:?}: {e}", c.id),
                }
            }
            if c.sent < per {
                let k = ((per - c.sent) as usize).min(out.len());
                // generate only what the socket takes: peek the stream by cloning its state
                let down = c.down.as_mut().unwrap();
                let saved = (down.s, down.word, down.used);
                down.fill(&mut out[..k]);
                match c.s.write(&out[..k]) {
                    Ok(w) => {
                        (down.s, down.word, down.used) = saved;
                        down.fill(&mut out[..w]);
                        c.sent += w as u64;
                        busy = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        (down.s, down.word, down.used) = saved;
                    }
                    Err(e) => panic!("session {:?}: {e}", c.id),
                }
            }
            if c.got == per && c.sent == per {
                done += 1;
            }
        }
        if conns.len() == n && done == n {
            // the sessions close from the VCL side; wait for their FINs here
            for c in conns.iter_mut() {
                c.s.set_nonblocking(false).unwrap();
                // the other threads' sessions may take long: the watcher bounds the run
                c.s.set_read_timeout(Some(Duration::from_secs(3600)))
                    .unwrap();
                let r = c.s.read(&mut buf[..1]);
                assert!(
                    matches!(r, Ok(0)),
                    "session {:?}: after {per} bytes: {r:?}",
                    c.id
                );
            }
            return;
        }
        assert!(Instant::now() < deadline, "kernel side stuck");
        if busy {
            idle_since = Instant::now();
        } else if idle_since.elapsed() > STALL / 3 && !reported {
            reported = true;
            for c in conns.iter().filter(|c| c.got < per || c.sent < per) {
                eprintln!(
                    "soak: kernel side: stuck session {:?}: got {} sent {} of {per}",
                    c.id.map(|i| format!("{}/{}", i >> 32, i & 0xFFFF_FFFF)),
                    c.got,
                    c.sent
                );
            }
        }
        if !busy {
            let mut pfd: Vec<libc::pollfd> = conns
                .iter()
                .map(|c| {
                    let mut events = 0;
                    if c.id.is_none() || c.got < per {
                        events |= libc::POLLIN;
                    }
                    if c.sent < per {
                        events |= libc::POLLOUT;
                    }
                    libc::pollfd {
                        fd: c.s.as_raw_fd(),
                        events,
                        revents: 0,
                    }
                })
                .chain(std::iter::once(libc::pollfd {
                    fd: l.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }))
                .collect();
            // SAFETY: pfd is a valid array of its length.
            unsafe { libc::poll(pfd.as_mut_ptr(), pfd.len() as libc::nfds_t, 5) };
        }
    }
}

/// A VPPCOM_ATTR_GET_* that answers in its return value (NREAD 0, NWRITE 1).
fn attr_u32(sh: u32, op: u32) -> i32 {
    let mut v = 0u32;
    let mut len = 4u32;
    // SAFETY: v and len outlive the call.
    unsafe { vppcom_session_attr(sh, op, (&mut v as *mut u32).cast(), &mut len) }
}

/// One VCL thread: its own worker, `n` sessions to `port`, each sending its id and `per`
/// bytes and reading `per` bytes back, all at once (non-blocking, an epoll set to sleep on).
fn vcl_side(t: u64, port: u16, n: usize, per: u64, barrier: Arc<std::sync::Barrier>) {
    // SAFETY: (all C calls below) plain calls; buffers outlive them and are as long as passed.
    assert_eq!(unsafe { vppcom_worker_register() }, 0, "thread {t}: worker");
    struct Sess {
        sh: u32,
        out: Stream,
        inp: Stream,
        sent: u64,
        got: u64,
    }
    // SAFETY: a plain call; its buffers outlive it and are as long as passed.
    let vep = unsafe { vppcom_epoll_create() } as u32;
    let mut ss = Vec::with_capacity(n);
    for k in 0..n {
        let sh = connect(port);
        let id = (t << 32) | k as u64;
        // the session id first (an empty fifo takes 8 bytes whole)
        // SAFETY: a plain call; its buffers outlive it and are as long as passed.
        let r = unsafe { vppcom_session_write(sh, id.to_le_bytes().as_ptr(), 8) };
        assert_eq!(r, 8);
        let mut nb: i32 = libc::O_NONBLOCK;
        let mut len = 4u32;
        // VPPCOM_ATTR_SET_FLAGS = 3
        // SAFETY: a plain call; its buffers outlive it and are as long as passed.
        let rv = unsafe { vppcom_session_attr(sh, 3, (&mut nb as *mut i32).cast(), &mut len) };
        assert_eq!(rv, 0);
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32,
            u64: k as u64,
        };
        assert_eq!(
            // SAFETY: a plain call; its buffers outlive it and are as long as passed.
            unsafe { vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, sh, &mut ev) },
            0
        );
        ss.push(Sess {
            sh,
            out: Stream::new(id, 0),
            inp: Stream::new(id, 1),
            sent: 0,
            got: 0,
        });
    }
    barrier.wait(); // all connected
    barrier.wait(); // the start sample is taken
    let (mut buf, mut scratch, mut out) = (vec![0u8; 64 << 10], Vec::new(), vec![0u8; 64 << 10]);
    let mut done = 0;
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 256];
    let (mut idle_since, mut reported) = (Instant::now(), false);
    while done < n {
        let mut busy = false;
        done = 0;
        for s in ss.iter_mut() {
            if s.sent < per {
                let k = ((per - s.sent) as usize).min(out.len());
                let saved = (s.out.s, s.out.word, s.out.used);
                s.out.fill(&mut out[..k]);
                // SAFETY: a plain call; its buffers outlive it and are as long as passed.
                let r = unsafe { vppcom_session_write(s.sh, out.as_ptr(), k) };
                (s.out.s, s.out.word, s.out.used) = saved;
                if r > 0 {
                    s.out.fill(&mut out[..r as usize]);
                    s.sent += r as u64;
                    busy = true;
                } else {
                    assert_eq!(r, -libc::EAGAIN, "thread {t}: write on {:#x}", s.sh);
                }
            }
            if s.got < per {
                let want = ((per - s.got) as usize).min(buf.len());
                // SAFETY: a plain call; its buffers outlive it and are as long as passed.
                let r = unsafe { vppcom_session_read(s.sh, buf.as_mut_ptr(), want) };
                if r > 0 {
                    assert!(
                        s.inp.check(&buf[..r as usize], &mut scratch),
                        "thread {t}: {:#x}: bytes differ at {}",
                        s.sh,
                        s.got
                    );
                    s.got += r as u64;
                    MOVED.fetch_add(r as u64, Relaxed);
                    busy = true;
                } else {
                    assert_eq!(
                        r,
                        -libc::EAGAIN,
                        "thread {t}: read on {:#x} after {} bytes",
                        s.sh,
                        s.got
                    );
                }
            }
            if s.sent == per && s.got == per {
                done += 1;
            }
        }
        if busy {
            idle_since = Instant::now();
        } else if idle_since.elapsed() > STALL / 3 && !reported {
            reported = true;
            for s in ss.iter().filter(|s| s.sent < per || s.got < per) {
                let (nread, nwrite) = (attr_u32(s.sh, 0), attr_u32(s.sh, 1));
                eprintln!(
                    "soak: thread {t}: stuck {:#x}: sent {} got {} of {per}; nread {nread} \
                     nwrite {nwrite}",
                    s.sh, s.sent, s.got
                );
            }
        }
        if !busy && done < n {
            // SAFETY: a plain call; its buffers outlive it and are as long as passed.
            unsafe { vppcom_epoll_wait(vep, evs.as_mut_ptr(), evs.len() as i32, 5.0) };
        }
    }
    barrier.wait(); // end: all moved
    barrier.wait(); // the end sample is taken
    for s in &ss {
        // SAFETY: a plain call; its buffers outlive it and are as long as passed.
        assert_eq!(unsafe { vppcom_session_close(s.sh) }, 0);
    }
    // SAFETY: a plain call; its buffers outlive it and are as long as passed.
    unsafe { vppcom_session_close(vep) };
    // SAFETY: a plain call; its buffers outlive it and are as long as passed.
    unsafe { vppcom_worker_unregister() };
}

#[test]
fn soak() {
    let threads = env("VCL_SOAK_THREADS", 2);
    let sessions = env("VCL_SOAK_SESSIONS", 50) as usize;
    let total = env("VCL_SOAK_BYTES", 16 << 20);
    let per = (total / 2 / (threads * sessions as u64)).max(1);
    let moved_total = per * 2 * threads * sessions as u64;
    println!("soak: {threads} threads x {sessions} sessions, {per} bytes each way per session");
    let name = format!("vcl-soak-{}", std::process::id());
    // room in VPP's thread queue for an event per session and direction (wrk-mq-length)
    let mut pc = PeerConfig::new(SockAddr::Abstract(name.clone()));
    pc.wrk_mq_length = (threads as u32 * sessions as u32 * 2).max(2048);
    let p = Peer::start(pc).expect("peer starts");
    let fifo = 32 << 10;
    let cfg = Config {
        app_socket_api: Some(SapiAddr::Abstract(name.into_bytes())),
        segment_size: (sessions as u64 * 2 * (fifo + 4096) + (16 << 20)).next_power_of_two(),
        rx_fifo_size: fifo as u32,
        tx_fifo_size: fifo as u32,
        app_scope_global: true,
        app_timeout: 20.0,
        ..Config::default()
    };
    app::create(cfg, None).expect("attached");
    let base = (open_fds(), rss_kib());
    let barrier = Arc::new(std::sync::Barrier::new(threads as usize + 1));
    let mut hs = Vec::new();
    for t in 0..threads {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        hs.push(std::thread::spawn(move || kernel_side(l, sessions, per)));
        let b = barrier.clone();
        hs.push(std::thread::spawn(move || {
            vcl_side(t, port, sessions, per, b)
        }));
    }
    barrier.wait();
    let t = Instant::now();
    while ACCEPTED.load(Relaxed) < threads * sessions as u64 {
        assert!(
            t.elapsed() < DETECT * 10,
            "the kernel side accepted every session"
        );
        std::thread::sleep(Duration::from_millis(10)); // awaiting the count (the accept loop is busy)
    }
    let start = (open_fds(), rss_kib());
    barrier.wait();
    let t0 = Instant::now();
    // sample at half way; report progress; fail (abort) if nothing moves for STALL
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fin = finished.clone();
    let watcher = std::thread::spawn(move || {
        let (mut middle, mut last, mut since, mut shown) =
            (None, 0, Instant::now(), Instant::now());
        while !fin.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(20)); // sampling period
            let now = MOVED.load(Relaxed);
            if middle.is_none() && now >= moved_total / 2 {
                middle = Some((open_fds(), rss_kib()));
            }
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() > STALL {
                let _ = std::io::stderr().write_all(
                    format!("soak: STALLED at {now} of {moved_total} bytes\n").as_bytes(),
                );
                std::process::abort();
            }
            if shown.elapsed() >= Duration::from_secs(10) {
                shown = Instant::now();
                println!("soak: {} MiB of {} moved", now >> 20, moved_total >> 20);
            }
        }
        middle.unwrap_or((open_fds(), rss_kib()))
    });
    barrier.wait();
    let took = t0.elapsed();
    let end = (open_fds(), rss_kib());
    finished.store(true, Relaxed);
    let middle = watcher.join().unwrap();
    barrier.wait();
    for h in hs {
        h.join().expect("a soak thread failed");
    }
    let t = Instant::now();
    while open_fds() > base.0 + 8 && t.elapsed() < DETECT * 10 {
        std::thread::sleep(Duration::from_millis(50)); // the peer's TIME_WAIT and cleanup
    }
    let after = (open_fds(), rss_kib());
    let moved = MOVED.load(Relaxed);
    println!(
        "soak: {moved} bytes ({:.2} GiB) verified in {:.1} s ({:.0} MiB/s), 0 lost",
        moved as f64 / (1u64 << 30) as f64,
        took.as_secs_f64(),
        moved as f64 / (1 << 20) as f64 / took.as_secs_f64()
    );
    println!(
        "soak: fds/RSS(KiB): attached {base:?}, start {start:?}, middle {middle:?}, end {end:?}, \
         closed {after:?}"
    );
    assert_eq!(moved, moved_total, "every byte arrived");
    assert!(
        start.0.abs_diff(end.0) <= 8 && start.0.abs_diff(middle.0) <= 8,
        "fd count flat"
    );
    assert!(
        after.0 <= base.0 + 8,
        "fds back after closing: {after:?} vs {base:?}"
    );
    // fifo pages are touched during the first round trips; from then on moving bytes must not
    // grow memory (RSS in KiB)
    let slack = 64 << 10;
    assert!(
        end.1 <= middle.1 + slack,
        "RSS flat: middle {} end {} KiB",
        middle.1,
        end.1
    );
    app::destroy();
    p.stop();
}
