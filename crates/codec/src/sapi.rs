//! The application socket API (sapi): `app_sapi_msg_t` datagrams exchanged on
//! the SOCK_SEQPACKET socket for attach, worker add/delete and cert/key
//! add/delete, plus the attach option indices and flag bits.
//!
//! Every datagram is exactly [`SAPI_MSG_LEN`] = 209 bytes: a type byte and a
//! 208-byte payload union (see application_interface.h `app_sapi_msg_t`).
//! Integers are host order; there is no version field.

use crate::error::DecodeError;
use crate::wire::{Reader, Writer};

/// Size of every sapi datagram.
pub const SAPI_MSG_LEN: usize = 209;
/// Size of the payload union (the attach message is the largest member).
pub const SAPI_PAYLOAD_LEN: usize = 208;

/// `app_sapi_msg_type_e` values.
pub mod msg_type {
    /// Unused.
    pub const NONE: u8 = 0;
    /// app→vpp attach.
    pub const ATTACH: u8 = 1;
    /// vpp→app attach reply (+ fds).
    pub const ATTACH_REPLY: u8 = 2;
    /// app→vpp worker add/delete.
    pub const ADD_DEL_WORKER: u8 = 3;
    /// vpp→app worker add reply (+ fds); none is sent for a delete.
    pub const ADD_DEL_WORKER_REPLY: u8 = 4;
    /// vpp→app: one fd for a new segment (payload all zero).
    pub const SEND_FDS: u8 = 5;
    /// app→vpp cert/key add/delete (payload follows in a second datagram).
    pub const ADD_DEL_CERT_KEY: u8 = 6;
    /// vpp→app cert/key reply.
    pub const ADD_DEL_CERT_KEY_REPLY: u8 = 7;
}

/// Attach option indices (`app_attach_options_index_t`).
pub mod opt {
    /// `APP_OPTIONS_FLAGS_*` bitmask.
    pub const FLAGS: usize = 0;
    /// App mq depth.
    pub const EVT_QUEUE_SIZE: usize = 1;
    /// First segment size.
    pub const SEGMENT_SIZE: usize = 2;
    /// Size of later segments.
    pub const ADD_SEGMENT_SIZE: usize = 3;
    /// Cap on total fifo memory.
    pub const MAX_FIFO_MEMORY: usize = 4;
    /// Default rx fifo size.
    pub const RX_FIFO_SIZE: usize = 5;
    /// Default tx fifo size.
    pub const TX_FIFO_SIZE: usize = 6;
    /// Fifo pairs to preallocate.
    pub const PREALLOC_FIFO_PAIRS: usize = 7;
    /// Fifo headers to preallocate (exclusive with pairs).
    pub const PREALLOC_FIFO_HDRS: usize = 8;
    /// Namespace index (overwritten by VPP for sapi).
    pub const NAMESPACE: usize = 9;
    /// Namespace secret (ignored by sapi).
    pub const NAMESPACE_SECRET: usize = 10;
    /// `1 << transport_proto` bitmask for proxy apps.
    pub const PROXY_TRANSPORT: usize = 11;
    /// Unused slot.
    pub const UNUSED2: usize = 12;
    /// Crypto engine id ([`super::crypto_engine`]).
    pub const TLS_ENGINE: usize = 13;
    /// Max fifo size.
    pub const MAX_FIFO_SIZE: usize = 14;
    /// High watermark, percent.
    pub const HIGH_WATERMARK: usize = 15;
    /// Low watermark, percent.
    pub const LOW_WATERMARK: usize = 16;
    /// Percent of a fifo allocated up front.
    pub const PCT_FIRST_ALLOC: usize = 17;
    /// Number of option slots.
    pub const N_OPTIONS: usize = 18;
}

