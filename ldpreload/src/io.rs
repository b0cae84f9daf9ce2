//! Exported data calls: read/write, recv/send, their vector, message and fortified forms, and
//! sendfile.

use std::ffi::{c_int, c_uint, c_void};

use libc::{iovec, mmsghdr, msghdr, off64_t, off_t, size_t, sockaddr, socklen_t, ssize_t};

use vcl::api::Status;

use crate::addr::{for_family, from_c, to_c, unmap};
use crate::fdtab;
use crate::init;
use crate::real;
use crate::sock::{Res, VSock};
use crate::udp;
use crate::{guard, ret};

/// Largest single transfer (Linux caps one read/write at about this much too).
const MAX_IO: usize = 0x7fff_f000;

/// The caller's buffer as a slice (EFAULT for NULL with a length).
///
/// # Safety
/// `p` must be valid for `n` bytes.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn buf_mut<'a>(p: *mut c_void, n: size_t) -> Res<&'a mut [u8]> {
    match (p.is_null(), n) {
        (_, 0) => Ok(&mut []),
        (true, _) => Err(libc::EFAULT),
        // SAFETY: the caller guarantees p is valid for n bytes.
        (false, n) => Ok(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n.min(MAX_IO)) }),
    }
}

/// # Safety
/// `p` must be valid for `n` bytes.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn buf<'a>(p: *const c_void, n: size_t) -> Res<&'a [u8]> {
    match (p.is_null(), n) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(libc::EFAULT),
        // SAFETY: the caller guarantees p is valid for n bytes.
        (false, n) => Ok(unsafe { std::slice::from_raw_parts(p as *const u8, n.min(MAX_IO)) }),
    }
}

fn sret(r: Res<usize>) -> ssize_t {
    ret(r.map(|n| n as ssize_t))
}

/// Read into several buffers: the first read may block, the rest only take what is there.
///
/// # Safety
/// `iov` must point at `n` valid iovecs.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn recv_iov(s: &VSock, iov: *const iovec, n: usize, flags: c_int) -> Res<usize> {
    if s.dgram {
        // SAFETY: per the contract.
        let g = unsafe { udp::recv_iov(s, iov, n, flags)? };
        return Ok(if flags & libc::MSG_TRUNC != 0 {
            g.full
        } else {
            g.n
        });
    }
    if n > libc::UIO_MAXIOV as usize {
        return Err(libc::EINVAL);
    }
    if n > 0 && iov.is_null() {
        return Err(libc::EFAULT);
    }
    let mut total = 0;
    for k in 0..n {
        // SAFETY: k < n iovecs, per the contract.
        let v = unsafe { &*iov.add(k) };
        // SAFETY: an iovec describes caller memory.
        let b = unsafe { buf_mut(v.iov_base, v.iov_len)? };
        if b.is_empty() {
            continue;
        }
        let f = if total > 0 {
            flags | libc::MSG_DONTWAIT
        } else {
            flags
        };
        match s.recv(b, f) {
            Ok(got) => {
                total += got;
                if got < b.len() || flags & libc::MSG_PEEK != 0 {
                    break;
                }
            }
            Err(_) if total > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Write several buffers in order, as far as a non-blocking socket takes them.
///
/// # Safety
/// `iov` must point at `n` valid iovecs.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn send_iov(s: &VSock, iov: *const iovec, n: usize, flags: c_int) -> Res<usize> {
    if s.dgram {
        // SAFETY: per the contract.
        let b = unsafe { udp::gather(iov, n)? };
        return s.send_dgram(&b, flags, None);
    }
    if n > libc::UIO_MAXIOV as usize {
        return Err(libc::EINVAL);
    }
    if n > 0 && iov.is_null() {
        return Err(libc::EFAULT);
    }
    let mut total = 0;
    for k in 0..n {
        // SAFETY: k < n iovecs, per the contract.
        let v = unsafe { &*iov.add(k) };
        // SAFETY: an iovec describes caller memory.
        let b = unsafe { buf(v.iov_base, v.iov_len)? };
        if b.is_empty() {
            continue;
        }
        let f = if total > 0 {
            flags | libc::MSG_NOSIGNAL
        } else {
            flags
        };
        match s.send(b, f) {
            Ok(sent) => {
                total += sent;
                if sent < b.len() {
                    break;
                }
            }
            Err(_) if total > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

#[no_mangle]
// SAFETY: callers uphold read's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn read(fd: c_int, p: *mut c_void, n: size_t) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::read(fd, p, n) };
    };
    // SAFETY: p is valid for n bytes per read(2).
    let b = unsafe { buf_mut(p, n) };
    guard(-1, || sret(b.and_then(|b| s.recv_any(b, 0))))
}

#[no_mangle]
// SAFETY: callers uphold write's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn write(fd: c_int, p: *const c_void, n: size_t) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::write(fd, p, n) };
    };
    // SAFETY: p is valid for n bytes per write(2).
    let b = unsafe { buf(p, n) };
    guard(-1, || sret(b.and_then(|b| s.send_any(b, 0))))
}

