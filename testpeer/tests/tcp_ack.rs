//! The ACK VPP's TCP owes for bytes that came in (`tcp_program_ack`): it marks the session's
//! tx fifo (has_event) for a tx pass on its next loop, so an app that replies before then sends
//! no TX event of its own, and its reply leaves in that pass (docs/wire.md, "VPP sets has_event
//! on an app's tx fifo too").

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::app::*;
use common::*;
use vcl_codec::msg::CtrlMsg;

const RX: u8 = 0;

#[test]
fn a_reply_written_while_an_ack_is_owed_leaves_in_its_pass() {
    let peer = start(2);
    // wide enough for the test to act inside the window on a loaded machine
    let pass = Duration::from_millis(300);
    peer.set_tcp_ack_pass(pass);
    let mut app = App::global(&peer);
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    app.connect([127, 0, 0, 1], port, 5);
    let c = match app.ctrl() {
        CtrlMsg::Connected(c) => c,
        m => panic!("expected CONNECTED, got {m:?}"),
    };
    assert_eq!(c.retval, 0);
    let (mut k, _) = server.accept().unwrap();
    k.set_read_timeout(Some(TIMEOUT)).unwrap();
    let seg = app.seg(c.segment_handle);

    let sent = Instant::now();
    k.write_all(b"request").unwrap();
    assert_eq!(app.next(), Ev::Io(RX, 5));
    let got = with_fifo(&seg, c.server_rx_fifo, |f| {
        let mut b = vec![0u8; f.max_dequeue() as usize];
        let n = f.dequeue(&mut b).unwrap();
        b.truncate(n);
        f.unset_event();
        b
    });
    assert_eq!(got, b"request");
    // the reply, VCL style: a TX event only if this write flips has_event
    let won = with_fifo(&seg, c.server_tx_fifo, |f| {
        assert_eq!(f.enqueue(b"reply").unwrap(), 5);
        f.set_event()
    });
    assert!(
        sent.elapsed() < pass,
        "the test took longer than the ACK's window: nothing shown"
    );
    assert!(
        !won,
        "the owed ACK had marked the tx fifo: no TX event of our own"
    );
    let mut reply = [0u8; 5];
    k.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"reply");
    assert!(
        sent.elapsed() >= pass,
        "left with the ACK's pass, not before"
    );
    // the pass drained the fifo and cleared the mark: the next reply raises its own event
    assert!(
        peer.wait_until(TIMEOUT, |_| with_fifo(&seg, c.server_tx_fifo, |f| !f
            .has_event()))
    );
    let won = with_fifo(&seg, c.server_tx_fifo, |f| {
        assert_eq!(f.enqueue(b"again").unwrap(), 5);
        f.set_event()
    });
    assert!(won, "nothing owed: this write's own TX event");
    app.send_io(
        c.mq_index as usize,
        vcl_codec::event::EventType::IoTx.as_u8(),
        c.handle as u32,
    );
    k.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"again");
}
