//! App lifecycle exports: vppcom_app_create, vppcom_app_create_with_config, vppcom_app_destroy.

use std::ffi::{c_char, c_int};

use super::ptr::{opt_cstr, opt_ref};
use super::{guard, types::vppcom_cfg_t};
use crate::app::{self, CreateError};
use crate::config::{self, Config};

fn create_rv(r: Result<(), CreateError>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(CreateError::Vcl(e)) => e.code(),
        Err(CreateError::AttachFailed) => -1,
    }
}

/// Read a C string the caller owns; None for NULL or non-UTF-8 (logged).
///
/// # Safety
/// `p` must be NULL or point at a NUL-terminated string.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn opt_str(p: *const c_char, what: &str) -> Option<String> {
    // SAFETY: per this function's contract.
    match unsafe { opt_cstr(p) }?.to_str() {
        Ok(s) => Some(s.to_owned()),
        Err(_) => {
            tracing::warn!("{what} is not UTF-8; ignored");
            None
        }
    }
}

/// Attach to VPP, configured by vcl.conf (VCL_CONFIG) and the VCL_* environment.
#[no_mangle]
pub extern "C" fn vppcom_app_create(app_name: *const c_char) -> c_int {
    guard("vppcom_app_create", || {
        // SAFETY: app_name is NULL or a C string, per vppcom.h.
        let name = unsafe { opt_str(app_name, "app name") };
        let parsed = match config::load() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{e}");
                return e.vppcom_code();
            }
        };
        for w in &parsed.warnings {
            tracing::warn!("{w}");
        }
        super::vppinfra::init_heap(parsed.config.heapsize);
        create_rv(app::create(parsed.config, name))
    })
}

/// Convert the C configuration into ours, the way upstream copies it field by field.
///
/// # Safety
/// Every string pointer in `c` must be NULL or NUL-terminated.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn config_from_c(c: &vppcom_cfg_t) -> Result<Config, c_int> {
    let mut cfg = Config {
        heapsize: c.heapsize as u64,
        max_workers: c.max_workers,
        segment_baseva: c.segment_baseva as u64,
        segment_size: c.segment_size as u64,
        add_segment_size: c.add_segment_size as u64,
        preallocated_fifo_pairs: c.preallocated_fifo_pairs,
        rx_fifo_size: c.rx_fifo_size,
        tx_fifo_size: c.tx_fifo_size,
        event_queue_size: c.event_queue_size,
        app_proxy_transport_tcp: c.app_proxy_transport_tcp != 0,
        app_proxy_transport_udp: c.app_proxy_transport_udp != 0,
        app_scope_local: c.app_scope_local != 0,
        app_scope_global: c.app_scope_global != 0,
        namespace_secret: c.namespace_secret,
        use_mq_eventfd: c.use_mq_eventfd != 0,
        app_timeout: c.app_timeout,
        session_timeout: c.session_timeout,
        tls_engine: c.tls_engine,
        mt_wrk_supported: c.mt_wrk_supported != 0,
        huge_page: c.huge_page != 0,
        app_original_dst: c.app_original_dst != 0,
        debug_level: u32::from(c.debug_level),
        ..Config::default()
    };
    // SAFETY: the caller guarantees NULL or NUL-terminated strings (all five reads).
    unsafe {
        cfg.namespace_id = opt_str(c.namespace_id, "namespace_id");
        cfg.vpp_bapi_socket_name = opt_str(c.vpp_bapi_socket_name, "vpp_bapi_socket_name");
        cfg.app_name = opt_str(c.app_name, "app_name");
        if let Some(p) = opt_str(c.event_log_path, "event_log_path") {
            cfg.event_log_path = p;
        }
        if let Some(s) = opt_str(c.vpp_app_socket_api, "vpp_app_socket_api") {
            cfg.app_socket_api = Some(config::parse_sapi_addr(&s).map_err(|e| {
                tracing::error!("vpp_app_socket_api: {e}");
                super::VPPCOM_EINVAL
            })?);
        }
    }
    Ok(cfg)
}

/// Attach to VPP with a configuration built by the caller (no file, no environment).
/// A NULL `vcl_cfg` means all defaults.
#[no_mangle]
pub extern "C" fn vppcom_app_create_with_config(vcl_cfg: *mut vppcom_cfg_t) -> c_int {
    guard("vppcom_app_create_with_config", || {
        // SAFETY: vcl_cfg is NULL or points at a vppcom_cfg_t, per vppcom.h.
        let cfg = match unsafe { opt_ref(vcl_cfg.cast_const()) } {
            None => Config::default(),
            // SAFETY: its string fields are NULL or C strings, per vppcom.h.
            Some(c) => match unsafe { config_from_c(c) } {
                Ok(cfg) => cfg,
                Err(rv) => return rv,
            },
        };
        let name = cfg.app_name.clone();
        super::vppinfra::init_heap(cfg.heapsize);
        create_rv(app::create(cfg, name))
    })
}

/// Detach from VPP and release everything the app holds.
#[no_mangle]
pub extern "C" fn vppcom_app_destroy() {
    guard("vppcom_app_destroy", app::destroy)
}
