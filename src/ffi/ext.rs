//! vcl extensions: not in upstream's vppcom.h, so a program that uses them is vcl-specific.

use std::ffi::{c_char, c_int, CStr};

use super::ptr::out_slice;
use super::{guard, guard_or, VPPCOM_EFAULT};
use crate::config::{self, Config};

/// "26.6.0 (VPP v26.06 session ABI)": the library version and the VPP ABI it speaks.
#[no_mangle]
pub extern "C" fn vcl_version() -> *const c_char {
    const V: &CStr = c"26.6.0 (VPP v26.06 session ABI)";
    guard_or("vcl_version", V.as_ptr(), || V.as_ptr())
}

fn describe(source: Option<&str>, c: &Config) -> String {
    let sock = c
        .app_socket_api
        .as_ref()
        .map(crate::sapi::addr_display)
        .unwrap_or_else(|| "(none)".into());
    format!(
        "config-file {}\napp-socket-api {sock}\nsegment-size {}\nadd-segment-size {}\n\
         rx-fifo-size {}\ntx-fifo-size {}\nevent-queue-size {}\npreallocated-fifo-pairs {}\n\
         app-scope-local {}\napp-scope-global {}\nuse-mq-eventfd {}\nmax-workers {}\n\
         tls-engine {}\nattach-flags {:#x}\n",
        source.unwrap_or("(none: defaults)"),
        c.segment_size,
        c.add_segment_size,
        c.rx_fifo_size,
        c.tx_fifo_size,
        c.event_queue_size,
        c.preallocated_fifo_pairs,
        c.app_scope_local,
        c.app_scope_global,
        c.use_mq_eventfd,
        c.max_workers,
        c.tls_engine,
        c.attach_flags(),
    )
}

/// Write the configuration vppcom_app_create would use (VCL_CONFIG + VCL_* environment) as
/// `keyword value` lines into `buf` (NUL-terminated, truncated to `len`). Returns the full text
/// length, or a VPPCOM_E* code when the configuration cannot be read.
#[no_mangle]
pub extern "C" fn vcl_config_show(buf: *mut c_char, len: usize) -> c_int {
    guard("vcl_config_show", || {
        // SAFETY: buf is NULL or has room for `len` bytes, per this export's contract.
        let out = match unsafe { out_slice(buf.cast::<u8>(), len) } {
            Some(out) if !out.is_empty() => out,
            _ => return VPPCOM_EFAULT,
        };
        let text = match config::load() {
            Ok(p) => describe(p.source.as_deref(), &p.config),
            Err(e) => {
                tracing::error!("{e}");
                return e.vppcom_code();
            }
        };
        let n = text.len().min(out.len() - 1);
        out[..n].copy_from_slice(&text.as_bytes()[..n]);
        out[n] = 0;
        text.len() as c_int
    })
}
