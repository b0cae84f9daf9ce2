//! What carries a session: the [`Kind`] each session holds and the transport-side state of
//! each kind (kernel TCP with its half-open connects, kernel UDP, cut-through with its QUIC
//! role). Plain data, so the session tables can hold it without importing the transports that
//! drive it (`transport`, `transport::udp`, `ct`, `quic`).

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::time::Instant;

use crate::vpp::segment_manager::FifoLoc;

/// What carries the session.
pub enum Kind {
    /// A listen session (global scope: may own a kernel listening socket).
    Listener(Option<std::net::TcpListener>),
    /// A TCP session backed by a kernel socket on loopback.
    Tcp(Box<TcpConn>),
    /// A cut-through session.
    Ct(Box<CtConn>),
    /// A UDP listener (global scope) with its kernel socket.
    UdpListener(Box<UdpListen>),
    /// A connected or accepted UDP session.
    Udp(Box<UdpConn>),
    /// A worker's connectionless session of the UDP listener (its handle).
    UdpCl(u64),
}

impl Kind {
    /// Listen sessions (TCP or UDP), not the per-worker connectionless ones.
    pub fn is_listener(&self) -> bool {
        matches!(self, Kind::Listener(_) | Kind::UdpListener(_))
    }

    /// Sessions whose fifos carry datagrams through a kernel UDP socket.
    pub fn is_udp(&self) -> bool {
        matches!(self, Kind::Udp(_) | Kind::UdpCl(_))
    }
}

/// TCP states the emulation distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpSt {
    Established,
    CloseWait,
    FinWait1,
    FinWait2,
    LastAck,
    TimeWait,
    Closed,
}

/// A kernel-backed TCP connection (`tcp_connection_t`).
pub struct TcpConn {
    pub sock: Option<TcpStream>,
    pub st: TcpSt,
    /// `TCP_CONN_FINPNDG`: FIN goes out once tx drained.
    pub fin_pending: bool,
    /// `TCP_CONN_FINRCVD`.
    pub fin_rcvd: bool,
    pub fin_sent: bool,
    /// Peer FIN read (stop polling for input).
    pub rd_eof: bool,
    /// Rx fifo full: not reading until space appears.
    pub rx_paused: bool,
    /// Tx scheduled (has_event held by the peer) and, when `tx_blocked`, waiting for POLLOUT.
    pub tx_pending: bool,
    pub tx_blocked: bool,
    /// An ACK is owed for bytes that came in and has_event on tx was set for it
    /// (`tcp_program_ack`): the tx pass that sends it runs at this time, VPP's next loop.
    pub ack_due: Option<Instant>,
    /// Bytes read from the kernel that did not fit in the rx fifo (at most one chunk).
    pub pending_rx: Vec<u8>,
    /// When the transport gets deleted (`tcp_program_cleanup` / TIME_WAIT expiry).
    pub cleanup_at: Option<Instant>,
    /// FIN_WAIT give-up time (the WAITCLOSE timer).
    pub fin_wait_until: Option<Instant>,
}

impl TcpConn {
    pub fn new(sock: TcpStream) -> TcpConn {
        TcpConn {
            sock: Some(sock),
            st: TcpSt::Established,
            fin_pending: false,
            fin_rcvd: false,
            fin_sent: false,
            rd_eof: false,
            rx_paused: false,
            tx_pending: false,
            tx_blocked: false,
            ack_due: None,
            pending_rx: Vec::new(),
            cleanup_at: None,
            fin_wait_until: None,
        }
    }
}

/// When the tx pass of an ACK owed for received TCP bytes runs ([`TcpConn::ack_due`]): VPP
/// sends it on its next loop, one `poll-sleep-usec 100` sleep (~175 µs) later on the given VPP,
/// microseconds on a polling one.
pub const ACK_PASS: std::time::Duration = std::time::Duration::from_micros(100);

/// A kernel connect in progress (a half-open session).
pub struct HalfOpen {
    pub sock: OwnedFd,
    pub app_wrk: u32,
    pub ctx: u32,
    pub started: Instant,
}

/// A connected UDP session (client) or one accepted by a connected listener (`sock` None:
/// it sends through the listener `ls`'s socket to `peer`).
pub struct UdpConn {
    pub sock: Option<UdpSocket>,
    pub ls: u64,
    pub peer: SocketAddr,
    pub migrated: bool,
    /// Tx data left behind (kernel buffer full): retried by the timers.
    pub tx_pending: bool,
    /// Reorder fault: the datagram held back until the next one.
    pub held: Option<Vec<u8>>,
    /// Datagrams received (the drop fault counts them).
    pub n_rx: u64,
    /// A DTLS session: never migrates as the app sees it, records of at most 16 KB.
    pub dtls: bool,
}

/// A UDP listener's kernel socket and what hangs off it.
pub struct UdpListen {
    pub sock: UdpSocket,
    /// TRANSPORT_CFG_F_CONNECTED: one accepted session per sender.
    pub connected: bool,
    /// Connectionless: wrk_map_index → that worker's cl session (thread 0).
    pub cl: BTreeMap<u32, u64>,
    /// Connected: sender → its accepted session.
    pub flows: HashMap<SocketAddr, u64>,
    /// Datagrams received (the drop fault counts them).
    pub n_rx: u64,
    pub held: Option<(SocketAddr, Vec<u8>)>,
    /// A DTLS listener: a sender is accepted by its handshake datagram only.
    pub dtls: bool,
}

/// `ct_connection_t` as far as the peer needs it.
pub struct CtConn {
    pub is_client: bool,
    /// The other side's session; None once it went (`peer_index = ~0`).
    pub peer: Option<u64>,
    /// The server's (rx, tx) fifos in the CT segment, referenced by both sides.
    pub fifos: Option<(FifoLoc, FifoLoc)>,
    /// CT segment handle as the client knows it (`client_wrk << 56 | handle`).
    pub client_seg_handle: u64,
    /// `CT_CONN_F_RESET`.
    pub reset: bool,
    /// Server side: the client worker and connect context until the client session exists.
    pub client_wrk: u32,
    pub client_opaque: u32,
    pub pending_client: bool,
    /// What the pair stands for when it models QUIC (`crate::quic`).
    pub quic: Quic,
}

/// The QUIC role of a cut-through pair's side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Quic {
    /// Plain cut-through.
    #[default]
    No,
    /// A QUIC connection.
    Conn,
    /// A stream of connection `conn` (this side's); `other` is the other end's connection;
    /// `unidir`: opened one-way (TRANSPORT_CFG_F_UNIDIRECTIONAL).
    Stream { conn: u64, other: u64, unidir: bool },
}

impl Quic {
    /// The role of the client side of a pair whose server side has this one.
    pub fn client_side(self) -> Quic {
        match self {
            Quic::Stream {
                conn,
                other,
                unidir,
            } => Quic::Stream {
                conn: other,
                other: conn,
                unidir,
            },
            q => q,
        }
    }
}
