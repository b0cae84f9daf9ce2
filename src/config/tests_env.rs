//! Config tests, part 2: the VCL_* environment over a file, loading (VCL_CONFIG, default path),
//! error texts and VPPCOM codes. Part 1 (the file syntax) is tests.rs.
use super::env::apply_env;
use super::tests::{abs, cfg, env};
use super::*;
use std::path::Path;

#[test]
fn env_overrides() {
    let mut c = cfg("vcl {\n namespace-id file\n app-socket-api /file/sock\n}");
    let get = env(&[
        ("VCL_DEBUG", "2"),
        ("VCL_APP_PROXY_TRANSPORT_TCP", ""),
        ("VCL_APP_PROXY_TRANSPORT_UDP", "0"),
        ("VCL_APP_SCOPE_LOCAL", "1"),
        ("VCL_APP_SCOPE_GLOBAL", "yes"),
        ("VCL_APP_USE_MQ_EVENTFD", "x"),
        ("VCL_APP_NAMESPACE_ID", "envns"),
        ("VCL_APP_NAMESPACE_SECRET", "12345678901234"),
        ("VCL_VPP_API_SOCKET", "/run/vpp/api.sock"),
        ("VCL_VPP_SAPI_SOCKET", "@vpp/session"),
    ]);
    apply_env(&mut c, get).unwrap();
    assert_eq!(c.debug_level, 2);
    // Presence alone switches flags on, as upstream ("0" and "" included).
    assert!(c.app_proxy_transport_tcp && c.app_proxy_transport_udp);
    assert!(c.app_scope_local && c.app_scope_global && c.use_mq_eventfd);
    assert_eq!(c.namespace_id.as_deref(), Some("envns"));
    assert_eq!(c.namespace_secret, 12_345_678_901_234);
    assert_eq!(c.vpp_bapi_socket_name.as_deref(), Some("/run/vpp/api.sock"));
    assert_eq!(c.app_socket_api, abs("vpp/session"));

    // Nothing set: nothing changes.
    let mut c2 = Config::default();
    apply_env(&mut c2, env(&[])).unwrap();
    assert_eq!(c2, Config::default());
}

#[test]
fn busy_poll_usec_from_file_and_env() {
    assert_eq!(Config::default().busy_poll_usec, DEFAULT_BUSY_POLL_USEC);
    let mut c = cfg("vcl {\n busy-poll-usec 75\n}");
    assert_eq!(c.busy_poll_usec, 75);
    apply_env(&mut c, env(&[("VCL_BUSY_POLL_USEC", "0")])).unwrap();
    assert_eq!(c.busy_poll_usec, 0, "0 turns busy-polling off");
    apply_env(&mut c, env(&[("VCL_BUSY_POLL_USEC", "x")])).unwrap();
    assert_eq!(c.busy_poll_usec, 0, "an unreadable value is ignored");
}

#[test]
fn reattach_from_file_and_env() {
    assert!(Config::default().reattach, "on by default");
    let mut c = cfg("vcl {\n reattach off\n}");
    assert!(!c.reattach);
    assert!(cfg("vcl {\n reattach on\n}").reattach);
    let e = parse_str("vcl {\n reattach maybe\n}", "t.conf")
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected on or off"), "{e}");
    apply_env(&mut c, env(&[("VCL_REATTACH", "on")])).unwrap();
    assert!(c.reattach);
    apply_env(&mut c, env(&[("VCL_REATTACH", "0")])).unwrap();
    assert!(!c.reattach, "VCL_REATTACH=0 turns it off");
    apply_env(&mut c, env(&[("VCL_REATTACH", "sometimes")])).unwrap();
    assert!(!c.reattach, "an unreadable value is ignored");
}

