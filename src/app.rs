//! The process-wide application: configuration, init state, attach and detach.

use parking_lot::Mutex;

use crate::config::Config;
use crate::error::Error;

/// What the app knows once vppcom_app_create succeeded.
struct App {
    #[allow(dead_code)]
    cfg: Config,
    #[allow(dead_code)]
    name: String,
}

static APP: Mutex<Option<App>> = Mutex::new(None);

/// Why app create failed, as the C ABI reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateError {
    /// A VCL error code (e.g. EEXIST when already initialised).
    Vcl(Error),
    /// Upstream's bare -1: no app socket, or the attach exchange failed.
    AttachFailed,
}

/// Attach to VPP with `cfg` under `name` (or `vcl_app_<pid>`).
pub fn create(cfg: Config, name: Option<String>) -> Result<(), CreateError> {
    let mut app = APP.lock();
    if app.is_some() {
        tracing::debug!("already initialized");
        return Err(CreateError::Vcl(Error::Exist));
    }
    let name = name.unwrap_or_else(|| format!("vcl_app_{}", std::process::id()));
    crate::logging::set_debug(cfg.debug_level);
    let Some(addr) = cfg.app_socket_api.as_ref() else {
        tracing::error!(
            "no app-socket-api in the configuration (nor VCL_VPP_SAPI_SOCKET): this vcl only \
             speaks VPP's app socket API"
        );
        return Err(CreateError::AttachFailed);
    };
    let sock = crate::sapi::connect_app_socket(addr).map_err(|_| CreateError::AttachFailed)?;
    // The attach exchange over `sock` (ATTACH, reply, segments, mqs) is not built yet: say so
    // and fail rather than pretend to be attached.
    drop(sock);
    tracing::error!(
        "connected to {} but the attach exchange is not implemented in this build",
        crate::sapi::addr_display(addr)
    );
    let _ = (&mut *app, name, cfg);
    Err(CreateError::AttachFailed)
}

/// Detach from VPP and forget the app; a later create starts afresh.
pub fn destroy() {
    APP.lock().take();
}

/// Whether vppcom_app_create has succeeded and destroy has not run since.
pub fn is_attached() -> bool {
    APP.lock().is_some()
}
