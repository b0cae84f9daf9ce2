//! Every fault the peer injects, in-process and through the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use vcl_codec::sapi::SapiMsg;
use vcl_codec::session_error::SESSION_E_NOSUPPORT;
use vcl_svm::mq::MsgQueue;
use vcl_svm::{Segment, SvmError};
use vcl_testpeer::{Corruption, Faults, PeerConfig};

fn with_faults(f: Faults) -> vcl_testpeer::Peer {
    start_cfg(PeerConfig::new(sock_addr()).faults(f))
}

#[test]
fn refuse_attach_replies_the_error_without_fds() {
    let peer = with_faults(Faults {
        refuse_attach: Some(SESSION_E_NOSUPPORT),
        ..Default::default()
    });
    let s = connect_to(peer.socket_addr());
    let (r, fds) = attach(&s, options(128));
    assert_eq!(r.retval, SESSION_E_NOSUPPORT);
    assert_eq!((r.n_fds, fds.len(), r.app_index), (0, 0, 0));
    assert_eq!(peer.n_apps(), 0);
}

#[test]
fn drop_after_closes_the_connection_without_replying() {
    let peer = with_faults(Faults {
        drop_after: Some(2),
        ..Default::default()
    });
    let s = connect_to(peer.socket_addr());
    let (r, _) = attach(&s, options(128));
    assert_eq!(r.retval, 0);
    send(&s, &attach_msg("again", options(128)));
    assert!(closed_within(&s, TIMEOUT));
    assert!(peer.wait_until(TIMEOUT, |p| p.n_apps() == 0));
}

#[test]
fn exit_after_closes_everything_and_stops() {
    let peer = with_faults(Faults {
        exit_after: Some(2),
        ..Default::default()
    });
    let a = attach_and_map(peer.socket_addr(), options(128));
    let other = connect_to(peer.socket_addr());
    send(&other, &attach_msg("second", options(128)));
    assert!(closed_within(&other, TIMEOUT));
    assert!(closed_within(&a.sock, TIMEOUT));
    assert!(peer.is_dead());
}

#[test]
fn reply_delay_holds_every_reply() {
    let peer = with_faults(Faults {
        reply_delay: Some(Duration::from_millis(150)),
        ..Default::default()
    });
    let s = connect_to(peer.socket_addr());
    let t0 = Instant::now();
    let (r, _) = attach(&s, options(128));
    assert_eq!(r.retval, 0);
    assert!(t0.elapsed() >= Duration::from_millis(150));
}

fn attach_corrupted(c: Corruption) -> (Result<Segment, SvmError>, u64, vcl_testpeer::Peer) {
    let peer = with_faults(Faults {
        corrupt_segment: Some(c),
        ..Default::default()
    });
    let s = connect_to(peer.socket_addr());
    let (r, mut fds) = attach(&s, options(128));
    assert_eq!(r.retval, 0, "the reply itself is normal");
    assert_eq!(fds.len(), 2);
    (Segment::map(fds.pop().unwrap()), r.app_mq, peer)
}

#[test]
fn corrupted_segment_headers_are_caught_by_the_client() {
    for c in [Corruption::SsvmSize, Corruption::FshOffset] {
        let (seg, _, _p) = attach_corrupted(c);
        assert!(matches!(seg, Err(SvmError::Corrupt(_))), "{c:?}: {seg:?}");
    }
    for c in [Corruption::MqRings, Corruption::MqMaxsize] {
        let (seg, off, _p) = attach_corrupted(c);
        let seg = seg.unwrap();
        assert!(MsgQueue::attach(&seg, off).is_err(), "{c:?}");
    }
}

fn spawn_bin(args: &[&str]) -> (std::process::Child, vcl_testpeer::SockAddr) {
    let addr = sock_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vcl-testpeer"))
        .arg("--socket")
        .arg(addr.to_config_string())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // the first line, read on a thread: a peer that never says READY fails the test
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(line) => assert_eq!(line.trim(), format!("READY {addr}")),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vcl-testpeer did not say READY within {TIMEOUT:?}");
        }
    }
    (child, addr)
}

/// The peer binary's exit status; kill it and fail if it has not exited within TIMEOUT.
fn exit_status(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vcl-testpeer still running after {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn binary_serves_attach_and_exits_zero_on_sigterm() {
    let (mut child, addr) = spawn_bin(&["--threads", "2"]);
    let a = attach_and_map(&addr, options(128));
    assert_eq!(a.reply.vpp_ctrl_mq_thread, 1);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let st = exit_status(&mut child);
    assert_eq!(st.code(), Some(0));
    assert!(closed_within(&a.sock, TIMEOUT));
}

#[test]
fn binary_refuses_and_aborts_on_request() {
    let (mut child, addr) = spawn_bin(&["--refuse-attach", "NOSUPPORT", "--exit-after", "2"]);
    let s = connect_to(&addr);
    let (r, _) = attach(&s, options(128));
    assert_eq!(r.retval, SESSION_E_NOSUPPORT);
    send(&s, &SapiMsg::Attach(vcl_codec::sapi::Attach::new("x")));
    let st = exit_status(&mut child);
    assert!(!st.success(), "aborted: {st:?}");
    assert!(closed_within(&s, TIMEOUT));
}
