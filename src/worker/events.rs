//! Draining a worker's app message queue: the worker-level control events (segments) are
//! handled here; everything else goes to the caller (the session layer).

use vcl_codec::event::EventType;
use vcl_codec::msg::{decode_ctrl, CtrlMsg};
use vcl_svm::mq::{CTRL_RING, EVENT_PAYLOAD_OFFSET};
use vcl_svm::Segment;

use super::Worker;
use crate::error::Error;

/// How many messages one drain takes at most (bounds the time spent per call).
const DRAIN_MAX: usize = 256;

impl Worker {
    /// Take every queued message (up to a batch); APP_ADD_SEGMENT / APP_DEL_SEGMENT map and
    /// unmap segments, the rest are passed to `other(event_type, payload)`.
    pub fn drain_mq(&self, mut other: impl FnMut(u8, &[u8])) -> Result<usize, Error> {
        if self.is_foreign() {
            return Ok(0); // the parent's queue, in a forked child
        }
        let conn = self.conn();
        if conn.app_mq.is_empty() {
            return Ok(0); // the common case on data paths: skip setting up a consumer
        }
        // Another thread on this worker is draining (vppcom_worker_index_set): what it takes
        // lands in the same session table, so there is nothing to do here.
        let Ok(mut consumer) = conn.app_mq.consumer() else {
            return Ok(0);
        };
        let n = consumer
            .dequeue(DRAIN_MAX, |e| {
                let t = e.event_type();
                let payload = e.data.get(EVENT_PAYLOAD_OFFSET..).unwrap_or(&[]);
                if e.ring == CTRL_RING && self.segment_event(t, payload) {
                    return;
                }
                other(t, payload);
            })
            .map_err(|e| {
                // nothing more can be read from it: as good as VPP gone
                self.mark_detached(&format!("app mq corrupt: {e}"));
                Error::ConnReset
            })?;
        Ok(n)
    }

    /// Handle a segment event; false if `t` is not one.
    fn segment_event(&self, t: u8, payload: &[u8]) -> bool {
        let is_add = t == EventType::AppAddSegment.as_u8();
        if !is_add && t != EventType::AppDelSegment.as_u8() {
            return false;
        }
        match decode_ctrl(t, payload) {
            Ok(CtrlMsg::AppAddSegment(m)) if m.fd_flags != 0 => {
                let mapped = self
                    .with_sock(|s| s.take_segment_fd())
                    .and_then(|fd| Segment::map(fd).map_err(|_| Error::Inval));
                match mapped {
                    Ok(seg) => self.add_segment(m.segment_handle, seg),
                    Err(e) => tracing::error!(
                        "worker {}: segment {:#x} announced but not mapped: {e}",
                        self.index,
                        m.segment_handle
                    ),
                }
            }
            Ok(CtrlMsg::AppAddSegment(m)) => tracing::error!(
                "worker {}: segment {:#x} has no fd (legacy shm segments are not supported)",
                self.index,
                m.segment_handle
            ),
            Ok(CtrlMsg::AppDelSegment(m)) => {
                self.del_segment(m.segment_handle);
            }
            Ok(other) => tracing::warn!("worker {}: unexpected {other:?}", self.index),
            Err(e) => tracing::error!("worker {}: {e}", self.index),
        }
        true
    }
}

impl Worker {
    /// Sleep until the app mq has something or `timeout` passes. While another thread of
    /// this worker waits on the mq, this one just sleeps (the other drains for both).
    pub fn wait_mq(&self, timeout: std::time::Duration) {
        if self.is_foreign() {
            std::thread::sleep(timeout.min(std::time::Duration::from_millis(10)));
            return;
        }
        let conn = self.conn();
        let corrupt = match conn.app_mq.consumer() {
            Ok(mut c) => c.wait(timeout).is_err() && c.is_corrupt(),
            Err(_) => {
                std::thread::sleep(timeout.min(std::time::Duration::from_millis(10)));
                false
            }
        };
        if corrupt {
            self.mark_detached("app mq corrupt");
        }
    }
}
