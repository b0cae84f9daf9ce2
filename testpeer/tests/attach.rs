//! ATTACH over the raw sapi: every reply field, the fds and what they map to, the vpp mqs
//! layout with 1 and 2 threads, refusals, framing and connection close.

mod common;

use common::*;
use vcl_codec::sapi::{app_flags, fd_flags, opt, SapiMsg};
use vcl_codec::session_error::{SESSION_E_APP_ATTACHED, SESSION_E_NOSUPPORT};
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::mq::{discover_vpp_mqs, MqConfig};
use vcl_testpeer::{sm_segment_size, Dir, MsgKind};

/// 8 + 112 + 8·L + (20 + 18·L) + (20 + 256·L/2) for L = 2048.
const VPP_MQ_SIZE: u64 = 315_552;

#[test]
fn attach_reply_fields_fds_and_layout() {
    let peer = start(1);
    let a = attach_and_map(peer.socket_addr(), options(2048));
    let r = a.reply;
    assert_eq!(r.retval, 0);
    assert_eq!(r.app_index, 0);
    assert_eq!(
        r.api_client_handle, 1,
        "socket index 1 (0 is the listener), ns 0"
    );
    assert_eq!(r.segment_handle, 0, "sm 0, segment 0");
    assert_eq!(r.vpp_ctrl_mq_thread, 0);
    assert_eq!(r.n_fds, 2);
    assert_eq!(
        r.fd_flags,
        fd_flags::VPP_MQ_SEGMENT | fd_flags::MEMFD_SEGMENT
    );
    // The app mq is the first thing carved after the fsh and its one slice.
    assert_eq!(r.app_mq, 128 + 192);
    assert_eq!(r.vpp_ctrl_mq, 128 + 192);

    // App segment: ssvm size from the segment manager rule, fsh at two pages, one slice.
    assert_eq!(a.app_seg.len() as u64, sm_segment_size(4 << 20, 1));
    assert_eq!(a.app_seg.fsh_offset(), 2 * vcl_testpeer::page_size());
    let fs = FifoSegment::attach(&a.app_seg).unwrap();
    assert_eq!(fs.n_slices(), 1);
    assert!(
        fs.cached_bytes() >= 16 * (64 << 10),
        "8 fifo pairs preallocated"
    );
    let mq = a.app_mq();
    assert_eq!(mq.capacity(), 2048);
    let want = MqConfig::app(2048);
    assert_eq!(mq.ring_cfg(0), Some(want.rings[0]));
    assert_eq!(mq.ring_cfg(1).unwrap().nitems, 128);

    // The vpp mqs segment: discovery finds exactly one queue at the announced offset.
    let mqs = discover_vpp_mqs(a.vpp_seg.clone(), Vec::new()).unwrap();
    assert_eq!(mqs.len(), 1);
    assert_eq!(mqs[0].offset(), r.vpp_ctrl_mq);
    assert_eq!(mqs[0].size() as u64, VPP_MQ_SIZE);
    assert_eq!(a.vpp_seg.len() as u64, VPP_MQ_SIZE + (1 << 20));

    let apps = peer.apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, "test-app");
    assert_eq!(apps[0].workers[0].api_client_index, 1);
    assert_eq!(apps[0].workers[0].app_mq, Some(r.app_mq));
}

#[test]
fn two_threads_ctrl_mq_is_thread_one_and_segments_have_two_slices() {
    let peer = start(2);
    let a = attach_and_map(peer.socket_addr(), options(256));
    assert_eq!(a.reply.vpp_ctrl_mq_thread, 1);
    let mqs = discover_vpp_mqs(a.vpp_seg.clone(), Vec::new()).unwrap();
    assert_eq!(mqs.len(), 2);
    assert_eq!(mqs[1].offset(), a.reply.vpp_ctrl_mq);
    assert_eq!(a.reply.vpp_ctrl_mq, 128 + 192 + VPP_MQ_SIZE);
    assert_eq!(peer.vpp_mq_offsets(), vec![320, 320 + VPP_MQ_SIZE]);
    let fs = FifoSegment::attach(&a.app_seg).unwrap();
    assert_eq!(fs.n_slices(), 2);
    assert_eq!(a.reply.app_mq, 128 + 2 * 192);
    assert_eq!(a.app_seg.len() as u64, sm_segment_size(4 << 20, 2));
    let mq = a.app_mq();
    assert_eq!(mq.capacity(), 256);
    assert_eq!(mq.ring_cfg(1).unwrap().nitems, 16, "max(16, 256/16)");
}

