//! A handle on one message queue: laying it out (VPP's side), attaching to it with validation,
//! the producer path, and the signalling shared with the consumer.
//!
//! Lock selection follows VPP: without an eventfd the producers serialise on the shared robust
//! pthread mutex and signal through the shared condvar; with an eventfd they serialise on a lock
//! private to this handle (safe because such a queue has a single producing process, and that
//! process must use one handle per queue) and signal by writing the eventfd.
// Shared memory / fds: enqueues into rings in shared memory (Send/Sync over the mapping).
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::layout::*;
use super::sync::{evt_signal, init_shm_lock, monotonic_deadline, ShmLock};
use super::{check_nitems, check_ring, MqConfig, RingCfg, SegmentRef, MAX_ELT_SIZE, MAX_RINGS};
use crate::segment::{Result, SvmError};

/// How a producer behaves when the queue or the ring is full (or, for `Try`, locked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// Never block: try-lock, and fail with [`SvmError::Full`] if the lock is busy or there is
    /// no room (what VPP does towards app queues: docs/wire.md#vpp-never-blocks-on-an-app-mq).
    Try,
    /// Wait as long as it takes for room.
    Block,
    /// Wait up to this long for room, then fail with [`SvmError::Full`].
    BlockFor(Duration),
}

/// Back-off of a producer waiting for room in eventfd mode.
const MIN_BACKOFF: Duration = Duration::from_micros(20);
const MAX_BACKOFF: Duration = Duration::from_millis(1);
const YIELD_SPINS: u32 = 16;

/// Geometry of one ring, validated and cached at attach time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingGeom {
    /// Offset of the ring header from the start of the message queue.
    pub hdr: usize,
    pub nitems: u32,
    pub elsize: u32,
}

/// One message queue in a segment. `S` keeps the segment mapped (`&Segment`, `Arc<Segment>`).
pub struct MsgQueue<S: SegmentRef> {
    seg: S,
    off: u64,
    /// Start of the queue: `seg.at(off, size, 8)`; every access stays below `base + size`.
    base: *mut u8,
    size: usize,
    q_nitems: u32,
    rings: Vec<RingGeom>,
    evtfd: Option<OwnedFd>,
    /// Producer lock used in eventfd mode.
    local: Mutex<()>,
    /// The consumer's copy buffer (one `MAX_ELT_SIZE` element); holding its lock is being the
    /// consumer. Kept here rather than in each `Consumer`: a fresh buffer was 4 KiB zeroed on
    /// every wait and every drain (~4,000 instructions each).
    pub(crate) consumer_buf: Mutex<Box<[u8]>>,
    /// Set by the consumer at the first corrupt slot or header: the queue is never read again.
    pub(crate) corrupt: AtomicBool,
}

// SAFETY: `base` points into the mapping kept alive by `seg`; shared fields are accessed only
// through atomics, the process-shared mutex, or single-writer volatile copies, which is the
// protocol VPP itself follows across processes, so threads are no different.
unsafe impl<S: SegmentRef + Send> Send for MsgQueue<S> {}
// SAFETY: as above; producers serialise on a lock and the consumer is exclusive by construction.
unsafe impl<S: SegmentRef + Sync> Sync for MsgQueue<S> {}

impl<S: SegmentRef> std::fmt::Debug for MsgQueue<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgQueue")
            .field("off", &self.off)
            .field("size", &self.size)
            .field("q_nitems", &self.q_nitems)
            .field("rings", &self.rings)
            .field("evtfd", &self.eventfd())
            .finish()
    }
}

/// The held producer lock; releases on drop.
pub(crate) enum Guard<'a> {
    Shm(ShmLock),
    Local(#[allow(dead_code)] MutexGuard<'a, ()>),
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Guard::Shm(l) = self {
            l.unlock();
        }
    }
}

