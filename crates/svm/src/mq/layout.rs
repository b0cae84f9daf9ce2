//! `#[repr(C)]` mirrors of the shared structures of `svm_msg_q` with compile-time checks of their
//! sizes and offsets, the field offsets the rest of the module uses, and the raw accessors for
//! ring headers, which may sit at only 2- or 4-byte aligned addresses.
//!
//! Alignment choice: the queue header and slots are always 8-byte aligned (we require the queue
//! offset to be a multiple of 8, as VPP's allocator guarantees), so their fields are accessed
//! with ordinary atomics. A ring header follows the previous ring's data, so with an odd number
//! of 18-byte elements it is only 2-byte aligned. Its single-writer fields (nitems, elsize, head,
//! tail) are read and written with unaligned volatile copies. Its `cursize` is modified by both
//! sides and needs a real atomic read-modify-write: when 4-byte aligned we use `AtomicU32`;
//! otherwise (x86_64 only) a `lock xadd` on the unaligned address, which x86 performs atomically
//! (as a slow "split lock" if it straddles a cache line, which is what C code compiled by VPP
//! does there too). Other architectures refuse misaligned rings at attach time.
// Shared memory / fds: volatile and atomic access to the queue header in shared memory.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, Ordering};

/// `svm_msg_q_shared_t` (packed): ring count and padding; the queue header follows at +8.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgQShared {
    pub n_rings: u32,
    pub pad: u32,
}

/// `svm_msg_q_shared_queue_t` (natural layout, glibc x86_64); 8-byte slots follow at +112.
#[repr(C)]
pub struct MsgQSharedQueue {
    pub mutex: libc::pthread_mutex_t,
    pub condvar: libc::pthread_cond_t,
    pub head: u32,
    pub tail: u32,
    pub cursize: u32,
    pub maxsize: u32,
    pub elsize: u32,
    pub pad: u32,
}

/// `svm_msg_q_ring_shared_t` (natural, 20 B); `nitems × elsize` bytes of elements follow.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgQRingShared {
    pub cursize: u32,
    pub nitems: u32,
    pub head: u32,
    pub tail: u32,
    pub elsize: u32,
}

/// `svm_msg_q_msg_t`: which ring and which element of it a queued message refers to.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsgSlot {
    pub ring_index: u32,
    pub elt_index: u32,
}

impl MsgSlot {
    /// The slot as the u64 VPP stores (ring index in the low half on little-endian hosts).
    pub fn to_u64(self) -> u64 {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.ring_index.to_ne_bytes());
        b[4..].copy_from_slice(&self.elt_index.to_ne_bytes());
        u64::from_ne_bytes(b)
    }

    /// Inverse of [`MsgSlot::to_u64`].
    pub fn from_u64(v: u64) -> MsgSlot {
        let b = v.to_ne_bytes();
        MsgSlot {
            ring_index: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            elt_index: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

pub const SHARED_HDR_SIZE: usize = 8;
/// Offset of the queue header from the start of the message queue.
pub const QUEUE_OFFSET: usize = SHARED_HDR_SIZE;
pub const QUEUE_HDR_SIZE: usize = 112;
pub const RING_HDR_SIZE: usize = 20;
pub const SLOT_SIZE: usize = 8;

// Field offsets: VPP's values are in docs/wire-images.md, which layout_doc.rs checks these against.
// Queue header field offsets (from the queue header).
pub(crate) const Q_MUTEX: usize = 0;
pub(crate) const Q_COND: usize = 40;
pub(crate) const Q_HEAD: usize = 88;
pub(crate) const Q_TAIL: usize = 92;
pub(crate) const Q_CURSIZE: usize = 96;
pub(crate) const Q_MAXSIZE: usize = 100;
pub(crate) const Q_ELSIZE: usize = 104;
pub(crate) const Q_DATA: usize = 112;

// Ring header field offsets (from the ring header).
pub(crate) const R_CURSIZE: usize = 0;
pub(crate) const R_NITEMS: usize = 4;
pub(crate) const R_HEAD: usize = 8;
pub(crate) const R_TAIL: usize = 12;
pub(crate) const R_ELSIZE: usize = 16;

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<MsgQShared>() == SHARED_HDR_SIZE);
    // These hold for glibc on x86_64 only: elsewhere the pthread types differ in size and the
    // queue would not be VPP's, so refusing to build is the right outcome.
    assert!(size_of::<libc::pthread_mutex_t>() == 40);
    assert!(size_of::<libc::pthread_cond_t>() == 48);
    assert!(size_of::<MsgQSharedQueue>() == QUEUE_HDR_SIZE);
    assert!(align_of::<MsgQSharedQueue>() == 8);
    assert!(offset_of!(MsgQSharedQueue, mutex) == Q_MUTEX);
    assert!(offset_of!(MsgQSharedQueue, condvar) == Q_COND);
    assert!(offset_of!(MsgQSharedQueue, head) == Q_HEAD);
    assert!(offset_of!(MsgQSharedQueue, tail) == Q_TAIL);
    assert!(offset_of!(MsgQSharedQueue, cursize) == Q_CURSIZE);
    assert!(offset_of!(MsgQSharedQueue, maxsize) == Q_MAXSIZE);
    assert!(offset_of!(MsgQSharedQueue, elsize) == Q_ELSIZE);
    assert!(size_of::<MsgQRingShared>() == RING_HDR_SIZE);
    assert!(offset_of!(MsgQRingShared, cursize) == R_CURSIZE);
    assert!(offset_of!(MsgQRingShared, nitems) == R_NITEMS);
    assert!(offset_of!(MsgQRingShared, head) == R_HEAD);
    assert!(offset_of!(MsgQRingShared, tail) == R_TAIL);
    assert!(offset_of!(MsgQRingShared, elsize) == R_ELSIZE);
    assert!(size_of::<MsgSlot>() == SLOT_SIZE);
};