/// `APP_OPTIONS_FLAGS_*` bits for `options[opt::FLAGS]`.
pub mod app_flags {
    /// Fifos with redirects (VCL always sets it).
    pub const ACCEPT_REDIRECT: u64 = 1 << 0;
    /// VPP may add segments and tell the app (VCL always sets it).
    pub const ADD_SEGMENT: u64 = 1 << 1;
    /// Builtin app; never set from outside VPP.
    pub const IS_BUILTIN: u64 = 1 << 2;
    /// App is a transport protocol.
    pub const IS_TRANSPORT_APP: u64 = 1 << 3;
    /// App proxies traffic.
    pub const IS_PROXY: u64 = 1 << 4;
    /// App may use global scope.
    pub const USE_GLOBAL_SCOPE: u64 = 1 << 5;
    /// App may use local (cut-through) scope.
    pub const USE_LOCAL_SCOPE: u64 = 1 << 6;
    /// Signal the app mq with an eventfd.
    pub const EVT_MQ_USE_EVENTFD: u64 = 1 << 7;
    /// Memfd segments for builtin apps.
    pub const MEMFD_FOR_BUILTIN: u64 = 1 << 8;
    /// Huge pages for fifos.
    pub const USE_HUGE_PAGE: u64 = 1 << 9;
    /// Report original destination of redirected sessions.
    pub const GET_ORIGINAL_DST: u64 = 1 << 10;
    /// App wants the event collector.
    pub const EVT_COLLECTOR: u64 = 1 << 11;
    /// Exclude segments from core dumps.
    pub const NO_DUMP_SEGMENTS: u64 = 1 << 12;
}

/// `SESSION_FD_F_*` bits in `fd_flags`, naming the fds passed with a reply.
pub mod fd_flags {
    /// Memfd of the VPP mqs segment.
    pub const VPP_MQ_SEGMENT: u8 = 1 << 0;
    /// Memfd of a fifo segment.
    pub const MEMFD_SEGMENT: u8 = 1 << 1;
    /// Eventfd of the app mq.
    pub const MQ_EVENTFD: u8 = 1 << 2;
    /// Eventfds of VPP's per-thread rx mqs.
    pub const VPP_MQ_EVENTFD: u8 = 1 << 3;
    /// `SESSION_N_FD_TYPE`: the most fds an add-worker reply can name.
    pub const N_FD_TYPES: usize = 4;
}

/// Crypto engine ids (`crypto_engine_type_t`), used by the TLS_ENGINE option
/// and the ext-config crypto block.
pub mod crypto_engine {
    /// No engine / VPP default.
    pub const NONE: u8 = 0;
    /// OpenSSL.
    pub const OPENSSL: u8 = 1;
    /// picotls.
    pub const PICOTLS: u8 = 2;
    /// VPP native.
    pub const VPP: u8 = 3;
    /// mbedTLS.
    pub const MBEDTLS: u8 = 4;
    /// Highest known id.
    pub const LAST: u8 = MBEDTLS;
}

/// ATTACH payload (`app_sapi_attach_msg_t`, 208 B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attach {
    /// App name, NUL padded; VPP forces byte 63 to 0.
    pub name: [u8; 64],
    /// Options indexed by [`opt`].
    pub options: [u64; opt::N_OPTIONS],
}

impl Attach {
    /// Builds an attach with `name` truncated to 63 bytes so it stays
    /// NUL-terminated, and all options zero.
    pub fn new(name: &str) -> Self {
        let mut n = [0u8; 64];
        let b = name.as_bytes();
        let len = b.len().min(63);
        n[..len].copy_from_slice(&b[..len]);
        Self {
            name: n,
            options: [0; opt::N_OPTIONS],
        }
    }

    /// Name up to the first NUL.
    pub fn name_bytes(&self) -> &[u8] {
        let end = self
            .name
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.name.len());
        &self.name[..end]
    }
}

/// ATTACH_REPLY payload (39 B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttachReply {
    /// 0 or a negative `SESSION_E_*`.
    pub retval: i32,
    /// App index.
    pub app_index: u32,
    /// Seg-offset of the worker's app mq in its first fifo segment.
    pub app_mq: u64,
    /// Seg-offset of the ctrl mq in the VPP mqs segment.
    pub vpp_ctrl_mq: u64,
    /// Handle of the first fifo segment.
    pub segment_handle: u64,
    /// Value for `client_index` of every later control message.
    pub api_client_handle: u32,
    /// VPP thread (mq index) of the ctrl mq.
    pub vpp_ctrl_mq_thread: u8,
    /// Number of fds passed with the reply.
    pub n_fds: u8,
    /// [`fd_flags`] describing them.
    pub fd_flags: u8,
}