impl<S: SegmentRef> MsgQueue<S> {
    /// Lay out a fresh queue of shape `cfg` at fsh-relative offset `off` (multiple of 8) and
    /// attach to it. This is VPP's job; the test peer uses it.
    pub fn init(seg: S, off: u64, cfg: &MqConfig) -> Result<Self> {
        cfg.check()?;
        let size = cfg.size();
        let base = seg.at(off, size, 8)?;
        let q = QUEUE_OFFSET;
        // SAFETY: `at` checked that base..base+size is mapped and 8-byte aligned; the queue header
        // (112 B) and every ring header below lie inside `size` by construction.
        unsafe {
            std::ptr::write_bytes(base, 0, SHARED_HDR_SIZE + QUEUE_HDR_SIZE);
            wr_u32(base, cfg.rings.len() as u32);
            wr_u32(base.add(q + Q_MAXSIZE), cfg.q_nitems);
            wr_u32(base.add(q + Q_ELSIZE), SLOT_SIZE as u32);
        }
        let mut hdr = QUEUE_OFFSET + QUEUE_HDR_SIZE + SLOT_SIZE * cfg.q_nitems as usize;
        for r in &cfg.rings {
            // SAFETY: hdr + 20 + nitems*elsize <= size (size_for sums exactly these terms).
            unsafe {
                let p = base.add(hdr);
                std::ptr::write_bytes(p, 0, RING_HDR_SIZE);
                wr_u32(p.add(R_NITEMS), r.nitems);
                wr_u32(p.add(R_ELSIZE), r.elsize);
            }
            hdr += RING_HDR_SIZE + r.nitems as usize * r.elsize as usize;
        }
        init_shm_lock(shm_lock_at(base))?;
        Self::attach(seg, off)
    }

    /// Attach to the queue at fsh-relative offset `off`, validating everything read.
    pub fn attach(seg: S, off: u64) -> Result<Self> {
        let hdr = seg.at(off, SHARED_HDR_SIZE + QUEUE_HDR_SIZE, 8)?;
        // SAFETY: `at` checked these 120 bytes are mapped; fields read by value.
        let (n_rings, maxsize, elsize) = unsafe {
            (
                rd_u32(hdr),
                rd_u32(hdr.add(QUEUE_OFFSET + Q_MAXSIZE)),
                rd_u32(hdr.add(QUEUE_OFFSET + Q_ELSIZE)),
            )
        };
        if n_rings == 0 || n_rings > MAX_RINGS {
            return Err(corrupt(off, format!("n_rings 1..={MAX_RINGS}"), n_rings));
        }
        if elsize != SLOT_SIZE as u32 {
            return Err(corrupt(off, "queue elsize 8".into(), elsize));
        }
        check_nitems("queue maxsize", maxsize).map_err(|e| prefix(off, e))?;
        let (rings, size) = walk_rings(&seg, off, maxsize, n_rings)?;
        let base = seg.at(off, size, 8)?;
        for (i, r) in rings.iter().enumerate() {
            // SAFETY: pointer arithmetic inside the checked extent; only the address is used.
            let p = unsafe { base.add(r.hdr + R_CURSIZE) };
            if !atomic_ok(p) {
                return Err(SvmError::Unsupported(format!(
                    "ring {i} header at queue offset {} is not 4-byte aligned",
                    r.hdr
                )));
            }
        }
        Ok(MsgQueue {
            seg,
            off,
            base,
            size,
            q_nitems: maxsize,
            rings,
            evtfd: None,
            local: Mutex::new(()),
            consumer_buf: Mutex::new(vec![0; MAX_ELT_SIZE as usize].into_boxed_slice()),
            corrupt: AtomicBool::new(false),
        })
    }

    /// Switch to eventfd mode: signal and wait through `fd` (shared with the peer) and serialise
    /// producers on a process-local lock.
    pub fn set_eventfd(&mut self, fd: OwnedFd) {
        self.evtfd = Some(fd);
    }

    /// Builder form of [`MsgQueue::set_eventfd`].
    pub fn with_eventfd(mut self, fd: OwnedFd) -> Self {
        self.set_eventfd(fd);
        self
    }

    /// The eventfd, if in eventfd mode (register it with epoll to wait externally).
    pub fn eventfd(&self) -> Option<RawFd> {
        self.evtfd.as_ref().map(|f| f.as_raw_fd())
    }

