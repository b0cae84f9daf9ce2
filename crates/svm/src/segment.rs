//! A mapped memfd segment: the ssvm header at offset 0 and a fifo segment header (fsh) at
//! `opaque[0]`. Owns the fd and the mapping; all shared-memory access goes through
//! [`Segment::at`], which checks that an fsh-relative offset and length lie inside the mapping
//! and are aligned.
// Shared memory / fds: creates the memfd and reads/writes the ssvm header in the mapping.
#![allow(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use memmap2::{MmapOptions, MmapRaw};

/// Errors from mapping or reading shared memory. They name what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvmError {
    /// A system call failed (errno).
    Os(&'static str, i32),
    /// A header field or offset is outside what is valid.
    Corrupt(String),
    /// The segment was laid out by a VPP built with a cache-line size we do not speak.
    Unsupported(String),
    /// Fifo full / no memory to grow (SVM_FIFO_EFULL, EGROW).
    Full,
    /// Fifo empty (SVM_FIFO_EEMPTY).
    Empty,
}

impl fmt::Display for SvmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SvmError::Os(what, e) => {
                write!(f, "{what}: {}", std::io::Error::from_raw_os_error(*e))
            }
            SvmError::Corrupt(s) => write!(f, "corrupt shared memory: {s}"),
            SvmError::Unsupported(s) => write!(f, "unsupported segment: {s}"),
            SvmError::Full => write!(f, "fifo full"),
            SvmError::Empty => write!(f, "fifo empty"),
        }
    }
}

impl std::error::Error for SvmError {}

pub type Result<T> = std::result::Result<T, SvmError>;

fn os_err(what: &'static str) -> SvmError {
    SvmError::Os(
        what,
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    )
}

/// `ssvm_shared_header_t` (natural layout, 120 bytes) at segment offset 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SsvmSharedHeader {
    pub lock: u32,
    pub owner_pid: u32,
    pub recursion_count: u32,
    pub tag: u32,
    pub heap: u64,
    pub ssvm_va: u64,
    pub ssvm_size: u64,
    pub server_pid: u32,
    pub client_pid: u32,
    pub name: u64,
    pub opaque: [u64; 7],
    pub ready: u32,
    pub type_: u32,
}

const _: () = {
    assert!(std::mem::size_of::<SsvmSharedHeader>() == 120);
    assert!(std::mem::offset_of!(SsvmSharedHeader, ssvm_va) == 24);
    assert!(std::mem::offset_of!(SsvmSharedHeader, ssvm_size) == 32);
    assert!(std::mem::offset_of!(SsvmSharedHeader, client_pid) == 44);
    assert!(std::mem::offset_of!(SsvmSharedHeader, opaque) == 56);
    assert!(std::mem::offset_of!(SsvmSharedHeader, ready) == 112);
    assert!(std::mem::offset_of!(SsvmSharedHeader, type_) == 116);
};

/// ssvm segment type of memfd segments.
pub const SSVM_SEGMENT_MEMFD: u32 = 1;

/// fsh fields read at map time to recognise the cache-line size VPP was built with.
const FSH_N_SLICES_OFF: u64 = 20;
const FSH_START_BYTE_INDEX_OFF_CL64: u64 = 80;
/// Sizes under a 64-byte cache line: fsh header and one slice.
pub const FSH_SIZE: u64 = 128;
pub const SLICE_SIZE: u64 = 192;

/// Largest segment we agree to map (VPP's own segments are far smaller; this bounds a hostile
/// size).
pub const MAX_SEGMENT_SIZE: u64 = 1 << 40;

/// The memfd backing the segment, borrowed for as long as the segment lives.
impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A mapped fifo segment (or the vpp mqs segment).
pub struct Segment {
    map: MmapRaw,
    fd: OwnedFd,
    /// Offset of the fifo segment header from the mapping base.
    fsh: u64,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("fd", &self.fd.as_raw_fd())
            .field("len", &self.map.len())
            .field("fsh", &self.fsh)
            .finish()
    }
}

