//! The argument-heavy calls of the fuzz (attr, select, strings, cert/key pairs, worker calls),
//! split from calls.rs to keep files short.

use std::ffi::{c_char, c_int, c_void};
use std::ptr::null_mut;

use vcl::ffi::{vcl_si_set, vppcom_cert_key_pair_t};

use super::abi::*;
use super::calls::{Fuzz, BUF, ENDPT_LEN};

impl Fuzz {
    /// vppcom_session_attr: any op number, the length each op wants or a random one (never
    /// more than the buffer holds), NULL buffer or length now and then.
    pub fn attr(&mut self) -> c_int {
        let h = self.handle();
        let op = if self.rng.one_in(10) {
            self.rng.u32()
        } else {
            self.rng.below(54) as u32
        };
        for w in self.scratch.iter_mut() {
            *w = 0;
        }
        let mut len: u32 = match self.rng.below(4) {
            0 => 4,
            1 => 8,
            2 => ENDPT_LEN,
            _ => self.rng.below(8 * 64 + 1) as u32,
        };
        if matches!(op, 4 | 5 | 6 | 43 | 45) {
            let ep = self.endpt(true);
            // SAFETY: scratch is 512 bytes, 8-aligned, larger than an endpoint.
            unsafe { self.scratch.as_mut_ptr().cast::<Endpt>().write(ep) };
        } else {
            for w in self.scratch.iter_mut().take(4) {
                *w = self.rng.next();
            }
            if op == 3 {
                // SET_FLAGS: keep every session non-blocking (see the module comment)
                self.scratch[0] |= libc::O_NONBLOCK as u64;
            }
        }
        let buf: *mut c_void = if self.rng.one_in(20) {
            null_mut()
        } else {
            self.scratch.as_mut_ptr().cast()
        };
        let lenp: *mut u32 = if self.rng.one_in(20) {
            null_mut()
        } else {
            &mut len
        };
        // SAFETY: buf is NULL or 512 bytes, len <= 512.
        unsafe { vppcom_session_attr(h, op, buf, lenp) }
    }

    pub fn select(&mut self) -> c_int {
        let mut maps = [[0 as vcl_si_set; 16]; 3];
        let n_bits = match self.rng.below(10) {
            0 => self.rng.below(4) as c_int - 2,
            1 => 1024,
            _ => self.rng.below(600) as c_int,
        };
        for map in maps.iter_mut() {
            for _ in 0..self.rng.below(6) {
                let h = self.handle() & 0xFF_FFFF;
                if h < 1024 {
                    map[h as usize / 64] |= 1 << (h % 64);
                }
            }
            if self.rng.one_in(20) {
                map[self.rng.below(16) as usize] = self.rng.next() as vcl_si_set;
            }
        }
        let [a, b, c] = &mut maps;
        let mut ptr = |m: &mut [vcl_si_set; 16]| {
            if self.rng.one_in(3) {
                null_mut()
            } else {
                m.as_mut_ptr()
            }
        };
        let (pa, pb, pc) = (ptr(a), ptr(b), ptr(c));
        let wait = self.small_wait(0.001);
        // SAFETY: each map is NULL or 1024 bits, n_bits <= 1024.
        unsafe { vppcom_select(n_bits, pa, pb, pc, wait) }
    }