    /// The eventfd, borrowed (to add it to or remove it from an epoll set).
    pub fn eventfd_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.evtfd.as_ref().map(std::os::fd::AsFd::as_fd)
    }

    /// The segment this queue lives in.
    pub fn segment(&self) -> &S {
        &self.seg
    }

    /// Fsh-relative offset of the queue.
    pub fn offset(&self) -> u64 {
        self.off
    }

    /// Bytes the queue occupies.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of message slots (`maxsize`).
    pub fn capacity(&self) -> u32 {
        self.q_nitems
    }

    /// Number of rings.
    pub fn n_rings(&self) -> u32 {
        self.rings.len() as u32
    }

    /// Shape of ring `r`.
    pub fn ring_cfg(&self, r: u32) -> Option<RingCfg> {
        self.rings.get(r as usize).map(|g| RingCfg {
            nitems: g.nitems,
            elsize: g.elsize,
        })
    }

    /// Messages currently queued (as published by the shared `cursize`).
    pub fn len(&self) -> u32 {
        self.q_u32(Q_CURSIZE).load(Ordering::Acquire)
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every message slot is taken.
    pub fn is_full(&self) -> bool {
        self.len() >= self.q_nitems
    }

    /// Elements of ring `r` allocated and not yet freed.
    pub fn ring_len(&self, r: u32) -> Option<u32> {
        self.rings.get(r as usize).map(|g| self.ring_cursize(g))
    }

    /// Send an IO event (ring 0): event type and session index at +2; nothing else is written.
    pub fn send_io(&self, event_type: u8, session_index: u32, mode: SendMode) -> Result<()> {
        self.send(
            super::IO_RING,
            event_type,
            &session_index.to_ne_bytes(),
            false,
            mode,
        )
    }

    /// Send a control event (ring 1): the first 18 bytes zeroed, the event type, then `msg` at +2.
    pub fn send_ctrl(&self, event_type: u8, msg: &[u8], mode: SendMode) -> Result<()> {
        self.send(super::CTRL_RING, event_type, msg, true, mode)
    }

    /// Allocate an element of ring `ring`, write `event_type` at +0 and `payload` at +2 (after
    /// zeroing the 18-byte event header if `zero_header`), enqueue it and signal the consumer if
    /// the queue was empty.
    pub fn send(
        &self,
        ring: u32,
        event_type: u8,
        payload: &[u8],
        zero_header: bool,
        mode: SendMode,
    ) -> Result<()> {
        let g = *self
            .rings
            .get(ring as usize)
            .ok_or(SvmError::Os("mq send: no such ring", libc::EINVAL))?;
        if payload.len() + super::EVENT_PAYLOAD_OFFSET > g.elsize as usize {
            return Err(SvmError::Os(
                "mq send: payload larger than a ring element",
                libc::EMSGSIZE,
            ));
        }
        let guard = self.lock_for(mode)?;
        self.wait_for_room(&guard, &g, mode)?;
        let elt = self.alloc_elt(&g)?;
        // SAFETY: elt < nitems (alloc_elt checks), so the element lies inside the ring data, which
        // lies inside the checked extent; payload.len() + 2 <= elsize (checked above).
        unsafe {
            let p = self.elt_ptr(&g, elt);
            if zero_header {
                let n = (super::SESSION_EVENT_SIZE as usize).min(g.elsize as usize);
                std::ptr::write_bytes(p, 0, n);
            }
            p.write_volatile(event_type);
            let dst = p.add(super::EVENT_PAYLOAD_OFFSET);
            std::ptr::copy_nonoverlapping(payload.as_ptr(), dst, payload.len());
        }
        let slot = MsgSlot {
            ring_index: ring,
            elt_index: elt,
        };
        self.push_slot(slot)?;
        drop(guard);
        Ok(())
    }

    /// Take the queue's shared-memory mutex and keep it for `d`, as a stopped or hostile
    /// process attached to the same queue would (fault injection for tests); `held` runs
    /// once it is taken.
    pub fn hold_shm_lock_for(&self, d: Duration, held: impl FnOnce()) -> Result<()> {
        let l = shm_lock_at(self.base);
        l.lock()?;
        let _g = Guard::Shm(l);
        held();
        std::thread::sleep(d);
        Ok(())
    }

    fn lock_for(&self, mode: SendMode) -> Result<Guard<'_>> {
        match (&self.evtfd, mode) {
            (None, SendMode::Try) => {
                let l = shm_lock_at(self.base);
                if l.try_lock()? {
                    Ok(Guard::Shm(l))
                } else {
                    Err(SvmError::Full)
                }
            }
            (None, _) => {
                let l = shm_lock_at(self.base);
                l.lock()?;
                Ok(Guard::Shm(l))
            }
            (Some(_), SendMode::Try) => match self.local.try_lock() {
                Ok(g) => Ok(Guard::Local(g)),
                Err(std::sync::TryLockError::Poisoned(p)) => Ok(Guard::Local(p.into_inner())),
                Err(std::sync::TryLockError::WouldBlock) => Err(SvmError::Full),
            },
            (Some(_), _) => Ok(Guard::Local(
                self.local.lock().unwrap_or_else(|p| p.into_inner()),
            )),
        }
    }

    fn room(&self, g: &RingGeom) -> bool {
        !self.is_full() && self.ring_cursize(g) < g.nitems
    }

    /// With the producer lock held, wait until both the queue and the ring have room.
    fn wait_for_room(&self, _guard: &Guard<'_>, g: &RingGeom, mode: SendMode) -> Result<()> {
        let limit = match mode {
            SendMode::Try if !self.room(g) => return Err(SvmError::Full),
            SendMode::Try | SendMode::Block => None,
            SendMode::BlockFor(d) => Some(Instant::now() + d),
        };
        let mono_deadline = match mode {
            SendMode::BlockFor(d) => Some(monotonic_deadline(d)),
            _ => None,
        };
        let (mut backoff, mut spins) = (MIN_BACKOFF, 0);
        while !self.room(g) {
            let left = match limit {
                Some(t) => t.saturating_duration_since(Instant::now()),
                None => MAX_BACKOFF,
            };
            if limit.is_some() && left.is_zero() {
                return Err(SvmError::Full);
            }
            if self.evtfd.is_none() {
                // The condvar wait releases and re-takes the shared mutex.
                shm_lock_at(self.base).wait(mono_deadline.as_ref())?;
            } else {
                // VPP's producer reads the shared eventfd here, but that can swallow the token
                // that was meant to wake a sleeping consumer (poll re-checks readiness after a
                // wake-up), leaving both asleep until a timeout. We leave every token to the
                // consumer and re-check after yielding a few times, then with a short exponential
                // back-off.
                if spins < YIELD_SPINS {
                    spins += 1;
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(backoff.min(left));
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        Ok(())
    }

    /// Take the element at the ring's tail (lock held, room checked).
    fn alloc_elt(&self, g: &RingGeom) -> Result<u32> {
        // SAFETY: the ring header lies inside the checked extent.
        let tail_p = unsafe { self.base.add(g.hdr + R_TAIL) };
        // SAFETY: as above.
        let tail = unsafe { rd_u32(tail_p) };
        if tail >= g.nitems {
            return Err(corrupt(self.off, format!("ring tail < {}", g.nitems), tail));
        }
        // SAFETY: as above.
        unsafe { wr_u32(tail_p, (tail + 1) % g.nitems) };
        // SAFETY: as above; atomic_ok was checked at attach time.
        unsafe { atomic_add(self.base.add(g.hdr + R_CURSIZE), 1) };
        Ok(tail)
    }

    /// Append a slot at the queue's tail (lock held, room checked) and signal if it was empty.
    fn push_slot(&self, slot: MsgSlot) -> Result<()> {
        let tail_a = self.q_u32(Q_TAIL);
        let tail = tail_a.load(Ordering::Relaxed);
        if tail >= self.q_nitems {
            return Err(corrupt(
                self.off,
                format!("queue tail < {}", self.q_nitems),
                tail,
            ));
        }
        self.slot(tail).store(slot.to_u64(), Ordering::Relaxed);
        tail_a.store((tail + 1) % self.q_nitems, Ordering::Relaxed);
        let old = self.q_u32(Q_CURSIZE).fetch_add(1, Ordering::AcqRel);
        if old == 0 {
            self.signal(true);
        }
        Ok(())
    }

    /// Wake the other side. `locked`: the caller already holds the producer lock (mutex mode).
    pub(crate) fn signal(&self, locked: bool) {
        match self.eventfd() {
            Some(fd) => evt_signal(fd),
            None if locked => shm_lock_at(self.base).broadcast(),
            None => {
                let l = shm_lock_at(self.base);
                match l.lock() {
                    Ok(()) => {
                        l.broadcast();
                        l.unlock();
                    }
                    Err(e) => tracing::warn!(%e, "mq signal: cannot lock the mutex"),
                }
            }
        }
    }

    pub(crate) fn shm_lock(&self) -> ShmLock {
        shm_lock_at(self.base)
    }

    /// An aligned u32 field of the queue header.
    pub(crate) fn q_u32(&self, field: usize) -> &AtomicU32 {
        debug_assert!(field + 4 <= QUEUE_HDR_SIZE);
        // SAFETY: base is 8-aligned and the queue header (8..120) is inside the extent; the field
        // offsets used are multiples of 4.
        unsafe { AtomicU32::from_ptr(self.base.add(QUEUE_OFFSET + field) as *mut u32) }
    }

    /// Message slot `i`; callers guarantee `i < q_nitems`.
    pub(crate) fn slot(&self, i: u32) -> &AtomicU64 {
        let i = i.min(self.q_nitems - 1) as usize;
        let off = QUEUE_OFFSET + Q_DATA + SLOT_SIZE * i;
        // SAFETY: i < q_nitems keeps the 8-aligned slot inside the extent.
        unsafe { AtomicU64::from_ptr(self.base.add(off) as *mut u64) }
    }

    pub(crate) fn ring_geom(&self, r: u32) -> Option<&RingGeom> {
        self.rings.get(r as usize)
    }

    pub(crate) fn ring_cursize(&self, g: &RingGeom) -> u32 {
        // SAFETY: the ring header is inside the extent and atomic_ok was checked at attach.
        unsafe { atomic_load(self.base.add(g.hdr + R_CURSIZE)) }
    }

    /// Pointer to a ring header field.
    pub(crate) fn ring_field(&self, g: &RingGeom, field: usize) -> *mut u8 {
        debug_assert!(field + 4 <= RING_HDR_SIZE);
        // SAFETY: the ring header is inside the extent.
        unsafe { self.base.add(g.hdr + field) }
    }

    /// Pointer to element `elt` of a ring.
    ///
    /// # Safety
    /// `elt < g.nitems`.
    // SAFETY: callers uphold the contract in the `# Safety` section above.
    pub(crate) unsafe fn elt_ptr(&self, g: &RingGeom, elt: u32) -> *mut u8 {
        let off = g.hdr + RING_HDR_SIZE + elt as usize * g.elsize as usize;
        // SAFETY: with elt < nitems the element lies inside this ring's data, inside the extent.
        unsafe { self.base.add(off) }
    }

    pub(crate) fn q_nitems(&self) -> u32 {
        self.q_nitems
    }
}

fn shm_lock_at(base: *mut u8) -> ShmLock {
    // Only addresses are computed here; `base` is 8-aligned with the 112-byte header in bounds.
    ShmLock {
        mutex: base.wrapping_add(QUEUE_OFFSET + Q_MUTEX) as *mut libc::pthread_mutex_t,
        cond: base.wrapping_add(QUEUE_OFFSET + Q_COND) as *mut libc::pthread_cond_t,
    }
}

/// Read and validate the ring headers following a queue of `maxsize` slots; returns their
/// geometry and the queue's total size.
fn walk_rings(
    seg: &crate::Segment,
    off: u64,
    maxsize: u32,
    n_rings: u32,
) -> Result<(Vec<RingGeom>, usize)> {
    let mut rings = Vec::with_capacity(n_rings as usize);
    let mut hdr = QUEUE_OFFSET + QUEUE_HDR_SIZE + SLOT_SIZE * maxsize as usize;
    for i in 0..n_rings as usize {
        let p = seg.at(off + hdr as u64, RING_HDR_SIZE, 1)?;
        // SAFETY: `at` checked these 20 bytes are mapped.
        let (nitems, elsize) = unsafe { (rd_u32(p.add(R_NITEMS)), rd_u32(p.add(R_ELSIZE))) };
        check_ring(i, &RingCfg { nitems, elsize }).map_err(|e| prefix(off, e))?;
        rings.push(RingGeom {
            hdr,
            nitems,
            elsize,
        });
        // Bounded by MAX_NITEMS * MAX_ELT_SIZE per ring and MAX_RINGS rings: no overflow.
        hdr += RING_HDR_SIZE + nitems as usize * elsize as usize;
    }
    Ok((rings, hdr))
}

fn corrupt(off: u64, expected: String, got: u32) -> SvmError {
    SvmError::Corrupt(format!("mq at {off}: expected {expected}, got {got}"))
}

fn prefix(off: u64, e: SvmError) -> SvmError {
    match e {
        SvmError::Corrupt(m) => SvmError::Corrupt(format!("mq at {off}: {m}")),
        e => e,
    }
}
