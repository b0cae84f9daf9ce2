//! The app-socket-api address syntax (`app-socket-api`, VCL_VPP_SAPI_SOCKET).
//!
//! Upstream hands the string to vppinfra's `clib_socket_init`. We parse it
//! ourselves, accepting the same character set and lengths, and differ on
//! purpose in these ways:
//! * `@NAME` is accepted as `abstract:NAME` (how `ss` and Calico/VPP write
//!   it); upstream rejects it.
//! * `unix:PATH` means the filesystem socket PATH. Upstream copies the wrong
//!   bytes (the unstripped string, docs/wire.md#attach) so it can never connect there;
//!   we do what the prefix documents.
//! * A relative path is a filesystem socket relative to the current directory.
//!   Upstream treats a prefix-less, non-`/` string as an INET host name, which
//!   cannot carry the SEQPACKET socket API anyway.
//! * `,netns_name=` / `,netns_pid=` suffixes (abstract socket in another
//!   network namespace) are rejected with a clear message: not supported yet.
//! * `tcp:` is rejected: the socket API is AF_UNIX only.

use super::SapiAddr;
use std::fmt;
use std::path::PathBuf;

/// Size of `sockaddr_un.sun_path` on Linux.
const SUN_PATH_LEN: usize = 108;

/// Longest filesystem path: it and its NUL must fit in sun_path with one byte
/// to spare, which is the limit upstream enforces.
const MAX_PATH_LEN: usize = SUN_PATH_LEN - 2;
/// Longest abstract name: leading NUL + name + the NUL upstream counts.
const MAX_ABSTRACT_LEN: usize = SUN_PATH_LEN - 3;

/// Parses an app socket API address: `abstract:NAME`, `@NAME`, `unix:PATH`,
/// `/abs/path` or `rel/path`. The error says what is wrong, without the
/// keyword or file (the caller adds those).
pub fn parse_sapi_addr(s: &str) -> Result<SapiAddr, String> {
    if s.is_empty() {
        return Err("empty socket address".into());
    }
    let (is_abstract, rest) = if let Some(r) = s.strip_prefix("abstract:") {
        (true, r)
    } else if let Some(r) = s.strip_prefix('@') {
        (true, r)
    } else if let Some(r) = s.strip_prefix("unix:") {
        (false, r)
    } else if s.starts_with("tcp:") {
        return Err(format!(
            "'{s}': tcp sockets cannot carry the app socket API (use a path or abstract:NAME)"
        ));
    } else {
        (false, s)
    };
    let name_len = rest.bytes().take_while(|&b| name_byte_ok(b)).count();
    let (name, tail) = rest.split_at(name_len);
    if !tail.is_empty() {
        if is_abstract && (tail.starts_with(",netns_name=") || tail.starts_with(",netns_pid=")) {
            return Err(format!(
                "'{s}': netns_name/netns_pid socket options are not supported"
            ));
        }
        return Err(format!(
            "'{s}': unexpected '{tail}' (socket names may only contain A-Z a-z 0-9 / - . _)"
        ));
    }
    if name.is_empty() {
        return Err(format!("'{s}': empty socket name"));
    }
    if is_abstract {
        if name.len() > MAX_ABSTRACT_LEN {
            return Err(format!(
                "'{s}': abstract socket name longer than {MAX_ABSTRACT_LEN} bytes"
            ));
        }
        Ok(SapiAddr::Abstract(name.as_bytes().to_vec()))
    } else {
        if name.len() > MAX_PATH_LEN {
            return Err(format!(
                "'{s}': socket path longer than {MAX_PATH_LEN} bytes"
            ));
        }
        Ok(SapiAddr::Path(PathBuf::from(name)))
    }
}

/// The characters vppinfra accepts in a socket name.
fn name_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_')
}

/// `abstract:NAME` or the path, i.e. a form [`parse_sapi_addr`] reads back.
impl fmt::Display for SapiAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SapiAddr::Abstract(name) => write!(f, "abstract:{}", String::from_utf8_lossy(name)),
            SapiAddr::Path(p) => write!(f, "{}", p.display()),
        }
    }
}
