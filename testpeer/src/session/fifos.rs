//! Session fifo allocation and release with VPP's segment manager policy
//! (segment_manager.c `segment_manager_alloc_session_fifos`: the non-custom segment with the
//! most available bytes, else a new segment of `add_segment_size` announced to the app when the
//! app allows adding segments; `segment_manager_dealloc_fifos`: empty segments other than the
//! protected first one are deleted with APP_DEL_SEGMENT, and a detached manager goes with its
//! last fifo). Fifos are carved in the slice of the session's thread
//! (`fifo_segment_alloc_fifo_w_slice`).

use std::sync::Arc;

use vcl_codec::session_error::{
    SESSION_E_INVALID, SESSION_E_SEG_CREATE, SESSION_E_SEG_NO_SPACE, SESSION_E_SEG_NO_SPACE2,
};
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::Segment;

use crate::vpp::kinds::Kind;
use crate::vpp::segment_manager::{segment_handle, FifoLoc, SegOwner, DEFAULT_FIFO_SIZE};
use crate::vpp::sessions::Session;
use crate::vpp::state::{State, WrkEvt};

/// Allocate an rx and a tx fifo in `seg`'s slice `slice`; both or neither.
pub fn try_alloc_pair(seg: &Arc<Segment>, slice: u32, rx: u32, tx: u32) -> Option<(u64, u64)> {
    let fs = FifoSegment::attach(seg).ok()?;
    let slice = slice.min(u32::from(fs.n_slices()).saturating_sub(1));
    let r = fs.alloc_fifo(slice, rx).ok()?;
    match fs.alloc_fifo(slice, tx) {
        Ok(t) => Some((r.offset(), t.offset())),
        Err(_) => {
            let _ = fs.free_fifo(r);
            None
        }
    }
}

/// `fifo_segment_available_bytes`: free plus cached chunk memory.
fn available(seg: &Segment) -> u64 {
    FifoSegment::attach(seg)
        .map(|fs| fs.free_bytes() + fs.fl_chunk_bytes())
        .unwrap_or(0)
}

impl State {
    /// The fifo sizes of the app owning segment manager `sm` (at least the 4 KiB default, as
    /// `segment_manager_try_alloc_fifos` enforces).
    pub fn fifo_sizes_of_wrk(
        &self,
        wrk: u32,
    ) -> Option<(u32, u32, crate::vpp::segment_manager::SmProps)> {
        let app = self.wrks.get(wrk)?.app_index;
        let props = self.apps.get(app)?.props.clone();
        Some((
            props.rx_fifo_size.max(DEFAULT_FIFO_SIZE),
            props.tx_fifo_size.max(DEFAULT_FIFO_SIZE),
            props,
        ))
    }

    /// `segment_manager_alloc_session_fifos (sm, thread)`: returns (rx, tx).
    pub fn alloc_session_fifos(
        &mut self,
        sm_index: u32,
        thread: u8,
    ) -> Result<(FifoLoc, FifoLoc), i32> {
        let sm = self.sms.get(sm_index).ok_or(SESSION_E_INVALID)?;
        let wrk = sm.app_wrk_index;
        let (rx, tx, props) = self.fifo_sizes_of_wrk(wrk).ok_or(SESSION_E_INVALID)?;
        let need = u64::from(props.rx_fifo_size) + u64::from(props.tx_fifo_size);
        let best = sm
            .segments
            .iter()
            .filter(|(_, s)| !s.custom)
            .map(|(i, s)| (i, available(&s.seg)))
            .filter(|&(_, a)| a >= need)
            .max_by_key(|&(i, a)| (a, std::cmp::Reverse(i)))
            .map(|(i, _)| i);
        let slice = u32::from(thread);
        if let Some(i) = best {
            if let Some(r) = self.alloc_in(sm_index, i, slice, rx, tx) {
                return Ok(r);
            }
        }
        // Slow path: a new segment, announced to the app before the fifos are.
        if !props.add_segment {
            return Err(SESSION_E_SEG_NO_SPACE);
        }
        let owner = SegOwner {
            app_index: self.wrks.get(wrk).map_or(0, |w| w.app_index),
            wrk_index: wrk,
            threads: self.threads,
            max_size: self.max_segment_size,
        };
        let counter = &mut self.seg_name_counter;
        let sm = self.sms.get_mut(sm_index).ok_or(SESSION_E_INVALID)?;
        let idx = match sm.add_segment(&props, owner, 0, counter) {
            Ok(Some(i)) => i,
            _ => return Err(SESSION_E_SEG_CREATE),
        };
        if !sm.detached {
            self.add_event(
                wrk,
                thread,
                WrkEvt::AddSegment(segment_handle(sm_index, idx)),
            );
            // Out now, as VPP sends it (under the segment manager's lock): events queue per
            // thread, and a session another thread places in this segment next must not
            // reach the app before the segment does.
            crate::events::flush_thread(self, thread);
        }
        self.alloc_in(sm_index, idx, slice, rx, tx)
            .ok_or(SESSION_E_SEG_NO_SPACE2)
    }

