//! The C library's own entry points, found once with `dlsym(RTLD_NEXT, ..)` and cached in an
//! atomic per symbol (no lock: the library's internal calls on its own fds land here too).
//!
//! Never call `libc::read` & co. from this crate: inside the preloaded object those names
//! resolve to our own exports.

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{
    epoll_event, iovec, mmsghdr, msghdr, nfds_t, off64_t, off_t, pollfd, sigset_t, size_t,
    sockaddr, socklen_t, ssize_t, timespec,
};

/// Look `name` (NUL-terminated) up in the objects after ours; abort if it does not exist,
/// as nothing sensible can follow without the C library.
fn resolve(slot: &AtomicUsize, name: &'static str) -> usize {
    let p = slot.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: name is a NUL-terminated literal (the macros below append the NUL).
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const c_char) } as usize;
    if p == 0 {
        let msg = b"vcl_ldpreload: a C library symbol is missing; aborting\n";
        // SAFETY: a raw write syscall of a static buffer to stderr.
        unsafe { libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len()) };
        std::process::abort();
    }
    slot.store(p, Ordering::Relaxed);
    p
}

macro_rules! real_fns {
    ($( $name:ident ( $($arg:ident : $t:ty),* ) -> $ret:ty ; )*) => {
        $(
            /// The C library's function of the same name.
            ///
            /// # Safety
            /// As the C function's own contract.
            // SAFETY: callers uphold the contract in the `# Safety` section above.
            pub unsafe fn $name($($arg: $t),*) -> $ret {
                static P: AtomicUsize = AtomicUsize::new(0);
                let p = resolve(&P, concat!(stringify!($name), "\0"));
                // SAFETY: the symbol of this name has exactly this C signature.
                let f: unsafe extern "C" fn($($t),*) -> $ret = unsafe { std::mem::transmute(p) };
                // SAFETY: the caller upholds the C function's contract.
                unsafe { f($($arg),*) }
            }
        )*
    };
}

real_fns! {
    socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    listen(fd: c_int, backlog: c_int) -> c_int;
    accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    close(fd: c_int) -> c_int;
    close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int;
    shutdown(fd: c_int, how: c_int) -> c_int;
    read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, a: *mut sockaddr, l: *mut socklen_t) -> ssize_t;
    sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, a: *const sockaddr, l: socklen_t) -> ssize_t;
    recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    recvmmsg(fd: c_int, m: *mut mmsghdr, n: c_uint, flags: c_int, t: *mut timespec) -> c_int;
    sendmmsg(fd: c_int, m: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int;
    sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t;
    sendfile64(out: c_int, inp: c_int, off: *mut off64_t, n: size_t) -> ssize_t;
    getsockname(fd: c_int, a: *mut sockaddr, l: *mut socklen_t) -> c_int;
    getpeername(fd: c_int, a: *mut sockaddr, l: *mut socklen_t) -> c_int;
    getsockopt(fd: c_int, level: c_int, name: c_int, v: *mut c_void, l: *mut socklen_t) -> c_int;
    setsockopt(fd: c_int, level: c_int, name: c_int, v: *const c_void, l: socklen_t) -> c_int;
    poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    ppoll(fds: *mut pollfd, n: nfds_t, t: *const timespec, mask: *const sigset_t) -> c_int;
    select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, t: *mut libc::timeval) -> c_int;
    pselect(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, t: *const timespec, mask: *const sigset_t) -> c_int;
    epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut epoll_event) -> c_int;
    epoll_wait(epfd: c_int, ev: *mut epoll_event, max: c_int, timeout: c_int) -> c_int;
    epoll_pwait(epfd: c_int, ev: *mut epoll_event, max: c_int, timeout: c_int, mask: *const sigset_t) -> c_int;
    dup(fd: c_int) -> c_int;
    dup2(fd: c_int, new: c_int) -> c_int;
    dup3(fd: c_int, new: c_int, flags: c_int) -> c_int;
}

/// epoll_pwait2 through the system call (older C libraries lack the wrapper).
///
/// # Safety
/// As epoll_pwait2(2).
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub unsafe fn epoll_pwait2(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    const SIGSET_BYTES: usize = 8;
    // SAFETY: the caller upholds epoll_pwait2's contract; the kernel's sigset is 8 bytes.
    unsafe { libc::syscall(libc::SYS_epoll_pwait2, epfd, ev, max, t, mask, SIGSET_BYTES) as c_int }
}

/// fcntl with one integer or pointer argument (every command takes at most one).
///
/// # Safety
/// As fcntl(2) for `cmd`.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    static P: AtomicUsize = AtomicUsize::new(0);
    let p = resolve(&P, "fcntl\0");
    // SAFETY: fcntl is variadic with this fixed part.
    let f: unsafe extern "C" fn(c_int, c_int, ...) -> c_int = unsafe { std::mem::transmute(p) };
    // SAFETY: the caller upholds fcntl's contract for cmd.
    unsafe { f(fd, cmd, arg) }
}

/// ioctl with one integer or pointer argument.
///
/// # Safety
/// As ioctl(2) for `req`.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub unsafe fn ioctl(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    static P: AtomicUsize = AtomicUsize::new(0);
    let p = resolve(&P, "ioctl\0");
    // SAFETY: ioctl is variadic with this fixed part.
    let f: unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int = unsafe { std::mem::transmute(p) };
    // SAFETY: the caller upholds ioctl's contract for req.
    unsafe { f(fd, req, arg) }
}

/// Set errno.
pub fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// Read errno.
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}
