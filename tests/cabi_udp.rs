//! cabi-tests/udp_check.c, built through pkg-config as C and as C++, run against an in-process
//! test peer (global scope: its client reaches its own connectionless listener through the
//! peer's kernel UDP): datagram boundaries, recvfrom/sendto and bad input, checked against VPP
//! v26.06's VCL return codes.

mod common;

use std::time::Duration;

use common::{repo_dir, write_vcl_conf, Prefix};
use vcl_testpeer::{Peer, PeerConfig, SockAddr};

fn run_udp_check(name: &str, cxx: bool) {
    let sock = format!("vcl-{name}-{}", std::process::id());
    let peer = Peer::start(PeerConfig::new(SockAddr::Abstract(sock.clone()))).expect("peer");
    let p = Prefix::new(name);
    let conf = write_vcl_conf(&p.dir, "vcl.conf", &format!("abstract:{sock}"), false);
    let exe = p.compile(
        &[repo_dir().join("cabi-tests/udp_check.c")],
        name,
        cxx,
        false,
    );
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let out = p.run_for(
        &exe,
        &[&port],
        &[("VCL_CONFIG", conf.to_str().unwrap()), ("VCL_DEBUG", "0")],
        Duration::from_secs(90),
    );
    eprint!("{}{}", out.stdout, out.stderr);
    out.assert_ok();
    let lib = out.line("library: ");
    assert!(lib.starts_with("library: libvcl "), "{lib}");
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
    let summary = out.line(" passed, ");
    let want = format!(" passed, 0 failed, {} known differences", diffs.len());
    assert!(summary.ends_with(&want), "{summary}");
    assert!(!peer.is_dead(), "the peer died");
    peer.stop();
}

#[test]
fn udp_check_c() {
    run_udp_check("udp_c", false);
}

#[test]
fn udp_check_cxx() {
    run_udp_check("udp_cxx", true);
}