/// ADD_DEL_WORKER payload (9 B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerAddDel {
    /// App index from the attach reply.
    pub app_index: u32,
    /// VPP worker (wrk_map_index) to delete; ignored on add.
    pub wrk_index: u32,
    /// Add or delete.
    pub is_add: bool,
}

/// ADD_DEL_WORKER_REPLY payload (31 B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerAddDelReply {
    /// 0 or a negative `SESSION_E_*`.
    pub retval: i32,
    /// New worker's VPP wrk_map_index.
    pub wrk_index: u32,
    /// Seg-offset of the new worker's app mq.
    pub app_event_queue_address: u64,
    /// Handle of the new worker's first segment.
    pub segment_handle: u64,
    /// `client_index` for the new worker's control messages.
    pub api_client_handle: u32,
    /// Number of fds passed with the reply.
    pub n_fds: u8,
    /// [`fd_flags`] describing them.
    pub fd_flags: u8,
    /// Echo of the request.
    pub is_add: bool,
}

/// ADD_DEL_CERT_KEY payload (13 B). On add, `certkey_len` bytes of
/// cert followed by key travel in the next datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CertKeyAddDel {
    /// Echoed in the reply.
    pub context: u32,
    /// Pair to delete (delete only).
    pub index: u32,
    /// Cert length.
    pub cert_len: u16,
    /// Cert + key length.
    pub certkey_len: u16,
    /// Add or delete.
    pub is_add: bool,
}

/// ADD_DEL_CERT_KEY_REPLY payload (12 B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CertKeyAddDelReply {
    /// Echo of the request.
    pub context: u32,
    /// 0 or a negative `SESSION_E_*`.
    pub retval: i32,
    /// New pair index (add).
    pub index: u32,
}

/// A decoded sapi datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SapiMsg {
    /// Type 1.
    Attach(Attach),
    /// Type 2.
    AttachReply(AttachReply),
    /// Type 3.
    AddDelWorker(WorkerAddDel),
    /// Type 4.
    AddDelWorkerReply(WorkerAddDelReply),
    /// Type 5: the fd rides in SCM_RIGHTS; the payload is ignored on decode.
    SendFds,
    /// Type 6.
    AddDelCertKey(CertKeyAddDel),
    /// Type 7.
    AddDelCertKeyReply(CertKeyAddDelReply),
}

const WHAT: &str = "sapi msg";

impl SapiMsg {
    /// The `type` byte.
    pub fn msg_type(&self) -> u8 {
        match self {
            Self::Attach(_) => msg_type::ATTACH,
            Self::AttachReply(_) => msg_type::ATTACH_REPLY,
            Self::AddDelWorker(_) => msg_type::ADD_DEL_WORKER,
            Self::AddDelWorkerReply(_) => msg_type::ADD_DEL_WORKER_REPLY,
            Self::SendFds => msg_type::SEND_FDS,
            Self::AddDelCertKey(_) => msg_type::ADD_DEL_CERT_KEY,
            Self::AddDelCertKeyReply(_) => msg_type::ADD_DEL_CERT_KEY_REPLY,
        }
    }

    /// The full 209-byte datagram; unused payload bytes are zero.
    pub fn encode(&self) -> [u8; SAPI_MSG_LEN] {
        let mut out = [0u8; SAPI_MSG_LEN];
        out[0] = self.msg_type();
        let mut w = Writer::new(&mut out[1..]);
        match self {
            Self::Attach(m) => {
                w.bytes(0, &m.name);
                for (i, o) in m.options.iter().enumerate() {
                    w.u64(64 + 8 * i, *o);
                }
            }
            Self::AttachReply(m) => {
                w.i32(0, m.retval);
                w.u32(4, m.app_index);
                w.u64(8, m.app_mq);
                w.u64(16, m.vpp_ctrl_mq);
                w.u64(24, m.segment_handle);
                w.u32(32, m.api_client_handle);
                w.u8(36, m.vpp_ctrl_mq_thread);
                w.u8(37, m.n_fds);
                w.u8(38, m.fd_flags);
            }
            Self::AddDelWorker(m) => {
                w.u32(0, m.app_index);
                w.u32(4, m.wrk_index);
                w.bool(8, m.is_add);
            }
            Self::AddDelWorkerReply(m) => {
                w.i32(0, m.retval);
                w.u32(4, m.wrk_index);
                w.u64(8, m.app_event_queue_address);
                w.u64(16, m.segment_handle);
                w.u32(24, m.api_client_handle);
                w.u8(28, m.n_fds);
                w.u8(29, m.fd_flags);
                w.bool(30, m.is_add);
            }
            Self::SendFds => {}
            Self::AddDelCertKey(m) => {
                w.u32(0, m.context);
                w.u32(4, m.index);
                w.u16(8, m.cert_len);
                w.u16(10, m.certkey_len);
                w.bool(12, m.is_add);
            }
            Self::AddDelCertKeyReply(m) => {
                w.u32(0, m.context);
                w.i32(4, m.retval);
                w.u32(8, m.index);
            }
        }
        out
    }