impl Segment {
    /// Map a segment VPP (or a peer) sent us as a memfd: read the ssvm header, map `ssvm_size`
    /// bytes anywhere, locate the fsh and check it was laid out for a 64-byte cache line.
    pub fn map(fd: OwnedFd) -> Result<Segment> {
        let file = File::from(fd);
        ensure_cannot_shrink(&file)?;
        let st = file.metadata().map_err(|_| os_err("fstat segment"))?;
        let file_len = st.len();
        if file_len < std::mem::size_of::<SsvmSharedHeader>() as u64 {
            return Err(SvmError::Corrupt(format!(
                "segment file is {file_len} bytes, smaller than the 120-byte ssvm header"
            )));
        }
        let probe = map_raw(&file, std::mem::size_of::<SsvmSharedHeader>())?;
        // SAFETY: the probe mapping is at least 120 bytes long and page aligned; read_unaligned
        // copies plain integers, any bit pattern is valid.
        let hdr = unsafe { (probe.as_ptr() as *const SsvmSharedHeader).read_volatile() };
        drop(probe);
        let size = hdr.ssvm_size;
        if size < 4096 || size > file_len || size > MAX_SEGMENT_SIZE {
            return Err(SvmError::Corrupt(format!(
                "ssvm_size {size} must be within 4096..={} (the file's size)",
                file_len.min(MAX_SEGMENT_SIZE)
            )));
        }
        if hdr.ssvm_va != 0 {
            tracing::debug!(
                va = hdr.ssvm_va,
                "segment asks for a fixed address; mapping anywhere"
            );
        }
        let map = map_raw(&file, size as usize)?;
        let fsh = hdr.opaque[0];
        let seg = Segment {
            map,
            fd: file.into(),
            fsh,
        };
        seg.check_fsh()?;
        Ok(seg)
    }

