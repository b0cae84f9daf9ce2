//! Shared-memory objects as VPP lays them out: memfd fifo segments (ssvm header + fsh at two
//! pages), the "vpp mqs" segment with one message queue per VPP thread, app message queues, and
//! fifo-pair preallocation. Sizes and order follow VPP v26.06 so a client sees the same bytes.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, SealFlag};
use nix::sys::eventfd::{EfdFlags, EventFd};
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::mq::{MqConfig, MsgQueue};
use vcl_svm::segment::{FSH_SIZE, SLICE_SIZE};
use vcl_svm::{Segment, SvmError};

/// A queue in a segment kept alive by an `Arc`.
pub type Mq = MsgQueue<Arc<Segment>>;

/// `sizeof (svm_fifo_t)` (VPP's private fifo struct, 64-byte cache line, no trace): used only in
/// VPP's space estimates for preallocation, which we reproduce.
pub const SVM_FIFO_T_SIZE: u64 = 128;
/// `sizeof (svm_fifo_chunk_t)` without data.
pub const CHUNK_HDR_SIZE: u64 = 24;
/// Extra room VPP leaves in the vpp mqs segment for ext-config chunks (session.c
/// `session_vpp_wrk_mqs_alloc`: `mqs_seg_size + (1 << 20)`).
pub const MQS_SEGMENT_SLACK: u64 = 1 << 20;

pub(crate) fn svm_io(e: SvmError) -> io::Error {
    io::Error::other(e.to_string())
}

/// The system page size (`clib_mem_get_page_size`).
pub fn page_size() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(p)) if p > 0 => p as u64,
        _ => 4096,
    }
}

/// `FIFO_SEGMENT_ALLOC_OVERHEAD` = 2 pages: where `fifo_segment_init` puts the fsh.
pub fn fsh_offset() -> u64 {
    2 * page_size()
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to).saturating_mul(to)
}

/// ssvm size of a segment a segment manager creates for `requested` bytes
/// (segment_manager.c `segment_manager_add_segment_inline`: add the fsh, one slice per vlib
/// main and the allocation overhead, then round up to the page size).
pub fn sm_segment_size(requested: u64, threads: u8) -> u64 {
    let overhead = FSH_SIZE + u64::from(threads) * SLICE_SIZE + fsh_offset();
    round_up(requested.saturating_add(overhead), page_size())
}

/// Size of the vpp mqs segment (session.c `session_vpp_wrk_mqs_alloc`).
pub fn mqs_segment_size(cfg: &MqConfig, threads: u8, configured: u64) -> u64 {
    let computed = cfg.size() as u64 * u64::from(threads) + MQS_SEGMENT_SLACK;
    computed.max(configured)
}

