//! c-examples/: every example builds through pkg-config with -Wall -Wextra -Werror, and runs
//! against an in-process test peer: vcl_info, vcl_workers, the echo server and client and
//! vcl_perf (server, stream, pingpong), the UDP echo (connectionless and connected server),
//! over transport (both apps app-scope-global: kernel TCP
//! in the peer) and over cut-through (both apps app-scope-local + app-scope-global).
//!
//! Servers are separate processes; every program runs under a deadline and is killed when it
//! passes it or when its test fails, so a hang fails the test instead of blocking CI.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{free_port, repo_dir, write_vcl_conf, Bg, Finished, Prefix};
use vcl_testpeer::{Peer, PeerConfig, SockAddr};

const START: Duration = Duration::from_secs(10);
const RUN: Duration = Duration::from_secs(30);

/// A test peer, a prefix with the examples a test needs, and a vcl.conf for the scopes asked.
struct Setup {
    peer: Peer,
    p: Prefix,
    conf: PathBuf,
}

impl Setup {
    fn new(tag: &str, local: bool) -> Setup {
        let sock = format!("vcl-ex-{tag}-{}", std::process::id());
        let peer = Peer::start(PeerConfig::new(SockAddr::Abstract(sock.clone()))).expect("peer");
        let p = Prefix::new(&format!("ex-{tag}"));
        let conf = write_vcl_conf(&p.dir, "vcl.conf", &format!("abstract:{sock}"), local);
        Setup { peer, p, conf }
    }

    fn build(&self, example: &str) -> PathBuf {
        let src = repo_dir().join("c-examples").join(format!("{example}.c"));
        let extra: &[&str] = if example == "vcl_workers" {
            &["-pthread"]
        } else {
            &[]
        };
        self.p.compile_c(&src, example, extra)
    }

    fn env(&self) -> [(&'static str, &str); 3] {
        [
            ("VCL_CONFIG", self.conf.to_str().unwrap()),
            ("VCL_DEBUG", "0"),
            // read by vcl_perf's stream only: its rate every 100 ms on stderr (a 1 s stream
            // whose writes a loaded machine stalls for half a second still reports several)
            ("VCL_PERF_INTERVAL_MS", "100"),
        ]
    }

    fn run(&self, exe: &std::path::Path, args: &[&str]) -> Finished {
        let f = self.p.run_for(exe, args, &self.env(), RUN);
        f.assert_ok();
        f
    }

    /// Start a server and wait until it says it listens.
    fn server(&self, exe: &std::path::Path, args: &[&str]) -> Bg {
        let mut bg = self.p.spawn(exe, args, &self.env());
        if !bg.wait_output("listening on port", START) {
            let f = bg.wait_for(Duration::ZERO);
            panic!("`{}` did not start listening:\n{f:#?}", f.name);
        }
        bg
    }

    /// Run a client while watching which kinds of sessions the peer has.
    fn run_watched(&self, exe: &std::path::Path, args: &[&str], seen: &mut Seen) -> Finished {
        let f = self
            .p
            .spawn(exe, args, &self.env())
            .wait_for_with(RUN, || seen.look(&self.peer));
        f.assert_ok();
        f
    }

    fn finish(self, server: Bg) -> Finished {
        let f = server.wait_for(START);
        f.assert_ok();
        assert!(!self.peer.is_dead(), "the peer died");
        self.peer.stop();
        f
    }
}

/// Which kinds of connected sessions the peer was seen holding.
#[derive(Default, Debug)]
struct Seen {
    ct: bool,
    transport: bool,
}

impl Seen {
    /// What the peer allocated so far, as it counts it (looking at its live sessions missed
    /// runs that opened and closed theirs between two looks: a cut-through DTLS echo finished
    /// within 5 ms).
    fn look(&mut self, peer: &Peer) {
        let (ct, transport) = peer.sessions_ever();
        self.ct |= ct > 0;
        self.transport |= transport > 0;
    }

