//! vcl.conf and VCL_* environment: the application's VCL configuration.
//!
//! Behaviour follows VPP v26.06 `vcl_cfg.c` (keywords, defaults, env
//! overrides) with a few deliberate differences, each noted where it is
//! implemented: `parse.rs` (file grammar), `sapi.rs` (socket address syntax),
//! `env.rs` (VCL_* variables).

mod env;
mod parse;
mod sapi;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_env;

use std::fmt;

/// Default ceiling of the busy-poll window in µs (vcl.conf `busy-poll-usec`, env
/// VCL_BUSY_POLL_USEC); 0 turns busy-polling off. Used by the wait loop (`crate::wait`).
/// 1 ms: each side of a TCP round trip through a VPP that sleeps 100 µs between loops waits
/// ~340 µs when both reply at once, so 300 µs never caught one (docs/benchmarking.md, "Waits
/// that span VPP's loops"); an idle waiter still spins once and then ever less.
pub const DEFAULT_BUSY_POLL_USEC: u32 = 1000;
use std::path::PathBuf;

pub use parse::parse_str;
pub use sapi::parse_sapi_addr;

/// Default configuration file path (upstream VPPCOM_CONF_DEFAULT).
pub const CONF_DEFAULT: &str = "/etc/vpp/vcl.conf";

/// Environment variable naming the configuration file (upstream VPPCOM_ENV_CONF).
pub const ENV_CONFIG: &str = "VCL_CONFIG";

/// Where the VPP app socket API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SapiAddr {
    /// A filesystem SOCK_SEQPACKET socket.
    Path(std::path::PathBuf),
    /// A Linux abstract socket name, without the leading NUL.
    Abstract(Vec<u8>),
}

/// The VCL configuration (upstream vppcom_cfg_t plus what vcl.conf can say).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub heapsize: u64,
    pub max_workers: u32,
    pub segment_baseva: u64,
    pub segment_size: u64,
    pub add_segment_size: u64,
    pub preallocated_fifo_pairs: u32,
    pub rx_fifo_size: u32,
    pub tx_fifo_size: u32,
    pub event_queue_size: u32,
    pub app_proxy_transport_tcp: bool,
    pub app_proxy_transport_udp: bool,
    pub app_scope_local: bool,
    pub app_scope_global: bool,
    pub namespace_id: Option<String>,
    pub namespace_secret: u64,
    pub use_mq_eventfd: bool,
    pub app_timeout: f64,
    pub session_timeout: f64,
    pub event_log_path: String,
    pub app_socket_api: Option<SapiAddr>,
    pub vpp_bapi_socket_name: Option<String>,
    pub app_name: Option<String>,
    pub tls_engine: u32,
    pub mt_wrk_supported: bool,
    pub huge_page: bool,
    pub app_original_dst: bool,
    pub debug_level: u32,
    /// `uid N` (bapi builds only upstream: owner of the shared-memory API segment).
    pub uid: Option<u32>,
    /// `gid N` (bapi builds only upstream: group of the shared-memory API segment).
    pub gid: Option<u32>,
    /// `busy-poll-usec N` (ours): ceiling of a blocked waiter's adaptive busy-poll window in
    /// µs before it sleeps; 0 turns busy-polling off.
    pub busy_poll_usec: u32,
    /// `reattach on|off` (ours; env VCL_REATTACH): once VPP went away, attach again when it
    /// is back on the same app socket and listen again on the listeners that were open.
    pub reattach: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            heapsize: 256 << 20,
            max_workers: 16,
            segment_baseva: 0,
            segment_size: 256 << 20,
            add_segment_size: 128 << 20,
            preallocated_fifo_pairs: 8,
            rx_fifo_size: 1 << 20,
            tx_fifo_size: 1 << 20,
            event_queue_size: 2048,
            app_proxy_transport_tcp: false,
            app_proxy_transport_udp: false,
            app_scope_local: false,
            app_scope_global: false,
            namespace_id: None,
            namespace_secret: 0,
            use_mq_eventfd: false,
            app_timeout: 600.0,
            session_timeout: 600.0,
            event_log_path: "/dev/shm".into(),
            app_socket_api: None,
            vpp_bapi_socket_name: None,
            app_name: None,
            tls_engine: 0,
            mt_wrk_supported: false,
            huge_page: false,
            app_original_dst: false,
            debug_level: 0,
            uid: None,
            gid: None,
            busy_poll_usec: DEFAULT_BUSY_POLL_USEC,
            reattach: true,
        }
    }
}

/// APP_OPTIONS_FLAGS_* bits (attach option 0), from the codec.
pub use vcl_codec::sapi::app_flags as flags;

/// TRANSPORT_PROTO_TCP / _UDP, as bit positions in the proxy transport mask.
const TRANSPORT_PROTO_TCP: u32 = 0;
const TRANSPORT_PROTO_UDP: u32 = 1;

