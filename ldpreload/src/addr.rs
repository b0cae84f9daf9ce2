//! Socket addresses between C's `sockaddr` and `SocketAddr`, and VCL errors as errno values.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libc::{sockaddr, sockaddr_in, sockaddr_in6, socklen_t, AF_INET, AF_INET6};
use vcl::api::Error;

/// The errno Linux gives in the situation VCL reports as `e`.
pub fn errno_of(e: &Error) -> i32 {
    match e {
        Error::BadFd => libc::EBADF,
        Error::AfNoSupport => libc::EAFNOSUPPORT,
        Error::NotSup => libc::EOPNOTSUPP,
        e => -e.code(),
    }
}

/// Read a sockaddr of `len` bytes (EINVAL if too short, EAFNOSUPPORT for other families).
///
/// # Safety
/// `a` must be NULL or point at `len` readable bytes.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub unsafe fn from_c(a: *const sockaddr, len: socklen_t) -> Result<SocketAddr, i32> {
    if a.is_null() {
        return Err(libc::EFAULT);
    }
    if (len as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: at least the family field is readable (checked above).
    let family = i32::from(unsafe { (*a).sa_family });
    match family {
        AF_INET if len as usize >= std::mem::size_of::<sockaddr_in>() => {
            // SAFETY: len covers a sockaddr_in; read unaligned in case the caller's buffer is not.
            let s: sockaddr_in = unsafe { std::ptr::read_unaligned(a as *const sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr));
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(s.sin_port),
            )))
        }
        AF_INET6 if len as usize >= std::mem::size_of::<sockaddr_in6>() => {
            // SAFETY: len covers a sockaddr_in6.
            let s: sockaddr_in6 = unsafe { std::ptr::read_unaligned(a as *const sockaddr_in6) };
            let ip = Ipv6Addr::from(s.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(s.sin6_port),
                s.sin6_flowinfo,
                s.sin6_scope_id,
            )))
        }
        AF_INET | AF_INET6 => Err(libc::EINVAL),
        _ => Err(libc::EAFNOSUPPORT),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for (VPP keeps them apart).
pub fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::V4(SocketAddrV4::new(ip, v6.port())),
            None => a,
        },
        a => a,
    }
}

/// `a` as the family `family` wants it (an IPv4 address on an IPv6 socket becomes mapped).
pub fn for_family(a: SocketAddr, family: i32) -> SocketAddr {
    match (a, family) {
        (SocketAddr::V4(v4), AF_INET6) => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        (SocketAddr::V6(v6), AF_INET) => match v6.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::V4(SocketAddrV4::new(ip, v6.port())),
            None if v6.ip().is_unspecified() => {
                SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, v6.port()))
            }
            None => a,
        },
        _ => a,
    }
}

/// Write `a` to `(out, len)` as getsockname/accept do: truncated to the buffer, `*len` set to
/// the full size. NULL `out` writes nothing.
///
/// # Safety
/// `out` NULL or writable for `*len` bytes; `len` NULL or valid.
// SAFETY: callers uphold the contract in the `# Safety` section above.
pub unsafe fn to_c(a: SocketAddr, out: *mut sockaddr, len: *mut socklen_t) -> Result<(), i32> {
    if out.is_null() {
        return Ok(());
    }
    if len.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let full = match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let s = unsafe { &mut *(&mut st as *mut _ as *mut sockaddr_in) };
            s.sin_family = AF_INET as libc::sa_family_t;
            s.sin_port = v4.port().to_be();
            s.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            std::mem::size_of::<sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let s = unsafe { &mut *(&mut st as *mut _ as *mut sockaddr_in6) };
            s.sin6_family = AF_INET6 as libc::sa_family_t;
            s.sin6_port = v6.port().to_be();
            s.sin6_addr.s6_addr = v6.ip().octets();
            s.sin6_flowinfo = v6.flowinfo();
            s.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<sockaddr_in6>()
        }
    };
    // SAFETY: len is non-null and valid per the contract.
    let room = unsafe { *len } as usize;
    // SAFETY: out is writable for `room` bytes; we copy at most min(room, full) from st.
    unsafe {
        std::ptr::copy_nonoverlapping(&st as *const _ as *const u8, out as *mut u8, room.min(full));
        *len = full as socklen_t;
    }
    Ok(())
}
