//! VCL_* environment overrides, applied after the file as upstream does.
//!
//! Upstream semantics kept: the flag variables (VCL_APP_PROXY_TRANSPORT_TCP,
//! _UDP, VCL_APP_SCOPE_LOCAL, _GLOBAL, VCL_APP_USE_MQ_EVENTFD) switch the
//! option on whenever they are set, whatever the value (even "0" or "");
//! VCL_DEBUG and VCL_APP_NAMESPACE_SECRET are read like `sscanf("%u")` (the
//! leading number counts), and an unreadable value is only a warning.
//!
//! Differences: an unusable VCL_VPP_SAPI_SOCKET is an error here (upstream
//! would fail every connect later without saying why), and an empty
//! VCL_APP_NAMESPACE_ID means "no namespace id" (upstream mishandles it).

use super::{parse_sapi_addr, Config, ConfigError};

pub const ENV_DEBUG: &str = "VCL_DEBUG";
pub const ENV_APP_PROXY_TRANSPORT_TCP: &str = "VCL_APP_PROXY_TRANSPORT_TCP";
pub const ENV_APP_PROXY_TRANSPORT_UDP: &str = "VCL_APP_PROXY_TRANSPORT_UDP";
pub const ENV_APP_NAMESPACE_ID: &str = "VCL_APP_NAMESPACE_ID";
pub const ENV_APP_NAMESPACE_SECRET: &str = "VCL_APP_NAMESPACE_SECRET";
pub const ENV_APP_SCOPE_LOCAL: &str = "VCL_APP_SCOPE_LOCAL";
pub const ENV_APP_SCOPE_GLOBAL: &str = "VCL_APP_SCOPE_GLOBAL";
pub const ENV_APP_USE_MQ_EVENTFD: &str = "VCL_APP_USE_MQ_EVENTFD";
pub const ENV_VPP_API_SOCKET: &str = "VCL_VPP_API_SOCKET";
pub const ENV_VPP_SAPI_SOCKET: &str = "VCL_VPP_SAPI_SOCKET";
pub const ENV_BUSY_POLL_USEC: &str = "VCL_BUSY_POLL_USEC";
pub const ENV_REATTACH: &str = "VCL_REATTACH";

/// Applies every VCL_* override to `cfg`, reading variables through `get`
/// (so tests need not touch the process environment). Tolerated bad values
/// are logged as warnings; [`super::load_with`] returns them instead.
#[cfg(test)]
pub(super) fn apply_env(
    cfg: &mut Config,
    get: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let mut warnings = Vec::new();
    let r = apply_env_collect(cfg, &get, &mut warnings);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    r
}

pub(super) fn apply_env_collect(
    cfg: &mut Config,
    get: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if let Some(v) = get(ENV_DEBUG) {
        if let Some(n) = leading_number(ENV_DEBUG, &v, warnings) {
            match u32::try_from(n) {
                Ok(n) => cfg.debug_level = n,
                Err(_) => warnings.push(format!("{ENV_DEBUG}: '{v}' is out of range, ignored")),
            }
        }
    }
    if let Some(v) = get(ENV_BUSY_POLL_USEC) {
        if let Some(n) = leading_number(ENV_BUSY_POLL_USEC, &v, warnings) {
            match u32::try_from(n) {
                Ok(n) => cfg.busy_poll_usec = n,
                Err(_) => warnings.push(format!(
                    "{ENV_BUSY_POLL_USEC}: '{v}' is out of range, ignored"
                )),
            }
        }
    }
    if let Some(v) = get(ENV_REATTACH) {
        match super::parse::on_off(Some(v.trim())) {
            Ok(on) => cfg.reattach = on,
            Err(e) => warnings.push(format!("{ENV_REATTACH}: {e}, ignored")),
        }
    }
    if let Some(v) = get(ENV_APP_NAMESPACE_ID) {
        cfg.namespace_id = (!v.is_empty()).then_some(v);
    }
    if let Some(v) = get(ENV_APP_NAMESPACE_SECRET) {
        if let Some(n) = leading_number(ENV_APP_NAMESPACE_SECRET, &v, warnings) {
            cfg.namespace_secret = n;
        }
    }
    let flags = [
        (
            ENV_APP_PROXY_TRANSPORT_TCP,
            &mut cfg.app_proxy_transport_tcp,
        ),
        (
            ENV_APP_PROXY_TRANSPORT_UDP,
            &mut cfg.app_proxy_transport_udp,
        ),
        (ENV_APP_SCOPE_LOCAL, &mut cfg.app_scope_local),
        (ENV_APP_SCOPE_GLOBAL, &mut cfg.app_scope_global),
        (ENV_APP_USE_MQ_EVENTFD, &mut cfg.use_mq_eventfd),
    ];
    for (var, field) in flags {
        if get(var).is_some() {
            *field = true;
        }
    }
    if let Some(v) = get(ENV_VPP_API_SOCKET) {
        cfg.vpp_bapi_socket_name = Some(v);
    }
    if let Some(v) = get(ENV_VPP_SAPI_SOCKET) {
        let addr = parse_sapi_addr(&v).map_err(|message| ConfigError::Env {
            var: ENV_VPP_SAPI_SOCKET.into(),
            message,
        })?;
        cfg.app_socket_api = Some(addr);
    }
    Ok(())
}

/// The unsigned number at the start of `v` after blanks, as `sscanf("%u")`
/// takes it; a warning (and `None`) when there is none or it overflows, a
/// warning when text follows it.
fn leading_number(var: &str, v: &str, warnings: &mut Vec<String>) -> Option<u64> {
    let t = v.trim_start();
    let t = t.strip_prefix('+').unwrap_or(t);
    let end = t.bytes().take_while(u8::is_ascii_digit).count();
    let n = match t[..end].parse::<u64>() {
        Ok(n) => n,
        Err(_) => {
            warnings.push(format!("{var}: invalid value '{v}', ignored"));
            return None;
        }
    };
    if !t[end..].trim().is_empty() {
        warnings.push(format!(
            "{var}: ignoring '{}' after the number in '{v}'",
            &t[end..]
        ));
    }
    Some(n)
}