    fn alloc_in(
        &self,
        sm: u32,
        idx: u32,
        slice: u32,
        rx: u32,
        tx: u32,
    ) -> Option<(FifoLoc, FifoLoc)> {
        let seg = self.sms.get(sm)?.seg(idx)?;
        let (r, t) = try_alloc_pair(&seg, slice, rx, tx)?;
        let seg_handle = segment_handle(sm, idx);
        Some((
            FifoLoc::new(seg.clone(), seg_handle, r)?,
            FifoLoc::new(seg, seg_handle, t)?,
        ))
    }

    /// `segment_manager_dealloc_fifos` for a session's own fifos (CT server fifos are shared
    /// and released by the CT code).
    pub fn dealloc_session_fifos(&mut self, s: &Session) {
        if let Kind::Ct(ct) = &s.kind {
            if !ct.is_client {
                return;
            }
        }
        let (Some(rx), Some(tx)) = (&s.rx, &s.tx) else {
            return;
        };
        free_pair(rx, tx);
        self.segment_maybe_delete(rx.seg_handle, s.thread);
    }

    /// After fifos were freed from segment `h`: delete it when empty unless it is the protected
    /// first segment, and free a detached manager that has no segments with fifos left.
    pub fn segment_maybe_delete(&mut self, h: u64, thread: u8) {
        let sm_index = ((h >> 32) & 0xff_ffff) as u32;
        let idx = h as u32;
        let Some(sm) = self.sms.get_mut(sm_index) else {
            return;
        };
        let empty = |s: &crate::vpp::segment_manager::FifoSeg| {
            FifoSegment::attach(&s.seg).is_ok_and(|fs| fs.n_active_fifos() == 0)
        };
        let Some(seg) = sm.segments.get(idx) else {
            return;
        };
        if empty(seg) && (idx != 0 || sm.detached) && !seg.custom {
            sm.segments.remove(idx);
            if !sm.detached {
                let wrk = sm.app_wrk_index;
                self.add_event(wrk, thread, WrkEvt::DelSegment(h));
            }
        }
        let Some(sm) = self.sms.get(sm_index) else {
            return;
        };
        if sm.detached && sm.segments.iter().all(|(_, s)| empty(s)) {
            self.sms.remove(sm_index);
        }
    }
}

/// Free an rx/tx pair (`fifo_segment_free_fifo` twice).
pub fn free_pair(rx: &FifoLoc, tx: &FifoLoc) {
    for f in [rx, tx] {
        if let Ok(fs) = FifoSegment::attach(f.seg()) {
            if let Ok(fifo) = vcl_svm::fifo::Fifo::attach(fs, f.off) {
                if let Err(e) = fs.free_fifo(fifo) {
                    tracing::error!(%e, off = f.off, "fifo free failed");
                }
            }
        }
    }
}