/// CRYPTO_ENGINE_OPENSSL: what VCL asks for when `tls-engine` is unset (0).
pub const TLS_ENGINE_DEFAULT: u32 = 1;

impl Config {
    /// Attach option APP_OPTIONS_FLAGS, computed exactly as VCL's attach does.
    pub fn attach_flags(&self) -> u64 {
        let mut f = flags::ACCEPT_REDIRECT | flags::ADD_SEGMENT;
        let bits = [
            (self.app_scope_local, flags::USE_LOCAL_SCOPE),
            (self.app_scope_global, flags::USE_GLOBAL_SCOPE),
            (self.proxy_transport_mask() != 0, flags::IS_PROXY),
            (self.use_mq_eventfd, flags::EVT_MQ_USE_EVENTFD),
            (self.huge_page, flags::USE_HUGE_PAGE),
            (self.app_original_dst, flags::GET_ORIGINAL_DST),
        ];
        for (on, bit) in bits {
            if on {
                f |= bit;
            }
        }
        f
    }

    /// Attach option APP_OPTIONS_PROXY_TRANSPORT: `1 << TRANSPORT_PROTO_x` per proxied transport.
    pub fn proxy_transport_mask(&self) -> u64 {
        let mut m = 0;
        if self.app_proxy_transport_tcp {
            m |= 1 << TRANSPORT_PROTO_TCP;
        }
        if self.app_proxy_transport_udp {
            m |= 1 << TRANSPORT_PROTO_UDP;
        }
        m
    }

    /// Attach option APP_OPTIONS_TLS_ENGINE: the configured engine, or OpenSSL when unset.
    pub fn tls_engine_option(&self) -> u64 {
        if self.tls_engine == 0 {
            TLS_ENGINE_DEFAULT as u64
        } else {
            self.tls_engine as u64
        }
    }
}

/// A parsed configuration plus the non-fatal complaints met on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub config: Config,
    /// Unknown keywords, ignored text, invalid-but-tolerated env values; the
    /// caller logs them (upstream logs these and carries on).
    pub warnings: Vec<String>,
    /// The file the config came from; `None` when the default file was absent
    /// and only built-in defaults (plus env) apply.
    pub source: Option<String>,
}

/// Why the configuration could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// A malformed value in a config file: `file:line: keyword: message`.
    Syntax {
        file: String,
        line: usize,
        keyword: String,
        message: String,
    },
    /// The config file named by VCL_CONFIG (or the default one, if present
    /// but unreadable) could not be read.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A VCL_* variable holds a value we cannot use.
    Env { var: String, message: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Syntax {
                file,
                line,
                keyword,
                message,
            } => write!(f, "{file}:{line}: {keyword}: {message}"),
            ConfigError::Io { path, error } => {
                write!(f, "cannot read VCL config {}: {error}", path.display())
            }
            ConfigError::Env { var, message } => write!(f, "{var}: {message}"),
        }
    }
}

impl ConfigError {
    /// The VPPCOM_E* (negative errno) value for vppcom_app_create to return:
    /// the OS errno for an unreadable file (-ENOENT for a missing one),
    /// otherwise -EINVAL.
    pub fn vppcom_code(&self) -> i32 {
        match self {
            ConfigError::Io { error, .. } => -error.raw_os_error().unwrap_or(libc::EINVAL),
            _ => -libc::EINVAL,
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Reads the configuration the way `vppcom_app_create` does: the file named by
/// VCL_CONFIG (default [`CONF_DEFAULT`]) and then every VCL_* override.
pub fn load() -> Result<Parsed, ConfigError> {
    let get = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
    load_with(get(ENV_CONFIG), get)
}

/// [`load`] with the environment supplied by the caller (for tests and for
/// callers that snapshot the environment).
///
/// `path_env` is VCL_CONFIG's value. An empty value counts as unset. A missing
/// default file is normal (defaults apply, `source` is `None`); a missing file
/// the user named explicitly is an error, because silently running with
/// defaults would hide a typo in the path. Upstream ignores both.
pub fn load_with(
    path_env: Option<String>,
    get_env: impl Fn(&str) -> Option<String>,
) -> Result<Parsed, ConfigError> {
    let explicit = path_env.filter(|p| !p.is_empty());
    let path = explicit.clone().unwrap_or_else(|| CONF_DEFAULT.to_string());
    let mut parsed = match std::fs::read(&path) {
        Ok(bytes) => parse_str(&String::from_utf8_lossy(&bytes), &path)?,
        Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => Parsed {
            config: Config::default(),
            warnings: Vec::new(),
            source: None,
        },
        Err(error) => {
            return Err(ConfigError::Io {
                path: path.into(),
                error,
            })
        }
    };
    env::apply_env_collect(&mut parsed.config, &get_env, &mut parsed.warnings)?;
    Ok(parsed)
}
