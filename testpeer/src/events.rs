//! Delivery of queued worker events to app message queues, as session_input.c
//! `app_worker_flush_events_inline` does on each VPP thread: try-lock the app mq (100 × 1 µs),
//! stop at the first event whose ring is full and mark the worker congested, and for
//! APP_ADD_SEGMENT send the memfd with SEND_FDS on the worker's socket before enqueueing the mq
//! message (`mq_send_add_segment_sapi_cb` → `app_wrk_send_ctrl_evt_fd`). A failed fd send force
//! detaches the app. VPP never blocks on an app mq (ERRATA O7).

use std::time::Duration;

use vcl_codec::event::EventType;
use vcl_codec::msg::{AddSegment, CtrlMsg, DelSegment};
use vcl_codec::sapi::{fd_flags, SapiMsg};
use vcl_svm::mq::SendMode;
use vcl_svm::SvmError;

use crate::log::{Dir, MsgKind};
use crate::sapi_io;
use crate::segments::Mq;
use crate::state::{State, WrkEvt};

/// Events handled per worker per round (`n_evts = 128`).
const FLUSH_BATCH: usize = 128;
/// `mq_try_lock`: attempts and pause between them.
const TRY_LOCK_ATTEMPTS: u32 = 100;
const TRY_LOCK_PAUSE: Duration = Duration::from_micros(1);

/// Whether the mq has room for one more message on `ring` (`svm_msg_q_or_ring_is_full`).
pub fn has_room(mq: &Mq, ring: u32) -> bool {
    let ring_full = match (mq.ring_len(ring), mq.ring_cfg(ring)) {
        (Some(n), Some(c)) => n >= c.nitems,
        _ => true,
    };
    !mq.is_full() && !ring_full
}

/// Enqueue a ctrl message without blocking for long: try-lock up to 100 times. Room was
/// checked by the caller and only this (locked) state produces into app mqs, so a failure
/// means the app held the mutex the whole time.
pub fn mq_send_ctrl(mq: &Mq, msg: &CtrlMsg) -> Result<(), SvmError> {
    let mut body = [0u8; vcl_codec::msg::CTRL_MSG_MAX_LEN];
    let n = vcl_codec::msg::try_encode_ctrl(msg, &mut body)
        .map_err(|_| SvmError::Os("ctrl msg encode", libc::EMSGSIZE))?;
    let ty = msg.evt_type().as_u8();
    let mut last = Err(SvmError::Full);
    for _ in 0..TRY_LOCK_ATTEMPTS {
        last = mq.send_ctrl(ty, &body[..n], SendMode::Try);
        if !matches!(last, Err(SvmError::Full)) {
            break;
        }
        std::thread::sleep(TRY_LOCK_PAUSE);
    }
    last
}

fn ctrl_msg_for(st: &State, evt: &WrkEvt) -> Option<CtrlMsg> {
    Some(match evt {
        WrkEvt::AddSegment(h) => {
            let (name, size) = segment_name_size(st, *h);
            let mut segment_name = [0u8; 128];
            let len = name.len().min(127);
            segment_name[..len].copy_from_slice(&name.as_bytes()[..len]);
            CtrlMsg::AppAddSegment(AddSegment {
                client_index: 0,
                context: 0,
                fd_flags: fd_flags::MEMFD_SEGMENT,
                segment_size: size as u32,
                segment_name,
                segment_handle: *h,
            })
        }
        WrkEvt::DelSegment(h) => CtrlMsg::AppDelSegment(DelSegment {
            client_index: 0,
            context: 0,
            segment_handle: *h,
        }),
        WrkEvt::Msg(m) => (**m).clone(),
        _ => return None,
    })
}

fn segment_name_size(st: &State, h: u64) -> (String, u64) {
    // The CT client encoding (`client_wrk << 56`) sits above the 24-bit sm index.
    let sm = ((h >> 32) & 0xff_ffff) as u32;
    st.sms
        .get(sm)
        .and_then(|m| m.segments.get(h as u32))
        .map(|s| (s.name.clone(), s.seg.len() as u64))
        .unwrap_or_default()
}

/// Send SEND_FDS with the segment's memfd on the worker's socket (`app_wrk_send_fd`).
fn send_segment_fd(st: &mut State, wrk: u32, h: u64) -> bool {
    let Some(handle) = st.wrks.get(wrk).map(|w| w.api_client_index) else {
        return false;
    };
    let sm = ((h >> 32) & 0xff_ffff) as u32;
    let seg_fd = st
        .sms
        .get(sm)
        .and_then(|m| m.segments.get(h as u32))
        .map(|s| s.seg.fd());
    let (Some(sock_fd), Some(seg_fd)) = (st.sock_fd_of_handle(handle), seg_fd) else {
        return false;
    };
    if let Some(d) = st.faults.reply_delay {
        std::thread::sleep(d);
    }
    let bytes = SapiMsg::SendFds.encode();
    match sapi_io::send(sock_fd, &bytes, &[seg_fd]) {
        Ok(()) => {
            st.note(Dir::Tx, MsgKind::Sapi(5), handle & 0xffff);
            true
        }
        Err(e) => {
            tracing::error!(%e, wrk, "SEND_FDS failed");
            false
        }
    }
}