    /// Create a new memfd segment of `size` bytes with an ssvm header whose fsh sits at
    /// `fsh_offset` (VPP uses two pages). The fsh itself is left zeroed for the caller to lay out.
    pub fn create(name: &str, size: u64, fsh_offset: u64) -> Result<Segment> {
        if size > MAX_SEGMENT_SIZE || fsh_offset + FSH_SIZE > size || fsh_offset % 64 != 0 {
            return Err(SvmError::Corrupt(format!(
                "cannot create a segment of {size} bytes with fsh at {fsh_offset}"
            )));
        }
        let cname = std::ffi::CString::new(name).map_err(|_| SvmError::Os("memfd name", 22))?;
        // SAFETY: memfd_create takes a valid NUL-terminated name and flags; it returns a new fd.
        let raw = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_ALLOW_SEALING) };
        if raw < 0 {
            return Err(os_err("memfd_create"));
        }
        // SAFETY: raw is a freshly created fd that nothing else owns.
        let file = unsafe { File::from_raw_fd(raw) };
        file.set_len(size)
            .map_err(|_| os_err("ftruncate segment"))?;
        // As VPP does: nobody may shrink a segment under a mapping (docs/wire.md#segment-sealing).
        // SAFETY: fcntl on an fd we own with integer arguments.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } < 0 {
            return Err(os_err("seal segment (F_ADD_SEALS)"));
        }
        let map = map_raw(&file, size as usize)?;
        let hdr = SsvmSharedHeader {
            ssvm_size: size,
            server_pid: std::process::id(),
            opaque: [fsh_offset, 0, 0, 0, 0, 0, 0],
            ready: 1,
            type_: SSVM_SEGMENT_MEMFD,
            ..Default::default()
        };
        // SAFETY: the mapping is `size` >= fsh_offset + 128 > 120 bytes, page aligned, and ours.
        unsafe { (map.as_mut_ptr() as *mut SsvmSharedHeader).write(hdr) };
        Ok(Segment {
            map,
            fd: file.into(),
            fsh: fsh_offset,
        })
    }

    /// Refuse a fsh that does not fit or that was laid out for a 128-byte cache line.
    fn check_fsh(&self) -> Result<()> {
        if self.fsh == 0 {
            return Ok(()); // a segment without a fifo segment header
        }
        if self.fsh % 64 != 0 || self.fsh.saturating_add(FSH_SIZE) > self.len() as u64 {
            return Err(SvmError::Corrupt(format!(
                "fsh offset {} outside a {}-byte segment or not 64-byte aligned",
                self.fsh,
                self.len()
            )));
        }
        let n_slices = u64::from(self.load::<u8>(FSH_N_SLICES_OFF)?);
        let start = self.load::<u64>(FSH_START_BYTE_INDEX_OFF_CL64)?;
        if start == FSH_SIZE + SLICE_SIZE * n_slices {
            return Ok(());
        }
        // Under a 128-byte line start_byte_index sits at 144 and equals 256 + 256 * n_slices.
        let start128 = self.load::<u64>(144).unwrap_or(0);
        if start128 == 256 + 256 * n_slices {
            return Err(SvmError::Unsupported(
                "VPP was built with a 128-byte cache line; this vcl speaks the 64-byte layout"
                    .into(),
            ));
        }
        if start == 0 && n_slices == 0 {
            return Ok(()); // header not initialised yet (a peer still laying it out)
        }
        Err(SvmError::Corrupt(format!(
            "fsh start_byte_index {start} does not match {n_slices} slices (expected {})",
            FSH_SIZE + SLICE_SIZE * n_slices
        )))
    }

    /// Length of the whole mapping in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the mapping is empty (never, for a valid segment).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The memfd backing this segment (to send it to a peer).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Offset of the fifo segment header from the mapping base.
    pub fn fsh_offset(&self) -> u64 {
        self.fsh
    }

    /// Bytes available after the fsh (fsh-relative offsets must stay below this).
    pub fn fsh_span(&self) -> u64 {
        (self.len() as u64).saturating_sub(self.fsh)
    }

    /// The one translation from an fsh-relative offset to a pointer: `off .. off + len` must lie
    /// inside the mapping and `off` (as an address) must be a multiple of `align`.
    #[inline]
    pub fn at(&self, off: u64, len: usize, align: usize) -> Result<*mut u8> {
        self.at_quick(off, len, align)
            .ok_or_else(|| self.refusal(off, len, align))
    }

    /// [`Segment::at`] without building an error (`None` if a check fails), for the fifo fast
    /// paths: a `Result` carrying an error string made each translation there cost ~30
    /// instructions, two per write.
    #[inline(always)]
    pub fn at_quick(&self, off: u64, len: usize, align: usize) -> Option<*mut u8> {
        let end = off.checked_add(len as u64)?;
        if end > self.fsh_span() {
            return None;
        }
        // SAFETY: fsh + off + len <= mapping length, checked above, so the pointer is in bounds.
        let p = unsafe { self.map.as_mut_ptr().add((self.fsh + off) as usize) };
        (align <= 1 || (p as usize) % align == 0).then_some(p)
    }

    /// Why [`Segment::at_quick`] refused `off .. off + len` at `align`: out of line, so that the
    /// checks inline cheaply.
    #[cold]
    #[inline(never)]
    pub(crate) fn refusal(&self, off: u64, len: usize, align: usize) -> SvmError {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.fsh_span() => misaligned(off, align),
            _ => SvmError::Corrupt(format!(
                "offset {off} + {len} bytes is outside the segment ({} bytes after fsh)",
                self.fsh_span()
            )),
        }
    }

    /// The inverse of [`Segment::at`]: fsh-relative offset of a pointer inside this segment.
    pub fn offset_of(&self, p: *const u8) -> Option<u64> {
        let base = self.map.as_ptr() as usize + self.fsh as usize;
        let addr = p as usize;
        (addr >= base && addr < base + self.fsh_span() as usize).then(|| (addr - base) as u64)
    }

    /// Volatile read of a plain integer type at an fsh-relative offset (bounds/alignment checked).
    pub fn load<T: Copy + Plain>(&self, off: u64) -> Result<T> {
        let p = self.at(off, std::mem::size_of::<T>(), std::mem::align_of::<T>())?;
        // SAFETY: `at` checked bounds and alignment; T is a plain integer type valid for any bits.
        Ok(unsafe { (p as *const T).read_volatile() })
    }

    /// Volatile write of a plain integer type at an fsh-relative offset (bounds/alignment checked).
    pub fn store<T: Copy + Plain>(&self, off: u64, v: T) -> Result<()> {
        let p = self.at(off, std::mem::size_of::<T>(), std::mem::align_of::<T>())?;
        // SAFETY: `at` checked bounds and alignment; the segment is mapped read-write.
        unsafe { (p as *mut T).write_volatile(v) };
        Ok(())
    }

    /// Record our pid as the segment's client (VCL does this after mapping).
    pub fn set_client_pid(&self) {
        // SAFETY: every mapping is at least 4096 bytes, so offset 44 of the ssvm header is mapped
        // and 4-byte aligned (the mapping is page aligned).
        unsafe {
            (self.map.as_mut_ptr().add(44) as *mut u32).write_volatile(std::process::id());
        }
    }
}

