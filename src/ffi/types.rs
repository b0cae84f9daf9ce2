//! The public structs of vppcom.h, laid out exactly as VPP v26.06's (x86_64).

use std::ffi::c_char;

/// A VCL session handle: `(worker << 24) | session_index`.
pub type vcl_session_handle_t = u32;

/// One word of a vppcom_select bitmap.
pub type vcl_si_set = std::ffi::c_ulong;

/// A type-length-value option attached to an endpoint; `data` has `data_len` bytes.
#[repr(C)]
pub struct vppcom_endpt_tlv_t {
    pub data_type: u32,
    pub data_len: u32,
    pub data: [u8; 0],
}

/// A transport endpoint: address (network order, 4 or 16 bytes at `ip`) and port.
#[repr(C)]
pub struct vppcom_endpt_t {
    /// unused
    pub unused: u8,
    /// 1 if `ip` points at an IPv4 address
    pub is_ip4: u8,
    /// the address, network byte order
    pub ip: *mut u8,
    /// the port, network byte order
    pub port: u16,
    /// unused
    pub unused2: u64,
    /// bytes of TLVs at `app_tlvs`
    pub app_tlv_len: u32,
    /// application-provided TLVs
    pub app_tlvs: *mut vppcom_endpt_tlv_t,
}

/// A certificate and key in PEM, for vppcom_add_cert_key_pair.
#[repr(C)]
pub struct vppcom_cert_key_pair_t {
    pub cert: *mut c_char,
    pub key: *mut c_char,
    pub cert_len: u32,
    pub key_len: u32,
}

/// One entry of vppcom_poll.
#[repr(C)]
pub struct vcl_poll_t {
    pub fds_ndx: u32,
    pub sh: vcl_session_handle_t,
    pub events: i16,
    pub revents: i16,
}

/// A zero-copy view of fifo data.
#[repr(C)]
pub struct vppcom_data_segment_t {
    pub data: *mut u8,
    pub len: u32,
}

/// The two segments a fifo's readable bytes can span.
pub type vppcom_data_segments_t = [vppcom_data_segment_t; 2];

/// VCL configuration passed to vppcom_app_create_with_config (v26.02+).
#[repr(C)]
pub struct vppcom_cfg_t {
    pub heapsize: usize,
    pub max_workers: u32,
    pub segment_baseva: usize,
    pub segment_size: usize,
    pub add_segment_size: usize,
    pub preallocated_fifo_pairs: u32,
    pub rx_fifo_size: u32,
    pub tx_fifo_size: u32,
    pub event_queue_size: u32,
    pub app_proxy_transport_tcp: u8,
    pub app_proxy_transport_udp: u8,
    pub app_scope_local: u8,
    pub app_scope_global: u8,
    pub namespace_id: *mut c_char,
    pub namespace_secret: u64,
    pub use_mq_eventfd: u8,
    pub app_timeout: f64,
    pub session_timeout: f64,
    pub event_log_path: *mut c_char,
    /// app socket api socket name
    pub vpp_app_socket_api: *mut c_char,
    /// binary api socket name
    pub vpp_bapi_socket_name: *mut c_char,
    pub app_name: *mut c_char,
    pub tls_engine: u32,
    pub mt_wrk_supported: u8,
    pub huge_page: u8,
    pub app_original_dst: u8,
    pub debug_level: u8,
}

macro_rules! assert_layout {
    ($t:ty, $size:expr, [$($f:ident @ $off:expr),*]) => {
        const _: () = {
            assert!(std::mem::size_of::<$t>() == $size);
            $( assert!(std::mem::offset_of!($t, $f) == $off); )*
        };
    };
}

assert_layout!(
    vppcom_endpt_tlv_t,
    8,
    [data_type @ 0, data_len @ 4, data @ 8]
);
assert_layout!(
    vppcom_endpt_t,
    48,
    [unused @ 0, is_ip4 @ 1, ip @ 8, port @ 16, unused2 @ 24, app_tlv_len @ 32, app_tlvs @ 40]
);
assert_layout!(
    vppcom_cert_key_pair_t,
    24,
    [cert @ 0, key @ 8, cert_len @ 16, key_len @ 20]
);
assert_layout!(
    vcl_poll_t,
    12,
    [fds_ndx @ 0, sh @ 4, events @ 8, revents @ 10]
);
assert_layout!(vppcom_data_segment_t, 16, [data @ 0, len @ 8]);
assert_layout!(
    vppcom_cfg_t,
    144,
    [heapsize @ 0, max_workers @ 8, segment_baseva @ 16, segment_size @ 24, add_segment_size @ 32, preallocated_fifo_pairs @ 40, rx_fifo_size @ 44, tx_fifo_size @ 48, event_queue_size @ 52, app_proxy_transport_tcp @ 56, app_proxy_transport_udp @ 57, app_scope_local @ 58, app_scope_global @ 59, namespace_id @ 64, namespace_secret @ 72, use_mq_eventfd @ 80, app_timeout @ 88, session_timeout @ 96, event_log_path @ 104, vpp_app_socket_api @ 112, vpp_bapi_socket_name @ 120, app_name @ 128, tls_engine @ 136, mt_wrk_supported @ 140, huge_page @ 141, app_original_dst @ 142, debug_level @ 143]
);
