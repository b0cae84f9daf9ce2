//! One random C-API call per `step`: the op and every argument drawn from the seeded
//! generator. Handles come from what earlier calls returned (live or already closed), from
//! nearby indices and from garbage; buffers are NULL or real (never shorter than the length
//! passed with them: that would be the caller's bug, not the library's). Sessions are always
//! non-blocking (created so, accepted with O_NONBLOCK, SET_FLAGS keeps O_NONBLOCK) and waits
//! are bounded small, so no call may legitimately block: a hang is a bug.

use std::ffi::{c_int, c_void};
use std::ptr::{null, null_mut};

use vcl::ffi::{vcl_poll_t, vppcom_data_segment_t};

use super::abi::*;
use super::rng::Rng;

/// Op names and weights (relative frequency).
pub const OPS: &[(&str, u64)] = &[
    ("create", 40),
    ("bind", 30),
    ("listen", 25),
    ("accept", 60),
    ("connect", 6),
    ("read", 120),
    ("write", 100),
    ("write_msg", 20),
    ("recvfrom", 20),
    ("sendto", 20),
    ("read_segments", 30),
    ("write_segments", 20),
    ("free_segments", 15),
    ("close", 35),
    ("shutdown", 15),
    ("terminate", 8),
    ("attr", 120),
    ("epoll_create", 6),
    ("epoll_ctl", 60),
    ("epoll_wait", 60),
    ("select", 30),
    ("poll", 40),
    ("query", 60),
    ("strings", 20),
    ("cert_key", 2),
    ("worker", 10),
    ("app", 1),
];

/// Most handles (sessions and epoll sets) remembered; older ones are closed when forgotten,
/// so the library's tables and the peer's kernel sockets stay bounded over 10M calls.
const MAX_HANDLES: usize = 384;
const MAX_VEPS: usize = 16;
pub const BUF: usize = 64 << 10;
/// An endpoint-sized attr buffer (`vppcom_endpt_t`).
pub const ENDPT_LEN: u32 = std::mem::size_of::<Endpt>() as u32;

pub struct Fuzz {
    pub rng: Rng,
    pub handles: Vec<u32>,
    /// Handles that connected, accepted or listen: most calls aim at them, where state is.
    pub hot: Vec<u32>,
    pub veps: Vec<u32>,
    /// Ports our listeners bind (the chaos thread connects to them).
    pub listen_ports: Vec<u16>,
    /// Kernel listeners of the chaos thread (our connects go there).
    pub kernel_ports: Vec<u16>,
    /// A loopback port nobody listens on.
    pub dead_port: u16,
    pub buf: Vec<u8>,
    pub scratch: [u64; 64],
    pub tlvs: [u8; 256],
    pub ip: [u8; 16],
    pub ckpairs: Vec<u32>,
    /// The thread's worker was unregistered: reset the app now and then.
    pub abnormal: bool,
    /// The thread points at another (maybe no) worker: point it back now and then.
    pub off_worker: bool,
    pub app_name: std::ffi::CString,
    /// Per op: calls, calls that returned >= 0.
    pub stats: Vec<(u64, u64)>,
    /// (op, return value) counts, for VCL_FUZZ_API_VERBOSE.
    pub rvs: std::collections::BTreeMap<(usize, c_int), u64>,
    pub total_weight: u64,
}

impl Fuzz {
    pub fn new(seed: u64, app_name: &str) -> Fuzz {
        Fuzz {
            rng: Rng::new(seed),
            handles: Vec::new(),
            hot: Vec::new(),
            veps: Vec::new(),
            listen_ports: Vec::new(),
            kernel_ports: Vec::new(),
            dead_port: 1,
            buf: vec![0x5a; BUF],
            scratch: [0; 64],
            tlvs: [0; 256],
            ip: [0; 16],
            ckpairs: Vec::new(),
            abnormal: false,
            off_worker: false,
            app_name: std::ffi::CString::new(app_name).unwrap(),
            stats: vec![(0, 0); OPS.len()],
            rvs: Default::default(),
            total_weight: OPS.iter().map(|o| o.1).sum(),
        }
    }

    /// Draw the next op (index into [`OPS`]).
    pub fn next_op(&mut self) -> usize {
        let mut x = self.rng.below(self.total_weight);
        for (i, (_, w)) in OPS.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        0
    }

    /// Make op `op` once.
    pub fn step(&mut self, op: usize) {
        let rv = self.call(op);
        let s = &mut self.stats[op];
        s.0 += 1;
        s.1 += u64::from(rv >= 0);
        *self.rvs.entry((op, rv.min(1))).or_default() += 1;
    }