    /// Decodes one datagram of exactly 209 bytes.
    ///
    /// Receive into a 209-byte buffer: SEQPACKET then truncates a longer
    /// datagram to 209 bytes, which VPP also accepts (docs/wire.md#sapi-datagrams), and this
    /// function sees the same prefix VPP would. A shorter datagram is an
    /// error, as in VPP (which detaches the worker). A slice longer than 209
    /// is refused too, because it means the caller's framing is off; use
    /// [`SapiMsg::decode_prefix`] to deliberately take VPP's truncating view.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        if buf.len() != SAPI_MSG_LEN {
            return Err(DecodeError::WrongSize {
                what: WHAT,
                need: SAPI_MSG_LEN,
                got: buf.len(),
            });
        }
        Self::decode_prefix(buf)
    }

    /// Decodes the first 209 bytes of `buf`, ignoring anything after them
    /// (what a peer reading with a 209-byte buffer observes).
    pub fn decode_prefix(buf: &[u8]) -> Result<Self, DecodeError> {
        let r = Reader::new(buf, SAPI_MSG_LEN, WHAT)?;
        let ty = r.u8(0)?;
        let p = Reader::new(
            buf.get(1..SAPI_MSG_LEN).unwrap_or_default(),
            SAPI_PAYLOAD_LEN,
            WHAT,
        )?;
        Ok(match ty {
            msg_type::ATTACH => {
                let mut options = [0u64; opt::N_OPTIONS];
                for (i, o) in options.iter_mut().enumerate() {
                    *o = p.u64(64 + 8 * i)?;
                }
                Self::Attach(Attach {
                    name: p.array(0)?,
                    options,
                })
            }
            msg_type::ATTACH_REPLY => Self::AttachReply(AttachReply {
                retval: p.i32(0)?,
                app_index: p.u32(4)?,
                app_mq: p.u64(8)?,
                vpp_ctrl_mq: p.u64(16)?,
                segment_handle: p.u64(24)?,
                api_client_handle: p.u32(32)?,
                vpp_ctrl_mq_thread: p.u8(36)?,
                n_fds: p.u8(37)?,
                fd_flags: p.u8(38)?,
            }),
            msg_type::ADD_DEL_WORKER => Self::AddDelWorker(WorkerAddDel {
                app_index: p.u32(0)?,
                wrk_index: p.u32(4)?,
                is_add: p.bool(8)?,
            }),
            msg_type::ADD_DEL_WORKER_REPLY => Self::AddDelWorkerReply(WorkerAddDelReply {
                retval: p.i32(0)?,
                wrk_index: p.u32(4)?,
                app_event_queue_address: p.u64(8)?,
                segment_handle: p.u64(16)?,
                api_client_handle: p.u32(24)?,
                n_fds: p.u8(28)?,
                fd_flags: p.u8(29)?,
                is_add: p.bool(30)?,
            }),
            msg_type::SEND_FDS => Self::SendFds,
            msg_type::ADD_DEL_CERT_KEY => Self::AddDelCertKey(CertKeyAddDel {
                context: p.u32(0)?,
                index: p.u32(4)?,
                cert_len: p.u16(8)?,
                certkey_len: p.u16(10)?,
                is_add: p.bool(12)?,
            }),
            msg_type::ADD_DEL_CERT_KEY_REPLY => Self::AddDelCertKeyReply(CertKeyAddDelReply {
                context: p.u32(0)?,
                retval: p.i32(4)?,
                index: p.u32(8)?,
            }),
            other => return Err(DecodeError::UnknownSapiType(other)),
        })
    }
}

#[cfg(test)]
#[path = "sapi_tests.rs"]
mod tests;
