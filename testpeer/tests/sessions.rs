//! Transport (TCP over kernel loopback) sessions through the raw session protocol: LISTEN →
//! BOUND, kernel connects → ACCEPTED, CONNECT → CONNECTED, data both ways with VPP's RX/TX
//! notification protocol, and the close sequences.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use common::app::*;
use common::*;
use vcl_codec::event::EventType;
use vcl_codec::msg::{Accepted, CleanupType, Connected, CtrlMsg, Ip46, Unlisten};
use vcl_codec::session_error::*;
use vcl_svm::fifo::notify::SVM_FIFO_WANT_DEQ_NOTIF;

const RX: u8 = 0;
const TX: u8 = 1;

fn bound(app: &mut App, ctx: u32) -> (u64, u16) {
    match app.ctrl() {
        CtrlMsg::Bound(b) => {
            assert_eq!(b.context, ctx);
            assert_eq!(b.retval, 0, "{b:?}");
            (b.handle, b.lcl_port)
        }
        m => panic!("expected BOUND, got {m:?}"),
    }
}

fn accepted(app: &mut App) -> Accepted {
    match app.ctrl() {
        CtrlMsg::Accepted(a) => a,
        m => panic!("expected ACCEPTED, got {m:?}"),
    }
}

fn connected(app: &mut App) -> Connected {
    match app.ctrl() {
        CtrlMsg::Connected(c) => c,
        m => panic!("expected CONNECTED, got {m:?}"),
    }
}

fn cleanup(app: &mut App, handle: u64, ty: CleanupType) {
    match app.ctrl() {
        CtrlMsg::Cleanup(c) => {
            assert_eq!(c.handle, handle);
            assert_eq!(c.cleanup_type, ty);
        }
        m => panic!("expected CLEANUP {ty:?}, got {m:?}"),
    }
}

/// Read everything the rx fifo holds, VCL style: dequeue, then clear has_event.
fn read_rx(app: &App, seg: u64, off: u64) -> Vec<u8> {
    let seg = app.seg(seg);
    with_fifo(&seg, off, |f| {
        let mut out = vec![0u8; f.max_dequeue() as usize];
        let n = f.dequeue(&mut out).unwrap_or(0);
        out.truncate(n);
        f.unset_event();
        out
    })
}

/// Write into a tx fifo and notify the session's thread if set_event wins.
fn write_tx(app: &App, seg: u64, off: u64, thread: usize, vpp_si: u32, data: &[u8]) {
    let seg = app.seg(seg);
    let won = with_fifo(&seg, off, |f| {
        assert_eq!(f.enqueue(data).unwrap(), data.len());
        f.set_event()
    });
    if won {
        app.send_io(thread, EventType::IoTx.as_u8(), vpp_si);
    }
}

fn read_exact_within(s: &mut TcpStream, n: usize) -> Vec<u8> {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut out = vec![0u8; n];
    s.read_exact(&mut out).unwrap();
    out
}

/// Wait until the peer handled the accept reply.
fn ready(peer: &vcl_testpeer::Peer, h: u64) -> bool {
    peer.wait_until(TIMEOUT, |p| {
        p.sessions()
            .iter()
            .any(|s| s.handle == h && s.state == "Ready")
    })
}

