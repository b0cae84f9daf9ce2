//! Edge-triggered listeners report one EPOLLIN per connection waiting to be accepted, as
//! upstream VCL does (one epoll event per ACCEPTED message). vppcom programs rely on it: VPP's
//! vcl_test_server accepts once per listener event, so events merged into one left
//! connections never accepted (its `-s 10` test through VPP stalled).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

use std::net::TcpStream;
use std::time::Duration;

use vcl::testing::app;
use vcl_testpeer::{Dir, MsgKind};

#[path = "common/vcl_peer.rs"]
mod util;
use util::*;

const LISTENER: u64 = 0xfeed;

/// ACCEPTED messages the peer has put on app mqs so far.
fn accepteds_sent(p: &vcl_testpeer::Peer) -> usize {
    let accepted = MsgKind::Mq(vcl_codec::event::EventType::Accepted as u8);
    p.log()
        .iter()
        .filter(|e| e.dir == Dir::Tx && e.kind == accepted)
        .count()
}

#[test]
fn edge_triggered_listener_reports_each_accept() {
    let _s = serial();
    let p = attach("et-accepts", false);
    let port = free_port();
    let ls = listen(port);
    // SAFETY: no arguments.
    let vep = unsafe { vppcom_epoll_create() } as u32;
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: LISTENER,
    };
    // SAFETY: ev is valid for the call.
    let rv = unsafe { vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, ls, &mut ev) };
    assert_eq!(rv, 0);
    let _clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // All three ACCEPTEDs are in the app's queue once the peer's log shows them sent. (The
    // peer's session state says "Accepting" before its batched events are flushed to the mq,
    // as VPP's does: waiting for that state, an epoll_wait on a loaded machine once found
    // nothing yet.)
    assert!(p.wait_until(Duration::from_secs(20), |p| accepteds_sent(p) == 3));
    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 8];
    // SAFETY: out holds 8 entries.
    let n = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 8, 0.0) };
    assert_eq!(n, 3, "one event per connection waiting");
    for e in &out[..3] {
        let (data, events) = (e.u64, e.events);
        assert_eq!((data, events), (LISTENER, libc::EPOLLIN as u32));
    }
    for _ in 0..3 {
        // SAFETY: a null endpoint is allowed.
        let cs = unsafe { vppcom_session_accept(ls, std::ptr::null_mut(), 0) };
        assert!(cs >= 0, "accept: {cs}");
    }
    // SAFETY: out holds 8 entries.
    let n = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 8, 0.0) };
    assert_eq!(n, 0, "nothing more: never more events than accepts");
    // a smaller output array: the rest come on the next wait
    let more: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    assert!(p.wait_until(Duration::from_secs(20), |p| accepteds_sent(p) == 5));
    // SAFETY: out holds 8 entries; 1 is passed.
    let n1 = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, 0.0) };
    // SAFETY: as above.
    let n2 = unsafe { vppcom_epoll_wait(vep, out.as_mut_ptr(), 1, 0.0) };
    assert_eq!((n1, n2), (1, 1));
    drop(more);
    app::destroy();
    p.stop();
}
