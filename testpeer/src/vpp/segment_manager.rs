//! Segment managers and the app properties they follow: translating attach options into
//! `segment_manager_props_t` (application.c `application_alloc_and_init`), creating a worker's
//! first segment with its app mq and preallocated fifos (segment_manager.c
//! `segment_manager_init_first`), and adding segments later (`segment_manager_add_segment`).

use std::io;
use std::sync::Arc;

use vcl_codec::sapi::{app_flags, opt};
use vcl_svm::fifo::{Fifo, FifoHandle};
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::Segment;

use crate::pool::Pool;
use crate::vpp::segments::{self, alloc_app_mq, AppMq, SVM_FIFO_T_SIZE};

/// segment_manager.c `segment_manager_main_init` defaults.
pub const DEFAULT_FIFO_SIZE: u32 = 1 << 12;
pub const DEFAULT_SEGMENT_SIZE: u64 = 1 << 20;
pub const DEFAULT_APP_MQ_SIZE: u32 = 128;
pub const DEFAULT_MAX_FIFO_SIZE: u32 = 4 << 20;
pub const DEFAULT_HIGH_WATERMARK: u8 = 80;
pub const DEFAULT_LOW_WATERMARK: u8 = 50;

/// `segment_manager_props_t` of an app, with VPP's field widths (values are truncated the way
/// the C assignments from the u64 options truncate them).
#[derive(Debug, Clone)]
pub struct SmProps {
    pub rx_fifo_size: u32,
    pub tx_fifo_size: u32,
    pub evt_q_size: u32,
    pub prealloc_fifos: u32,
    pub prealloc_fifo_hdrs: u32,
    pub segment_size: u64,
    pub add_segment_size: u64,
    pub add_segment: bool,
    pub use_mq_eventfd: bool,
    pub use_huge_page: bool,
    pub n_slices: u8,
    /// Memfd (shared with the app) unless the app claimed to be builtin.
    pub memfd: bool,
    pub max_fifo_size: u32,
    pub high_watermark: u8,
    pub low_watermark: u8,
    pub pct_first_alloc: u8,
    pub max_segments: u32,
}

impl SmProps {
    /// `segment_manager_props_init` then the option overrides of `application_alloc_and_init`
    /// (an option only counts when non-zero).
    pub fn from_options(o: &[u64; opt::N_OPTIONS], threads: u8, memfd: bool) -> SmProps {
        let set32 = |v: u64, d: u32| if v != 0 { v as u32 } else { d };
        let set8 = |v: u64, d: u8| if v != 0 { v as u8 } else { d };
        let flags = o[opt::FLAGS];
        let segment_size = o[opt::SEGMENT_SIZE];
        let max_segments = match o[opt::MAX_FIFO_MEMORY] {
            0 => 0,
            // Rounded up to whole segments; VPP divides by segment_size unchecked (a zero
            // segment size would fault there), we clamp the divisor to 1.
            m => (m.saturating_add(segment_size.max(1) - 1) / segment_size.max(1)) as u32,
        };
        SmProps {
            rx_fifo_size: set32(o[opt::RX_FIFO_SIZE], DEFAULT_FIFO_SIZE),
            tx_fifo_size: set32(o[opt::TX_FIFO_SIZE], DEFAULT_FIFO_SIZE),
            evt_q_size: set32(o[opt::EVT_QUEUE_SIZE], DEFAULT_APP_MQ_SIZE),
            prealloc_fifos: o[opt::PREALLOC_FIFO_PAIRS] as u32,
            prealloc_fifo_hdrs: o[opt::PREALLOC_FIFO_HDRS] as u32,
            segment_size,
            add_segment_size: match o[opt::ADD_SEGMENT_SIZE] {
                0 => DEFAULT_SEGMENT_SIZE,
                v => v,
            },
            add_segment: o[opt::ADD_SEGMENT_SIZE] != 0,
            use_mq_eventfd: flags & app_flags::EVT_MQ_USE_EVENTFD != 0,
            use_huge_page: flags & app_flags::USE_HUGE_PAGE != 0,
            n_slices: threads,
            memfd,
            max_fifo_size: set32(o[opt::MAX_FIFO_SIZE], DEFAULT_MAX_FIFO_SIZE),
            high_watermark: set8(o[opt::HIGH_WATERMARK], DEFAULT_HIGH_WATERMARK),
            low_watermark: set8(o[opt::LOW_WATERMARK], DEFAULT_LOW_WATERMARK),
            pct_first_alloc: o[opt::PCT_FIRST_ALLOC] as u8,
            max_segments,
        }
    }
}

