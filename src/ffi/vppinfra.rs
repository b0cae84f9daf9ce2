//! Upstream's libvppcom gives the process a vppinfra heap: `vppcom_app_create` maps `heapsize`
//! bytes and calls vppinfra's `clib_mem_init` on them (`vcl/vcl_private.c`, `vcl_heap_alloc`).
//! Programs linked with vppinfra rely on it: VPP's `vcl_test_client -p http` builds its
//! requests with vppinfra vectors and crashes without a heap. vcl itself needs no vppinfra; when
//! the process has `clib_mem_init` (it links vppinfra), we do the same once per process.

use std::ffi::c_void;
use std::sync::Once;

type ClibMemInit = unsafe extern "C" fn(base: *mut c_void, size: usize) -> *mut c_void;

static INIT: Once = Once::new();

/// Give a process that links vppinfra its heap, as upstream's app create does (once).
pub(crate) fn init_heap(heapsize: u64) {
    INIT.call_once(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks a symbol up.
        let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"clib_mem_init".as_ptr()) };
        if sym.is_null() {
            return;
        }
        let Ok(size) = usize::try_from(heapsize) else {
            return;
        };
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            tracing::warn!("vppinfra heap: mmap of {size} bytes failed");
            return;
        }
        // `sym` is vppinfra's `void *clib_mem_init (void *base, uword size)`, found in
        // this process; it takes ownership of the mapping just made (never unmapped, as upstream).
        // SAFETY: see above.
        let heap = unsafe {
            let f: ClibMemInit = std::mem::transmute::<*mut c_void, ClibMemInit>(sym);
            f(mem, size)
        };
        tracing::debug!(?heap, size, "vppinfra heap for the app");
    });
}