/// Outcome of flushing one worker.
enum Flush {
    Done,
    Congested,
    ForceDetach(u32),
}

fn flush_worker(st: &mut State, wrk: u32, thread: u8) -> Flush {
    let t = usize::from(thread);
    for _ in 0..FLUSH_BATCH {
        let Some(w) = st.wrks.get(wrk) else {
            return Flush::Done;
        };
        let app = w.app_index;
        let Some(evt) = w.evts.get(t).and_then(|q| q.front()).cloned() else {
            return Flush::Done;
        };
        let Some(mq) = w.mq.as_ref().map(|m| &m.mq) else {
            // No app mq (it did not fit): VPP would fault here; we drop the event.
            tracing::error!(wrk, ?evt, "worker has no app mq; event dropped");
            pop(st, wrk, t);
            continue;
        };
        if !has_room(mq, evt.ring()) {
            return Flush::Congested;
        }
        let Some(msg) = ctrl_msg_for(st, &evt) else {
            match crate::sess_evts::deliver(st, wrk, thread, &evt) {
                Err(SvmError::Full) => return Flush::Congested,
                Err(e) => tracing::error!(%e, wrk, "app mq send failed; event dropped"),
                Ok(()) => {}
            }
            pop(st, wrk, t);
            continue;
        };
        if let WrkEvt::AddSegment(h) = evt {
            if !send_segment_fd(st, wrk, h) {
                return Flush::ForceDetach(app);
            }
        }
        let Some(mq) = st.wrks.get(wrk).and_then(|w| w.mq.as_ref()) else {
            return Flush::Done;
        };
        // After an fd went out the message must follow; wait briefly for the lock if needed.
        let r = match mq_send_ctrl(&mq.mq, &msg) {
            Err(SvmError::Full) if matches!(evt, WrkEvt::AddSegment(_)) => {
                let mut body = [0u8; vcl_codec::msg::CTRL_MSG_MAX_LEN];
                let n = vcl_codec::msg::encode_ctrl(&msg, &mut body);
                let ty = msg.evt_type().as_u8();
                mq.mq.send_ctrl(
                    ty,
                    &body[..n],
                    SendMode::BlockFor(Duration::from_millis(50)),
                )
            }
            r => r,
        };
        match r {
            Ok(()) => {
                st.note(Dir::Tx, MsgKind::Mq(msg.evt_type().as_u8()), wrk);
                pop(st, wrk, t);
            }
            Err(SvmError::Full) => return Flush::Congested,
            Err(e) => {
                tracing::error!(%e, wrk, "app mq send failed; event dropped");
                pop(st, wrk, t);
            }
        }
    }
    Flush::Done
}

/// Enqueue an IO event without blocking for long (try-lock up to 100 times).
pub fn mq_send_io(mq: &Mq, ty: u8, session_index: u32) -> Result<(), SvmError> {
    let mut last = Err(SvmError::Full);
    for _ in 0..TRY_LOCK_ATTEMPTS {
        last = mq.send_io(ty, session_index, SendMode::Try);
        if !matches!(last, Err(SvmError::Full)) {
            break;
        }
        std::thread::sleep(TRY_LOCK_PAUSE);
    }
    last
}

fn pop(st: &mut State, wrk: u32, t: usize) {
    if let Some(q) = st.wrks.get_mut(wrk).and_then(|w| w.evts.get_mut(t)) {
        q.pop_front();
    }
}

/// Flush one worker's events queued on `thread` now (session_input.c
/// `app_wrk_flush_wrk_events`, which the listen handler calls before releasing the barrier).
pub fn flush_worker_now(st: &mut State, wrk: u32, thread: u8) {
    let res = flush_worker(st, wrk, thread);
    if let Some(c) = st
        .wrks
        .get_mut(wrk)
        .and_then(|w| w.congested.get_mut(usize::from(thread)))
    {
        *c = matches!(res, Flush::Congested);
    }
    if let Flush::ForceDetach(app) = res {
        st.force_detach(app);
    }
}

/// Flush every worker's events queued on `thread` (session_input.c
/// `session_wrk_flush_events`). Workers left congested are retried on the next round.
pub fn flush_thread(st: &mut State, thread: u8) {
    let t = usize::from(thread);
    let pending: Vec<u32> = st
        .wrks
        .iter()
        .filter(|(_, w)| w.evts.get(t).is_some_and(|q| !q.is_empty()))
        .map(|(i, _)| i)
        .collect();
    for wrk in pending {
        let res = flush_worker(st, wrk, thread);
        if let Some(w) = st.wrks.get_mut(wrk) {
            if let Some(c) = w.congested.get_mut(t) {
                *c = matches!(res, Flush::Congested);
            }
        }
        if let Flush::ForceDetach(app) = res {
            st.force_detach(app);
        }
    }
}

/// Name of an event type for logs.
pub fn evt_name(ty: u8) -> &'static str {
    EventType::from_u8(ty)
        .map(|e| e.name())
        .unwrap_or("unknown")
}
