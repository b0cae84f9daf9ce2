//! The vppcom C ABI as the Rust integration tests call it: declared here once, linked against the
//! library's exported symbols, so a test calls exactly what a C program calls (not the Rust side).
#![allow(dead_code)]

use vcl::ffi::{vcl_poll_t, vcl_si_set};

/// `vppcom_endpt_t` as a C program lays it out.
#[repr(C)]
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
    pub fn vppcom_app_create(name: *const std::ffi::c_char) -> i32;
    pub fn vppcom_app_destroy();
    pub fn vppcom_session_create(proto: u8, nb: u8) -> i32;
    pub fn vppcom_session_bind(sh: u32, ep: *mut Endpt) -> i32;
    pub fn vppcom_session_listen(sh: u32, q: u32) -> i32;
    pub fn vppcom_session_accept(sh: u32, ep: *mut Endpt, flags: u32) -> i32;
    pub fn vppcom_session_connect(sh: u32, ep: *mut Endpt) -> i32;
    pub fn vppcom_session_read(sh: u32, buf: *mut u8, n: usize) -> i32;
    pub fn vppcom_session_write(sh: u32, buf: *const u8, n: usize) -> i32;
    pub fn vppcom_session_close(sh: u32) -> i32;
    pub fn vppcom_session_shutdown(sh: u32, how: i32) -> i32;
    pub fn vppcom_epoll_create() -> i32;
    pub fn vppcom_epoll_ctl(vep: u32, op: i32, sh: u32, ev: *mut libc::epoll_event) -> i32;
    pub fn vppcom_epoll_wait(vep: u32, ev: *mut libc::epoll_event, max: i32, ms: f64) -> i32;
    pub fn vppcom_poll(vp: *mut vcl_poll_t, n: u32, wait: f64) -> i32;
    pub fn vppcom_select(
        n_bits: i32,
        rd: *mut vcl_si_set,
        wr: *mut vcl_si_set,
        ex: *mut vcl_si_set,
        wait: f64,
    ) -> i32;
    pub fn vppcom_worker_is_detached() -> i32;
    pub fn vppcom_worker_mqs_epfd() -> i32;
    pub fn vppcom_session_attr(sh: u32, op: u32, buf: *mut libc::c_void, len: *mut u32) -> i32;
}
