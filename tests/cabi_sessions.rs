//! cabi-tests/session_check.c, built through pkg-config as C and as C++, run against an
//! in-process test peer: every session, I/O, epoll, poll and select function with good and bad
//! input, checked against VPP v26.06's VCL return codes.
//!
//! The app is app-scope-global only: its client connects to its own listener on 127.0.0.1,
//! which VPP (and the peer) refuse with app-scope-local (`ct_session_connect` skips the app's own
//! listener and then returns NOROUTE for a loopback destination). Over global scope the peer
//! backs the session with kernel TCP.

mod common;

use std::time::Duration;

use common::{free_port, repo_dir, write_vcl_conf, Prefix};
use vcl_testpeer::{Peer, PeerConfig, SockAddr};

fn run_session_check(name: &str, cxx: bool) {
    run_check(name, "cabi-tests/session_check.c", cxx);
}

fn run_check(name: &str, src: &str, cxx: bool) {
    let sock = format!("vcl-{name}-{}", std::process::id());
    let peer = Peer::start(PeerConfig::new(SockAddr::Abstract(sock.clone()))).expect("peer");
    let p = Prefix::new(name);
    let conf = write_vcl_conf(&p.dir, "vcl.conf", &format!("abstract:{sock}"), false);
    let exe = p.compile(&[repo_dir().join(src)], name, cxx, false);
    let (port, refused) = (free_port().to_string(), free_port().to_string());
    let out = p.run_for(
        &exe,
        &[&port, &refused],
        &[("VCL_CONFIG", conf.to_str().unwrap()), ("VCL_DEBUG", "0")],
        Duration::from_secs(90),
    );
    // the library line and the labelled differences: see them with --nocapture
    eprint!("{}{}", out.stdout, out.stderr);
    out.assert_ok();
    // ... and it is the library this prefix holds (the release install under scripts/test)
    let lib = out.line("library: ");
    assert!(lib.starts_with("library: libvcl "), "{lib}");
    assert!(lib.contains(p.lib().to_str().unwrap()), "{lib}");
    let summary = out.line(" passed, ");
    // every known difference is labelled in the output and listed in the README
    let readme = std::fs::read_to_string(repo_dir().join("README.md")).unwrap();
    let diffs: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("DIFFERS ON PURPOSE "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    for d in &diffs {
        assert!(
            readme.contains(&format!("`{d}`")),
            "README does not list `{d}`"
        );
    }
    let want = format!(" passed, 0 failed, {} known differences", diffs.len());
    assert!(summary.ends_with(&want), "{summary}");
    assert!(!peer.is_dead(), "the peer died");
    peer.stop();
}

#[test]
fn session_check_c() {
    run_session_check("sessions_c", false);
}

#[test]
fn session_check_cxx() {
    run_session_check("sessions_cxx", true);
}

/// cabi-tests/secure_check.c: TLS/DTLS/QUIC entry points with bad input.
#[test]
fn secure_check_c() {
    run_check("secure_c", "cabi-tests/secure_check.c", false);
}

#[test]
fn secure_check_cxx() {
    run_check("secure_cxx", "cabi-tests/secure_check.c", true);
}