/// Integer types any bit pattern of which is a valid value.
pub trait Plain {}
impl Plain for u8 {}
impl Plain for u16 {}
impl Plain for u32 {}
impl Plain for u64 {}
impl Plain for i32 {}
impl Plain for i64 {}

/// Make sure the segment's file can never shrink while we map it: touching a page past a
/// shrunk file's end raises SIGBUS, which no error path can catch. VPP seals its memfds with
/// F_SEAL_SHRINK; a peer that did not is sealed here if the memfd allows it, else refused.
/// hugetlbfs memfds cannot carry seals at all (VPP creates those without MFD_ALLOW_SEALING):
/// they are accepted, with the risk stated in docs/wire.md#segment-sealing.
fn ensure_cannot_shrink(file: &File) -> Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a valid fd with integer arguments.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_SHRINK != 0 {
        return Ok(());
    }
    // SAFETY: fcntl on a valid fd with integer arguments.
    if seals >= 0 && unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } == 0 {
        tracing::debug!("segment came without F_SEAL_SHRINK; sealed it");
        return Ok(());
    }
    if is_hugetlbfs(fd) {
        tracing::debug!("hugetlbfs segment: cannot be sealed against shrinking");
        return Ok(());
    }
    Err(SvmError::Corrupt(format!(
        "segment fd can be shrunk under our mapping: expected a memfd sealed with F_SEAL_SHRINK \
         (or one we may seal), got seals {seals:#x}"
    )))
}

fn is_hugetlbfs(fd: RawFd) -> bool {
    const HUGETLBFS_MAGIC: libc::c_long = 0x9584_58f6;
    // SAFETY: statfs is plain data; all-zero is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes into st, which lives for the call.
    unsafe { libc::fstatfs(fd, &mut st) == 0 && st.f_type as libc::c_long == HUGETLBFS_MAGIC }
}

fn map_raw(file: &File, len: usize) -> Result<MmapRaw> {
    MmapOptions::new()
        .len(len)
        .map_raw(file)
        .map_err(|e| SvmError::Os("mmap segment", e.raw_os_error().unwrap_or(0)))
}