#[test]
fn listen_accept_data_both_ways_and_peer_close() {
    let peer = start(1);
    let mut app = App::global(&peer);
    app.listen([127, 0, 0, 1], 0, 7);
    let (lh, port) = bound(&mut app, 7);
    assert_eq!(lh, 0, "listen session 0 on thread 0");
    assert_ne!(port, 0);

    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    // The listener's segment manager got its first segment, announced before the accept.
    assert_eq!(app.added, vec![a.segment_handle]);
    assert_eq!(a.context, app.app_index());
    assert_eq!(a.listener_handle, lh);
    assert_eq!(a.mq_index, 0);
    assert_eq!(a.vpp_event_queue_address, peer.vpp_mq_offsets()[0]);
    assert_eq!(a.lcl.port, port);
    assert_eq!(a.rmt.port, client.local_addr().unwrap().port());
    assert_eq!(a.rmt.ip, Ip46::from_v4([127, 0, 0, 1].into()));
    assert!(a.rmt.is_ip4);

    // Data sent before the accept reply waits for it (no RX before RX_READY).
    client.write_all(b"hello").unwrap();
    let rx_seg = app.seg(a.segment_handle);
    assert!(
        peer.wait_until(TIMEOUT, |_| with_fifo(&rx_seg, a.server_rx_fifo, |f| f
            .max_dequeue())
            == 5)
    );
    app.barrier();
    app.accept_reply(0, a.handle, 77, 0);
    assert_eq!(app.next(), Ev::Io(RX, 77));
    let seg = a.segment_handle;
    assert!(with_fifo(&app.seg(seg), a.server_rx_fifo, |f| f.has_event()));
    assert_eq!(read_rx(&app, seg, a.server_rx_fifo), b"hello");

    // More data: a fresh RX since has_event was cleared.
    client.write_all(b"again").unwrap();
    assert_eq!(app.next(), Ev::Io(RX, 77));
    assert_eq!(read_rx(&app, seg, a.server_rx_fifo), b"again");

    // App → kernel.
    write_tx(&app, seg, a.server_tx_fifo, 0, a.handle as u32, b"world");
    assert_eq!(read_exact_within(&mut client, 5), b"world");
    let tx_seg = app.seg(seg);
    assert!(
        peer.wait_until(TIMEOUT, |_| !with_fifo(&tx_seg, a.server_tx_fifo, |f| f
            .has_event()))
    );

    // Kernel EOF → DISCONNECTED; DISCONNECTED_REPLY → CLEANUP(TRANSPORT), CLEANUP(SESSION).
    client.shutdown(Shutdown::Write).unwrap();
    match app.ctrl() {
        CtrlMsg::Disconnected(d) => {
            assert_eq!(d.handle, a.handle);
            assert_eq!(d.context, app.api());
        }
        m => panic!("expected DISCONNECTED, got {m:?}"),
    }
    app.send_on(0, &CtrlMsg::DisconnectedReply(app.reply_msg(a.handle)));
    cleanup(&mut app, a.handle, CleanupType::Transport);
    cleanup(&mut app, a.handle, CleanupType::Session);
    let mut rest = Vec::new();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the peer closed its side");
    assert!(peer.wait_until(TIMEOUT, |p| p.sessions().iter().all(|s| s.is_listener)));

    // UNLISTEN closes the kernel listener.
    app.send_on(
        0,
        &CtrlMsg::Unlisten(Unlisten {
            client_index: app.api(),
            context: 0,
            wrk_index: 0,
            handle: lh,
        }),
    );
    match app.ctrl() {
        CtrlMsg::UnlistenReply(r) => {
            assert_eq!(r.handle, lh);
            assert_eq!(r.retval, 0);
        }
        m => panic!("expected UNLISTEN_REPLY, got {m:?}"),
    }
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(peer.sessions().is_empty());
}

#[test]
fn listen_errors() {
    let peer = start(1);
    let mut a = App::global(&peer);
    let mut b = App::global(&peer);
    a.listen([127, 0, 0, 1], 0, 1);
    let (_, port) = bound(&mut a, 1);
    // Same endpoint, another app.
    b.listen([127, 0, 0, 1], port, 2);
    match b.ctrl() {
        CtrlMsg::Bound(r) => assert_eq!(r.retval, SESSION_E_ALREADY_LISTENING),
        m => panic!("{m:?}"),
    }
    // Same app, same worker.
    a.listen([127, 0, 0, 1], port, 3);
    match a.ctrl() {
        CtrlMsg::Bound(r) => assert_eq!((r.context, r.retval), (3, SESSION_E_ALREADY_LISTENING)),
        m => panic!("{m:?}"),
    }
    // Never a non-loopback address.
    a.listen([10, 1, 2, 3], 0, 4);
    match a.ctrl() {
        CtrlMsg::Bound(r) => assert_eq!(r.retval, SESSION_E_NOINTF),
        m => panic!("{m:?}"),
    }
}

