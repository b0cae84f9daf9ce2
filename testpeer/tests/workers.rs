//! ADD_DEL_WORKER and APP_DETACH over the raw sapi and the ctrl mq.

mod common;

use std::sync::Arc;

use common::*;
use vcl_codec::sapi::{app_flags, fd_flags, SapiMsg, WorkerAddDel};
use vcl_codec::session_error::SESSION_E_INVALID;
use vcl_svm::mq::MsgQueue;
use vcl_svm::Segment;

fn add_worker(
    addr: &vcl_testpeer::SockAddr,
    app_index: u32,
) -> (
    std::os::fd::OwnedFd,
    vcl_codec::sapi::WorkerAddDelReply,
    Vec<std::os::fd::OwnedFd>,
) {
    let s = connect_to(addr);
    send(
        &s,
        &SapiMsg::AddDelWorker(WorkerAddDel {
            app_index,
            wrk_index: 77,
            is_add: true,
        }),
    );
    match recv(&s) {
        (SapiMsg::AddDelWorkerReply(r), fds) => (s, r, fds),
        (m, _) => panic!("expected ADD_DEL_WORKER_REPLY, got {m:?}"),
    }
}

#[test]
fn add_then_delete_a_worker() {
    let peer = start(1);
    let a = attach_and_map(peer.socket_addr(), options(256));
    let (s2, r, mut fds) = add_worker(peer.socket_addr(), a.reply.app_index);
    assert_eq!(r.retval, 0);
    assert!(r.is_add);
    assert_eq!(r.wrk_index, 1, "second wrk_map_index");
    assert_eq!(r.api_client_handle, 2, "handle of the new socket");
    assert_eq!(r.segment_handle, 1 << 32, "segment manager 1, segment 0");
    assert_eq!(r.app_event_queue_address, 320);
    assert_eq!((r.n_fds, r.fd_flags), (1, fd_flags::MEMFD_SEGMENT));
    let seg = Arc::new(Segment::map(fds.pop().unwrap()).unwrap());
    let mq = MsgQueue::attach(seg, r.app_event_queue_address).unwrap();
    assert_eq!(mq.capacity(), 256);
    assert_eq!(peer.n_workers(), 2);

    // Delete from the worker's own socket: no reply, VPP closes that socket.
    send(
        &s2,
        &SapiMsg::AddDelWorker(WorkerAddDel {
            app_index: a.reply.app_index,
            wrk_index: r.wrk_index,
            is_add: false,
        }),
    );
    assert!(closed_within(&s2, TIMEOUT));
    assert_eq!(peer.n_workers(), 1);
    assert_eq!(peer.n_apps(), 1);
    // The freed indices are reused first, as in VPP's pools.
    let (_s3, r3, _) = add_worker(peer.socket_addr(), a.reply.app_index);
    assert_eq!((r3.wrk_index, r3.segment_handle), (1, 1 << 32));
    assert_eq!(r3.api_client_handle, 2);
}

#[test]
fn add_worker_with_eventfd_app_gets_two_fds() {
    let peer = start(1);
    let mut o = options(128);
    o[vcl_codec::sapi::opt::FLAGS] |= app_flags::EVT_MQ_USE_EVENTFD;
    let a = attach_and_map(peer.socket_addr(), o);
    let (_s, r, fds) = add_worker(peer.socket_addr(), a.reply.app_index);
    assert_eq!(r.n_fds, 2);
    assert_eq!(r.fd_flags, fd_flags::MEMFD_SEGMENT | fd_flags::MQ_EVENTFD);
    assert_eq!(fds.len(), 2);
}

#[test]
fn add_worker_for_unknown_app_is_invalid_and_delete_is_silent() {
    let peer = start(1);
    let (s, r, fds) = add_worker(peer.socket_addr(), 9);
    assert_eq!(r.retval, SESSION_E_INVALID);
    assert_eq!(r.wrk_index, 77, "request's wrk_index echoed");
    assert_eq!(r.api_client_handle, u32::MAX);
    assert!(fds.is_empty());
    send(
        &s,
        &SapiMsg::AddDelWorker(WorkerAddDel {
            app_index: 9,
            wrk_index: 0,
            is_add: false,
        }),
    );
    // no reply to the delete: the next datagram is the barrier's
    sapi_barrier(&s);
}

#[test]
fn app_detach_detaches_only_the_sending_worker_and_closes_its_socket() {
    let peer = start(2);
    let a = attach_and_map(peer.socket_addr(), options(128));
    let (s2, r2, _fds) = add_worker(peer.socket_addr(), a.reply.app_index);
    assert_eq!(peer.n_workers(), 2);
    // Worker 1 detaches: only its socket closes.
    a.send_detach(r2.api_client_handle);
    assert!(closed_within(&s2, TIMEOUT));
    assert!(peer.wait_until(TIMEOUT, |p| p.n_workers() == 1));
    // nothing for worker 0: the next datagram on its socket is the barrier's
    sapi_barrier(&a.sock);
    // Worker 0 detaches: its socket closes and the app is gone.
    a.send_detach(a.reply.api_client_handle);
    assert!(closed_within(&a.sock, TIMEOUT));
    assert!(peer.wait_until(TIMEOUT, |p| p.n_apps() == 0));
}

#[test]
fn app_detach_for_an_unknown_client_is_ignored() {
    let peer = start(1);
    let a = attach_and_map(peer.socket_addr(), options(128));
    a.send_detach(0x1234);
    assert!(peer.wait_until(TIMEOUT, |p| p
        .log()
        .iter()
        .any(|e| e.kind == vcl_testpeer::MsgKind::Mq(27))));
    assert_eq!(peer.n_apps(), 1);
}