#[no_mangle]
// SAFETY: callers uphold recv's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn recv(fd: c_int, p: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::recv(fd, p, n, flags) };
    };
    // SAFETY: p is valid for n bytes per recv(2).
    let b = unsafe { buf_mut(p, n) };
    guard(-1, || sret(b.and_then(|b| s.recv_any(b, flags))))
}

#[no_mangle]
// SAFETY: callers uphold send's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn send(fd: c_int, p: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::send(fd, p, n, flags) };
    };
    // SAFETY: p is valid for n bytes per send(2).
    let b = unsafe { buf(p, n) };
    guard(-1, || sret(b.and_then(|b| s.send_any(b, flags))))
}

#[no_mangle]
// SAFETY: callers uphold recvfrom's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    p: *mut c_void,
    n: size_t,
    flags: c_int,
    a: *mut sockaddr,
    l: *mut socklen_t,
) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::recvfrom(fd, p, n, flags, a, l) };
    };
    guard(-1, || {
        if s.dgram {
            // SAFETY: p is valid for n bytes per recvfrom(2).
            let g = match unsafe { buf_mut(p, n) }.and_then(|b| s.recv_dgram(b, flags)) {
                Ok(g) => g,
                Err(e) => return ret(Err(e)),
            };
            if !a.is_null() && !l.is_null() {
                // SAFETY: a/l are the caller's out-parameters per recvfrom(2).
                if let Err(e) = unsafe { to_c(for_family(g.from, s.family), a, l) } {
                    return ret(Err(e));
                }
            }
            return sret(Ok(if flags & libc::MSG_TRUNC != 0 {
                g.full
            } else {
                g.n
            }));
        }
        // SAFETY: p is valid for n bytes per recvfrom(2).
        let r = unsafe { buf_mut(p, n) }.and_then(|b| s.recv(b, flags));
        if r.is_ok() && !a.is_null() && !l.is_null() {
            // SAFETY: l is the caller's valid out-parameter; a stream has no source address.
            unsafe { *l = 0 };
        }
        sret(r)
    })
}

#[no_mangle]
// SAFETY: callers uphold sendto's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn sendto(
    fd: c_int,
    p: *const c_void,
    n: size_t,
    flags: c_int,
    a: *const sockaddr,
    l: socklen_t,
) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::sendto(fd, p, n, flags, a, l) };
    };
    // SAFETY: p is valid for n bytes per sendto(2).
    let b = unsafe { buf(p, n) };
    if s.dgram && !a.is_null() {
        // SAFETY: a is readable for l bytes per sendto(2).
        let to = match unsafe { from_c(a, l) } {
            Ok(to) => unmap(to),
            Err(e) => return ret(Err(e)),
        };
        if s.status() == Ok(Status::Idle) && init::settings().is_kernel(&to) {
            // a socket VPP does not know yet, to a destination kept on the kernel stack
            if let Err(e) = crate::calls::to_kernel(fd, &s) {
                return ret(Err(e));
            }
            // SAFETY: the caller's arguments, passed on.
            return unsafe { real::sendto(fd, p, n, flags, a, l) };
        }
        return guard(-1, || {
            sret(b.and_then(|b| s.send_dgram(b, flags, Some(to))))
        });
    }
    // A connected stream ignores the address, as Linux does.
    guard(-1, || sret(b.and_then(|b| s.send_any(b, flags))))
}

