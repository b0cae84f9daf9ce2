//! Typed references into shared memory: structs made only of atomics, at untrusted offsets
//! checked by [`Segment::at`].
// Shared memory: the one place a checked offset becomes a typed reference.
#![allow(unsafe_code)]

use crate::segment::{Result, Segment};

/// Types that live in shared memory and consist only of atomics, so any bit pattern is valid and
/// a shared reference stays sound while the peer writes to them.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, contain only atomic integer fields, and have no padding
/// that is not itself an atomic field.
pub(crate) unsafe trait Shared: Sized {}

/// A reference to a shared structure at an untrusted fsh-relative offset (bounds and alignment
/// checked by [`Segment::at`]).
#[inline]
pub(crate) fn shared_ref<T: Shared>(seg: &Segment, off: u64) -> Result<&T> {
    let (size, align) = (std::mem::size_of::<T>(), std::mem::align_of::<T>());
    shared_ref_quick(seg, off).ok_or_else(|| seg.refusal(off, size, align))
}

/// [`shared_ref`] without an error (`None` if a check fails), for the fifo fast paths.
#[inline(always)]
pub(crate) fn shared_ref_quick<T: Shared>(seg: &Segment, off: u64) -> Option<&T> {
    let p = seg.at_quick(off, std::mem::size_of::<T>(), std::mem::align_of::<T>())?;
    // SAFETY: `at_quick` checked that `off .. off + size_of::<T>()` lies in the mapping and is
    // aligned for T; T is made of atomics only (trait contract), so any bytes are a valid T and
    // concurrent writes by the peer go through atomic cells. The mapping lives as long as `seg`.
    Some(unsafe { &*(p as *const T) })
}
