//! The C ABI the fuzz harness drives: declared here as a C program's header would, so every
//! call goes through the exported `extern "C"` symbols.
#![allow(dead_code)]

use std::ffi::{c_char, c_int, c_void};

use vcl::ffi::{vcl_poll_t, vcl_si_set, vppcom_cert_key_pair_t, vppcom_data_segment_t};

/// vppcom_endpt_t (the layout of include/vcl/vppcom.h).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Endpt {
    pub unused: u8,
    pub is_ip4: u8,
    pub ip: *mut u8,
    pub port: u16,
    pub unused2: u64,
    pub app_tlv_len: u32,
    pub app_tlvs: *mut u8,
}

extern "C" {
    pub fn vppcom_app_create(name: *const c_char) -> c_int;
    pub fn vppcom_app_destroy();
    pub fn vppcom_session_attr(sh: u32, op: u32, buf: *mut c_void, len: *mut u32) -> c_int;
    pub fn vppcom_epoll_create() -> c_int;
    pub fn vppcom_epoll_ctl(vep: u32, op: c_int, sh: u32, ev: *mut libc::epoll_event) -> c_int;
    pub fn vppcom_epoll_wait(vep: u32, ev: *mut libc::epoll_event, max: c_int, ms: f64) -> c_int;
    pub fn vppcom_select(
        n_bits: c_int,
        rd: *mut vcl_si_set,
        wr: *mut vcl_si_set,
        ex: *mut vcl_si_set,
        wait: f64,
    ) -> c_int;
    pub fn vppcom_poll(vp: *mut vcl_poll_t, n: u32, wait: f64) -> c_int;
    pub fn vcl_version() -> *const c_char;
    pub fn vcl_config_show(buf: *mut c_char, len: usize) -> c_int;
    pub fn vppcom_session_read(sh: u32, buf: *mut c_void, n: usize) -> c_int;
    pub fn vppcom_session_write(sh: u32, buf: *mut c_void, n: usize) -> c_int;
    pub fn vppcom_session_write_msg(sh: u32, buf: *mut c_void, n: usize) -> c_int;
    pub fn vppcom_session_recvfrom(
        sh: u32,
        buf: *mut c_void,
        len: u32,
        flags: c_int,
        ep: *mut Endpt,
    ) -> c_int;
    pub fn vppcom_session_sendto(
        sh: u32,
        buf: *mut c_void,
        len: u32,
        flags: c_int,
        ep: *mut Endpt,
    ) -> c_int;
    pub fn vppcom_session_read_segments(
        sh: u32,
        ds: *mut vppcom_data_segment_t,
        n: u32,
        max: u32,
    ) -> c_int;
    pub fn vppcom_session_write_segments(sh: u32, ds: *mut vppcom_data_segment_t, n: u32) -> c_int;
    pub fn vppcom_session_free_segments(sh: u32, n: u32);
    pub fn vppcom_session_index(sh: u32) -> c_int;
    pub fn vppcom_session_worker(sh: u32) -> c_int;
    pub fn vppcom_proto_str(proto: c_int) -> *const c_char;
    pub fn vppcom_retval_str(rv: c_int) -> *const c_char;
    pub fn vppcom_unformat_proto(proto: *mut u8, s: *mut c_char) -> c_int;
    pub fn vppcom_add_cert_key_pair(ck: *mut vppcom_cert_key_pair_t) -> c_int;
    pub fn vppcom_del_cert_key_pair(index: u32) -> c_int;
    pub fn vppcom_session_create(proto: u8, nb: u8) -> c_int;
    pub fn vppcom_session_shutdown(sh: u32, how: c_int) -> c_int;
    pub fn vppcom_session_close(sh: u32) -> c_int;
    pub fn vppcom_session_terminate(sh: u32) -> c_int;
    pub fn vppcom_session_bind(sh: u32, ep: *mut Endpt) -> c_int;
    pub fn vppcom_session_listen(sh: u32, q: u32) -> c_int;
    pub fn vppcom_session_accept(sh: u32, ep: *mut Endpt, flags: u32) -> c_int;
    pub fn vppcom_session_connect(sh: u32, ep: *mut Endpt) -> c_int;
    pub fn vppcom_session_stream_connect(sh: u32, parent: u32) -> c_int;
    pub fn vppcom_session_is_stream(sh: u32) -> c_int;
    pub fn vppcom_session_is_connectable_listener(sh: u32) -> c_int;
    pub fn vppcom_session_listener(sh: u32) -> c_int;
    pub fn vppcom_session_n_accepted(sh: u32) -> c_int;
    pub fn vppcom_session_get_error(sh: u32) -> c_int;
    pub fn vppcom_worker_register() -> c_int;
    pub fn vppcom_worker_unregister();
    pub fn vppcom_worker_index() -> c_int;
    pub fn vppcom_worker_index_set(index: c_int);
    pub fn vppcom_worker_mqs_epfd() -> c_int;
    pub fn vppcom_mq_epoll_fd() -> c_int;
    pub fn vppcom_worker_is_detached() -> c_int;
}