#[no_mangle]
// SAFETY: callers uphold readv's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::readv(fd, iov, n) };
    };
    let Ok(n) = usize::try_from(n) else {
        return ret(Err(libc::EINVAL));
    };
    // SAFETY: iov holds n iovecs per readv(2).
    guard(-1, || sret(unsafe { recv_iov(&s, iov, n, 0) }))
}

#[no_mangle]
// SAFETY: callers uphold writev's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::writev(fd, iov, n) };
    };
    let Ok(n) = usize::try_from(n) else {
        return ret(Err(libc::EINVAL));
    };
    // SAFETY: iov holds n iovecs per writev(2).
    guard(-1, || sret(unsafe { send_iov(&s, iov, n, 0) }))
}

/// # Safety
/// `m` must be a valid msghdr.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn recv_msg(s: &VSock, m: *mut msghdr, flags: c_int) -> Res<usize> {
    if m.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: m is a valid msghdr per the contract.
    let m = unsafe { &mut *m };
    if s.dgram {
        // SAFETY: as above.
        return unsafe { udp::recv_msg(s, m, flags) };
    }
    // SAFETY: msg_iov holds msg_iovlen iovecs per recvmsg(2).
    let n = unsafe { recv_iov(s, m.msg_iov, m.msg_iovlen, flags)? };
    m.msg_namelen = 0;
    m.msg_controllen = 0;
    m.msg_flags = 0;
    Ok(n)
}

/// # Safety
/// `m` must be a valid msghdr.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn send_msg(s: &VSock, m: *const msghdr, flags: c_int) -> Res<usize> {
    if m.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: m is a valid msghdr per the contract.
    let m = unsafe { &*m };
    if s.dgram {
        // SAFETY: as above.
        return unsafe { udp::send_msg(s, m, flags) };
    }
    // SAFETY: msg_iov holds msg_iovlen iovecs per sendmsg(2).
    unsafe { send_iov(s, m.msg_iov, m.msg_iovlen, flags) }
}

#[no_mangle]
// SAFETY: callers uphold recvmsg's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn recvmsg(fd: c_int, m: *mut msghdr, flags: c_int) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::recvmsg(fd, m, flags) };
    };
    // SAFETY: m is a msghdr per recvmsg(2).
    guard(-1, || sret(unsafe { recv_msg(&s, m, flags) }))
}

#[no_mangle]
// SAFETY: callers uphold sendmsg's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn sendmsg(fd: c_int, m: *const msghdr, flags: c_int) -> ssize_t {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::sendmsg(fd, m, flags) };
    };
    // SAFETY: m is a msghdr per sendmsg(2).
    guard(-1, || sret(unsafe { send_msg(&s, m, flags) }))
}

#[no_mangle]
// SAFETY: callers uphold recvmmsg's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    v: *mut mmsghdr,
    n: c_uint,
    flags: c_int,
    t: *mut libc::timespec,
) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::recvmmsg(fd, v, n, flags, t) };
    };
    guard(-1, || {
        let mut done = 0;
        while done < n as usize {
            let f = if done > 0 {
                flags | libc::MSG_DONTWAIT
            } else {
                flags
            };
            // SAFETY: v holds n mmsghdrs per recvmmsg(2).
            let h = unsafe { &mut *v.add(done) };
            // SAFETY: as above.
            match unsafe { recv_msg(&s, &mut h.msg_hdr, f & !libc::MSG_WAITFORONE) } {
                Ok(0) if done > 0 => break,
                Ok(k) => h.msg_len = k as c_uint,
                Err(_) if done > 0 => break,
                Err(e) => return ret(Err(e)),
            }
            done += 1;
        }
        done as c_int
    })
}

#[no_mangle]
// SAFETY: callers uphold sendmmsg's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn sendmmsg(fd: c_int, v: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int {
    let Some(s) = fdtab::sock(fd) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::sendmmsg(fd, v, n, flags) };
    };
    guard(-1, || {
        let mut done = 0;
        while done < n as usize {
            // SAFETY: v holds n mmsghdrs per sendmmsg(2).
            let h = unsafe { &mut *v.add(done) };
            // SAFETY: as above.
            match unsafe { send_msg(&s, &h.msg_hdr, flags) } {
                Ok(k) => h.msg_len = k as c_uint,
                Err(_) if done > 0 => break,
                Err(e) => return ret(Err(e)),
            }
            done += 1;
        }
        done as c_int
    })
}

