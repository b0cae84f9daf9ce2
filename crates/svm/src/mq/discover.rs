//! Finding VPP's per-thread message queues in the "vpp mqs" segment.
//!
//! VPP lays the queues out back to back right after the fifo segment header and slices, all of
//! one size, and counts them in the header: `n_mqs` (u8 at fsh+22). The bytes they take are
//! `n_reserved_bytes` (u32 at fsh+12) minus `start_byte_index` (u64 at fsh+80), so queue `i`
//! is at `start_byte_index + i * stride` with `stride = (n_reserved - start) / n_mqs`.

use std::os::fd::OwnedFd;

use super::{MsgQueue, SegmentRef};
use crate::segment::{Result, Segment, SvmError};

const FSH_N_RESERVED_BYTES: u64 = 12;
const FSH_N_MQS: u64 = 22;
const FSH_START_BYTE_INDEX: u64 = 80;

/// Fsh-relative offsets of VPP's queues in the mqs segment, validated against the segment.
pub fn vpp_mq_offsets(seg: &Segment) -> Result<Vec<u64>> {
    let (start, stride, n) = vpp_mq_layout(seg)?;
    Ok((0..n).map(|i| start + i * stride).collect())
}

/// First queue offset, stride and count, from ONE read of each header field: the segment is
/// shared with VPP, so a second read could see another value (a stride computed from a re-read
/// could wrap).
fn vpp_mq_layout(seg: &Segment) -> Result<(u64, u64, u64)> {
    let n = u64::from(seg.load::<u8>(FSH_N_MQS)?);
    let reserved = u64::from(seg.load::<u32>(FSH_N_RESERVED_BYTES)?);
    let start = seg.load::<u64>(FSH_START_BYTE_INDEX)?;
    if n == 0 {
        return Err(SvmError::Corrupt(
            "mqs segment: expected n_mqs >= 1, got 0".into(),
        ));
    }
    if reserved < start || reserved > seg.fsh_span() {
        return Err(SvmError::Corrupt(format!(
            "mqs segment: expected start_byte_index ({start}) <= n_reserved_bytes <= {}, got {reserved}",
            seg.fsh_span()
        )));
    }
    let span = reserved - start;
    if span % n != 0 || span / n < 8 {
        return Err(SvmError::Corrupt(format!(
            "mqs segment: {span} reserved bytes do not divide into {n} queues"
        )));
    }
    Ok((start, span / n, n))
}

/// Attach to every VPP queue in the mqs segment. `fds`, if not empty, are the private-rx-mq
/// eventfds VPP sent, one per queue in order; a count other than `n_mqs` is refused (VCL then
/// attaches nothing). Each queue must fit in its stride.
pub fn discover_vpp_mqs<S: SegmentRef + Clone>(
    seg: S,
    fds: Vec<OwnedFd>,
) -> Result<Vec<MsgQueue<S>>> {
    let (start, stride, n) = vpp_mq_layout(&seg)?;
    let offs: Vec<u64> = (0..n).map(|i| start + i * stride).collect();
    if !fds.is_empty() && fds.len() != offs.len() {
        return Err(SvmError::Corrupt(format!(
            "mqs segment: expected {} eventfds, got {}",
            offs.len(),
            fds.len()
        )));
    }
    let mut fds = fds.into_iter();
    let mut out = Vec::with_capacity(offs.len());
    for off in offs {
        let mut q = MsgQueue::attach(seg.clone(), off)?;
        if q.size() as u64 > stride {
            return Err(SvmError::Corrupt(format!(
                "mqs segment: queue at {off} is {} bytes, more than the {stride}-byte stride",
                q.size()
            )));
        }
        if let Some(fd) = fds.next() {
            q.set_eventfd(fd);
        }
        out.push(q);
    }
    Ok(out)
}
