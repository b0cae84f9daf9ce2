//! The single consumer of a message queue: takes slots without a lock, copies each element out
//! of shared memory into a stack buffer, frees ring elements strictly in allocation order, and
//! signals "not full" to producers. Also waits for work (condvar with a correct absolute
//! deadline, or eventfd). The hot path does not allocate.
// Shared memory / fds: reads ring slots and cursors in shared memory.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use super::layout::{atomic_add, rd_u32, wr_u32, MsgSlot, Q_CURSIZE, Q_HEAD, R_CURSIZE, R_HEAD};
use super::queue::RingGeom;
use super::sync::{evt_wait, monotonic_deadline};
use super::{MsgQueue, SegmentRef, EVENT_PAYLOAD_OFFSET};
use crate::segment::{Result, SvmError};

/// Slots taken from the queue per round.
const BATCH: usize = 32;

/// One received message: a copy of its ring element.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Ring the element came from (0 = IO events, 1 = control events in session queues).
    pub ring: u32,
    /// The whole element (18 or 256 bytes for session queues).
    pub data: &'a [u8],
}

impl<'a> Event<'a> {
    /// `session_event_t.event_type` (byte 0).
    pub fn event_type(&self) -> u8 {
        self.data.first().copied().unwrap_or(0)
    }

    /// Bytes from +2: the session index / handle of IO events, the message of control events.
    pub fn payload(&self) -> &'a [u8] {
        self.data.get(EVENT_PAYLOAD_OFFSET..).unwrap_or(&[])
    }

    /// The u32 session index of an IO event (+2, unaligned).
    pub fn session_index(&self) -> u32 {
        let p = self.payload();
        match p.get(..4) {
            Some(b) => u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            None => u32::MAX,
        }
    }
}

/// Exclusive consumer of a queue (one per handle; the protocol allows one per queue).
pub struct Consumer<'q, S: SegmentRef> {
    q: &'q MsgQueue<S>,
    /// Where elements are copied to before being handed out: the queue's own buffer, whose
    /// lock this consumer holds (`MsgQueue::consumer_buf`).
    buf: MutexGuard<'q, Box<[u8]>>,
}

impl<S: SegmentRef> MsgQueue<S> {
    /// Become the queue's consumer. Fails if this handle already has one.
    pub fn consumer(&self) -> Result<Consumer<'_, S>> {
        let buf = match self.consumer_buf.try_lock() {
            Ok(b) => b,
            // a consumer that panicked left nothing half-done in the buffer: it is scratch space
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(SvmError::Os("mq consumer already taken", libc::EBUSY))
            }
        };
        Ok(Consumer { q: self, buf })
    }
}

impl<'q, S: SegmentRef> Consumer<'q, S> {
    /// The queue consumed.
    pub fn queue(&self) -> &'q MsgQueue<S> {
        self.q
    }

    /// Take up to `max` messages without blocking, calling `f` for each in queue order.
    /// Returns how many were handled. A slot naming a missing ring or an element other than the
    /// ring's head, or a header out of range, is corruption: the queue is marked corrupt and
    /// every later call fails at once with the same kind of error (the caller treats the peer
    /// as gone; nothing re-reads a queue whose state can no longer be trusted).
    pub fn dequeue<F: FnMut(Event<'_>)>(&mut self, max: usize, f: F) -> Result<usize> {
        self.check_sound()?;
        let r = self.dequeue_inner(max, f);
        if let Err(SvmError::Corrupt(_)) = &r {
            self.q.corrupt.store(true, Ordering::Release);
        }
        r
    }

    /// Whether an earlier call found the queue corrupt.
    pub fn is_corrupt(&self) -> bool {
        self.q.corrupt.load(Ordering::Acquire)
    }

    fn check_sound(&self) -> Result<()> {
        if self.is_corrupt() {
            return Err(SvmError::Corrupt(format!(
                "mq at {} was found corrupt earlier; it is no longer read",
                self.q.offset()
            )));
        }
        Ok(())
    }

    fn dequeue_inner<F: FnMut(Event<'_>)>(&mut self, max: usize, mut f: F) -> Result<usize> {
        let mut slots = [0u64; BATCH];
        let q = self.q;
        let buf = &mut self.buf[..];
        let mut done = 0;
        while done < max {
            let want = (max - done).min(BATCH);
            let n = take_slots(q, &mut slots[..want])?;
            for &s in &slots[..n] {
                let slot = MsgSlot::from_u64(s);
                let len = copy_and_free(q, slot, buf)?;
                f(Event {
                    ring: slot.ring_index,
                    data: &buf[..len],
                });
            }
            done += n;
            if n < want {
                break;
            }
        }
        Ok(done)
    }

    /// Take one message, copying its element into `buf` (truncated to `buf.len()`).
    /// Returns `(ring, bytes copied)`, or None if the queue is empty.
    pub fn try_dequeue(&mut self, buf: &mut [u8]) -> Result<Option<(u32, usize)>> {
        let mut out = None;
        self.dequeue(1, |e| {
            let n = e.data.len().min(buf.len());
            buf[..n].copy_from_slice(&e.data[..n]);
            out = Some((e.ring, n));
        })?;
        Ok(out)
    }

    /// Wait up to `timeout` for the queue to be non-empty; returns whether it is.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        self.check_sound()?;
        if !self.q.is_empty() {
            return Ok(true);
        }
        match self.q.eventfd() {
            Some(fd) => {
                evt_wait(fd, timeout)?;
            }
            None => self.cond_wait(timeout)?,
        }
        Ok(!self.q.is_empty())
    }

    /// Wait up to `timeout` for work, then [`Consumer::dequeue`] up to `max` messages.
    pub fn dequeue_wait<F: FnMut(Event<'_>)>(
        &mut self,
        max: usize,
        timeout: Duration,
        f: F,
    ) -> Result<usize> {
        if self.wait(timeout)? {
            self.dequeue(max, f)
        } else {
            Ok(0)
        }
    }

    /// Mutex mode: sleep on the condvar until non-empty or the deadline, tolerating spurious
    /// wake-ups; the loop ends at the deadline.
    fn cond_wait(&self, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        let deadline = monotonic_deadline(timeout);
        let l = self.q.shm_lock();
        l.lock()?;
        let mut r = Ok(());
        while self.q.is_empty() && Instant::now() < until {
            match l.wait(Some(&deadline)) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        l.unlock();
        r
    }
}