/// Create a memfd segment of `ssvm_size` bytes and lay out its fifo segment header with
/// `n_slices` slices, like ssvm.c `ssvm_server_init_memfd` + fifo_segment.c
/// `fifo_segment_init`: the memfd is named `name`, close-on-exec, sealed against shrinking
/// (vppinfra `clib_mem_vm_create_fd`), and its file length is rounded up to whole pages while
/// the ssvm header keeps the exact size.
pub fn create_fifo_segment(name: &str, ssvm_size: u64, n_slices: u8) -> io::Result<Arc<Segment>> {
    let seg = Segment::create(name, ssvm_size, fsh_offset()).map_err(svm_io)?;
    nix::unistd::ftruncate(seg.as_fd(), round_up(ssvm_size, page_size()) as i64)
        .map_err(io::Error::from)?;
    fcntl(seg.fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(io::Error::from)?;
    fcntl(seg.fd(), FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).map_err(io::Error::from)?;
    FifoSegment::init(&seg, n_slices).map_err(svm_io)?;
    Ok(Arc::new(seg))
}

/// The vpp mqs segment: one queue per VPP thread, back to back after the header.
pub struct VppMqs {
    pub seg: Arc<Segment>,
    pub mqs: Vec<Mq>,
}

/// Create the vpp mqs segment as session.c `session_vpp_wrk_mqs_alloc` does: one slice,
/// `n_mqs` = number of threads set before the queues are carved, each queue of
/// `L = max(2048, wrk_mq_length)` slots with rings L × 18 B and L/2 × 256 B, carved with
/// fifo_segment.c `fifo_segment_msg_q_alloc` (8-byte aligned, `n_reserved_bytes += size`), so
/// discovery (docs/wire.md#finding-the-vpp-thread-mqs) finds queue i at
/// `start_byte_index + i * size`.
pub fn create_vpp_mqs(threads: u8, wrk_mq_length: u32, configured_size: u64) -> io::Result<VppMqs> {
    let cfg = MqConfig::vpp_thread(wrk_mq_length);
    let size = mqs_segment_size(&cfg, threads, configured_size);
    let seg = create_fifo_segment("session: wrk-mqs-segment", size, 1)?;
    let fs = FifoSegment::attach(&seg).map_err(svm_io)?;
    fs.set_n_mqs(threads);
    let mut mqs = Vec::with_capacity(usize::from(threads));
    for _ in 0..threads {
        let off = fs.reserve(cfg.size() as u64, 8).map_err(svm_io)?;
        mqs.push(MsgQueue::init(seg.clone(), off, &cfg).map_err(svm_io)?);
    }
    Ok(VppMqs { seg, mqs })
}

/// An app message queue and, with `EVT_MQ_USE_EVENTFD`, its eventfd.
pub struct AppMq {
    pub mq: Mq,
}

impl AppMq {
    /// Offset announced to the app (`fifo_segment_msg_q_offset`).
    pub fn offset(&self) -> u64 {
        self.mq.offset()
    }
}

/// Carve the app mq in a worker's first segment (segment_manager.c
/// `segment_manager_alloc_queue`): `E` slots, ring 0 of `E` 18-byte IO events, ring 1 of
/// `max(16, E >> 4)` 256-byte ctrl events; then an eventfd (`eventfd (0, 0)`, so blocking;
/// message_queue.c `svm_msg_q_alloc_eventfd`) if asked. `None` when the queue does not fit —
/// VPP then announces offset `~0` (`fifo_segment_msg_q_offset` of an unset queue).
pub fn alloc_app_mq(seg: &Arc<Segment>, evt_q_size: u32, use_eventfd: bool) -> Option<AppMq> {
    let cfg = MqConfig::app(evt_q_size);
    let fs = FifoSegment::attach(seg).ok()?;
    let off = fs.reserve(cfg.size() as u64, 8).ok()?;
    let mut mq = match MsgQueue::init(seg.clone(), off, &cfg) {
        Ok(q) => q,
        Err(e) => {
            tracing::error!(%e, evt_q_size, "app mq shape refused");
            return None;
        }
    };
    if use_eventfd {
        match EventFd::from_flags(EfdFlags::EFD_CLOEXEC) {
            Ok(efd) => mq.set_eventfd(OwnedFd::from(efd)),
            Err(e) => tracing::error!(%e, "failed to alloc eventfd"),
        }
    }
    Some(AppMq { mq })
}

fn chunk_size_is_valid(fs: &FifoSegment<'_>, size: u32) -> bool {
    let max_log2 = fs
        .header()
        .max_log2_fifo_size
        .load(std::sync::atomic::Ordering::Relaxed);
    size >= 4096 && u64::from(size) <= 1u64 << max_log2.min(40)
}

fn rounded_pow2(size: u32) -> u64 {
    u64::from(size.max(1)).next_power_of_two()
}

/// fifo_segment.c `fifo_segment_preallocate_fifo_pairs`: spread the pairs that fit over the
/// slices; per slice carve a batch of fifo headers and chunks for rx, then for tx (a failed
/// header batch skips that chunk batch, as `fs_try_alloc_fifo_batch` does). Decrements
/// `*n_pairs` by what was placed.
pub fn preallocate_fifo_pairs(seg: &Segment, rx: u32, tx: u32, n_pairs: &mut u32) {
    let Ok(fs) = FifoSegment::attach(seg) else {
        return;
    };
    if rx == 0 || tx == 0 || *n_pairs == 0 {
        return;
    }
    if !chunk_size_is_valid(&fs, rx) || !chunk_size_is_valid(&fs, tx) {
        tracing::warn!(rx, tx, "prealloc fifo size out of range");
        return;
    }
    let hdrs = SVM_FIFO_T_SIZE + CHUNK_HDR_SIZE;
    let pair = 2 * hdrs + rounded_pow2(rx) + rounded_pow2(tx);
    let to_alloc = (fs.free_bytes() / pair).min(u64::from(*n_pairs)) as u32;
    let n_slices = u32::from(fs.n_slices());
    let per_slice = to_alloc / n_slices + u32::from(to_alloc % n_slices != 0);
    if per_slice == 0 {
        return;
    }
    for i in 0..n_slices {
        let now = per_slice.min(*n_pairs);
        if now == 0 {
            break;
        }
        for size in [rx, tx] {
            let ok = fs.prealloc_fifo_hdrs(i, now).unwrap_or(false)
                && fs.prealloc_chunks(i, size, now).unwrap_or(false);
            if !ok {
                tracing::warn!(slice = i, size, pairs = now, "prealloc failed");
            }
        }
        *n_pairs -= now;
    }
}

/// Carve `batch` fifo headers in every slice from `first` on (segment_manager.c
/// `segment_manager_init_first` with `prealloc_fifo_hdrs`). False if space ran out.
pub fn prealloc_fifo_hdrs(seg: &Segment, first: u32, per_slice: u32) -> bool {
    let Ok(fs) = FifoSegment::attach(seg) else {
        return false;
    };
    (first..u32::from(fs.n_slices())).all(|i| fs.prealloc_fifo_hdrs(i, per_slice).unwrap_or(false))
}