    pub fn handle(&mut self) -> u32 {
        match self.rng.below(20) {
            0..=6 if !self.hot.is_empty() => self.rng.pick(&self.hot).unwrap(),
            0..=13 if !self.handles.is_empty() => self.rng.pick(&self.handles).unwrap(),
            14 | 15 if !self.veps.is_empty() => self.rng.pick(&self.veps).unwrap(),
            16 => self.rng.u32(),
            17 => ((self.rng.below(4) as u32) << 24) | self.rng.below(600) as u32,
            18 => [u32::MAX, 0, 0xFF_FFFF, 1 << 24][self.rng.below(4) as usize],
            _ => self.rng.below(64) as u32,
        }
    }

    pub fn remember(&mut self, rv: c_int, vep: bool) {
        if rv < 0 {
            return;
        }
        let (list, max) = if vep {
            (&mut self.veps, MAX_VEPS)
        } else {
            (&mut self.handles, MAX_HANDLES)
        };
        list.push(rv as u32);
        if list.len() > max {
            let old = list.swap_remove(self.rng.below(max as u64) as usize);
            // SAFETY: a plain call with a handle value.
            unsafe { vppcom_session_close(old) };
        }
    }

    /// Remember `h` as interesting (a bounded list; forgetting one closes nothing).
    pub fn heat(&mut self, h: u32) {
        self.hot.push(h);
        if self.hot.len() > 64 {
            self.hot.swap_remove(self.rng.below(64) as usize);
        }
    }

    pub fn small_wait(&mut self, scale: f64) -> f64 {
        match self.rng.below(100) {
            0..=89 => 0.0,
            90..=98 => self.rng.below(2000) as f64 / 1000.0 * scale,
            _ => self.rng.below(20) as f64 * scale,
        }
    }

    /// A byte count up to `max`, biased to edges.
    pub fn len(&mut self, max: usize) -> usize {
        match self.rng.below(8) {
            0 => 0,
            1 => 1,
            2 => max,
            3 => self.rng.below(64) as usize,
            _ => self.rng.below(max as u64 + 1) as usize,
        }
    }

    pub fn buf_ptr(&mut self) -> *mut c_void {
        if self.rng.one_in(25) {
            null_mut()
        } else {
            self.buf.as_mut_ptr().cast()
        }
    }

    /// An endpoint on loopback only (tests never reach another address): 127.0.0.1, ::1,
    /// or a NULL `ip`; the port one of ours, the chaos thread's, a dead one, 0 or random.
    pub fn endpt(&mut self, for_connect: bool) -> Endpt {
        self.ip = [0; 16];
        let is_ip4 = !self.rng.one_in(10);
        if is_ip4 {
            self.ip[..4].copy_from_slice(&[127, 0, 0, 1]);
        } else {
            self.ip[15] = 1;
        }
        let port = match self.rng.below(10) {
            0..=5 if for_connect => self.rng.pick(&self.kernel_ports).unwrap_or(0),
            0..=5 => self.rng.pick(&self.listen_ports).unwrap_or(0),
            6 => self.rng.pick(&self.listen_ports).unwrap_or(0),
            7 => self.dead_port,
            8 => 0,
            _ => self.rng.u32() as u16,
        };
        let tlv_len = if self.rng.one_in(4) {
            self.rng.below(257) as u32
        } else {
            0
        };
        Endpt {
            unused: 0,
            is_ip4: u8::from(is_ip4),
            ip: if self.rng.one_in(30) {
                null_mut()
            } else {
                self.ip.as_mut_ptr()
            },
            port: port.to_be(),
            unused2: 0,
            app_tlv_len: tlv_len,
            app_tlvs: if tlv_len > 0 {
                self.tlvs.as_mut_ptr()
            } else {
                null_mut()
            },
        }
    }

