//! A raw sapi client for the peer's tests: SOCK_SEQPACKET connect, 209-byte datagrams with
//! SCM_RIGHTS, and helpers to map what the peer sends. Written against codec + svm + nix only.
#![allow(dead_code)]

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use vcl_codec::msg::{decode_ctrl_element, AppDetach, CtrlMsg};
use vcl_codec::sapi::{app_flags, opt, Attach, AttachReply, SapiMsg, SAPI_MSG_LEN};
use vcl_svm::mq::{MsgQueue, SendMode};
use vcl_svm::Segment;
use vcl_testpeer::{Peer, PeerConfig, SockAddr};

pub mod app;

/// How long to wait for something that must happen: generous, a loaded 2-core CI machine can
/// stall a thread for seconds (a pass returns as soon as the condition holds).
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A fresh abstract socket name per test.
pub fn sock_addr() -> SockAddr {
    static N: AtomicU32 = AtomicU32::new(0);
    SockAddr::Abstract(format!(
        "vcl-testpeer-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

pub fn start(threads: u8) -> Peer {
    Peer::start(PeerConfig::new(sock_addr()).threads(threads)).expect("peer start")
}

pub fn start_cfg(cfg: PeerConfig) -> Peer {
    Peer::start(cfg).expect("peer start")
}

pub fn connect_to(addr: &SockAddr) -> OwnedFd {
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let ua = match addr {
        SockAddr::Abstract(n) => UnixAddr::new_abstract(n.as_bytes()).unwrap(),
        SockAddr::Path(p) => UnixAddr::new(p).unwrap(),
    };
    connect(fd.as_raw_fd(), &ua).unwrap();
    fd
}

pub fn send_raw(fd: &OwnedFd, bytes: &[u8]) {
    let iov = [IoSlice::new(bytes)];
    sendmsg::<()>(fd.as_raw_fd(), &iov, &[], MsgFlags::empty(), None).unwrap();
}

pub fn send(fd: &OwnedFd, m: &SapiMsg) {
    send_raw(fd, &m.encode());
}

pub fn send_with_fd(fd: &OwnedFd, m: &SapiMsg, extra: RawFd) {
    let bytes = m.encode();
    let iov = [IoSlice::new(&bytes)];
    let fds = [extra];
    let c = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(fd.as_raw_fd(), &iov, &c, MsgFlags::empty(), None).unwrap();
}

/// Wait up to `t` for the socket to be readable.
pub fn readable(fd: &OwnedFd, t: Duration) -> bool {
    let mut p = [PollFd::new(std::os::fd::AsFd::as_fd(fd), PollFlags::POLLIN)];
    let ms = t.as_millis().min(u16::MAX as u128) as u16;
    poll(&mut p, PollTimeout::from(ms)).unwrap_or(0) > 0
}

/// What a receive got.
#[derive(Debug)]
pub enum Got {
    Msg(Box<SapiMsg>, Vec<OwnedFd>),
    Eof,
    Timeout,
}

/// Receive one datagram (with fds) within `t`.
pub fn recv_within(fd: &OwnedFd, t: Duration) -> Got {
    if !readable(fd, t) {
        return Got::Timeout;
    }
    let mut buf = [0u8; SAPI_MSG_LEN];
    let (n, fds) = vcl_svm::fdpass::recv_with_fds(fd.as_fd(), &mut buf).unwrap();
    if n == 0 {
        return Got::Eof;
    }
    assert_eq!(n, SAPI_MSG_LEN, "peer sent a datagram of the wrong size");
    Got::Msg(Box::new(SapiMsg::decode(&buf).unwrap()), fds)
}

pub fn recv(fd: &OwnedFd) -> (SapiMsg, Vec<OwnedFd>) {
    match recv_within(fd, TIMEOUT) {
        Got::Msg(m, fds) => (*m, fds),
        other => panic!("expected a datagram, got {other:?}"),
    }
}

/// A positive "nothing else was sent on this socket": ask for a reply that the peer sends in
/// order after anything already due (ADD_DEL_WORKER for an app that does not exist) and require
/// it to be the next datagram.
pub fn sapi_barrier(fd: &OwnedFd) {
    send(
        fd,
        &SapiMsg::AddDelWorker(vcl_codec::sapi::WorkerAddDel {
            app_index: u32::MAX - 1,
            wrk_index: 0xbabe,
            is_add: true,
        }),
    );
    match recv(fd) {
        (SapiMsg::AddDelWorkerReply(r), _) if r.wrk_index == 0xbabe && r.retval != 0 => {}
        (m, _) => panic!("expected only the barrier's reply, got {m:?}"),
    }
}

/// Whether the peer closed the connection within `t` (nothing else arriving first).
pub fn closed_within(fd: &OwnedFd, t: Duration) -> bool {
    matches!(recv_within(fd, t), Got::Eof)
}

/// VCL-like attach options, with small sizes so tests stay fast.
pub fn options(evt_q: u64) -> [u64; opt::N_OPTIONS] {
    let mut o = [0u64; opt::N_OPTIONS];
    o[opt::FLAGS] = app_flags::ACCEPT_REDIRECT | app_flags::ADD_SEGMENT;
    o[opt::EVT_QUEUE_SIZE] = evt_q;
    o[opt::SEGMENT_SIZE] = 4 << 20;
    o[opt::ADD_SEGMENT_SIZE] = 4 << 20;
    o[opt::RX_FIFO_SIZE] = 64 << 10;
    o[opt::TX_FIFO_SIZE] = 64 << 10;
    o[opt::PREALLOC_FIFO_PAIRS] = 8;
    o[opt::TLS_ENGINE] = 1;
    o
}

pub fn attach_msg(name: &str, o: [u64; opt::N_OPTIONS]) -> SapiMsg {
    let mut a = Attach::new(name);
    a.options = o;
    SapiMsg::Attach(a)
}

/// Attach on `fd` and return the reply and fds.
pub fn attach(fd: &OwnedFd, o: [u64; opt::N_OPTIONS]) -> (AttachReply, Vec<OwnedFd>) {
    send(fd, &attach_msg("test-app", o));
    match recv(fd) {
        (SapiMsg::AttachReply(r), fds) => (r, fds),
        (m, _) => panic!("expected ATTACH_REPLY, got {m:?}"),
    }
}

/// Everything an attached worker maps.
pub struct Attached {
    pub sock: OwnedFd,
    pub reply: AttachReply,
    pub vpp_seg: Arc<Segment>,
    pub app_seg: Arc<Segment>,
    pub evtfd: Option<OwnedFd>,
}

impl Attached {
    pub fn app_mq(&self) -> MsgQueue<Arc<Segment>> {
        MsgQueue::attach(self.app_seg.clone(), self.reply.app_mq).unwrap()
    }

    pub fn ctrl_mq(&self) -> MsgQueue<Arc<Segment>> {
        MsgQueue::attach(self.vpp_seg.clone(), self.reply.vpp_ctrl_mq).unwrap()
    }

    /// Send APP_DETACH for `client_index` on the ctrl mq.
    pub fn send_detach(&self, client_index: u32) {
        let m = CtrlMsg::AppDetach(AppDetach {
            client_index,
            context: 0,
        });
        let mut body = [0u8; 64];
        let n = vcl_codec::msg::encode_ctrl(&m, &mut body);
        self.ctrl_mq()
            .send_ctrl(
                m.evt_type().as_u8(),
                &body[..n],
                SendMode::BlockFor(TIMEOUT),
            )
            .unwrap();
    }
}

/// Connect, attach with `o`, map both segments.
pub fn attach_and_map(addr: &SockAddr, o: [u64; opt::N_OPTIONS]) -> Attached {
    let sock = connect_to(addr);
    let (reply, mut fds) = attach(&sock, o);
    assert_eq!(reply.retval, 0, "attach failed: {reply:?}");
    assert_eq!(fds.len(), reply.n_fds as usize);
    let evtfd = (fds.len() == 3).then(|| fds.pop().unwrap());
    let app_seg = Arc::new(Segment::map(fds.pop().unwrap()).unwrap());
    let vpp_seg = Arc::new(Segment::map(fds.pop().unwrap()).unwrap());
    Attached {
        sock,
        reply,
        vpp_seg,
        app_seg,
        evtfd,
    }
}

/// Take one ctrl message from an app mq within the timeout.
pub fn next_ctrl(mq: &MsgQueue<Arc<Segment>>) -> CtrlMsg {
    let mut c = mq.consumer().unwrap();
    let mut out = None;
    let deadline = std::time::Instant::now() + TIMEOUT;
    while out.is_none() && std::time::Instant::now() < deadline {
        c.dequeue_wait(1, Duration::from_millis(20), |e| {
            out = Some(decode_ctrl_element(e.data).unwrap());
        })
        .unwrap();
    }
    out.expect("no ctrl message on the app mq")
}
