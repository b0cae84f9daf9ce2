//! Cut-through sessions between two local-scope apps: the CT segment announced to both
//! workers, ACCEPTED (rmt.port 0) before CONNECTED with the CT fifos, data app ↔ app through
//! the server's fifos with relayed RX/TX events and deq notifications, and the close sequence.

mod common;

use common::app::*;
use common::*;
use vcl_codec::msg::{CleanupType, CtrlMsg};
use vcl_codec::session_error::SESSION_E_NOROUTE;
use vcl_svm::fifo::notify::SVM_FIFO_WANT_DEQ_NOTIF;

const RX: u8 = 0;
const TX: u8 = 1;

fn ctrl_of<T>(app: &mut App, f: impl FnOnce(CtrlMsg) -> Option<T>) -> T {
    let m = app.ctrl();
    let d = format!("{m:?}");
    f(m).unwrap_or_else(|| panic!("unexpected {d}"))
}

#[test]
fn ct_accept_connect_data_and_close() {
    let peer = start(1);
    let mut srv = App::attach(&peer, app_options(LOCAL, 8192));
    let mut cli = App::attach(&peer, app_options(LOCAL, 8192));
    // a loopback port that was free a moment ago
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    srv.listen([127, 0, 0, 1], port, 1);
    let lh = ctrl_of(&mut srv, |m| match m {
        CtrlMsg::Bound(b) if b.retval == 0 && b.lcl_port == port => Some(b.handle),
        _ => None,
    });
    // No kernel socket for a local-only listener.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    cli.connect([127, 0, 0, 1], port, 21);
    let a = ctrl_of(&mut srv, |m| match m {
        CtrlMsg::Accepted(a) => Some(a),
        _ => None,
    });
    // The CT segment lives in the server's listener segment manager and is announced to the
    // server with its plain handle.
    assert_eq!(srv.added, vec![a.segment_handle]);
    assert_eq!(a.listener_handle, lh);
    assert_eq!((a.rmt.port, a.lcl.port, a.rmt.is_ip4), (0, port, true));
    assert_eq!(a.context, srv.app_index());
    // no CONNECTED before the server's reply (the client's segment was announced)
    cli.barrier();
    let client_wrk = peer.apps()[1].workers[0].wrk_index;
    let client_seg = (u64::from(client_wrk) << 56) | a.segment_handle;
    assert_eq!(
        cli.added,
        vec![client_seg],
        "announced to the client before CONNECTED"
    );

    // CONNECTED only after the server's reply.
    srv.accept_reply(0, a.handle, 11, 0);
    let c = ctrl_of(&mut cli, |m| match m {
        CtrlMsg::Connected(c) => Some(c),
        _ => None,
    });
    assert_eq!((c.context, c.retval), (21, 0));
    assert_eq!(c.ct_segment_handle, client_seg);
    assert_eq!(c.ct_rx_fifo, a.server_tx_fifo);
    assert_eq!(c.ct_tx_fifo, a.server_rx_fifo);
    assert_eq!(
        c.segment_handle, cli.a.reply.segment_handle,
        "own signal fifos"
    );
    assert_eq!(c.lcl.port, 0);
    assert!(peer.sessions().iter().filter(|s| s.is_ct).count() == 2);

    let ct = cli.seg(client_seg);
    let own = cli.seg(c.segment_handle);
    let sseg = srv.seg(a.segment_handle);

    // Client → server: data in ct_tx, has_event and want_deq_ntf on its own tx signals.
    let won = with_fifo(&ct, c.ct_tx_fifo, |f| f.enqueue(b"abc").unwrap() == 3)
        && with_fifo(&own, c.server_tx_fifo, |f| {
            f.add_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
            f.set_event()
        });
    assert!(won);
    cli.send_io(0, TX, c.handle as u32);
    assert_eq!(srv.next(), Ev::Io(RX, 11));
    assert!(!with_fifo(&own, c.server_tx_fifo, |f| f.has_event()));
    // The deq-notification request travelled to the server's rx signals.
    let ntf = with_fifo(&sseg, a.server_rx_fifo, |f| {
        assert_eq!(f.want_deq_ntf(), SVM_FIFO_WANT_DEQ_NOTIF);
        let mut b = [0u8; 8];
        assert_eq!(f.dequeue(&mut b).unwrap(), 3);
        assert_eq!(&b[..3], b"abc");
        f.unset_event();
        let n = f.needs_deq_ntf(3);
        if n {
            f.clear_deq_ntf();
        }
        n
    });
    assert!(ntf);
    srv.send_io(0, RX, a.handle as u32);
    // Relayed as TX (space) to the client.
    assert_eq!(cli.next(), Ev::Io(TX, 21));

    // Server → client: RX to the client with has_event on its own rx signals.
    with_fifo(&sseg, a.server_tx_fifo, |f| {
        assert_eq!(f.enqueue(b"xyz").unwrap(), 3);
        assert!(f.set_event());
    });
    srv.send_io(0, TX, a.handle as u32);
    assert_eq!(cli.next(), Ev::Io(RX, 21));
    assert!(with_fifo(&own, c.server_rx_fifo, |f| f.has_event()));
    with_fifo(&ct, c.ct_rx_fifo, |f| {
        let mut b = [0u8; 8];
        assert_eq!(f.dequeue(&mut b).unwrap(), 3);
        assert_eq!(&b[..3], b"xyz");
    });
    with_fifo(&own, c.server_rx_fifo, |f| f.unset_event());

    // Client closes: server gets DISCONNECTED, client its cleanups.
    cli.send_on(0, &CtrlMsg::Disconnect(cli.handle_msg(c.handle)));
    let d = ctrl_of(&mut srv, |m| match m {
        CtrlMsg::Disconnected(d) => Some(d),
        _ => None,
    });
    assert_eq!((d.handle, d.context), (a.handle, srv.api()));
    for ty in [CleanupType::Transport, CleanupType::Session] {
        ctrl_of(&mut cli, |m| match m {
            CtrlMsg::Cleanup(x) if x.handle == c.handle && x.cleanup_type == ty => Some(()),
            _ => None,
        });
    }
    srv.send_on(0, &CtrlMsg::DisconnectedReply(srv.reply_msg(a.handle)));
    for ty in [CleanupType::Transport, CleanupType::Session] {
        ctrl_of(&mut srv, |m| match m {
            CtrlMsg::Cleanup(x) if x.handle == a.handle && x.cleanup_type == ty => Some(()),
            _ => None,
        });
    }
    // Both sides gone: the CT segment is deleted and both workers told.
    ctrl_of(&mut cli, |m| match m {
        CtrlMsg::AppDelSegment(s) if s.segment_handle == client_seg => Some(()),
        _ => None,
    });
    ctrl_of(&mut srv, |m| match m {
        CtrlMsg::AppDelSegment(s) if s.segment_handle == a.segment_handle => Some(()),
        _ => None,
    });
    assert!(peer.sessions().iter().all(|s| s.is_listener));
}