#[test]
fn env_bad_values() {
    let mut w = Vec::new();
    let mut c = Config::default();
    let get = env(&[
        ("VCL_DEBUG", "lots"),
        ("VCL_APP_NAMESPACE_SECRET", " 42abc"),
        ("VCL_APP_NAMESPACE_ID", ""),
    ]);
    env::apply_env_collect(&mut c, &get, &mut w).unwrap();
    assert_eq!(c.debug_level, 0);
    assert_eq!(c.namespace_secret, 42); // sscanf-style: the leading number counts
    assert_eq!(c.namespace_id, None);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("VCL_DEBUG: invalid value 'lots'"), "{w:?}");

    let mut c = Config::default();
    apply_env(&mut c, env(&[("VCL_DEBUG", "99999999999")])).unwrap();
    assert_eq!(c.debug_level, 0);

    let e = apply_env(&mut c, env(&[("VCL_VPP_SAPI_SOCKET", "tcp:1.2.3.4:5")])).unwrap_err();
    assert!(e.to_string().starts_with("VCL_VPP_SAPI_SOCKET: "), "{e}");
    let e = apply_env(&mut c, env(&[("VCL_VPP_SAPI_SOCKET", "")])).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

/// A scratch file under the system temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str, text: &str) -> TempFile {
        let p =
            std::env::temp_dir().join(format!("vcl-config-test-{}-{tag}.conf", std::process::id()));
        std::fs::write(&p, text).unwrap();
        TempFile(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn load_explicit_file_then_env() {
    let f = TempFile::new("explicit", "vcl {\n  rx-fifo-size 4000000\n  bogus\n}\n");
    let path = f.path().to_string_lossy().into_owned();
    let p = load_with(
        Some(path.clone()),
        env(&[("VCL_APP_SCOPE_LOCAL", "1"), ("VCL_DEBUG", "x")]),
    )
    .unwrap();
    assert_eq!(p.config.rx_fifo_size, 4_000_000);
    assert!(p.config.app_scope_local);
    assert_eq!(p.source.as_deref(), Some(path.as_str()));
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(p.warnings[0].starts_with(&format!("{path}:3: unknown vcl option 'bogus'")));
    assert!(p.warnings[1].starts_with("VCL_DEBUG:"));
}

#[test]
fn load_errors_name_the_file() {
    let f = TempFile::new("bad", "vcl {\n\n  tx-fifo-size 12k\n}\n");
    let path = f.path().to_string_lossy().into_owned();
    let e = load_with(Some(path.clone()), env(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("{path}:3: tx-fifo-size: expected a number (decimal or 0x hex), got '12k'")
    );
    let missing = "/nonexistent-dir-for-vcl-test/vcl.conf".to_string();
    let e = load_with(Some(missing.clone()), env(&[])).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains(&missing) && msg.contains("No such file or directory"),
        "{msg}"
    );
    assert!(std::error::Error::source(&e).is_some());
    // A directory is not a config file either.
    let dir = std::env::temp_dir().to_string_lossy().into_owned();
    assert!(load_with(Some(dir), env(&[])).is_err());
}

#[test]
fn load_default_path() {
    // Empty VCL_CONFIG means the default path. Whether /etc/vpp/vcl.conf exists
    // on this machine is not ours to decide: only assert the absent case.
    if !Path::new(CONF_DEFAULT).exists() {
        for path_env in [None, Some(String::new())] {
            let p = load_with(
                path_env,
                env(&[("VCL_VPP_SAPI_SOCKET", "abstract:vpp/session")]),
            )
            .unwrap();
            assert_eq!(p.source, None);
            assert!(p.warnings.is_empty());
            assert_eq!(
                p.config,
                Config {
                    app_socket_api: abs("vpp/session"),
                    ..Config::default()
                }
            );
        }
    }
}

#[test]
fn error_display_variants() {
    let e = ConfigError::Env {
        var: "VCL_X".into(),
        message: "bad".into(),
    };
    assert_eq!(e.to_string(), "VCL_X: bad");
    let e = ConfigError::Syntax {
        file: "f".into(),
        line: 7,
        keyword: "k".into(),
        message: "m".into(),
    };
    assert_eq!(e.to_string(), "f:7: k: m");
}

#[test]
fn vppcom_codes() {
    let e = load_with(Some("/nonexistent-dir-for-vcl-test/x".into()), env(&[])).unwrap_err();
    assert_eq!(e.vppcom_code(), -libc::ENOENT);
    assert_eq!(
        parse_str("vcl { max-workers x }", "f")
            .unwrap_err()
            .vppcom_code(),
        -libc::EINVAL
    );
}
