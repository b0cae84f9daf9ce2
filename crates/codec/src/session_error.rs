//! `SESSION_E_*` error codes carried in `retval` fields (attach replies,
//! bound, connected, ...), with names and our own human-readable text.
//!
//! The numbering follows VPP's `foreach_session_error` list (session_types.h):
//! entry N of the list has value -N. It has not changed from v25.10 to master.

/// One known session error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionErrorInfo {
    /// Code as sent on the wire (0 or negative).
    pub code: i32,
    /// Symbol suffix as VPP spells it (`SESSION_E_<name>`).
    pub name: &'static str,
    /// Short explanation for users.
    pub text: &'static str,
}

macro_rules! session_errors {
    ($( $konst:ident = $val:expr, $name:literal, $text:literal; )*) => {
        $(
            #[doc = concat!("`SESSION_E_", $name, "`: ", $text)]
            pub const $konst: i32 = $val;
        )*
        /// Every known code, ordered from 0 downwards.
        pub const SESSION_ERRORS: &[SessionErrorInfo] = &[
            $( SessionErrorInfo { code: $val, name: $name, text: $text }, )*
        ];
    };
}

session_errors! {
    SESSION_E_NONE = 0, "NONE", "no error";
    SESSION_E_UNKNOWN = -1, "UNKNOWN", "unspecified failure";
    SESSION_E_REFUSED = -2, "REFUSED", "connection refused";
    SESSION_E_TIMEDOUT = -3, "TIMEDOUT", "operation timed out";
    SESSION_E_ALLOC = -4, "ALLOC", "VPP could not allocate an object or memory";
    SESSION_E_OWNER = -5, "OWNER", "the object does not belong to this application";
    SESSION_E_NOROUTE = -6, "NOROUTE", "no route to the destination";
    SESSION_E_NOINTF = -7, "NOINTF", "no interface resolves the address";
    SESSION_E_NOIP = -8, "NOIP", "the local interface has no IP address";
    SESSION_E_NOPORT = -9, "NOPORT", "no local port available";
    SESSION_E_NOSUPPORT = -10, "NOSUPPORT", "operation or option combination not supported";
    SESSION_E_NOLISTEN = -11, "NOLISTEN", "nothing is listening there";
    SESSION_E_NOSESSION = -12, "NOSESSION", "no such session";
    SESSION_E_NOAPP = -13, "NOAPP", "application is not attached";
    SESSION_E_APP_ATTACHED = -14, "APP_ATTACHED", "application is already attached";
    SESSION_E_PORTINUSE = -15, "PORTINUSE", "local port already in use";
    SESSION_E_IPINUSE = -16, "IPINUSE", "IP address already in use";
    SESSION_E_ALREADY_LISTENING = -17, "ALREADY_LISTENING", "address and port are already being listened on";
    SESSION_E_ADDR_NOT_IN_USE = -18, "ADDR_NOT_IN_USE", "address is not in use";
    SESSION_E_INVALID = -19, "INVALID", "invalid argument";
    SESSION_E_INVALID_RMT_IP = -20, "INVALID_RMT_IP", "invalid remote IP address";
    SESSION_E_INVALID_APPWRK = -21, "INVALID_APPWRK", "invalid application worker";
    SESSION_E_INVALID_NS = -22, "INVALID_NS", "invalid application namespace";
    SESSION_E_SEG_NO_SPACE = -23, "SEG_NO_SPACE", "no room for a fifo pair in the segment";
    SESSION_E_SEG_NO_SPACE2 = -24, "SEG_NO_SPACE2", "new segment created but still no room for a fifo pair";
    SESSION_E_SEG_CREATE = -25, "SEG_CREATE", "could not create a segment";
    SESSION_E_FILTERED = -26, "FILTERED", "session blocked by a session rule";
    SESSION_E_SCOPE = -27, "SCOPE", "requested scope not supported";
    SESSION_E_BAPI_NO_FD = -28, "BAPI_NO_FD", "binary API client has no socket";
    SESSION_E_BAPI_SEND_FD = -29, "BAPI_SEND_FD", "could not pass file descriptors over the binary API socket";
    SESSION_E_BAPI_NO_REG = -30, "BAPI_NO_REG", "binary API registration not found";
    SESSION_E_MQ_MSG_ALLOC = -31, "MQ_MSG_ALLOC", "could not allocate a message queue message";
    SESSION_E_TLS_HANDSHAKE = -32, "TLS_HANDSHAKE", "TLS handshake failed";
    SESSION_E_EVENTFD_ALLOC = -33, "EVENTFD_ALLOC", "could not allocate an eventfd";
    SESSION_E_NOEXTCFG = -34, "NOEXTCFG", "required extended transport config missing";
    SESSION_E_NOCRYPTOENG = -35, "NOCRYPTOENG", "no usable crypto engine";
    SESSION_E_NOCRYPTOCKP = -36, "NOCRYPTOCKP", "certificate/key pair not found";
    SESSION_E_LOCAL_CONNECT = -37, "LOCAL_CONNECT", "could not connect within local scope";
    SESSION_E_WRONG_NS_SECRET = -38, "WRONG_NS_SECRET", "wrong namespace secret";
    SESSION_E_SYSCALL = -39, "SYSCALL", "a system call failed inside VPP";
    SESSION_E_TRANSPORT_NO_REG = -40, "TRANSPORT_NO_REG", "transport protocol not registered/enabled in VPP";
    SESSION_E_MAX_STREAMS_HIT = -41, "MAX_STREAMS_HIT", "maximum number of streams reached";
}

/// Table entry for `code`, if it is a known code.
pub fn session_error_info(code: i32) -> Option<&'static SessionErrorInfo> {
    let idx = usize::try_from(code.checked_neg()?).ok()?;
    SESSION_ERRORS.get(idx)
}

/// VPP's symbol suffix for `code` (`"PORTINUSE"`), or `"UNRECOGNIZED"`.
pub fn session_error_name(code: i32) -> &'static str {
    session_error_info(code).map_or("UNRECOGNIZED", |e| e.name)
}

/// Human-readable reason for `code`, for logs and user-facing errors.
/// Unknown codes (e.g. from a newer VPP) get a generic text rather than a panic.
pub fn session_error_str(code: i32) -> &'static str {
    session_error_info(code).map_or("unrecognized session error code", |e| e.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_dense_and_ordered() {
        assert_eq!(SESSION_ERRORS.len(), 42);
        for (i, e) in SESSION_ERRORS.iter().enumerate() {
            assert_eq!(e.code, -(i as i32));
        }
        assert_eq!(SESSION_E_MAX_STREAMS_HIT, -41);
        assert_eq!(SESSION_E_ALREADY_LISTENING, -17);
    }

    #[test]
    fn lookups() {
        assert_eq!(session_error_name(SESSION_E_PORTINUSE), "PORTINUSE");
        assert_eq!(session_error_str(-15), "local port already in use");
        assert_eq!(session_error_name(0), "NONE");
        for bad in [1, -42, i32::MIN, i32::MAX] {
            assert_eq!(session_error_name(bad), "UNRECOGNIZED");
            assert_eq!(session_error_str(bad), "unrecognized session error code");
        }
    }
}