    fn assert_only(&self, ct: bool) {
        let what = if ct { "cut-through" } else { "transport" };
        assert!(
            self.ct == ct && self.transport != ct,
            "expected {what} sessions only, saw {self:?}"
        );
    }
}

/// The number after `before` in `line` ("sent 123 bytes" → 123).
fn number_after(line: &str, before: &str) -> u64 {
    let rest = &line[line
        .find(before)
        .unwrap_or_else(|| panic!("{before:?} in {line:?}"))
        + before.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {before:?} in {line:?}"))
}

#[test]
fn every_example_builds() {
    let s = Setup::new("build", false);
    let mut n = 0;
    for e in std::fs::read_dir(repo_dir().join("c-examples")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "c") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            assert!(s.build(&name).exists());
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} examples in c-examples/");
    s.peer.stop();
}

#[test]
fn info_and_workers() {
    let s = Setup::new("info", true);
    let info = s.run(&s.build("vcl_info"), &[]);
    assert!(info.stdout.starts_with("libvcl "), "{}", info.stdout);
    info.line("app-scope-local true");
    info.line("attach to VPP: ok, worker 0");
    let workers = s.run(&s.build("vcl_workers"), &["4"]);
    workers.line("4 workers registered, 0 failed");
    assert_eq!(
        workers.stdout.matches(": worker ").count(),
        5,
        "{}",
        workers.stdout
    );
    assert!(!s.peer.is_dead());
    s.peer.stop();
}

fn echo(tag: &str, ct: bool) {
    let s = Setup::new(tag, ct);
    let (server, client) = (s.build("vcl_echo_server"), s.build("vcl_echo_client"));
    let port = free_port().to_string();
    let srv = s.server(&server, &[&port, "2"]);
    let mut seen = Seen::default();
    let small = s.run_watched(&client, &["127.0.0.1", &port, "200", "1024"], &mut seen);
    small.line("200 echoes of 1024 bytes ok");
    let big = s.run_watched(&client, &["127.0.0.1", &port, "20", "1000000"], &mut seen);
    big.line("20 echoes of 1000000 bytes ok");
    seen.look(&s.peer);
    let done = s.finish(srv);
    done.line("2 sessions served, 20204800 bytes echoed");
    seen.assert_only(ct);
    eprintln!(
        "{tag}: {}\n{tag}: {}",
        small.line("echoes"),
        big.line("echoes")
    );
}

#[test]
fn echo_transport() {
    echo("echo-tcp", false);
}

#[test]
fn echo_cut_through() {
    echo("echo-ct", true);
}

/// c-examples/vcl_udp_echo: a server in `mode` (cl or connected) and two clients.
fn udp_echo(tag: &str, ct: bool, mode: &str) {
    let s = Setup::new(tag, ct);
    let exe = s.build("vcl_udp_echo");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let srv = s.server(&exe, &["server", &port, mode, "400"]);
    let mut seen = Seen::default();
    let a = s.run_watched(
        &exe,
        &["client", "127.0.0.1", &port, "300", "512"],
        &mut seen,
    );
    a.line("300 echoes of 512 bytes ok");
    let b = s.run_watched(
        &exe,
        &["client", "127.0.0.1", &port, "100", "9000"],
        &mut seen,
    );
    b.line("100 echoes of 9000 bytes ok");
    seen.look(&s.peer);
    let done = s.finish(srv);
    done.line("400 datagrams echoed");
    seen.assert_only(ct);
    eprintln!("{tag}: {}\n{tag}: {}", a.line("echoes"), b.line("echoes"));
}

#[test]
fn udp_echo_connectionless() {
    udp_echo("udp-cl", false, "cl");
}

#[test]
fn udp_echo_connected() {
    udp_echo("udp-conn", false, "connected");
}

#[test]
fn udp_echo_cut_through() {
    udp_echo("udp-ct", true, "connected");
}

fn perf(tag: &str, ct: bool) {
    let s = Setup::new(tag, ct);
    let perf = s.build("vcl_perf");
    let port = free_port().to_string();
    let srv = s.server(&perf, &["server", &port, "2"]);
    let mut seen = Seen::default();
    let stream = s.run_watched(&perf, &["stream", "127.0.0.1", &port, "1"], &mut seen);
    let sent = number_after(stream.line("vcl_perf stream:"), "sent ");
    assert!(sent > 0, "{}", stream.stdout);
    let rates = stream
        .stderr
        .split_whitespace()
        .filter(|w| w.parse::<f64>().is_ok_and(|r| r >= 0.0))
        .count();
    assert!(rates >= 2, "no per-interval rates: {}", stream.stderr);
    let pp = s.run_watched(&perf, &["pingpong", "127.0.0.1", &port, "1000"], &mut seen);
    pp.line("1000 round trips of 64 bytes");
    seen.look(&s.peer);
    let done = s.finish(srv);
    let received = number_after(done.line("stream test"), "test, ");
    done.line("ping-pong test done");
    // Whatever the client queued before it closed and exited must reach the server: VPP (and
    // the peer) close, not reset, a detaching app's sessions.
    assert_eq!(
        received, sent,
        "the server did not receive all the client sent before closing:\n{}{}",
        done.stdout, done.stderr
    );
    seen.assert_only(ct);
    eprintln!(
        "{tag}: {}\n{tag}: {}",
        stream.line("vcl_perf stream"),
        pp.line("vcl_perf pingpong")
    );
}

#[test]
fn perf_transport() {
    perf("perf-tcp", false);
}

#[test]
fn perf_cut_through() {
    perf("perf-ct", true);
}

/// vcl_scale over cut-through: 1000 idle sessions cost the app next to no pages of the shared
/// fifo segments (a fifo's pages are faulted in when it is used, not at connect: upstream's VCL
/// reads nothing of a fifo then either). Reading each fifo header at connect cost ~9 KiB of
/// shared pages per session (read faults map the present pages around them too).
#[test]
fn idle_sessions_touch_no_shared_fifo_pages() {
    const N: u64 = 1000;
    let s = Setup::new("scale", true);
    let exe = s.build("vcl_scale");
    let port = free_port().to_string();
    let f = s.run(&exe, &[&N.to_string(), "10", &port]);
    let line = f.line("vcl_scale: n=");
    let kib = number_after(line, "shm_kib=") - number_after(line, "shm0_kib=");
    // what stays: the segments' headers and the mq ring's pages the connects' messages used
    assert!(
        kib * 1024 / N <= 1024,
        "{N} sessions: {kib} KiB of shared segment pages ({} bytes each)\n{}",
        kib * 1024 / N,
        f.stdout
    );
    eprintln!("scale: {}", f.line("vcl_scale: RSS"));
    s.peer.stop();
}

/// The TLS (or, `dtls`, DTLS) echo example with the committed test certificate (tests/data/):
/// the server's listener and the client carry a cert/key pair in their ext config; the peer
/// checks it and carries the data as plaintext (DTLS: datagrams over kernel UDP, each echo one
/// datagram, the client ending with a BYE datagram as VPP tells the server nothing).
fn tls_echo(tag: &str, ct: bool, dtls: bool) {
    let s = Setup::new(tag, ct);
    let exe = s.build("vcl_tls_echo");
    let data = repo_dir().join("tests/data");
    let (cert, key) = (data.join("tls-test.crt"), data.join("tls-test.key"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let port = free_port().to_string();
    let proto = if dtls { "dtls" } else { "tls" };
    let srv = s.server(&exe, &["-p", proto, "server", cert, key, &port, "2"]);
    let mut seen = Seen::default();
    let args = |rounds: &'static str, size: &'static str| {
        [
            "-p",
            proto,
            "client",
            cert,
            key,
            "127.0.0.1",
            port.as_str(),
            rounds,
            size,
        ]
    };
    // DTLS: every echo is one datagram within a DTLS record (16 KB)
    let (big_rounds, big_size) = if dtls {
        ("50", "16000")
    } else {
        ("5", "300000")
    };
    let small = s.run_watched(&exe, &args("200", "1024"), &mut seen);
    small.line("200 echoes of 1024 bytes ok");
    let big = s.run_watched(&exe, &args(big_rounds, big_size), &mut seen);
    big.line(&format!("{big_rounds} echoes of {big_size} bytes ok"));
    seen.look(&s.peer);
    let done = s.finish(srv);
    let bytes = 200 * 1024 + big_rounds.parse::<u64>().unwrap() * big_size.parse::<u64>().unwrap();
    done.line(&format!("2 sessions served, {bytes} bytes echoed"));
    seen.assert_only(ct);
}

#[test]
fn tls_echo_transport() {
    tls_echo("tls-tcp", false, false);
}

#[test]
fn tls_echo_cut_through() {
    tls_echo("tls-ct", true, false);
}

#[test]
fn dtls_echo_transport() {
    tls_echo("dtls-udp", false, true);
}

#[test]
fn dtls_echo_cut_through() {
    tls_echo("dtls-ct", true, true);
}