/// Copy up to `out.len()` slots from the queue head (no lock: single consumer), advance the
/// head and release the slots, signalling producers if the queue was full.
fn take_slots<S: SegmentRef>(q: &MsgQueue<S>, out: &mut [u64]) -> Result<usize> {
    let cap = q.q_nitems();
    let sz = q.q_u32(Q_CURSIZE).load(Ordering::Acquire);
    if sz == 0 || out.is_empty() {
        return Ok(0);
    }
    if sz > cap {
        return Err(SvmError::Corrupt(format!(
            "mq at {}: expected cursize <= {cap}, got {sz}",
            q.offset()
        )));
    }
    let head = q.q_u32(Q_HEAD).load(Ordering::Relaxed);
    if head >= cap {
        return Err(SvmError::Corrupt(format!(
            "mq at {}: expected queue head < {cap}, got {head}",
            q.offset()
        )));
    }
    let n = (sz as usize).min(out.len());
    for (i, o) in out[..n].iter_mut().enumerate() {
        *o = q.slot((head + i as u32) % cap).load(Ordering::Relaxed);
    }
    q.q_u32(Q_HEAD)
        .store((head + n as u32) % cap, Ordering::Relaxed);
    let old = q.q_u32(Q_CURSIZE).fetch_sub(n as u32, Ordering::AcqRel);
    if old == cap {
        q.signal(false);
    }
    Ok(n)
}

/// Copy a slot's element into `buf` (MAX_ELT_SIZE bytes) and free it; returns the element size.
fn copy_and_free<S: SegmentRef>(q: &MsgQueue<S>, slot: MsgSlot, buf: &mut [u8]) -> Result<usize> {
    let g: RingGeom = *q.ring_geom(slot.ring_index).ok_or_else(|| {
        SvmError::Corrupt(format!(
            "mq at {}: expected ring index < {}, got {}",
            q.offset(),
            q.n_rings(),
            slot.ring_index
        ))
    })?;
    let head_p = q.ring_field(&g, R_HEAD);
    // SAFETY: ring header inside the checked extent.
    let head = unsafe { rd_u32(head_p) };
    if slot.elt_index != head || head >= g.nitems {
        return Err(SvmError::Corrupt(format!(
            "mq at {}: ring {} message out of order: expected element {head} (< {}), got {}",
            q.offset(),
            slot.ring_index,
            g.nitems,
            slot.elt_index
        )));
    }
    let len = g.elsize as usize;
    if len > buf.len() {
        return Err(SvmError::Corrupt(format!(
            "mq at {}: ring {} elements of {len} bytes, more than the {}-byte copy buffer",
            q.offset(),
            slot.ring_index,
            buf.len()
        )));
    }
    // SAFETY: head < nitems, so the element is inside the ring; len <= buf.len(), checked
    // above (attach caps elsize at MAX_ELT_SIZE, the consumer buffer's size). The producer finished writing it before publishing the slot (release on
    // cursize, acquired in take_slots).
    unsafe {
        std::ptr::copy_nonoverlapping(q.elt_ptr(&g, head), buf.as_mut_ptr(), len);
        wr_u32(head_p, (head + 1) % g.nitems);
    }
    // SAFETY: ring header inside the extent; atomic_ok checked at attach.
    let old = unsafe { atomic_add(q.ring_field(&g, R_CURSIZE), 1u32.wrapping_neg()) };
    if old == g.nitems {
        q.signal(false);
    }
    Ok(len)
}
