//! C-API fuzz harness: random sequences of `vppcom_*` calls with random arguments (valid,
//! stale and garbage handles, NULL buffers and lengths, random attr ops, epoll ops, small
//! timeouts) through the exported C symbols, against the test peer while a chaos thread
//! connects, writes, closes and resets on the kernel side (tests/fuzzapi/).
//!
//! Passes when every call returned: no crash, no panic inside the library (caught at the C
//! boundary, but still a bug, so counted here), no hang (a watchdog aborts the process when no
//! call finished for VCL_FUZZ_API_STALL_SECS, default 20, naming the seed and the call).
//!
//!   VCL_FUZZ_API_SEED=N    the seed (default: from the clock; always printed)
//!   VCL_FUZZ_API_CALLS=N   stop after N calls (default: time-bounded)
//!   VCL_FUZZ_API_SECS=S    stop after S seconds (default 20, or none when CALLS is set)
//!
//! Odd seeds attach with use-mq-eventfd, even ones without.
//! `make fuzz-api CALLS=10000000` runs it in release. A seed replays the same call sequence;
//! the chaos thread's timing is not replayed, so a timing-dependent failure may need a few runs.
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

#[path = "fuzzapi/abi.rs"]
mod abi;
#[path = "fuzzapi/calls.rs"]
mod calls;
#[path = "fuzzapi/chaos.rs"]
mod chaos;
#[path = "fuzzapi/more.rs"]
mod more;
#[path = "fuzzapi/rng.rs"]
mod rng;

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vcl_testpeer::{Peer, PeerConfig, SockAddr};

static CALLS: AtomicU64 = AtomicU64::new(0);
static CUR_OP: AtomicUsize = AtomicUsize::new(usize::MAX);
static PANICS: AtomicU64 = AtomicU64::new(0);
static FIRST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn env<T: std::str::FromStr>(k: &str) -> Option<T> {
    std::env::var(k).ok().and_then(|v| v.trim().parse().ok())
}

/// Straight to stderr (not the test harness's capture: it must survive an abort).
fn say(msg: &str) {
    let _ = std::io::stderr().write_all(format!("fuzz-api: {msg}\n").as_bytes());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Abort the process (failing the test) when no call finished for `stall`.
fn watchdog(seed: u64, stall: Duration, done: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let (mut last, mut since) = (CALLS.load(Relaxed), Instant::now());
        while !done.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            let now = CALLS.load(Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= stall {
                let op = calls::OPS.get(CUR_OP.load(Relaxed)).map_or("?", |o| o.0);
                say(&format!(
                    "HANG: call #{} ({op}) has not returned after {stall:?}; seed {seed} \
                     (re-run: VCL_FUZZ_API_SEED={seed} VCL_FUZZ_API_CALLS={})",
                    now + 1,
                    now + 1
                ));
                std::process::abort();
            }
        }
    });
}

/// The app's vcl.conf; odd seeds use use-mq-eventfd (the other wait path).
fn write_conf(dir: &std::path::Path, sock: &str, eventfd: bool) -> std::path::PathBuf {
    let path = dir.join("vcl.conf");
    let evfd = if eventfd { "  use-mq-eventfd\n" } else { "" };
    let text = format!(
        "vcl {{\n  app-socket-api abstract:{sock}\n  segment-size 67108864\n  \
         rx-fifo-size 65536\n  tx-fifo-size 65536\n  app-scope-global\n  \
         app-timeout 5\n{evfd}}}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn fuzz_api() {
    let seed: u64 = env("VCL_FUZZ_API_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let max_calls: Option<u64> = env("VCL_FUZZ_API_CALLS");
    let secs: Option<f64> = env("VCL_FUZZ_API_SECS").or(if max_calls.is_some() {
        None
    } else {
        Some(20.0)
    });
    let stall = Duration::from_secs_f64(env("VCL_FUZZ_API_STALL_SECS").unwrap_or(20.0));
    say(&format!(
        "seed {seed} (re-run: VCL_FUZZ_API_SEED={seed}), calls {max_calls:?}, secs {secs:?}, \
         use-mq-eventfd {}",
        seed % 2 == 1
    ));

    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Relaxed);
        let op = calls::OPS.get(CUR_OP.load(Relaxed)).map_or("?", |o| o.0);
        let msg = format!("call #{} ({op}): {info}", CALLS.load(Relaxed) + 1);
        FIRST_PANIC.lock().unwrap().get_or_insert(msg);
        prev_hook(info);
    }));

    let sock = format!("vcl-fuzz-api-{}", std::process::id());
    let peer = Arc::new(Peer::start(PeerConfig::new(SockAddr::Abstract(sock.clone()))).unwrap());
    let dir = std::env::temp_dir().join(format!("vcl-fuzz-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_var("VCL_CONFIG", write_conf(&dir, &sock, seed % 2 == 1));

    let mut f = calls::Fuzz::new(seed, "fuzz-api");
    let kernel: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    f.kernel_ports = kernel
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    f.listen_ports = (0..4).map(|_| free_port()).collect();
    f.dead_port = free_port();
    // SAFETY: a NUL-terminated name.
    assert_eq!(unsafe { abi::vppcom_app_create(f.app_name.as_ptr()) }, 0);

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(chaos::Counts::default());
    let chaos = {
        let (p, ports, stop, counts) = (
            peer.clone(),
            f.listen_ports.clone(),
            stop.clone(),
            counts.clone(),
        );
        std::thread::spawn(move || chaos::run(seed, p, kernel, ports, stop, counts))
    };
    watchdog(seed, stall, stop.clone());

    let start = Instant::now();
    let deadline = secs.map(|s| start + Duration::from_secs_f64(s));
    let mut n: u64 = 0;
    loop {
        if max_calls.is_some_and(|m| n >= m) {
            break;
        }
        if n % 1024 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let op = f.next_op();
        CUR_OP.store(op, Relaxed);
        f.step(op);
        f.tidy();
        n += 1;
        CALLS.store(n, Relaxed);
        if n % 1_000_000 == 0 {
            say(&format!(
                "{n} calls in {:.1} s",
                start.elapsed().as_secs_f64()
            ));
        }
    }
    let took = start.elapsed();
    stop.store(true, Relaxed);
    chaos.join().unwrap();
    // SAFETY: a plain call.
    unsafe { abi::vppcom_app_destroy() };
    if let Ok(p) = Arc::try_unwrap(peer) {
        p.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);

    let mut table = String::new();
    for ((name, _), (c, ok)) in calls::OPS.iter().zip(&f.stats) {
        table.push_str(&format!(" {name}={c}/{ok}ok"));
    }
    say(&format!(
        "seed {seed}: {n} calls in {:.1} s ({:.0} calls/s), {} panics; chaos: {} accepted, \
         {} connected, {} resets, {} peer resets\n  per op (calls/ok):{table}",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        PANICS.load(Relaxed),
        counts.accepted.load(Relaxed),
        counts.connected.load(Relaxed),
        counts.resets.load(Relaxed),
        counts.peer_resets.load(Relaxed),
    ));
    if env::<u32>("VCL_FUZZ_API_VERBOSE").is_some_and(|v| v > 0) {
        for ((op, rv), c) in &f.rvs {
            say(&format!("  {} -> {rv}: {c}", calls::OPS[*op].0));
        }
    }
    assert_eq!(
        PANICS.load(Relaxed),
        0,
        "seed {seed}: a panic inside the library: {:?}",
        FIRST_PANIC.lock().unwrap()
    );
}