#[cold]
#[inline(never)]
fn misaligned(off: u64, align: usize) -> SvmError {
    SvmError::Corrupt(format!("offset {off} is not {align}-byte aligned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(seg: &Segment) -> OwnedFd {
        // SAFETY: dup returns a new fd (or -1, checked) referring to the same memfd.
        let fd = unsafe { libc::dup(seg.fd()) };
        assert!(fd >= 0);
        // SAFETY: fd is new and owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn lay_fsh(seg: &Segment, n_slices: u8) {
        seg.store::<u8>(20, n_slices).unwrap();
        seg.store::<u64>(80, FSH_SIZE + SLICE_SIZE * u64::from(n_slices))
            .unwrap();
    }

    #[test]
    fn create_then_map_elsewhere_sees_same_bytes() {
        let seg = Segment::create("t", 1 << 20, 8192).unwrap();
        lay_fsh(&seg, 2);
        seg.store::<u64>(4096, 0xdead_beef).unwrap();
        let other = Segment::map(dup(&seg)).unwrap();
        assert_eq!(other.fsh_offset(), 8192);
        assert_eq!(other.len(), 1 << 20);
        assert_eq!(other.load::<u64>(4096).unwrap(), 0xdead_beef);
    }

    #[test]
    fn out_of_bounds_and_misaligned_offsets_are_errors() {
        let seg = Segment::create("t", 1 << 16, 8192).unwrap();
        let span = seg.fsh_span();
        assert!(seg.at(span - 8, 8, 8).is_ok());
        assert!(seg.at(span - 7, 8, 1).is_err());
        assert!(seg.at(u64::MAX - 2, 8, 1).is_err());
        assert!(seg.at(3, 8, 8).is_err());
        assert!(seg.load::<u64>(span).is_err());
    }

    #[test]
    fn hostile_headers_are_refused() {
        let seg = Segment::create("t", 1 << 16, 8192).unwrap();
        lay_fsh(&seg, 1);
        // ssvm_size larger than the file
        let hdr = seg.map.as_mut_ptr() as *mut SsvmSharedHeader;
        // SAFETY: the mapping is ours and holds the 120-byte header.
        unsafe { (*hdr).ssvm_size = 1 << 30 };
        assert!(matches!(Segment::map(dup(&seg)), Err(SvmError::Corrupt(_))));
        // fsh outside the mapping
        // SAFETY: as above.
        unsafe {
            (*hdr).ssvm_size = 1 << 16;
            (*hdr).opaque[0] = 1 << 20;
        }
        assert!(matches!(Segment::map(dup(&seg)), Err(SvmError::Corrupt(_))));
    }

    #[test]
    fn a_128_byte_cache_line_layout_is_refused_clearly() {
        let seg = Segment::create("t", 1 << 16, 8192).unwrap();
        seg.store::<u8>(20, 3).unwrap();
        seg.store::<u64>(144, 256 + 256 * 3).unwrap();
        match Segment::map(dup(&seg)) {
            Err(SvmError::Unsupported(m)) => assert!(m.contains("128-byte")),
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    /// A copy of `seg`'s bytes in a new memfd created with `flags` (a peer's own segment).
    fn peer_copy(seg: &Segment, flags: libc::c_uint) -> OwnedFd {
        use std::os::unix::fs::FileExt;
        // SAFETY: a valid NUL-terminated name and flags; returns a new fd or -1 (checked).
        let raw = unsafe { libc::memfd_create(c"peer".as_ptr(), flags) };
        assert!(raw >= 0);
        // SAFETY: raw is new and owned by nobody else.
        let f = unsafe { File::from_raw_fd(raw) };
        let mut bytes = vec![0u8; seg.len()];
        File::from(dup(seg)).read_exact_at(&mut bytes, 0).unwrap();
        f.write_all_at(&bytes, 0).unwrap();
        f.into()
    }

    fn shrink(fd: RawFd) -> std::io::Result<()> {
        // SAFETY: ftruncate on a valid fd with an integer length.
        match unsafe { libc::ftruncate(fd, 4096) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    /// A peer that shrinks a segment under our mapping would make the next access SIGBUS:
    /// our own segments are sealed, an unsealed-but-sealable one is sealed when mapped, and
    /// one that cannot be sealed is refused.
    #[test]
    fn segments_cannot_shrink_under_a_mapping() {
        let seg = Segment::create("t", 1 << 16, 8192).unwrap();
        lay_fsh(&seg, 1);
        assert_eq!(
            shrink(seg.fd()).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );

        let sealable = peer_copy(&seg, libc::MFD_ALLOW_SEALING);
        let raw = sealable.as_raw_fd();
        let peer_side = File::from(dup_raw(raw));
        let mapped = Segment::map(sealable).unwrap();
        assert_eq!(
            shrink(peer_side.as_raw_fd()).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
        assert_eq!(mapped.load::<u8>(20).unwrap(), 1);

        let unsealable = peer_copy(&seg, 0);
        match Segment::map(unsealable) {
            Err(SvmError::Corrupt(m)) => assert!(m.contains("F_SEAL_SHRINK"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn dup_raw(fd: RawFd) -> OwnedFd {
        // SAFETY: dup returns a new fd (or -1, checked).
        let d = unsafe { libc::dup(fd) };
        assert!(d >= 0);
        // SAFETY: d is new and owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(d) }
    }

    proptest::proptest! {
        /// The fast paths' translation accepts exactly what `at` accepts, at the same address:
        /// offsets past the end, lengths that wrap, and misaligned places are refused.
        #[test]
        fn at_quick_agrees_with_at(
            off in proptest::prop_oneof![0u64..(80 << 10), (u64::MAX - 64)..u64::MAX],
            len in proptest::prop_oneof![0usize..9000, proptest::strategy::Just(usize::MAX)],
            align in proptest::prop_oneof![proptest::strategy::Just(1usize), proptest::strategy::Just(8), proptest::strategy::Just(64)],
        ) {
            let seg = Segment::create("at-quick", 64 << 10, 0).unwrap();
            proptest::prop_assert_eq!(seg.at(off, len, align).ok(), seg.at_quick(off, len, align));
        }
    }
}