/// One segment of a segment manager.
pub struct FifoSeg {
    pub seg: Arc<Segment>,
    pub name: String,
    /// `FIFO_SEGMENT_F_CUSTOM_USE`: a cut-through segment, never used for ordinary fifos.
    pub custom: bool,
}

/// A segment manager (`segment_manager_t`): its segments pool gives the low half of handles.
pub struct SegManager {
    /// Global app worker index that owns it.
    pub app_wrk_index: u32,
    pub segments: Pool<FifoSeg>,
    /// `segment_manager_app_detach` was called (listener stopped): no more notifications,
    /// freed once its last fifo goes.
    pub detached: bool,
}

/// Segment handle: `(sm_index << 32) | segment_index` (segment_manager.c
/// `segment_manager_segment_handle`).
pub fn segment_handle(sm_index: u32, seg_index: u32) -> u64 {
    (u64::from(sm_index) << 32) | u64::from(seg_index)
}

/// Where a fifo lives: its segment (kept mapped while the session holds it), the segment's
/// handle and the fsh offset VPP announces.
#[derive(Clone)]
pub struct FifoLoc {
    handle: FifoHandle,
    pub seg_handle: u64,
    pub off: u64,
}

impl FifoLoc {
    /// The fifo at `off` in `seg`, validated once here (None if it does not validate).
    pub fn new(seg: Arc<Segment>, seg_handle: u64, off: u64) -> Option<FifoLoc> {
        let handle = FifoHandle::new(seg, off).ok()?;
        Some(FifoLoc {
            handle,
            seg_handle,
            off,
        })
    }

    /// The fifo, to operate on.
    pub fn fifo(&self) -> Fifo<'_> {
        self.handle.fifo()
    }

    /// The segment the fifo lives in.
    pub fn seg(&self) -> &Arc<Segment> {
        self.handle.segment()
    }
}

/// Who a new segment is for (its name is `seg-<app>-<wrk>-<counter>`).
#[derive(Debug, Clone, Copy)]
pub struct SegOwner {
    pub app_index: u32,
    pub wrk_index: u32,
    pub threads: u8,
    /// Peer-side cap on a segment's size (a creation failure beyond it).
    pub max_size: u64,
}

impl SegManager {
    pub fn new(app_wrk_index: u32) -> SegManager {
        SegManager {
            app_wrk_index,
            segments: Pool::default(),
            detached: false,
        }
    }

    /// segment_manager.c `segment_manager_add_segment_inline` (without notification): `Ok(None)`
    /// when the manager may not grow (no ADD_SEGMENT and no explicit size, or max_segments
    /// reached), an error when the memfd could not be created.
    pub fn add_segment(
        &mut self,
        props: &SmProps,
        owner: SegOwner,
        requested: u64,
        counter: &mut u32,
    ) -> io::Result<Option<u32>> {
        if !props.add_segment && requested == 0 {
            return Ok(None);
        }
        if props.max_segments != 0 && self.segments.len() >= props.max_segments as usize {
            return Ok(None);
        }
        let requested = if requested != 0 {
            requested
        } else {
            props.add_segment_size
        };
        // Huge pages are not emulated: the segment is rounded to normal pages.
        let size = segments::sm_segment_size(requested, owner.threads);
        if size > owner.max_size {
            return Err(io::Error::other(format!(
                "segment of {size} bytes exceeds the peer's cap of {}",
                owner.max_size
            )));
        }
        let name = format!("seg-{}-{}-{}", owner.app_index, owner.wrk_index, *counter);
        *counter = counter.wrapping_add(1);
        let seg = segments::create_fifo_segment(&name, size, props.n_slices)?;
        if let Ok(fs) = FifoSegment::attach(&seg) {
            fs.set_pct_first_alloc(props.pct_first_alloc);
        }
        Ok(Some(self.segments.put(FifoSeg {
            seg,
            name,
            custom: false,
        })))
    }

