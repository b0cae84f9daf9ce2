//! getsockopt/setsockopt, fcntl and ioctl on VPP sockets. An option is either applied,
//! reported from the session, or recorded and reported back where Linux programs only rely on
//! reading back what they set; anything else is ENOPROTOOPT.

use std::ffi::{c_int, c_ulong, c_void};
use std::sync::atomic::Ordering;
use std::time::Duration;

use libc::{socklen_t, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, SOL_SOCKET};
use vcl::api::{self, Status};

use crate::fdtab;
use crate::real;
use crate::sock::{Res, VSock};
use crate::{guard, ret};

/// Options recorded and read back (VPP has no per-session knob for them, and Linux programs
/// only set them as hints): SO_REUSEADDR/PORT (VPP allows re-listening anyway), SO_KEEPALIVE
/// and the TCP keepalive timers, TCP_NODELAY (VPP's TCP sends at once), SO_LINGER,
/// IPV6_V6ONLY, IP_TOS, and SO_RCVBUF/SO_SNDBUF writes (the fifos keep their size).
fn recorded(level: c_int, name: c_int) -> bool {
    matches!(
        (level, name),
        (SOL_SOCKET, libc::SO_REUSEADDR)
            | (SOL_SOCKET, libc::SO_REUSEPORT)
            | (SOL_SOCKET, libc::SO_KEEPALIVE)
            | (SOL_SOCKET, libc::SO_LINGER)
            | (IPPROTO_TCP, libc::TCP_NODELAY)
            | (IPPROTO_TCP, libc::TCP_KEEPIDLE)
            | (IPPROTO_TCP, libc::TCP_KEEPINTVL)
            | (IPPROTO_TCP, libc::TCP_KEEPCNT)
            | (IPPROTO_TCP, libc::TCP_MAXSEG)
            | (IPPROTO_IPV6, libc::IPV6_V6ONLY)
            | (IPPROTO_IP, libc::IP_TOS)
    )
}

/// Write `v` to the caller's (value, length), truncated as Linux does.
///
/// # Safety
/// `out` writable for `*len` bytes, `len` valid.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn put(v: &[u8], out: *mut c_void, len: *mut socklen_t) -> Res<()> {
    if out.is_null() || len.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: len is valid per the contract.
    let room = unsafe { *len } as usize;
    let n = room.min(v.len());
    // SAFETY: out is writable for room >= n bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(v.as_ptr(), out as *mut u8, n);
        *len = n as socklen_t;
    }
    Ok(())
}

fn int(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn timeval(d: Option<Duration>) -> Vec<u8> {
    let d = d.unwrap_or_default();
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: timeval is plain data; viewing it as bytes is sound.
    unsafe { std::slice::from_raw_parts(&tv as *const _ as *const u8, std::mem::size_of_val(&tv)) }
        .to_vec()
}

/// Linux's TCP states for TCP_INFO's tcpi_state.
fn tcp_state(st: Status) -> u8 {
    match st {
        Status::Connected => 1,  // ESTABLISHED
        Status::Connecting => 2, // SYN_SENT
        Status::PeerClosed => 8, // CLOSE_WAIT
        Status::Listening => 10, // LISTEN
        _ => 7,                  // CLOSE
    }
}

fn get(s: &VSock, level: c_int, name: c_int) -> Res<Vec<u8>> {
    let st = s.status()?;
    if s.dgram && level == IPPROTO_TCP {
        return Err(libc::ENOPROTOOPT); // Linux's answer for TCP options on a UDP socket
    }
    let v = match (level, name) {
        (SOL_SOCKET, libc::SO_TYPE) if s.dgram => int(libc::SOCK_DGRAM),
        (SOL_SOCKET, libc::SO_TYPE) => int(libc::SOCK_STREAM),
        (SOL_SOCKET, libc::SO_DOMAIN) => int(s.family),
        (SOL_SOCKET, libc::SO_PROTOCOL) if s.dgram => int(libc::IPPROTO_UDP),
        (SOL_SOCKET, libc::SO_PROTOCOL) => int(libc::IPPROTO_TCP),
        (SOL_SOCKET, libc::SO_ERROR) => int(s.take_error()),
        (SOL_SOCKET, libc::SO_ACCEPTCONN) => int(i32::from(st == Status::Listening && !s.dgram)),
        (SOL_SOCKET, libc::SO_RCVBUF) | (SOL_SOCKET, libc::SO_SNDBUF) => {
            let (rx, tx) = api::buf_sizes(&s.w, s.sh).map_err(|e| crate::addr::errno_of(&e))?;
            let n = if name == libc::SO_RCVBUF { rx } else { tx };
            int(n.min(i32::MAX as u32) as i32)
        }
        (SOL_SOCKET, libc::SO_RCVTIMEO) => timeval(s.opts.lock().rcvtimeo),
        (SOL_SOCKET, libc::SO_SNDTIMEO) => timeval(s.opts.lock().sndtimeo),
        (IPPROTO_TCP, libc::TCP_INFO) => {
            // SAFETY: tcp_info is plain data; all zero is valid.
            let mut ti: libc::tcp_info = unsafe { std::mem::zeroed() };
            ti.tcpi_state = tcp_state(st);
            // SAFETY: viewing plain data as bytes.
            unsafe {
                std::slice::from_raw_parts(&ti as *const _ as *const u8, std::mem::size_of_val(&ti))
            }
            .to_vec()
        }
        (IPPROTO_TCP, libc::TCP_CONGESTION) => b"cubic\0".to_vec(),
        (IPPROTO_TCP, libc::TCP_MAXSEG) => match s.opts.lock().vals.get(&(level, name)) {
            Some(v) => v.clone(),
            None => int(1460),
        },
        (SOL_SOCKET, libc::SO_LINGER) => match s.opts.lock().vals.get(&(level, name)) {
            Some(v) => v.clone(),
            None => vec![0; std::mem::size_of::<libc::linger>()],
        },
        _ if recorded(level, name) => match s.opts.lock().vals.get(&(level, name)) {
            Some(v) => v.clone(),
            None => int(0),
        },
        _ => return Err(libc::ENOPROTOOPT),
    };
    Ok(v)
}

fn parse_timeval(v: &[u8]) -> Res<Option<Duration>> {
    if v.len() < std::mem::size_of::<libc::timeval>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: v holds at least a timeval; read unaligned.
    let tv: libc::timeval = unsafe { std::ptr::read_unaligned(v.as_ptr() as *const libc::timeval) };
    if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
        return Err(libc::EDOM);
    }
    let d = Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    Ok((!d.is_zero()).then_some(d))
}

