//! Peer configuration: where the sapi socket lives, how many VPP threads are emulated, the
//! per-thread mq length, and the faults to inject. Also parses socket address strings the way
//! VPP's `clib_socket_init` accepts them for sapi (`abstract:NAME`, `@NAME`, `/path`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where the app socket API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    /// A filesystem socket (the file is created at start and removed at stop).
    Path(PathBuf),
    /// A Linux abstract socket: `sun_path[0] = 0` followed by the name, no trailing NUL
    /// (vppinfra `clib_socket_init` with the `abstract:` prefix).
    Abstract(String),
}

impl SockAddr {
    /// Parse `abstract:NAME`, `@NAME`, `unix:/path` or `/path` (also relative paths).
    pub fn parse(s: &str) -> Result<SockAddr, String> {
        let s = s.trim();
        if let Some(n) = s.strip_prefix("abstract:").or_else(|| s.strip_prefix('@')) {
            // VPP allows `,netns_name=` suffixes; a test peer has no business switching netns.
            if n.is_empty() || n.contains(',') {
                return Err(format!("bad abstract socket name {s:?}"));
            }
            return Ok(SockAddr::Abstract(n.to_string()));
        }
        let p = s.strip_prefix("unix:").unwrap_or(s);
        if p.is_empty() {
            return Err("empty socket path".into());
        }
        Ok(SockAddr::Path(PathBuf::from(p)))
    }

    /// The string a VCL client would put in `app-socket-api`.
    pub fn to_config_string(&self) -> String {
        match self {
            SockAddr::Path(p) => p.display().to_string(),
            SockAddr::Abstract(n) => format!("abstract:{n}"),
        }
    }
}

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_config_string())
    }
}

/// A header field of the app's first segment that the [`Faults::corrupt_segment`] fault breaks
/// before the attach reply is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// ssvm header `ssvm_size` larger than the memfd.
    SsvmSize,
    /// ssvm header `opaque[0]` (fsh offset) pointing past the end of the segment.
    FshOffset,
    /// The app mq's `n_rings` set to 0.
    MqRings,
    /// The app mq's `maxsize` set far beyond what the segment can hold.
    MqMaxsize,
}

impl Corruption {
    /// Parse the binary's `--corrupt` value.
    pub fn parse(s: &str) -> Result<Corruption, String> {
        Ok(match s {
            "ssvm-size" => Corruption::SsvmSize,
            "fsh-offset" => Corruption::FshOffset,
            "mq-rings" => Corruption::MqRings,
            "mq-maxsize" => Corruption::MqMaxsize,
            _ => return Err(format!("unknown corruption {s:?}")),
        })
    }
}

/// Faults the peer injects to exercise a client's error paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Answer every ATTACH with this retval (a negative `SESSION_E_*`) and no fds.
    pub refuse_attach: Option<i32>,
    /// Close a sapi connection (peer side) after this many datagrams were received on it,
    /// without replying to the last one.
    pub drop_after: Option<u32>,
    /// On the N-th (1-based) datagram received over all connections, die abruptly: in-process
    /// every socket is closed without a reply and the peer stops; the binary aborts the process.
    pub exit_after: Option<u32>,
    /// With `exit_after`: abort the whole process (`std::process::abort`) instead of stopping
    /// the in-process peer. The binary sets this.
    pub abort_process: bool,
    /// Sleep this long before every sapi reply (and SEND_FDS).
    pub reply_delay: Option<Duration>,
    /// Sleep this long (peer state locked) before handling each LISTEN and CONNECT from an
    /// app: its BOUND/CONNECTED come late, as from a busy VPP.
    pub ctrl_delay: Option<Duration>,
    /// Break a header of the app's first segment before replying to ATTACH.
    pub corrupt_segment: Option<Corruption>,
    /// UDP: drop every N-th datagram received from the network (per socket).
    pub udp_drop_every: Option<u32>,
    /// UDP: deliver datagrams received from the network pairwise swapped.
    pub udp_reorder: bool,
    /// fd flood: every SEND_FDS carries this many copies of the segment fd beyond the one VPP
    /// sends (VPP sends exactly one, application_worker.c `app_worker_send_fd`).
    pub extra_fds: u32,
    /// fd flood: this many unsolicited SEND_FDS (one fd each) go ahead of every real one.
    pub unsolicited_fds: u32,
    /// VPP threads lag: each round with messages waiting starts this late (without the state
    /// lock), so the app socket's requests (a worker delete) overtake the mq's.
    pub mq_lag: Option<Duration>,
}

/// Configuration of a [`crate::Peer`].
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Listening address of the app socket API.
    pub socket: SockAddr,
    /// Emulated VPP threads (main + workers). 1 = no workers: ctrl mq thread 0, one slice per
    /// app segment. N ≥ 2: ctrl mq thread 1 and N slices (`vlib_num_workers () + 1`).
    pub threads: u8,
    /// `session { wrk-mq-length }`; VPP uses max(2048, this).
    pub wrk_mq_length: u32,
    /// `session { wrk-mqs-segment-size }`; VPP uses max(computed, this).
    pub wrk_mqs_segment_size: u64,
    /// App indices (and app-worker / segment-manager indices) taken by builtin apps before the
    /// first external attach (a real VPP has e.g. tls/http builtins). Default 0.
    pub builtin_apps: u32,
    /// Faults to inject.
    pub faults: Faults,
    /// Largest fifo segment the peer creates (bigger requests fail the way a failed memfd
    /// creation fails in VPP: retval -1). Guards CI against hostile sizes. Default 8 GiB.
    pub max_segment_size: u64,
    /// Entries kept in the message log (oldest dropped first).
    pub log_capacity: usize,
}

impl PeerConfig {
    /// Defaults for a socket address: 1 thread, mq length 2048, no faults.
    pub fn new(socket: SockAddr) -> PeerConfig {
        PeerConfig {
            socket,
            threads: 1,
            wrk_mq_length: 2048,
            wrk_mqs_segment_size: 0,
            builtin_apps: 0,
            faults: Faults::default(),
            max_segment_size: 8 << 30,
            log_capacity: 4096,
        }
    }

    /// Builder: number of emulated VPP threads.
    pub fn threads(mut self, n: u8) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Builder: faults.
    pub fn faults(mut self, f: Faults) -> Self {
        self.faults = f;
        self
    }

    /// The ctrl mq thread VPP announces: 1 if it has workers, else 0
    /// (session_api.c `session_api_attach_handler`: `ctrl_thread = n_workers ? 1 : 0`).
    pub fn ctrl_thread(&self) -> u8 {
        u8::from(self.threads > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sapi_addresses() {
        assert_eq!(
            SockAddr::parse("abstract:vpp/session").unwrap(),
            SockAddr::Abstract("vpp/session".into())
        );
        assert_eq!(
            SockAddr::parse("@x").unwrap(),
            SockAddr::Abstract("x".into())
        );
        assert_eq!(
            SockAddr::parse("/run/vpp/app_ns_sockets/default").unwrap(),
            SockAddr::Path("/run/vpp/app_ns_sockets/default".into())
        );
        assert!(SockAddr::parse("abstract:").is_err());
        assert!(SockAddr::parse("").is_err());
    }
}
