//! The one internal error type; mapped to VPPCOM_E* codes only at the C ABI.

use std::fmt;

/// Why an operation failed, in VCL's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Would block (VPPCOM_EAGAIN / EWOULDBLOCK).
    Again,
    InProgress,
    Fault,
    NoMem,
    Inval,
    /// Unknown or closed session handle (VPPCOM_EBADFD).
    BadFd,
    AfNoSupport,
    ConnAborted,
    ConnReset,
    NotConn,
    ConnRefused,
    TimedOut,
    Exist,
    NoProtoOpt,
    Pipe,
    NoEnt,
    AddrInUse,
    NotSup,
    /// Any other negative errno (kept as its positive value).
    Errno(i32),
}

impl Error {
    /// The VPPCOM_E* (negative errno) value upstream VCL returns for this error.
    pub fn code(&self) -> i32 {
        use Error::*;
        -match self {
            Again => libc::EAGAIN,
            InProgress => libc::EINPROGRESS,
            Fault => libc::EFAULT,
            NoMem => libc::ENOMEM,
            Inval => libc::EINVAL,
            BadFd => libc::EBADFD,
            AfNoSupport => libc::EAFNOSUPPORT,
            ConnAborted => libc::ECONNABORTED,
            ConnReset => libc::ECONNRESET,
            NotConn => libc::ENOTCONN,
            ConnRefused => libc::ECONNREFUSED,
            TimedOut => libc::ETIMEDOUT,
            Exist => libc::EEXIST,
            NoProtoOpt => libc::ENOPROTOOPT,
            Pipe => libc::EPIPE,
            NoEnt => libc::ENOENT,
            AddrInUse => libc::EADDRINUSE,
            NotSup => libc::ENOTSUP,
            Errno(e) => *e,
        }
    }

    /// Map an OS errno to our error (unknown values are kept verbatim).
    pub fn from_errno(errno: i32) -> Error {
        use Error::*;
        match errno {
            libc::EAGAIN => Again,
            libc::EINPROGRESS => InProgress,
            libc::EFAULT => Fault,
            libc::ENOMEM => NoMem,
            libc::EINVAL => Inval,
            libc::EBADFD => BadFd,
            libc::EAFNOSUPPORT => AfNoSupport,
            libc::ECONNABORTED => ConnAborted,
            libc::ECONNRESET => ConnReset,
            libc::ENOTCONN => NotConn,
            libc::ECONNREFUSED => ConnRefused,
            libc::ETIMEDOUT => TimedOut,
            libc::EEXIST => Exist,
            libc::ENOPROTOOPT => NoProtoOpt,
            libc::EPIPE => Pipe,
            libc::ENOENT => NoEnt,
            libc::EADDRINUSE => AddrInUse,
            libc::ENOTSUP => NotSup,
            e => Errno(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_errno() {
        for e in [Error::Again, Error::BadFd, Error::ConnReset, Error::NotSup] {
            assert_eq!(Error::from_errno(-e.code()), e);
        }
        assert_eq!(Error::BadFd.code(), -77);
        assert_eq!(Error::Errno(5).code(), -5);
    }
}