#[test]
fn eventfd_is_the_third_fd_and_defaults_apply_when_options_are_zero() {
    let peer = start(1);
    let mut o = [0u64; opt::N_OPTIONS];
    o[opt::FLAGS] = app_flags::EVT_MQ_USE_EVENTFD;
    let a = attach_and_map(peer.socket_addr(), o);
    assert_eq!(a.reply.n_fds, 3);
    assert_eq!(
        a.reply.fd_flags,
        fd_flags::VPP_MQ_SEGMENT | fd_flags::MEMFD_SEGMENT | fd_flags::MQ_EVENTFD
    );
    assert!(a.evtfd.is_some());
    // VPP defaults: 128-slot app mq, 1 MiB first segment.
    assert_eq!(a.app_mq().capacity(), 128);
    assert_eq!(a.app_seg.len() as u64, sm_segment_size(1 << 20, 1));
}

#[test]
fn second_attach_on_a_socket_is_refused_without_fds() {
    let peer = start(1);
    let a = attach_and_map(peer.socket_addr(), options(128));
    let (r, fds) = attach(&a.sock, options(128));
    assert_eq!(r.retval, SESSION_E_APP_ATTACHED);
    assert_eq!((r.n_fds, r.fd_flags, fds.len()), (0, 0, 0));
    assert_eq!(r.segment_handle, 0);
    assert_eq!(peer.n_apps(), 1);
}

#[test]
fn prealloc_pairs_with_hdrs_is_nosupport_and_consumes_an_app_index() {
    let peer = start(1);
    let s = connect_to(peer.socket_addr());
    let mut o = options(128);
    o[opt::PREALLOC_FIFO_HDRS] = 4;
    let (r, fds) = attach(&s, o);
    assert_eq!(r.retval, SESSION_E_NOSUPPORT);
    assert!(fds.is_empty());
    // VPP allocated the app before checking: the next app gets index 1.
    let a = attach_and_map(peer.socket_addr(), options(128));
    assert_eq!(a.reply.app_index, 1);
    assert_eq!(a.reply.api_client_handle, 2);
}

#[test]
fn short_datagram_detaches_and_closes_long_one_is_truncated() {
    let peer = start(1);
    let s = connect_to(peer.socket_addr());
    let mut long = attach_msg("long", options(128)).encode().to_vec();
    long.extend_from_slice(&[0xAB; 40]);
    send_raw(&s, &long);
    let (m, _) = recv(&s);
    assert!(matches!(m, SapiMsg::AttachReply(r) if r.retval == 0));
    assert_eq!(peer.n_apps(), 1);
    send_raw(&s, &[3u8; 100]);
    assert!(
        closed_within(&s, TIMEOUT),
        "peer closes the broken connection"
    );
    assert!(peer.wait_until(TIMEOUT, |p| p.n_apps() == 0));
    assert!(peer
        .log()
        .iter()
        .any(|e| e.dir == Dir::Rx && e.kind == MsgKind::Malformed(100)));
}

#[test]
fn unknown_types_are_ignored_and_close_frees_the_app() {
    let peer = start(1);
    let s = connect_to(peer.socket_addr());
    let mut junk = [0u8; 209];
    junk[0] = 42;
    send_raw(&s, &junk);
    junk[0] = 2; // a reply type sent to VPP is "unknown" too
    send_raw(&s, &junk);
    let (r, _) = attach(&s, options(128));
    assert_eq!(r.retval, 0);
    drop(s);
    assert!(peer.wait_until(TIMEOUT, |p| p.n_apps() == 0 && p.n_workers() == 0));
}

#[test]
fn oversized_first_segment_fails_like_a_failed_memfd_and_keeps_the_app_registered() {
    let mut cfg = vcl_testpeer::PeerConfig::new(sock_addr());
    cfg.max_segment_size = 64 << 20;
    let peer = start_cfg(cfg);
    let s = connect_to(peer.socket_addr());
    let mut o = options(128);
    o[opt::SEGMENT_SIZE] = 1 << 30;
    let (r, fds) = attach(&s, o);
    assert_eq!(
        r.retval, -1,
        "segment_manager_init_first returns fs_index -1"
    );
    assert!(fds.is_empty());
    // VPP registered the app before the segment failed: the socket counts as attached.
    let (r, _) = attach(&s, options(128));
    assert_eq!(r.retval, SESSION_E_APP_ATTACHED);
}
