//! Moving bytes between a caller's buffer and fifo chunk data: the one copy every read and
//! write does. Two shapes of slowness in the C library's memmove on the AMD machine this was
//! measured on (docs/benchmarking.md, "Copies"):
//!
//! - above ~2 KiB it switches to `rep movsb`, which moves fifo data slower than its vector loop
//!   and ~15x slower when the destination is 1-31 bytes past the source modulo 4 KiB;
//! - its vector loop stores one block before it loads the next, so at those same distances each
//!   load waits on the store before it (the CPU compares only the low 12 address bits): 2-3x.
//!
//! So copies go in pieces of at most [`PIECE`] (the vector loop) and, at the bad distances, a
//! loop of our own that loads each 64-byte block before it stores the one before it.
// Raw memory: both sides are pointers the callers bounds-checked; one of them is shared memory.
#![allow(unsafe_code)]

/// Most bytes one call to the C library's memmove moves (below glibc's `rep movsb` threshold,
/// 0x840 here, whatever that threshold is elsewhere).
const PIECE: usize = 2048;

/// Distances (destination minus source, modulo 4 KiB) at which the C library's forward vector
/// loop stalls: measured 1-31, kept with a margin.
const ALIASING: std::ops::Range<usize> = 1..64;

/// Shortest copy that takes the pipelined loop (shorter ones stay in a few vector moves).
const PIPELINE_MIN: usize = 256;

/// Copy `len` bytes from `src` to `dst`. Either side may be shared memory a peer writes at the
/// same time (a bad peer's bytes are just bytes), so nothing here assumes the bytes stay put.
/// Ranges that overlap (no fifo copy has them) get unspecified bytes, and nothing outside them
/// is touched.
///
/// # Safety
/// `src` must be readable and `dst` writable for `len` bytes.
#[inline]
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub(crate) unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if len >= PIPELINE_MIN && aliases(src, dst) {
        // SAFETY: the caller vouched for both ranges, of `len >= PIPELINE_MIN` bytes.
        unsafe { pipelined(src, dst, len) };
        return;
    }
    let mut off = 0;
    while off < len {
        let n = (len - off).min(PIECE);
        // SAFETY: `off + n <= len`, so both ranges stay inside what the caller vouched for.
        unsafe { std::ptr::copy(src.add(off), dst.add(off), n) };
        off += n;
    }
}

/// The destination sits at a distance from the source the C library's loop stalls on.
#[inline]
fn aliases(src: *const u8, dst: *mut u8) -> bool {
    ALIASING.contains(&((dst as usize).wrapping_sub(src as usize) & 4095))
}

/// Forward copy that loads block k+1 before it stores block k, so no load follows a store
/// whose low 12 address bits it overlaps at distances below 64 bytes.
///
/// # Safety
/// As [`copy_bytes`]; `len >= 128`.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn pipelined(src: *const u8, dst: *mut u8, len: usize) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};
    // SSE2 is part of the x86_64 baseline, so these need no feature check.
    // SAFETY: callers keep the 64 bytes from `at` inside a readable range.
    unsafe fn load(p: *const u8, at: usize) -> [__m128i; 4] {
        // SAFETY: the caller keeps `at + 64 <= len` of a readable range.
        unsafe {
            let p = p.add(at).cast::<__m128i>();
            [
                _mm_loadu_si128(p),
                _mm_loadu_si128(p.add(1)),
                _mm_loadu_si128(p.add(2)),
                _mm_loadu_si128(p.add(3)),
            ]
        }
    }
    // SAFETY: callers keep the 64 bytes from `at` inside a writable range.
    unsafe fn store(p: *mut u8, at: usize, b: [__m128i; 4]) {
        // SAFETY: the caller keeps `at + 64 <= len` of a writable range.
        unsafe {
            let p = p.add(at).cast::<__m128i>();
            _mm_storeu_si128(p, b[0]);
            _mm_storeu_si128(p.add(1), b[1]);
            _mm_storeu_si128(p.add(2), b[2]);
            _mm_storeu_si128(p.add(3), b[3]);
        }
    }
    debug_assert!(len >= 128);
    // SAFETY: `len >= 128`, so block 0 is in range.
    let mut cur = unsafe { load(src, 0) };
    let mut at = 0;
    while at + 128 <= len {
        // SAFETY: `at + 128 <= len`: block `at + 64` is in range, and block `at`.
        unsafe {
            let next = load(src, at + 64);
            store(dst, at, cur);
            cur = next;
        }
        at += 64;
    }
    // SAFETY: `at + 64 <= len` (the loop stopped at `at + 128 > len`, from `at + 64 <= len`).
    unsafe { store(dst, at, cur) };
    at += 64;
    if at < len {
        // the last < 64 bytes: the 64 ending at `len`, rewriting some already copied
        // SAFETY: `len >= 128`, so `len - 64 >= 0` and `len - 64 + 64 == len`.
        unsafe { store(dst, len - 64, load(src, len - 64)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(len: usize, dist: usize) {
        let mut src = vec![0u8; len + 8192];
        for (i, b) in src.iter_mut().enumerate() {
            *b = (i * 131 % 251) as u8;
        }
        let mut dst = vec![0xeeu8; len + 8192 + 4096];
        let s = src.as_ptr();
        let base = dst.as_mut_ptr() as usize;
        // place dst so that (dst - src) mod 4096 == dist
        let want = (s as usize + dist) & 4095;
        let off = (want + 4096 - (base & 4095)) & 4095;
        // SAFETY: `off < 4096` and the buffer has len + 4096 spare bytes.
        let d = unsafe { dst.as_mut_ptr().add(off) };
        // SAFETY: both buffers hold at least `len` bytes from these pointers.
        unsafe { copy_bytes(s, d, len) };
        assert_eq!(
            &dst[off..off + len],
            &src[..len],
            "len {len} distance {dist}"
        );
        assert!(
            dst[..off].iter().all(|&b| b == 0xee),
            "wrote before the range"
        );
        assert!(
            dst[off + len..].iter().all(|&b| b == 0xee),
            "wrote past the range"
        );
    }

    #[test]
    fn copies_exactly_at_every_distance_and_length() {
        for len in [
            0, 1, 63, 64, 127, 128, 129, 255, 256, 257, 300, 1000, 2048, 4099, 70000,
        ] {
            for dist in [0, 1, 7, 31, 32, 63, 64, 100, 2048, 4095] {
                check(len, dist);
            }
        }
    }

    #[test]
    fn takes_the_pipelined_loop_only_at_aliasing_distances() {
        let a = 0x10000usize as *const u8;
        let at = |d: usize| (0x20000usize + d) as *mut u8;
        assert!(aliases(a, at(1)));
        assert!(aliases(a, at(63)));
        assert!(!aliases(a, at(0)));
        assert!(!aliases(a, at(64)));
        assert!(!aliases(a, at(4095)));
    }
}
