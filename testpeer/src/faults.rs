//! The segment-corruption fault: break one header field of an app's first segment after it was
//! laid out and before the attach reply goes out, so clients' validation paths get exercised.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Arc;

use memmap2::MmapOptions;
use vcl_svm::Segment;

use crate::config::Corruption;

/// ssvm header offsets (`ssvm_shared_header_t`).
const SSVM_SIZE_OFF: usize = 32;
const SSVM_OPAQUE0_OFF: usize = 56;
/// `svm_msg_q_shared_t`: n_rings at +0; the queue's maxsize at +8 +100.
const MQ_MAXSIZE_OFF: u64 = 108;

/// Apply `c` to `seg`, whose app mq sits at fsh offset `mq_off` (u64::MAX if none).
pub fn corrupt(seg: &Arc<Segment>, mq_off: u64, c: Corruption) {
    let r = match c {
        Corruption::SsvmSize => write_hdr(seg, SSVM_SIZE_OFF, seg.len() as u64 * 4),
        Corruption::FshOffset => write_hdr(seg, SSVM_OPAQUE0_OFF, seg.len() as u64 + 4096),
        Corruption::MqRings => seg
            .store::<u32>(mq_off, 0)
            .map_err(crate::vpp::segments::svm_io),
        Corruption::MqMaxsize => seg
            .store::<u32>(mq_off.wrapping_add(MQ_MAXSIZE_OFF), 1 << 30)
            .map_err(crate::vpp::segments::svm_io),
    };
    match r {
        Ok(()) => tracing::warn!(?c, "fault: app segment corrupted"),
        Err(e) => tracing::error!(%e, ?c, "fault: could not corrupt segment"),
    }
}

/// Write a u64 into the ssvm header (before the fsh, which `Segment` does not expose).
#[allow(unsafe_code)] // a second mapping of the segment, to break its header on purpose
fn write_hdr(seg: &Segment, off: usize, v: u64) -> std::io::Result<()> {
    let file = File::from(seg.as_fd().try_clone_to_owned()?);
    // a shared mapping of the segment's first page; nothing else in this process keeps Rust
    // references into the ssvm header, and the bytes written are plain integers.
    // SAFETY: see above.
    let mut map = unsafe { MmapOptions::new().len(4096).map_mut(&file)? };
    map[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    Ok(())
}

/// `svm_msg_q_shared_t`: the queue header follows an 8-byte shared header; its cursize sits at
/// +96 in `svm_msg_q_shared_queue_t` (src/svm/message_queue.h).
const MQ_Q_CURSIZE_OFF: u64 = 8 + 96;

/// Break a live app mq: a cursize far above its capacity, as a hostile or broken peer
/// might write it (the app must treat its mq as lost, not spin on it).
pub fn corrupt_live_mq(mq: &crate::vpp::segments::Mq) -> bool {
    let r = mq
        .segment()
        .store::<u32>(mq.offset().wrapping_add(MQ_Q_CURSIZE_OFF), 0xFFFF_FF00);
    match r {
        Ok(()) => tracing::warn!(off = mq.offset(), "fault: app mq cursize corrupted"),
        Err(ref e) => tracing::error!(%e, "fault: could not corrupt the app mq"),
    }
    r.is_ok()
}

/// Try to shrink a segment to one page under the app's mappings, as a hostile peer might
/// (an app touching past the new end would take SIGBUS). Sealed segments refuse (EPERM).
pub fn shrink_segment(seg: &Segment) -> std::io::Result<()> {
    let r = nix::unistd::ftruncate(seg.as_fd(), 4096).map_err(std::io::Error::from);
    tracing::warn!(ok = r.is_ok(), "fault: segment shrink attempted");
    r
}