#[test]
fn connect_echo_and_app_close() {
    let peer = start(2);
    let mut app = App::global(&peer);
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => s.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    app.connect([127, 0, 0, 1], port, 5);
    let c = connected(&mut app);
    assert_eq!((c.context, c.retval), (5, 0));
    assert_eq!(
        c.segment_handle, app.a.reply.segment_handle,
        "connects segment manager"
    );
    assert_eq!((c.ct_rx_fifo, c.ct_tx_fifo, c.ct_segment_handle), (0, 0, 0));
    assert_eq!(c.mq_index, 1, "a worker thread");
    assert_eq!(c.handle >> 32, 1);
    assert_eq!(c.vpp_event_queue_address, peer.vpp_mq_offsets()[1]);
    assert_ne!(c.lcl.port, 0);
    assert!(c.lcl.is_ip4);

    let t = c.mq_index as usize;
    write_tx(
        &app,
        c.segment_handle,
        c.server_tx_fifo,
        t,
        c.handle as u32,
        b"ping",
    );
    // IO events carry CONNECT.context (docs/wire.md#io-events-carry-the-apps-session-index).
    assert_eq!(app.next(), Ev::Io(RX, 5));
    assert_eq!(read_rx(&app, c.segment_handle, c.server_rx_fifo), b"ping");

    // App DISCONNECT first: FIN to the kernel peer, which closes; then both cleanups.
    app.send_on(t, &CtrlMsg::Disconnect(app.handle_msg(c.handle)));
    echo.join().unwrap();
    cleanup(&mut app, c.handle, CleanupType::Transport);
    cleanup(&mut app, c.handle, CleanupType::Session);
    app.barrier();
    assert!(peer.sessions().is_empty());
}

#[test]
fn connect_refused_unroutable_and_invalid() {
    let peer = start(1);
    let mut app = App::global(&peer);
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    app.connect([127, 0, 0, 1], port, 1);
    let c = connected(&mut app);
    assert_eq!((c.context, c.retval, c.handle), (1, SESSION_E_REFUSED, 0));
    app.connect([192, 0, 2, 1], 80, 2);
    assert_eq!(connected(&mut app).retval, SESSION_E_NOROUTE);
    app.connect([0, 0, 0, 0], 80, 3);
    assert_eq!(connected(&mut app).retval, SESSION_E_INVALID_RMT_IP);
    assert!(peer.sessions().is_empty());
}

#[test]
fn rx_flow_control_and_tx_deq_notifications() {
    let peer = start(1);
    let mut app = App::attach(&peer, app_options(0, 4096));
    app.listen([127, 0, 0, 1], 0, 0);
    let (_, port) = bound(&mut app, 0);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    app.accept_reply(0, a.handle, 3, 0);
    let seg = a.segment_handle;

    // 40 KiB through a 4 KiB rx fifo: the peer stops at full and asks for deq notifications.
    let data: Vec<u8> = (0..40960u32).map(|i| i as u8).collect();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        client.write_all(&d2).unwrap();
        client
    });
    let mut got = Vec::new();
    while got.len() < data.len() {
        assert_eq!(app.next(), Ev::Io(RX, 3));
        loop {
            let (chunk, ntf) = with_fifo(&app.seg(seg), a.server_rx_fifo, |f| {
                let mut b = vec![0u8; f.max_dequeue() as usize];
                let n = f.dequeue(&mut b).unwrap_or(0);
                b.truncate(n);
                let ntf = n > 0 && f.needs_deq_ntf(n as u32);
                if ntf {
                    f.clear_deq_ntf();
                }
                (b, ntf)
            });
            if ntf {
                app.send_io(0, RX, a.handle as u32);
            }
            got.extend_from_slice(&chunk);
            let empty = with_fifo(&app.seg(seg), a.server_rx_fifo, |f| {
                f.unset_event();
                // Re-check after clearing (docs/wire.md#event-flags): data that raced in wins a
                // new event.
                f.max_dequeue() > 0 && f.set_event()
            });
            if !empty {
                break;
            }
        }
    }
    assert_eq!(got, data);
    let mut client = writer.join().unwrap();

    // Tx: ask for a deq notification and get IO TX once the peer drained the fifo.
    with_fifo(&app.seg(seg), a.server_tx_fifo, |f| {
        f.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF)
    });
    write_tx(
        &app,
        seg,
        a.server_tx_fifo,
        0,
        a.handle as u32,
        &[7u8; 4096],
    );
    assert_eq!(app.next(), Ev::Io(TX, 3));
    assert_eq!(read_exact_within(&mut client, 4096), vec![7u8; 4096]);
    assert_eq!(
        with_fifo(&app.seg(seg), a.server_tx_fifo, |f| f.want_deq_ntf()),
        0,
        "WANT_DEQ_NOTIF is one-shot"
    );
}