    fn call(&mut self, op: usize) -> c_int {
        // (every call below) arguments are NULL or point at live buffers at least as
        // long as the lengths passed with them, as a correct C caller's would.
        // SAFETY: see above.
        unsafe {
            match OPS[op].0 {
                "create" => {
                    let proto = match self.rng.below(10) {
                        0..=7 => 0,
                        8 => 1,
                        _ => self.rng.u32() as u8,
                    };
                    let rv = vppcom_session_create(proto, 1);
                    self.remember(rv, false);
                    rv
                }
                "bind" => {
                    let h = self.handle();
                    let mut ep = self.endpt(false);
                    let p = if self.rng.one_in(20) {
                        null_mut()
                    } else {
                        &mut ep
                    };
                    vppcom_session_bind(h, p)
                }
                "listen" => {
                    let h = self.handle();
                    let rv = vppcom_session_listen(h, self.rng.below(64) as u32);
                    if rv == 0 {
                        self.heat(h);
                    }
                    rv
                }
                "accept" => {
                    let h = self.handle();
                    let mut ep = self.endpt(false);
                    let p = if self.rng.one_in(3) {
                        null_mut()
                    } else {
                        &mut ep
                    };
                    let flags = (self.rng.u32() & !0o4000_u32) | libc::O_NONBLOCK as u32;
                    let flags = if self.rng.one_in(2) {
                        libc::O_NONBLOCK as u32
                    } else {
                        flags
                    };
                    let rv = vppcom_session_accept(h, p, flags);
                    self.remember(rv, false);
                    if rv >= 0 {
                        self.heat(rv as u32);
                    }
                    rv
                }
                "connect" => {
                    let h = self.handle();
                    let mut ep = self.endpt(true);
                    let p = if self.rng.one_in(20) {
                        null_mut()
                    } else {
                        &mut ep
                    };
                    let rv = vppcom_session_connect(h, p);
                    if rv == -libc::EINPROGRESS || rv == 0 {
                        self.heat(h);
                    }
                    rv
                }
                "read" => {
                    let (h, n, b) = (self.handle(), self.len(BUF), self.buf_ptr());
                    vppcom_session_read(h, b, n)
                }
                "write" => {
                    let (h, n, b) = (self.handle(), self.len(BUF), self.buf_ptr());
                    vppcom_session_write(h, b, n)
                }
                "write_msg" => {
                    let (h, n, b) = (self.handle(), self.len(BUF), self.buf_ptr());
                    vppcom_session_write_msg(h, b, n)
                }
                "recvfrom" | "sendto" => {
                    let (h, n, b) = (self.handle(), self.len(BUF) as u32, self.buf_ptr());
                    let flags = match self.rng.below(4) {
                        0 | 1 => 0,
                        2 => libc::MSG_PEEK,
                        _ => self.rng.u32() as c_int,
                    };
                    let mut ep = self.endpt(true);
                    let p = if self.rng.one_in(2) {
                        null_mut()
                    } else {
                        &mut ep
                    };
                    if OPS[op].0 == "recvfrom" {
                        vppcom_session_recvfrom(h, b, n, flags, p)
                    } else {
                        vppcom_session_sendto(h, b, n, flags, p)
                    }
                }
                "read_segments" => {
                    let h = self.handle();
                    let mut ds: [vppcom_data_segment_t; 4] =
                        std::array::from_fn(|_| vppcom_data_segment_t {
                            data: null_mut(),
                            len: 0,
                        });
                    let n = self.rng.below(5) as u32;
                    let p = if self.rng.one_in(10) {
                        null_mut()
                    } else {
                        ds.as_mut_ptr()
                    };
                    let max = self.len(1 << 20) as u32;
                    let rv = vppcom_session_read_segments(h, p, n, max);
                    if rv > 0 && self.rng.one_in(2) {
                        let n = self.rng.below(rv as u64 + 16) as u32;
                        vppcom_session_free_segments(h, n);
                    }
                    rv
                }
                "write_segments" => {
                    let h = self.handle();
                    let base = self.buf.as_mut_ptr();
                    let mut ds: [vppcom_data_segment_t; 4] =
                        std::array::from_fn(|_| vppcom_data_segment_t { data: base, len: 0 });
                    for d in &mut ds {
                        d.len = self.len(BUF) as u32;
                    }
                    let n = self.rng.below(5) as u32;
                    let p = if self.rng.one_in(10) {
                        null_mut()
                    } else {
                        ds.as_mut_ptr()
                    };
                    vppcom_session_write_segments(h, p, n)
                }
                "free_segments" => {
                    let h = self.handle();
                    vppcom_session_free_segments(h, self.len(1 << 20) as u32);
                    0
                }
                "close" => {
                    let h = self.handle();
                    vppcom_session_close(h)
                }
                "shutdown" => {
                    let h = self.handle();
                    let how = match self.rng.below(5) {
                        0..=2 => self.rng.below(3) as c_int,
                        3 => -1,
                        _ => self.rng.u32() as c_int,
                    };
                    vppcom_session_shutdown(h, how)
                }
                "terminate" => {
                    let h = self.handle();
                    vppcom_session_terminate(h)
                }
                "attr" => self.attr(),
                "epoll_create" => {
                    let rv = vppcom_epoll_create();
                    self.remember(rv, true);
                    rv
                }
                "epoll_ctl" => {
                    let (vep, h) = (self.handle(), self.handle());
                    let op = match self.rng.below(10) {
                        0..=8 => 1 + self.rng.below(3) as c_int,
                        _ => self.rng.u32() as c_int,
                    };
                    let bits = [
                        libc::EPOLLIN,
                        libc::EPOLLOUT,
                        libc::EPOLLET,
                        libc::EPOLLONESHOT,
                        libc::EPOLLRDHUP,
                        libc::EPOLLEXCLUSIVE,
                        libc::EPOLLERR | libc::EPOLLHUP,
                    ];
                    let mut events = 0u32;
                    for b in bits {
                        if self.rng.one_in(2) {
                            events |= b as u32;
                        }
                    }
                    if self.rng.one_in(10) {
                        events = self.rng.u32();
                    }
                    let mut ev = libc::epoll_event {
                        events,
                        u64: self.rng.next(),
                    };
                    let p = if self.rng.one_in(15) {
                        null_mut()
                    } else {
                        &mut ev
                    };
                    vppcom_epoll_ctl(vep, op, h, p)
                }
                "epoll_wait" => {
                    let vep = self.handle();
                    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 64];
                    let max = match self.rng.below(10) {
                        0 => self.rng.below(3) as c_int - 2,
                        _ => 1 + self.rng.below(64) as c_int,
                    };
                    let p = if self.rng.one_in(20) {
                        null_mut()
                    } else {
                        out.as_mut_ptr()
                    };
                    let wait = self.small_wait(1.0);
                    vppcom_epoll_wait(vep, p, max, wait)
                }
                "select" => self.select(),
                "poll" => {
                    let mut vp: [vcl_poll_t; 16] = std::array::from_fn(|i| vcl_poll_t {
                        fds_ndx: i as u32,
                        sh: 0,
                        events: 0,
                        revents: 0,
                    });
                    for e in vp.iter_mut() {
                        e.sh = self.handle();
                        e.events = match self.rng.below(4) {
                            0 => libc::POLLIN,
                            1 => libc::POLLOUT,
                            2 => libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP,
                            _ => self.rng.u32() as i16,
                        };
                    }
                    let n = self.rng.below(17) as u32;
                    let p = if self.rng.one_in(20) {
                        null_mut()
                    } else {
                        vp.as_mut_ptr()
                    };
                    let wait = self.small_wait(0.001);
                    vppcom_poll(p, n, wait)
                }
                "query" => {
                    let h = self.handle();
                    match self.rng.below(8) {
                        0 => vppcom_session_index(h),
                        1 => vppcom_session_worker(h),
                        2 => vppcom_session_is_stream(h),
                        3 => vppcom_session_is_connectable_listener(h),
                        4 => vppcom_session_listener(h),
                        5 => vppcom_session_n_accepted(h),
                        6 => vppcom_session_get_error(h),
                        _ => {
                            let parent = self.handle();
                            vppcom_session_stream_connect(h, parent)
                        }
                    }
                }
                "strings" => self.strings(),
                "cert_key" => self.cert_key(),
                "worker" => self.worker(),
                "app" if self.rng.one_in(100) => {
                    self.reset_app();
                    0
                }
                "app" => 0,
                _ => unreachable!(),
            }
        }
    }

    /// Destroy the app (every handle goes stale) and attach again; sometimes a NULL or empty
    /// name first, or a second create while attached.
    pub fn reset_app(&mut self) {
        self.abnormal = false;
        self.off_worker = false;
        self.ckpairs.clear();
        // SAFETY: (all calls here) plain calls; names are NUL-terminated or NULL.
        unsafe {
            if self.rng.one_in(3) {
                vppcom_app_create(self.app_name.as_ptr()); // already attached: an error
            }
            vppcom_app_destroy();
            match self.rng.below(10) {
                0 => {
                    vppcom_app_create(null());
                    vppcom_app_destroy();
                }
                1 => {
                    vppcom_app_create(c"".as_ptr());
                    vppcom_app_destroy();
                }
                _ => {}
            }
            let rv = vppcom_app_create(self.app_name.as_ptr());
            assert_eq!(rv, 0, "re-attach to the test peer");
        }
    }

    /// Between calls: now and then put the thread back on a usable worker.
    pub fn tidy(&mut self) {
        if self.off_worker && self.rng.one_in(20) {
            self.off_worker = false;
            // SAFETY: a plain call.
            unsafe { vppcom_worker_index_set(0) };
        }
        if self.abnormal && self.rng.one_in(50) {
            self.reset_app();
        }
    }
}