/// Unaligned read of a u32 a peer may be writing (single-writer fields only).
///
/// # Safety
/// `p .. p+4` must be inside a live mapping.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub(crate) unsafe fn rd_u32(p: *const u8) -> u32 {
    // SAFETY: the caller guarantees 4 readable bytes; [u8; 4] has alignment 1.
    u32::from_ne_bytes(unsafe { (p as *const [u8; 4]).read_volatile() })
}

/// Unaligned write of a u32 (single-writer fields only).
///
/// # Safety
/// `p .. p+4` must be inside a live, writable mapping.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub(crate) unsafe fn wr_u32(p: *mut u8, v: u32) {
    // SAFETY: the caller guarantees 4 writable bytes; [u8; 4] has alignment 1.
    unsafe { (p as *mut [u8; 4]).write_volatile(v.to_ne_bytes()) }
}

/// Whether this target can do atomic arithmetic on a u32 at `p`.
pub(crate) fn atomic_ok(p: *const u8) -> bool {
    (p as usize) % 4 == 0 || cfg!(target_arch = "x86_64")
}

/// Atomic load (acquire) of a u32 that may be only 2-byte aligned.
///
/// # Safety
/// `p .. p+4` must be inside a live mapping and [`atomic_ok`] must hold for `p`.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub(crate) unsafe fn atomic_load(p: *const u8) -> u32 {
    if (p as usize) % 4 == 0 {
        // SAFETY: aligned and inside a live mapping (caller); only accessed atomically or by the
        // peer's own atomics.
        return unsafe { AtomicU32::from_ptr(p as *mut u32) }.load(Ordering::Acquire);
    }
    // SAFETY: caller guarantees the bytes are mapped and that we are on x86_64.
    unsafe { unaligned::load(p) }
}

/// Atomic add returning the previous value (release semantics or stronger). Subtract by adding
/// `delta.wrapping_neg()`.
///
/// # Safety
/// `p .. p+4` must be inside a live, writable mapping and [`atomic_ok`] must hold for `p`.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub(crate) unsafe fn atomic_add(p: *mut u8, delta: u32) -> u32 {
    if (p as usize) % 4 == 0 {
        // SAFETY: aligned and inside a live mapping (caller).
        return unsafe { AtomicU32::from_ptr(p as *mut u32) }.fetch_add(delta, Ordering::AcqRel);
    }
    // SAFETY: caller guarantees the bytes are mapped and that we are on x86_64.
    unsafe { unaligned::fetch_add(p, delta) }
}

#[cfg(target_arch = "x86_64")]
mod unaligned {
    /// `lock xadd` works on any address on x86 and is a full barrier.
    // SAFETY: callers uphold the contract in the `# Safety` section above.
    pub(super) unsafe fn fetch_add(p: *mut u8, delta: u32) -> u32 {
        let mut v = delta;
        // SAFETY: the caller guarantees p..p+4 is mapped and writable; lock xadd only touches those
        // 4 bytes and the register.
        unsafe {
            std::arch::asm!(
                "lock xadd dword ptr [{p}], {v:e}",
                p = in(reg) p,
                v = inout(reg) v,
                options(nostack)
            );
        }
        v
    }

    /// A plain x86 load is acquire-ordered and single-copy atomic within a cache line.
    // SAFETY: callers uphold the contract in the `# Safety` section above.
    pub(super) unsafe fn load(p: *const u8) -> u32 {
        let v: u32;
        // SAFETY: the caller guarantees p..p+4 is mapped; the load touches only those bytes.
        unsafe {
            std::arch::asm!(
                "mov {v:e}, dword ptr [{p}]",
                p = in(reg) p,
                v = out(reg) v,
                options(nostack, readonly, preserves_flags)
            );
        }
        v
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod unaligned {
    // Unreachable: attach refuses misaligned rings where `atomic_ok` is false.
    // SAFETY: callers uphold the contract in the `# Safety` section above.
    pub(super) unsafe fn fetch_add(_p: *mut u8, _delta: u32) -> u32 {
        0
    }
    // SAFETY: callers uphold the contract in the `# Safety` section above.
    pub(super) unsafe fn load(_p: *const u8) -> u32 {
        0
    }
}
