//! Typed views of the caller's pointers: every raw pointer an export receives becomes a
//! reference or slice here, and only here, under a stated contract.
//!
//! Each helper returns `None` for NULL, so a NULL check cannot be forgotten. The lifetime `'a`
//! is chosen by the caller of the helper: it must not outlive the export call (the C caller
//! lends its memory for the call only). A buffer the C caller only promises to be readable
//! (vppcom_session_write's, even though vppcom.h types it `void *`) is only ever viewed through
//! [`in_slice`], never [`out_slice`].

use std::ffi::{c_char, CStr};

/// `n` readable `T`s at `p`, or None for NULL.
///
/// # Safety
/// A non-NULL `p` must point at `n` initialised, properly aligned `T`s that nothing writes
/// while the slice lives (for `n == 0` any aligned non-NULL pointer will do).
pub(crate) unsafe fn in_slice<'a, T>(p: *const T, n: usize) -> Option<&'a [T]> {
    // SAFETY: p is non-NULL here; the rest is this function's contract.
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, n) })
}

/// `n` writable `T`s at `p`, or None for NULL.
///
/// # Safety
/// A non-NULL `p` must point at `n` initialised, properly aligned `T`s the caller lets us read
/// and write, not reachable any other way while the slice lives.
pub(crate) unsafe fn out_slice<'a, T>(p: *mut T, n: usize) -> Option<&'a mut [T]> {
    // SAFETY: p is non-NULL here; the rest is this function's contract.
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(p, n) })
}

/// The `T` at `p`, or None for NULL.
///
/// # Safety
/// A non-NULL `p` must point at an initialised, properly aligned `T` that nothing writes while
/// the reference lives.
pub(crate) unsafe fn opt_ref<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: per this function's contract (as_ref checks NULL).
    unsafe { p.as_ref() }
}

/// The `T` at `p` to write, or None for NULL.
///
/// # Safety
/// A non-NULL `p` must point at an initialised, properly aligned `T` the caller lets us read
/// and write, not reachable any other way while the reference lives.
pub(crate) unsafe fn opt_mut<'a, T>(p: *mut T) -> Option<&'a mut T> {
    // SAFETY: per this function's contract (as_mut checks NULL).
    unsafe { p.as_mut() }
}

/// The NUL-terminated string at `p`, or None for NULL.
///
/// # Safety
/// A non-NULL `p` must point at a NUL-terminated string that nothing writes while the
/// reference lives.
pub(crate) unsafe fn opt_cstr<'a>(p: *const c_char) -> Option<&'a CStr> {
    // SAFETY: p is non-NULL here; the rest is this function's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

/// `n` readable bytes at `p` of any alignment; empty for `n == 0` whatever `p` is (a length-0
/// (NULL, 0) pair is a valid empty buffer in vppcom.h's cert/key pair).
///
/// # Safety
/// For `n > 0`, `p` must point at `n` readable bytes that nothing writes while the slice lives.
pub(crate) unsafe fn in_bytes<'a>(p: *const c_char, n: usize) -> &'a [u8] {
    if n == 0 {
        return &[];
    }
    // SAFETY: per this function's contract; u8 has alignment 1.
    unsafe { in_slice(p.cast::<u8>(), n) }.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::{null, null_mut};

    #[test]
    fn null_is_none_and_lengths_are_kept() {
        let a = [1u8, 2, 3];
        let mut b = [0u32; 2];
        let mut x = 5i32;
        // SAFETY: every non-NULL pointer below points at live locals of the stated length.
        unsafe {
            assert_eq!(in_slice(a.as_ptr(), 3), Some(&a[..]));
            assert_eq!(in_slice::<u8>(null(), 3), None);
            out_slice(b.as_mut_ptr(), 2).unwrap()[1] = 9;
            assert!(out_slice::<u32>(null_mut(), 2).is_none());
            assert_eq!(opt_ref(&x as *const i32), Some(&5));
            *opt_mut(&mut x as *mut i32).unwrap() = 6;
            assert!(opt_ref::<i32>(null()).is_none() && opt_mut::<i32>(null_mut()).is_none());
            assert_eq!(opt_cstr(c"tcp".as_ptr()).unwrap().to_bytes(), b"tcp");
            assert!(opt_cstr(null()).is_none());
            assert_eq!(in_bytes(a.as_ptr().cast(), 2), &[1, 2]);
            assert!(in_bytes(null(), 0).is_empty());
        }
        assert_eq!((b, x), ([0, 9], 6));
    }
}