#[test]
fn kernel_reset_and_fault_reset() {
    let peer = start(1);
    let mut app = App::global(&peer);
    app.listen([127, 0, 0, 1], 0, 0);
    let (_, port) = bound(&mut app, 0);

    // A kernel RST (SO_LINGER 0 close) → RESET; RESET_REPLY → both cleanups.
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    app.accept_reply(0, a.handle, 1, 0);
    // (A reset before the reply is handled is reported as DISCONNECTED, as VPP resends the
    // close with `app_worker_close_notify`.)
    assert!(ready(&peer, a.handle));
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(&client, nix::sys::socket::sockopt::Linger, &l).unwrap();
    drop(client);
    match app.ctrl() {
        CtrlMsg::Reset(r) => assert_eq!((r.handle, r.context), (a.handle, app.api())),
        m => panic!("expected RESET, got {m:?}"),
    }
    app.send_on(0, &CtrlMsg::ResetReply(app.reply_msg(a.handle)));
    cleanup(&mut app, a.handle, CleanupType::Transport);
    cleanup(&mut app, a.handle, CleanupType::Session);

    // The reset fault.
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    app.accept_reply(0, a.handle, 2, 0);
    assert!(ready(&peer, a.handle));
    assert!(peer.reset_session(a.handle));
    match app.ctrl() {
        CtrlMsg::Reset(r) => assert_eq!(r.handle, a.handle),
        m => panic!("expected RESET, got {m:?}"),
    }
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut b = [0u8; 1];
    assert!(client.read(&mut b).is_err(), "kernel side was reset");
    // The transport goes after the cleanup time, before the app replies.
    cleanup(&mut app, a.handle, CleanupType::Transport);
    app.send_on(0, &CtrlMsg::ResetReply(app.reply_msg(a.handle)));
    cleanup(&mut app, a.handle, CleanupType::Session);
    assert!(!peer.reset_session(a.handle));
}

#[test]
fn terminate_shutdown_and_refused_accept() {
    let peer = start(1);
    let mut app = App::global(&peer);
    app.listen([127, 0, 0, 1], 0, 0);
    let (_, port) = bound(&mut app, 0);

    // TERMINATE: RST to the kernel, cleanups only.
    let mut c1 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    app.accept_reply(0, a.handle, 1, 0);
    app.send_on(0, &CtrlMsg::Terminate(app.handle_msg(a.handle)));
    c1.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut b = [0u8; 1];
    assert!(c1.read(&mut b).is_err());
    cleanup(&mut app, a.handle, CleanupType::Transport);
    cleanup(&mut app, a.handle, CleanupType::Session);

    // SHUTDOWN: FIN to the kernel; its close then reads as DISCONNECTED.
    let mut c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    app.accept_reply(0, a.handle, 2, 0);
    app.send_on(0, &CtrlMsg::Shutdown(app.handle_msg(a.handle)));
    c2.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(c2.read(&mut b).unwrap(), 0, "FIN");
    c2.write_all(b"x").unwrap();
    assert_eq!(app.next(), Ev::Io(RX, 2));
    drop(c2);
    match app.ctrl() {
        CtrlMsg::Disconnected(d) => assert_eq!(d.handle, a.handle),
        m => panic!("expected DISCONNECTED, got {m:?}"),
    }
    cleanup(&mut app, a.handle, CleanupType::Transport);
    app.send_on(0, &CtrlMsg::DisconnectedReply(app.reply_msg(a.handle)));
    cleanup(&mut app, a.handle, CleanupType::Session);

    // ACCEPTED_REPLY with an error: the connection goes, and nothing more is said (O8).
    let mut c3 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    app.accept_reply(0, a.handle, 3, SESSION_E_REFUSED);
    c3.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(c3.read(&mut b).unwrap_or(0), 0);
    drop(c3);
    assert!(peer.wait_until(TIMEOUT, |p| p.sessions().iter().all(|s| s.is_listener)));
    app.barrier();
    assert!(peer.wait_until(TIMEOUT, |p| p.sessions().iter().all(|s| s.is_listener)));
}