    pub fn strings(&mut self) -> c_int {
        const NAMES: [&[u8]; 8] = [
            b"TCP\0", b"udp\0", b"TLS\0", b"QUIC\0", b"DTLS\0", b"SRTP\0", b"HTTP\0", b"\0",
        ];
        let mut junk = [0u8; 32];
        // SAFETY: (all calls here) NUL-terminated strings, writable buffers of the lengths passed.
        unsafe {
            match self.rng.below(5) {
                0 => {
                    let p = vppcom_proto_str(self.rng.below(12) as c_int - 2);
                    c_int::from(p.is_null())
                }
                1 => {
                    let rv = match self.rng.below(3) {
                        0 => -(self.rng.below(140) as c_int),
                        1 => self.rng.u32() as c_int,
                        _ => 0,
                    };
                    c_int::from(vppcom_retval_str(rv).is_null())
                }
                2 => {
                    let mut proto = 0u8;
                    let s = if self.rng.one_in(3) {
                        for b in junk.iter_mut().take(31) {
                            *b = 1 + self.rng.below(255) as u8;
                        }
                        junk.as_mut_ptr()
                    } else {
                        let mut n = [0u8; 8];
                        let name = self.rng.pick(&NAMES).unwrap();
                        n[..name.len()].copy_from_slice(name);
                        junk[..8].copy_from_slice(&n);
                        junk.as_mut_ptr()
                    };
                    let s = if self.rng.one_in(10) { null_mut() } else { s };
                    let pp = if self.rng.one_in(10) {
                        null_mut()
                    } else {
                        &mut proto
                    };
                    vppcom_unformat_proto(pp, s.cast::<c_char>())
                }
                3 => c_int::from(vcl_version().is_null()),
                _ => {
                    let n = self.len(BUF);
                    let b = self.buf_ptr();
                    vcl_config_show(b.cast(), if b.is_null() { n } else { n.min(BUF) })
                }
            }
        }
    }

    pub fn cert_key(&mut self) -> c_int {
        const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIfuzz\n-----END CERTIFICATE-----\n";
        if (self.rng.one_in(2) && !self.ckpairs.is_empty()) || self.rng.one_in(8) {
            let i = if self.rng.one_in(4) {
                self.rng.u32()
            } else {
                let k = self.rng.below(self.ckpairs.len().max(1) as u64) as usize;
                if k < self.ckpairs.len() {
                    self.ckpairs.swap_remove(k)
                } else {
                    0
                }
            };
            // SAFETY: a plain call.
            return unsafe { vppcom_del_cert_key_pair(i) };
        }
        if self.ckpairs.len() >= 16 {
            return 0;
        }
        let mut cert = PEM.to_vec();
        let mut key = PEM.to_vec();
        let mut ck = vppcom_cert_key_pair_t {
            cert: cert.as_mut_ptr().cast(),
            key: key.as_mut_ptr().cast(),
            cert_len: self.rng.below(PEM.len() as u64 + 1) as u32,
            key_len: self.rng.below(PEM.len() as u64 + 1) as u32,
        };
        if self.rng.one_in(10) {
            ck.cert = null_mut();
        }
        if self.rng.one_in(10) {
            ck.key = null_mut();
        }
        let p = if self.rng.one_in(20) {
            null_mut()
        } else {
            &mut ck
        };
        // SAFETY: cert/key are NULL or as long as their lengths.
        let rv = unsafe { vppcom_add_cert_key_pair(p) };
        if rv >= 0 {
            self.ckpairs.push(rv as u32);
        }
        rv
    }

    pub fn worker(&mut self) -> c_int {
        // SAFETY: (all calls here) plain calls.
        unsafe {
            match self.rng.below(40) {
                0..=9 => vppcom_worker_index(),
                10..=19 => vppcom_worker_is_detached(),
                20..=24 => vppcom_worker_mqs_epfd(),
                25..=29 => vppcom_mq_epoll_fd(),
                30..=33 => vppcom_worker_register(),
                34 | 35 => {
                    vppcom_worker_index_set(0);
                    0
                }
                36..=38 => {
                    self.off_worker = true;
                    let i = match self.rng.below(3) {
                        0 => self.rng.below(4) as c_int,
                        1 => -1,
                        _ => self.rng.u32() as c_int,
                    };
                    vppcom_worker_index_set(i);
                    0
                }
                _ if self.rng.one_in(20) => {
                    // the thread's worker goes: every handle stale until the app is reset
                    self.abnormal = true;
                    vppcom_worker_unregister();
                    0
                }
                _ => vppcom_worker_index(),
            }
        }
    }
}