/// sendfile to a VPP socket: the file is read here and written to the session.
///
/// # Safety
/// `off` NULL or a valid offset.
// SAFETY: callers uphold the contract in the `# Safety` section above.
unsafe fn send_file(s: &VSock, inp: c_int, off: *mut off64_t, count: usize) -> Res<usize> {
    let nonblock = s.nonblock.load(std::sync::atomic::Ordering::Relaxed);
    let mut chunk = vec![0u8; count.clamp(1, 256 * 1024)];
    let mut total = 0;
    while total < count {
        let mut want = chunk.len().min(count - total);
        if nonblock {
            let room = vcl::api::nwrite(&s.w, s.sh).unwrap_or(0);
            if room == 0 {
                break;
            }
            want = want.min(room);
        }
        let p = chunk.as_mut_ptr() as *mut c_void;
        // SAFETY: chunk is writable for want bytes; off (if any) is valid per the contract.
        let got = unsafe {
            if off.is_null() {
                real::read(inp, p, want)
            } else {
                libc::pread64(inp, p, want, *off)
            }
        };
        if got < 0 {
            return if total > 0 {
                Ok(total)
            } else {
                Err(real::errno())
            };
        }
        if got == 0 {
            break;
        }
        let got = got as usize;
        let sent = match s.send(&chunk[..got], 0) {
            Ok(n) => n,
            Err(_) if total > 0 => 0,
            Err(e) => return Err(e),
        };
        if off.is_null() {
            if sent < got {
                // SAFETY: moves the file offset back over what was read but not sent.
                unsafe { libc::lseek64(inp, -((got - sent) as off64_t), libc::SEEK_CUR) };
            }
        } else {
            // SAFETY: off is valid per the contract.
            unsafe { *off += sent as off64_t };
        }
        total += sent;
        if sent < got {
            break;
        }
    }
    if total == 0 && count > 0 && nonblock {
        return Err(libc::EAGAIN);
    }
    Ok(total)
}

#[no_mangle]
// SAFETY: callers uphold sendfile64's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn sendfile64(
    out: c_int,
    inp: c_int,
    off: *mut off64_t,
    n: size_t,
) -> ssize_t {
    let Some(s) = fdtab::sock(out) else {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::sendfile64(out, inp, off, n) };
    };
    // SAFETY: off is NULL or valid per sendfile(2).
    guard(-1, || sret(unsafe { send_file(&s, inp, off, n) }))
}

#[no_mangle]
// SAFETY: callers uphold sendfile's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    if !fdtab::is_ours(out) {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real::sendfile(out, inp, off, n) };
    }
    // off_t is 64-bit on the 64-bit targets this builds for.
    // SAFETY: as sendfile64.
    unsafe { sendfile64(out, inp, off as *mut off64_t, n) }
}

/// glibc's _FORTIFY_SOURCE entry points: check the buffer, then the plain call.
fn chk(n: size_t, buflen: size_t) {
    if n > buflen {
        let msg = b"*** buffer overflow detected ***: terminated\n";
        // SAFETY: a raw write of a static buffer to stderr.
        unsafe { libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len()) };
        std::process::abort();
    }
}

#[no_mangle]
// SAFETY: callers uphold read_chk's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn __read_chk(fd: c_int, p: *mut c_void, n: size_t, bl: size_t) -> ssize_t {
    chk(n, bl);
    // SAFETY: as read.
    unsafe { read(fd, p, n) }
}

#[no_mangle]
// SAFETY: callers uphold recv_chk's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    p: *mut c_void,
    n: size_t,
    bl: size_t,
    flags: c_int,
) -> ssize_t {
    chk(n, bl);
    // SAFETY: as recv.
    unsafe { recv(fd, p, n, flags) }
}

#[no_mangle]
// SAFETY: callers uphold recvfrom_chk's C contract (pointers valid for the lengths given).
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    p: *mut c_void,
    n: size_t,
    bl: size_t,
    flags: c_int,
    a: *mut sockaddr,
    l: *mut socklen_t,
) -> ssize_t {
    chk(n, bl);
    // SAFETY: as recvfrom.
    unsafe { recvfrom(fd, p, n, flags, a, l) }
}
