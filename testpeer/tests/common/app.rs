//! A raw session client for the peer's tests: an attached worker that sends session messages on
//! the VPP thread mqs, takes IO and ctrl events from its app mq (mapping announced segments on
//! the way), and reads/writes fifos the way VCL does.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vcl_codec::msg::{
    decode_ctrl_element, encode_ctrl, AcceptedReply, Connect, CtrlMsg, Ip46, Listen,
    SessionHandleMsg, SessionReplyMsg, TransportProto, Unlisten,
};
use vcl_codec::sapi::{app_flags, opt, SapiMsg};
use vcl_svm::fifo::Fifo;
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::mq::{discover_vpp_mqs, MsgQueue, SendMode, IO_RING};
use vcl_svm::Segment;
use vcl_testpeer::Peer;

use super::{attach_and_map, options, recv, Attached, TIMEOUT};

pub type Mq = MsgQueue<Arc<Segment>>;

/// What arrived on the app mq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Io(u8, u32),
    Ctrl(CtrlMsg),
}

pub struct App {
    pub a: Attached,
    pub mq: Mq,
    pub vpp: Vec<Mq>,
    pub segs: HashMap<u64, Arc<Segment>>,
    /// APP_ADD_SEGMENT handles seen, in order.
    pub added: Vec<u64>,
}

/// Options with small fifos (`fifo` bytes each) and the given scope flags.
pub fn app_options(scope: u64, fifo: u64) -> [u64; opt::N_OPTIONS] {
    let mut o = options(256);
    o[opt::FLAGS] |= scope;
    o[opt::RX_FIFO_SIZE] = fifo;
    o[opt::TX_FIFO_SIZE] = fifo;
    o[opt::PREALLOC_FIFO_PAIRS] = 0;
    o
}

impl App {
    pub fn attach(peer: &Peer, o: [u64; opt::N_OPTIONS]) -> App {
        let a = attach_and_map(peer.socket_addr(), o);
        let mq = a.app_mq();
        let vpp = discover_vpp_mqs(a.vpp_seg.clone(), Vec::new()).unwrap();
        let mut segs = HashMap::new();
        segs.insert(a.reply.segment_handle, a.app_seg.clone());
        App {
            a,
            mq,
            vpp,
            segs,
            added: Vec::new(),
        }
    }

    pub fn global(peer: &Peer) -> App {
        App::attach(peer, app_options(0, 64 << 10))
    }

    pub fn api(&self) -> u32 {
        self.a.reply.api_client_handle
    }

    pub fn app_index(&self) -> u32 {
        self.a.reply.app_index
    }

    pub fn ctrl_thread(&self) -> usize {
        usize::from(self.a.reply.vpp_ctrl_mq_thread)
    }

    pub fn send_on(&self, thread: usize, m: &CtrlMsg) {
        let mut body = [0u8; 256];
        let n = encode_ctrl(m, &mut body);
        self.vpp[thread]
            .send_ctrl(
                m.evt_type().as_u8(),
                &body[..n],
                SendMode::BlockFor(TIMEOUT),
            )
            .unwrap();
    }

    pub fn send_io(&self, thread: usize, ty: u8, si: u32) {
        self.vpp[thread]
            .send_io(ty, si, SendMode::BlockFor(TIMEOUT))
            .unwrap();
    }

    pub fn listen(&self, ip: [u8; 4], port: u16, ctx: u32) {
        let m = CtrlMsg::Listen(Listen {
            client_index: self.api(),
            context: ctx,
            wrk_index: 0,
            vrf: 0,
            port,
            proto: TransportProto::Tcp,
            is_ip4: true,
            ip: Ip46::from_v4(ip.into()),
            flags: 0,
            ext_config: 0,
            dscp: 0,
        });
        self.send_on(self.ctrl_thread(), &m);
    }