fn set(s: &VSock, level: c_int, name: c_int, v: &[u8]) -> Res<()> {
    let need_int = || {
        if v.len() < 4 {
            Err(libc::EINVAL)
        } else {
            Ok(())
        }
    };
    if s.dgram && level == IPPROTO_TCP {
        return Err(libc::ENOPROTOOPT);
    }
    match (level, name) {
        (SOL_SOCKET, libc::SO_RCVTIMEO) => s.opts.lock().rcvtimeo = parse_timeval(v)?,
        (SOL_SOCKET, libc::SO_SNDTIMEO) => s.opts.lock().sndtimeo = parse_timeval(v)?,
        (SOL_SOCKET, libc::SO_RCVBUF) | (SOL_SOCKET, libc::SO_SNDBUF) => need_int()?,
        (IPPROTO_TCP, libc::TCP_CONGESTION) => {
            let name = v.split(|b| *b == 0).next().unwrap_or(&[]);
            if name != b"cubic" {
                return Err(libc::ENOENT);
            }
        }
        (SOL_SOCKET, libc::SO_LINGER) => {
            if v.len() < std::mem::size_of::<libc::linger>() {
                return Err(libc::EINVAL);
            }
            s.opts.lock().vals.insert((level, name), v.to_vec());
        }
        _ if recorded(level, name) => {
            need_int()?;
            s.opts.lock().vals.insert((level, name), v[..4].to_vec());
        }
        _ => return Err(libc::ENOPROTOOPT),
    }
    Ok(())
}

#[no_mangle]
// SAFETY: callers uphold getsockopt's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    v: *mut c_void,
    l: *mut socklen_t,
) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::getsockopt(fd, level, name, v, l) };
    };
    guard(-1, || {
        let r = get(&s, level, name).and_then(|x| {
            // SAFETY: v/l are the caller's out-parameters per getsockopt(2).
            unsafe { put(&x, v, l) }
        });
        ret(r.map(|_| 0))
    })
}

#[no_mangle]
// SAFETY: callers uphold setsockopt's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    v: *const c_void,
    l: socklen_t,
) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::setsockopt(fd, level, name, v, l) };
    };
    guard(-1, || {
        if v.is_null() && l > 0 {
            return ret(Err(libc::EFAULT));
        }
        let val = if l == 0 {
            &[][..]
        } else {
            // SAFETY: v is readable for l bytes per setsockopt(2).
            unsafe { std::slice::from_raw_parts(v as *const u8, l as usize) }
        };
        let r = set(&s, level, name, val);
        if r.is_ok() {
            // The reserved kernel socket gets it too, should the socket fall back to the
            // kernel (ldp-kernel) later; its verdict does not matter.
            // SAFETY: the caller's arguments, passed on.
            unsafe { real::setsockopt(fd, level, name, v, l) };
        }
        ret(r.map(|_| 0))
    })
}

fn set_nonblock(s: &VSock, on: bool) {
    s.nonblock.store(on, Ordering::Relaxed);
}

#[no_mangle]
// SAFETY: callers uphold fcntl's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => return crate::calls::dup_fcntl(fd, cmd, arg),
        libc::F_SETFL => {
            if let Some(s) = fdtab::sock(fd) {
                set_nonblock(&s, arg as c_int & libc::O_NONBLOCK != 0);
            }
        }
        _ => {}
    }
    // The reserved descriptor carries the flags (O_NONBLOCK, FD_CLOEXEC) for F_GETFL/F_GETFD.
    // SAFETY: the caller's arguments, passed on.
    unsafe { real::fcntl(fd, cmd, arg) }
}

#[no_mangle]
// SAFETY: callers uphold fcntl64's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: as fcntl.
    unsafe { fcntl(fd, cmd, arg) }
}

#[no_mangle]
// SAFETY: callers uphold ioctl's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::ioctl(fd, req, arg) };
    };
    guard(-1, || match req {
        libc::FIONREAD => {
            let p = arg as *mut c_int;
            if p.is_null() {
                return ret(Err(libc::EFAULT));
            }
            match s.nread() {
                Ok(n) => {
                    // SAFETY: FIONREAD's argument is an int the caller owns.
                    unsafe { *p = n.min(i32::MAX as usize) as c_int };
                    0
                }
                Err(e) => ret(Err(e)),
            }
        }
        libc::FIONBIO => {
            let p = arg as *const c_int;
            if p.is_null() {
                return ret(Err(libc::EFAULT));
            }
            // SAFETY: FIONBIO's argument is an int the caller owns.
            set_nonblock(&s, unsafe { *p } != 0);
            // SAFETY: the caller's arguments, passed on (keeps F_GETFL in step).
            unsafe { real::ioctl(fd, req, arg) }
        }
        // Interface queries and the like work on the reserved kernel socket.
        // SAFETY: the caller's arguments, passed on.
        _ => unsafe { real::ioctl(fd, req, arg) },
    })
}
