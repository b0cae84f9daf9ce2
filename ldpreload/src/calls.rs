//! Exported socket lifecycle calls: socket, bind, listen, accept, connect, shutdown, close,
//! dup*, getsockname/getpeername. A descriptor that is not a VPP socket goes straight to the
//! C library.

use std::ffi::{c_int, c_uint};
use std::sync::Arc;

use libc::{sockaddr, socklen_t, AF_INET, AF_INET6, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM};
use vcl::api;

use crate::addr::{for_family, from_c, to_c, unmap};
use crate::fdtab::{self, Entry};
use crate::init::{self, Verdict};
use crate::real;
use crate::sock::{Res, VSock};
use crate::{guard, ret};

/// Whether `socket(domain, ty, proto)` is one VPP serves: TCP, or UDP (`Some(true)`).
fn vpp_kind(domain: c_int, ty: c_int, proto: c_int) -> Option<bool> {
    if domain != AF_INET && domain != AF_INET6 {
        return None;
    }
    match ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC) {
        SOCK_STREAM if proto == 0 || proto == libc::IPPROTO_TCP => Some(false),
        libc::SOCK_DGRAM if proto == 0 || proto == libc::IPPROTO_UDP => Some(true),
        _ => None,
    }
}

/// Install `s` as `fd`; a number beyond the table keeps the socket in the kernel.
fn install(fd: c_int, e: Entry) {
    match fdtab::set(fd, e) {
        Ok(old) => drop(old),
        Err(e) => {
            tracing::warn!("fd {fd} is beyond the shim's table: it stays a kernel socket");
            drop(e);
        }
    }
}

#[no_mangle]
pub extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    let Some(dgram) = vpp_kind(domain, ty, proto) else {
        // SAFETY: plain integer arguments.
        return unsafe { real::socket(domain, ty, proto) };
    };
    guard(-1, || {
        let w = match init::verdict(&crate::fork_hooks::ATTACH) {
            Verdict::Vpp(w) => {
                crate::fork_hooks::install();
                w
            }
            // SAFETY: plain integer arguments.
            Verdict::Kernel => return unsafe { real::socket(domain, ty, proto) },
            Verdict::Fail(e) => return ret::<c_int>(Err(e)),
        };
        // The reserved kernel descriptor: a real socket of the same kind, so the number
        // cannot collide and a later kernel fallback just keeps it.
        // SAFETY: plain integer arguments.
        let fd = unsafe { real::socket(domain, ty, proto) };
        if fd < 0 {
            return fd;
        }
        let sh = if dgram {
            api::udp_session_create(&w, true)
        } else {
            api::session_create(&w, true)
        };
        match sh {
            Ok(sh) => {
                let mut s = VSock::new(w, sh, domain, ty & SOCK_NONBLOCK != 0);
                s.dgram = dgram;
                install(fd, Entry::Sock(Arc::new(s)));
                fd
            }
            Err(e) => {
                // SAFETY: fd is ours, just created.
                unsafe { real::close(fd) };
                ret::<c_int>(Err(crate::addr::errno_of(&e)))
            }
        }
    })
}

/// Move `fd` back to the kernel stack (its reserved descriptor is a real socket already);
/// re-bind it there if it was bound.
pub(crate) fn to_kernel(fd: c_int, s: &VSock) -> Res<()> {
    let bound = s.opts.lock().bound;
    drop(fdtab::take(fd));
    if let Some(a) = bound {
        // SAFETY: an all-zero sockaddr_storage is valid.
        let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of_val(&st) as socklen_t;
        // SAFETY: st is writable for len bytes.
        unsafe { to_c(a, &mut st as *mut _ as *mut sockaddr, &mut len)? };
        // SAFETY: st holds a valid sockaddr of len bytes.
        if unsafe { real::bind(fd, &st as *const _ as *const sockaddr, len) } < 0 {
            return Err(real::errno());
        }
    }
    Ok(())
}

#[no_mangle]
// SAFETY: callers uphold bind's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::bind(fd, addr, len) };
    };
    guard(-1, || {
        // SAFETY: addr is readable for len bytes per bind(2).
        let a = match unsafe { from_c(addr, len) } {
            Ok(a) => a,
            Err(e) => return ret::<c_int>(Err(e)),
        };
        let a = unmap(a);
        if init::settings().is_kernel(&a) {
            drop(fdtab::take(fd));
            // SAFETY: as above.
            return unsafe { real::bind(fd, addr, len) };
        }
        ret(s.bind(a).map(|_| 0))
    })
}

#[no_mangle]
pub extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: plain integer arguments.
        return unsafe { real::listen(fd, backlog) };
    };
    if s.dgram {
        return ret(Err(libc::EOPNOTSUPP));
    }
    guard(-1, || ret(s.listen().map(|_| 0)))
}

#[no_mangle]
// SAFETY: callers uphold connect's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::connect(fd, addr, len) };
    };
    guard(-1, || {
        let family_readable =
            !addr.is_null() && len as usize >= std::mem::size_of::<libc::sa_family_t>();
        // SAFETY: the family field is readable (checked above) per connect(2).
        let unspec = family_readable && i32::from(unsafe { (*addr).sa_family }) == libc::AF_UNSPEC;
        if s.dgram && unspec {
            // dissolving the association: nothing to do on a socket that has none; the
            // library cannot make a connected session connectionless again
            let connected = s.opts.lock().peer.is_some();
            return ret(if connected {
                Err(libc::EOPNOTSUPP)
            } else {
                Ok(0)
            });
        }
        // SAFETY: addr is readable for len bytes per connect(2).
        let a = match unsafe { from_c(addr, len) } {
            Ok(a) => a,
            Err(e) => return ret::<c_int>(Err(e)),
        };
        let a = unmap(a);
        let idle = s.status() == Ok(api::Status::Idle);
        if idle && init::settings().is_kernel(&a) {
            if let Err(e) = to_kernel(fd, &s) {
                return ret::<c_int>(Err(e));
            }
            // SAFETY: as above.
            return unsafe { real::connect(fd, addr, len) };
        }
        if s.dgram {
            return ret(s.connect_dgram(a).map(|_| 0));
        }
        ret(s.connect(a).map(|_| 0))
    })
}

