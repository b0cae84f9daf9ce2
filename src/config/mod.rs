//! vcl.conf and VCL_* environment: the application's VCL configuration.
//!
//! Placeholder API; the parser lands with the config work.

/// Default configuration file path (upstream VPPCOM_CONF_DEFAULT).
pub const CONF_DEFAULT: &str = "/etc/vpp/vcl.conf";

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
        }
    }
}