#[test]
fn ct_scope_rules() {
    let peer = start(2);
    let mut srv = App::attach(&peer, app_options(LOCAL | GLOBAL, 4096));
    let mut cli = App::attach(&peer, app_options(LOCAL, 4096));
    srv.listen([0, 0, 0, 0], 0, 1);
    let port = ctrl_of(&mut srv, |m| match m {
        CtrlMsg::Bound(b) if b.retval == 0 => Some(b.lcl_port),
        _ => None,
    });
    // Wildcard local listener matches 127.0.0.1 → CT on a worker thread.
    cli.connect([127, 0, 0, 1], port, 3);
    let a = ctrl_of(&mut srv, |m| match m {
        CtrlMsg::Accepted(a) => Some(a),
        _ => None,
    });
    assert_eq!(a.mq_index, 1);
    srv.accept_reply(1, a.handle, 1, 0);
    let c = ctrl_of(&mut cli, |m| match m {
        CtrlMsg::Connected(c) => Some(c),
        _ => None,
    });
    assert_ne!(c.ct_rx_fifo, 0);
    // Nothing listening locally on another port: a loopback destination has no route.
    cli.connect([127, 0, 0, 1], port.wrapping_add(1), 4);
    let e = ctrl_of(&mut cli, |m| match m {
        CtrlMsg::Connected(c) => Some(c),
        _ => None,
    });
    assert_eq!((e.context, e.retval), (4, SESSION_E_NOROUTE));
    // The global-scope app's own listener also accepts kernel connections.
    let _k = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let k = ctrl_of(&mut srv, |m| match m {
        CtrlMsg::Accepted(a) => Some(a),
        _ => None,
    });
    assert_ne!(k.rmt.port, 0);
    assert_ne!(k.segment_handle, a.segment_handle, "not in the CT segment");
}