#[no_mangle]
// SAFETY: callers uphold accept4's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::accept4(fd, addr, len, flags) };
    };
    guard(-1, || {
        if s.dgram {
            return ret::<c_int>(Err(libc::EOPNOTSUPP));
        }
        if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
            return ret::<c_int>(Err(libc::EINVAL));
        }
        if !addr.is_null() && len.is_null() {
            // refused before a connection is taken, so none is lost
            return ret::<c_int>(Err(libc::EFAULT));
        }
        let (sh, peer) = match s.accept() {
            Ok(r) => r,
            Err(e) => return ret::<c_int>(Err(e)),
        };
        let child = Arc::new(VSock::new(
            s.w.clone(),
            sh,
            s.family,
            flags & SOCK_NONBLOCK != 0,
        ));
        // SAFETY: plain integer arguments.
        let nfd = unsafe { real::socket(s.family, SOCK_STREAM | flags, 0) };
        if nfd < 0 {
            return nfd; // dropping child closes the session
        }
        // SAFETY: addr/len are the caller's out-parameters per accept(2).
        let r = unsafe { to_c(for_family(peer, s.family), addr, len) };
        install(nfd, Entry::Sock(child));
        match r {
            Ok(()) => nfd,
            Err(e) => ret::<c_int>(Err(e)),
        }
    })
}

#[no_mangle]
// SAFETY: callers uphold accept's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    unsafe { accept4(fd, addr, len, 0) }
}

#[no_mangle]
pub extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: plain integer arguments.
        return unsafe { real::shutdown(fd, how) };
    };
    guard(-1, || ret(s.shutdown(how).map(|_| 0)))
}

#[no_mangle]
pub extern "C" fn close(fd: c_int) -> c_int {
    if !fdtab::is_ours(fd) || init::in_vfork_child() {
        // SAFETY: plain integer argument.
        return unsafe { real::close(fd) };
    }
    let e = fdtab::take(fd);
    // SAFETY: plain integer argument.
    let r = unsafe { real::close(fd) };
    guard((), || drop(e));
    r
}

#[no_mangle]
pub extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    // SAFETY: plain integer arguments.
    let r = unsafe { real::close_range(first, last, flags) };
    if r == 0 && !init::in_vfork_child() && flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        let gone = fdtab::take_range(first, last);
        guard((), || drop(gone));
    }
    r
}

/// After a successful dup of `old` to `new`: `new` names what `old` names.
fn dup_entry(old: Option<Entry>, new: c_int) {
    if old.is_none() && !fdtab::is_ours(new) || init::in_vfork_child() {
        return;
    }
    let prev = match old {
        Some(e) => fdtab::set(new, e).ok().flatten(),
        None => fdtab::take(new),
    };
    guard((), || drop(prev));
}

#[no_mangle]
pub extern "C" fn dup(fd: c_int) -> c_int {
    let e = fdtab::get(fd);
    // SAFETY: plain integer argument.
    let n = unsafe { real::dup(fd) };
    if n >= 0 && e.is_some() {
        dup_entry(e, n);
    }
    n
}

#[no_mangle]
pub extern "C" fn dup2(fd: c_int, new: c_int) -> c_int {
    let e = fdtab::get(fd);
    // SAFETY: plain integer arguments.
    let n = unsafe { real::dup2(fd, new) };
    if n >= 0 && fd != new {
        dup_entry(e, n);
    }
    n
}

#[no_mangle]
pub extern "C" fn dup3(fd: c_int, new: c_int, flags: c_int) -> c_int {
    let e = fdtab::get(fd);
    // SAFETY: plain integer arguments.
    let n = unsafe { real::dup3(fd, new, flags) };
    if n >= 0 {
        dup_entry(e, n);
    }
    n
}

/// F_DUPFD / F_DUPFD_CLOEXEC (from fcntl).
pub fn dup_fcntl(fd: c_int, cmd: c_int, arg: std::ffi::c_ulong) -> c_int {
    let e = fdtab::get(fd);
    // SAFETY: F_DUPFD* takes an integer.
    let n = unsafe { real::fcntl(fd, cmd, arg) };
    if n >= 0 && e.is_some() {
        dup_entry(e, n);
    }
    n
}

#[no_mangle]
// SAFETY: callers uphold getsockname's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn getsockname(fd: c_int, a: *mut sockaddr, l: *mut socklen_t) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::getsockname(fd, a, l) };
    };
    guard(-1, || {
        let r = s.local_addr().and_then(|x| {
            // SAFETY: a/l are the caller's out-parameters per getsockname(2).
            unsafe { to_c(x, a, l) }
        });
        ret(r.map(|_| 0))
    })
}

#[no_mangle]
// SAFETY: callers uphold getpeername's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn getpeername(fd: c_int, a: *mut sockaddr, l: *mut socklen_t) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::getpeername(fd, a, l) };
    };
    guard(-1, || {
        let r = s.peer_addr().and_then(|x| {
            // SAFETY: a/l are the caller's out-parameters per getpeername(2).
            unsafe { to_c(x, a, l) }
        });
        ret(r.map(|_| 0))
    })
}