    pub fn connect(&self, ip: [u8; 4], port: u16, ctx: u32) {
        let m = CtrlMsg::Connect(Connect {
            client_index: self.api(),
            context: ctx,
            wrk_index: 0,
            vrf: 0,
            port,
            lcl_port: 0,
            proto: TransportProto::Tcp,
            is_ip4: true,
            ip: Ip46::from_v4(ip.into()),
            lcl_ip: Ip46::ZERO,
            parent_handle: u64::MAX,
            ckpair_index: 0,
            crypto_engine: 0,
            flags: 1,
            dscp: 0,
            ext_config: 0,
        });
        self.send_on(self.ctrl_thread(), &m);
    }

    pub fn accept_reply(&self, thread: usize, handle: u64, asi: u32, retval: i32) {
        let m = CtrlMsg::AcceptedReply(AcceptedReply {
            context: self.app_index(),
            retval,
            handle,
            app_session_index: asi,
        });
        self.send_on(thread, &m);
    }

    pub fn handle_msg(&self, handle: u64) -> SessionHandleMsg {
        SessionHandleMsg {
            client_index: self.api(),
            context: 0,
            handle,
        }
    }

    pub fn reply_msg(&self, handle: u64) -> SessionReplyMsg {
        SessionReplyMsg {
            context: self.api(),
            retval: 0,
            handle,
        }
    }

    /// Next event within `t`, mapping announced segments (their fd comes first on the socket).
    pub fn next_within(&mut self, t: Duration) -> Option<Ev> {
        let end = Instant::now() + t;
        let mut c = self.mq.consumer().unwrap();
        loop {
            let mut out = None;
            c.dequeue_wait(1, Duration::from_millis(5), |e| {
                out = Some(if e.ring == IO_RING {
                    Ev::Io(e.event_type(), e.session_index())
                } else {
                    Ev::Ctrl(decode_ctrl_element(e.data).unwrap())
                });
            })
            .unwrap();
            if let Some(Ev::Ctrl(CtrlMsg::AppAddSegment(s))) = &out {
                let (m, mut fds) = recv(&self.a.sock);
                assert!(matches!(m, SapiMsg::SendFds), "{m:?}");
                let seg = Segment::map(fds.pop().unwrap()).unwrap();
                self.segs.insert(s.segment_handle, Arc::new(seg));
                self.added.push(s.segment_handle);
                continue;
            }
            if out.is_some() {
                return out;
            }
            if Instant::now() >= end {
                return None;
            }
        }
    }

    pub fn next(&mut self) -> Ev {
        self.next_within(TIMEOUT).expect("no event on the app mq")
    }

    pub fn ctrl(&mut self) -> CtrlMsg {
        match self.next() {
            Ev::Ctrl(m) => m,
            e => panic!("expected a ctrl message, got {e:?}"),
        }
    }

    /// A positive "nothing else is due for this app": ask the peer for a reply it queues after
    /// everything already due (UNLISTEN of a handle that is no listener, refused) and require
    /// it to be the next event. Announced segments are mapped on the way, as always.
    pub fn barrier(&mut self) {
        let m = CtrlMsg::Unlisten(Unlisten {
            client_index: self.api(),
            context: 0xba55_0001,
            wrk_index: 0,
            handle: u64::MAX - 1,
        });
        self.send_on(self.ctrl_thread(), &m);
        match self.next() {
            Ev::Ctrl(CtrlMsg::UnlistenReply(r)) if r.context == 0xba55_0001 && r.retval != 0 => {}
            e => panic!("expected only the barrier's reply, got {e:?}"),
        }
    }

    pub fn seg(&self, h: u64) -> Arc<Segment> {
        self.segs
            .get(&h)
            .cloned()
            .unwrap_or_else(|| panic!("segment {h:#x} not mapped"))
    }
}

/// Run `f` on the fifo at `off` in `seg`.
pub fn with_fifo<R>(seg: &Segment, off: u64, f: impl FnOnce(&Fifo<'_>) -> R) -> R {
    let fs = FifoSegment::attach(seg).unwrap();
    f(&Fifo::attach(fs, off).unwrap())
}

/// Scope flags.
pub const LOCAL: u64 = app_flags::USE_LOCAL_SCOPE;
pub const GLOBAL: u64 = app_flags::USE_GLOBAL_SCOPE;