#[test]
fn app_close_with_unread_data_resets_the_kernel_connection() {
    let peer = start(1);
    let mut app = App::global(&peer);
    app.listen([127, 0, 0, 1], 0, 0);
    let (_, port) = bound(&mut app, 0);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    app.accept_reply(0, a.handle, 9, 0);
    client.write_all(b"unread").unwrap();
    assert_eq!(app.next(), Ev::Io(RX, 9));
    // tcp_connection_close in ESTABLISHED with unread rx data sends a RST.
    app.send_on(0, &CtrlMsg::Disconnect(app.handle_msg(a.handle)));
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut b = [0u8; 8];
    let r = client.read(&mut b);
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
    cleanup(&mut app, a.handle, CleanupType::Transport);
    cleanup(&mut app, a.handle, CleanupType::Session);
    assert!(peer.wait_until(TIMEOUT, |p| p.sessions().iter().all(|s| s.is_listener)));
}

#[test]
fn two_workers_share_a_listener_round_robin() {
    use vcl_codec::sapi::{SapiMsg, WorkerAddDel};
    let peer = start(1);
    let mut app = App::global(&peer);
    // A second worker of the same app, on its own socket.
    let sock2 = connect_to(peer.socket_addr());
    send(
        &sock2,
        &SapiMsg::AddDelWorker(WorkerAddDel {
            app_index: app.app_index(),
            wrk_index: 0,
            is_add: true,
        }),
    );
    let (r, _fds) = match recv(&sock2) {
        (SapiMsg::AddDelWorkerReply(r), fds) => (r, fds),
        (m, _) => panic!("{m:?}"),
    };
    assert_eq!((r.retval, r.wrk_index), (0, 1));
    app.listen([127, 0, 0, 1], 0, 1);
    let (lh, port) = bound(&mut app, 1);
    // Worker 1 listens on the same endpoint: same listener handle.
    let m = CtrlMsg::Listen(vcl_codec::msg::Listen {
        client_index: r.api_client_handle,
        context: 2,
        wrk_index: 1,
        vrf: 0,
        port,
        proto: vcl_codec::msg::TransportProto::Tcp,
        is_ip4: true,
        ip: Ip46::from_v4([127, 0, 0, 1].into()),
        flags: 0,
        ext_config: 0,
        dscp: 0,
    });
    app.send_on(0, &m);
    // worker 1 is on the listener once the peer has sent it BOUND (event type 9)
    let wrk1 = peer.apps()[0].workers[1].wrk_index;
    let bound_to_wrk1 = |p: &vcl_testpeer::Peer| {
        p.log().iter().any(|e| {
            e.dir == vcl_testpeer::Dir::Tx
                && e.kind == vcl_testpeer::MsgKind::Mq(9)
                && e.ctx == wrk1
        })
    };
    assert!(peer.wait_until(TIMEOUT, bound_to_wrk1));
    // The first accept goes to the worker after the rotor (worker 1), the next to worker 0.
    let _c1 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(peer
        .wait_until(TIMEOUT, |p| p.sessions().iter().any(
            |s| !s.is_listener && s.app_wrk == p.apps()[0].workers[1].wrk_index
        )));
    let _c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    assert_eq!(a.listener_handle, lh);
}

#[test]
fn detach_with_live_sessions_closes_them() {
    let peer = start(1);
    let mut app = App::global(&peer);
    app.listen([127, 0, 0, 1], 0, 0);
    let (_, port) = bound(&mut app, 0);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a = accepted(&mut app);
    app.accept_reply(0, a.handle, 1, 0);
    assert!(ready(&peer, a.handle));
    app.a.send_detach(app.api());
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut b = [0u8; 1];
    // VPP closes (FIN), not resets, a detaching app's sessions: the client sees end of stream
    assert!(matches!(client.read(&mut b), Ok(0)));
    drop(client); // our FIN ends the peer's FIN_WAIT
    assert!(peer.wait_until(TIMEOUT, |p| p.sessions().is_empty() && p.n_apps() == 0));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