    /// segment_manager.c `segment_manager_init_first`: the first segment (or, with preallocated
    /// fifo pairs, as many segments as the pairs need), the app mq in segment 0, and the
    /// preallocated fifos or fifo headers. Returns the app mq (None if it did not fit) or VPP's
    /// error value.
    pub fn init_first(
        &mut self,
        props: &SmProps,
        owner: SegOwner,
        counter: &mut u32,
    ) -> Result<Option<AppMq>, i32> {
        let first = props.segment_size.max(DEFAULT_SEGMENT_SIZE);
        if props.prealloc_fifos != 0 {
            return self.init_first_prealloc(props, owner, first, counter);
        }
        let seg = self.add_first(props, owner, first, counter)?;
        let mq = alloc_app_mq(&seg, props.evt_q_size, props.use_mq_eventfd);
        if props.prealloc_fifo_hdrs != 0 {
            // "Do not preallocate on slice associated to main thread" when there are workers.
            let skip = u32::from(owner.threads > 1);
            let n = u32::from(props.n_slices).saturating_sub(skip).max(1);
            let per_slice = props.prealloc_fifo_hdrs / n;
            if per_slice == 0 || !segments::prealloc_fifo_hdrs(&seg, skip, per_slice) {
                return Err(vcl_codec::session_error::SESSION_E_SEG_CREATE);
            }
        }
        Ok(mq)
    }

    fn init_first_prealloc(
        &mut self,
        props: &SmProps,
        owner: SegOwner,
        first: u64,
        counter: &mut u32,
    ) -> Result<Option<AppMq>, i32> {
        let rx = rounded(props.rx_fifo_size);
        let tx = rounded(props.tx_fifo_size);
        let pair = (SVM_FIFO_T_SIZE + rx) + (SVM_FIFO_T_SIZE + tx);
        let total = u64::from(props.prealloc_fifos) * pair;
        let max_seg = if first > total {
            first
        } else {
            (1u64 << 32) - (128 << 10)
        };
        let count = total.div_ceil(max_seg);
        let mut pairs = props.prealloc_fifos;
        let mut mq = None;
        for i in 0..=count {
            let seg = self.add_first(props, owner, max_seg, counter)?;
            if i == 0 {
                mq = alloc_app_mq(&seg, props.evt_q_size, props.use_mq_eventfd);
            }
            segments::preallocate_fifo_pairs(
                &seg,
                props.rx_fifo_size,
                props.tx_fifo_size,
                &mut pairs,
            );
            if pairs == 0 {
                break;
            }
        }
        Ok(mq)
    }

    fn add_first(
        &mut self,
        props: &SmProps,
        owner: SegOwner,
        size: u64,
        counter: &mut u32,
    ) -> Result<Arc<Segment>, i32> {
        match self.add_segment(props, owner, size, counter) {
            Ok(Some(i)) => self.seg(i).ok_or(-1),
            // segment_manager_add_segment returns fs_index ~0 (-1) on failure.
            Ok(None) => Err(-1),
            Err(e) => {
                tracing::error!(%e, size, "segment creation failed");
                Err(-1)
            }
        }
    }

    /// Segment `idx`, if it exists.
    pub fn seg(&self, idx: u32) -> Option<Arc<Segment>> {
        self.segments.get(idx).map(|s| s.seg.clone())
    }
}

fn rounded(size: u32) -> u64 {
    u64::from(size.max(1)).next_power_of_two()
}
