use super::*;
use std::collections::HashMap;

pub(super) fn parse(text: &str) -> Parsed {
    parse_str(text, "test.conf").unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn cfg(text: &str) -> Config {
    parse(text).config
}

pub(super) fn parse_err(text: &str) -> String {
    match parse_str(text, "/etc/vpp/vcl.conf") {
        Ok(p) => panic!("expected an error, got {p:?}"),
        Err(e) => e.to_string(),
    }
}

pub(super) fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| m.get(k).cloned()
}

pub(super) fn abs(name: &str) -> Option<SapiAddr> {
    Some(SapiAddr::Abstract(name.as_bytes().to_vec()))
}

#[test]
fn defaults_match_upstream() {
    let c = Config::default();
    assert_eq!(c.heapsize, 256 << 20);
    assert_eq!(c.max_workers, 16);
    assert_eq!(c.segment_size, 256 << 20);
    assert_eq!(c.add_segment_size, 128 << 20);
    assert_eq!(c.preallocated_fifo_pairs, 8);
    assert_eq!((c.rx_fifo_size, c.tx_fifo_size), (1 << 20, 1 << 20));
    assert_eq!(c.event_queue_size, 2048);
    assert_eq!((c.app_timeout, c.session_timeout), (600.0, 600.0));
    assert_eq!(c.event_log_path, "/dev/shm");
    assert_eq!(c.app_socket_api, None);
    assert_eq!(cfg("vcl {\n}\n"), c);
}

#[test]
fn every_valued_keyword() {
    let c = cfg("vcl {
        heapsize 64M
        max-workers 4
        app-socket-api /run/vpp/app_ns_sockets/default
        segment-baseva 0x200000000
        segment-size 1000000000
        add-segment-size 0x1000000
        preallocated-fifo-pairs 3
        rx-fifo-size 4000000
        tx-fifo-size 0x10000
        event-queue-size 40000
        app-timeout 1.5
        session-timeout 20
        tls-engine 2
        namespace-secret 18446744073709551615
        namespace-id foo
        api-socket-name /run/vpp/api.sock
        uid 1000
        gid 1001
    }");
    assert_eq!(c.heapsize, 64 << 20);
    assert_eq!(c.max_workers, 4);
    assert_eq!(
        c.app_socket_api,
        Some(SapiAddr::Path("/run/vpp/app_ns_sockets/default".into()))
    );
    assert_eq!(c.segment_baseva, 0x2_0000_0000);
    assert_eq!(c.segment_size, 1_000_000_000);
    assert_eq!(c.add_segment_size, 0x100_0000);
    assert_eq!(c.preallocated_fifo_pairs, 3);
    assert_eq!(c.rx_fifo_size, 4_000_000);
    assert_eq!(c.tx_fifo_size, 0x10000);
    assert_eq!(c.event_queue_size, 40000);
    assert_eq!(c.app_timeout, 1.5);
    assert_eq!(c.session_timeout, 20.0);
    assert_eq!(c.tls_engine, 2);
    assert_eq!(c.namespace_secret, u64::MAX);
    assert_eq!(c.namespace_id.as_deref(), Some("foo"));
    assert_eq!(c.vpp_bapi_socket_name.as_deref(), Some("/run/vpp/api.sock"));
    assert_eq!((c.uid, c.gid), (Some(1000), Some(1001)));
}

#[test]
fn every_flag_keyword() {
    let c = cfg("vcl {
        app-proxy-transport-tcp
        app-proxy-transport-udp
        app-scope-local
        app-scope-global
        huge_page
        use-mq-eventfd
        multi-thread-workers
        app_original_dst
    }");
    assert!(c.app_proxy_transport_tcp && c.app_proxy_transport_udp);
    assert!(c.app_scope_local && c.app_scope_global);
    assert!(c.huge_page && c.use_mq_eventfd && c.mt_wrk_supported && c.app_original_dst);
    // One at a time, so no keyword sets another's flag.
    type Get = fn(&Config) -> bool;
    let all: [(&str, Get); 8] = [
        ("app-proxy-transport-tcp", |c| c.app_proxy_transport_tcp),
        ("app-proxy-transport-udp", |c| c.app_proxy_transport_udp),
        ("app-scope-local", |c| c.app_scope_local),
        ("app-scope-global", |c| c.app_scope_global),
        ("huge_page", |c| c.huge_page),
        ("use-mq-eventfd", |c| c.use_mq_eventfd),
        ("multi-thread-workers", |c| c.mt_wrk_supported),
        ("app_original_dst", |c| c.app_original_dst),
    ];
    for (kw, _) in all {
        let c = cfg(&format!("vcl {{ {kw} }}"));
        for (kw2, get) in all {
            assert_eq!(get(&c), kw == kw2, "{kw} -> {kw2}");
        }
    }
}

#[test]
fn hex_and_decimal_sizes() {
    let c = cfg("vcl {\nrx-fifo-size 0x400000\ntx-fifo-size 0X20\nsegment-size 0xffffffffff\n}");
    assert_eq!(c.rx_fifo_size, 0x40_0000);
    assert_eq!(c.tx_fifo_size, 0x20);
    assert_eq!(c.segment_size, 0xff_ffff_ffff);
    // Keywords upstream reads with %u take no hex.
    for kw in [
        "max-workers",
        "preallocated-fifo-pairs",
        "tls-engine",
        "namespace-secret",
        "uid",
    ] {
        let e = parse_err(&format!("vcl {{\n  {kw} 0x10\n}}"));
        assert!(
            e.contains(":2: ") && e.contains(kw) && e.contains("'0x10'"),
            "{e}"
        );
    }
    // u32 fields reject values that would be truncated.
    let e = parse_err("vcl {\nrx-fifo-size 0x100000000\n}");
    assert!(e.contains("out of range"), "{e}");
    let e = parse_err("vcl {\nrx-fifo-size 4294967296\n}");
    assert!(e.contains("out of range"), "{e}");
    assert_eq!(
        cfg("vcl { rx-fifo-size 4294967295 }").rx_fifo_size,
        u32::MAX
    );
}

#[test]
fn heapsize_suffixes() {
    for (v, want) in [
        ("1024", 1024u64),
        ("64k", 64 << 10),
        ("64K", 64 << 10),
        ("512m", 512 << 20),
        ("512M", 512 << 20),
        ("2g", 2 << 30),
        ("8G", 8 << 30),
    ] {
        assert_eq!(
            cfg(&format!("vcl {{\nheapsize {v}\n}}")).heapsize,
            want,
            "{v}"
        );
    }
    for bad in ["abc", "12x", "M", "0x10M", "-1M"] {
        let e = parse_err(&format!("vcl {{\nheapsize {bad}\n}}"));
        assert!(e.starts_with("/etc/vpp/vcl.conf:2: heapsize: "), "{e}");
        assert!(e.contains(&format!("'{bad}'")), "{e}");
    }
    let e = parse_err("vcl {\nheapsize 99999999999999G\n}");
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn heapsize_prescanned_anywhere() {
    let p = parse("heapsize 1G\nvcl {\n  rx-fifo-size 10\n}\n");
    assert_eq!(p.config.heapsize, 1 << 30);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // After the block too; the last one wins.
    let p = parse("vcl {\n  heapsize 32M\n}\nheapsize 48M\n");
    assert_eq!(p.config.heapsize, 48 << 20);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // Commented out does not count.
    assert_eq!(cfg("# heapsize 1G\nvcl { }").heapsize, 256 << 20);
    // A bad value outside the block is still an error.
    assert!(parse_err("heapsize lots\nvcl { }").contains(":1: heapsize:"));
}

#[test]
fn comments() {
    let p = parse(
        "# leading comment\nvcl { # after the brace\n  # a comment line\n  \
         rx-fifo-size 100 # trailing\n  #app-scope-local\n  tx-fifo-size 200#glued\n}\n# after\n",
    );
    assert_eq!(p.config.rx_fifo_size, 100);
    assert_eq!(p.config.tx_fifo_size, 200);
    assert!(!p.config.app_scope_local);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // Upstream unformat knows no C comments: they are unknown options.
    let p = parse("vcl {\n  /* old */\n  app-scope-local\n}");
    assert!(p.config.app_scope_local);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains("test.conf:2:"), "{:?}", p.warnings);
}

#[test]
fn brace_layouts() {
    let want = cfg("vcl {\n  rx-fifo-size 7\n  app-scope-local\n}\n");
    for text in [
        "vcl\n{\n  rx-fifo-size 7\n  app-scope-local\n}\n",
        "vcl{rx-fifo-size 7 app-scope-local}",
        "vcl {\n  rx-fifo-size 7\n  app-scope-local }",
        "\n\n  vcl   {   rx-fifo-size 7\napp-scope-local\n\n}",
        "vcl {\r\n  rx-fifo-size 7\r\n  app-scope-local\r\n}\r\n",
        "vcl {\n\trx-fifo-size\t7\n\tapp-scope-local\n}",
    ] {
        let p = parse(text);
        assert_eq!(p.config, want, "{text:?}");
        assert!(p.warnings.is_empty(), "{text:?}: {:?}", p.warnings);
    }
}

#[test]
fn only_first_block_counts() {
    let p = parse("rx-fifo-size 5\nvcl {\n tx-fifo-size 6\n}\nvcl {\n tx-fifo-size 9\n}\n");
    assert_eq!(p.config.rx_fifo_size, 1 << 20);
    assert_eq!(p.config.tx_fifo_size, 6);
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(p.warnings[0].contains(":1: ignoring 'rx-fifo-size' outside"));
    assert!(p.warnings[1].contains(":5: ignoring everything after the end"));
}

#[test]
fn unclosed_missing_and_empty() {
    let p = parse("vcl {\n  app-scope-global\n");
    assert!(p.config.app_scope_global);
    assert!(p.warnings[0].contains("not closed"), "{:?}", p.warnings);
    let p = parse("session { enable }\n");
    assert_eq!(p.config, Config::default());
    assert!(
        p.warnings.iter().any(|w| w.contains("no 'vcl {' block")),
        "{:?}",
        p.warnings
    );
    let p = parse("  \n# nothing here\n");
    assert_eq!(p.config, Config::default());
    assert!(p.warnings.is_empty());
    assert_eq!(p.source.as_deref(), Some("test.conf"));
}

#[test]
fn unknown_keyword_warns_and_continues() {
    let p = parse("vcl {\n  rx-fifo-size 10\n  bogus-option 1 2\n  tx-fifo-size 20\n}");
    assert_eq!((p.config.rx_fifo_size, p.config.tx_fifo_size), (10, 20));
    assert_eq!(
        p.warnings,
        vec!["test.conf:3: unknown vcl option 'bogus-option 1 2', ignored".to_string()]
    );
    // On one line the skip stops at the next keyword.
    let p = parse("vcl { bogus 1 app-scope-local }");
    assert!(p.config.app_scope_local);
    assert_eq!(p.warnings.len(), 1);
    // '-' vs '_' slips get a hint.
    let p = parse("vcl {\n huge-page\n app-original-dst\n}");
    assert!(!p.config.huge_page);
    assert!(
        p.warnings[0].contains("did you mean 'huge_page'"),
        "{:?}",
        p.warnings
    );
    assert!(
        p.warnings[1].contains("did you mean 'app_original_dst'"),
        "{:?}",
        p.warnings
    );
    // Whole words only: a keyword prefix is not the keyword.
    let p = parse("vcl { app-scope-localx }");
    assert!(!p.config.app_scope_local);
    assert_eq!(p.warnings.len(), 1);
}

#[test]
fn malformed_values_are_errors() {
    assert_eq!(
        parse_err("vcl {\n  app-scope-local\n  rx-fifo-size abc\n}"),
        "/etc/vpp/vcl.conf:3: rx-fifo-size: expected a number (decimal or 0x hex), got 'abc'"
    );
    assert_eq!(
        parse_err("vcl {\n  max-workers\n}"),
        "/etc/vpp/vcl.conf:2: max-workers: expected a number, got end of line"
    );
    // The value must be on the keyword's line.
    assert!(parse_err("vcl {\n  segment-size\n  4096\n}").contains(":2: segment-size:"));
    let e = parse_err("vcl { app-timeout }");
    assert!(
        e.contains("app-timeout: expected a number of seconds, got '}'"),
        "{e}"
    );
    for bad in ["inf", "nan", "1s", "abc"] {
        let e = parse_err(&format!("vcl {{\nsession-timeout {bad}\n}}"));
        assert!(e.contains(":2: session-timeout:") && e.contains(bad), "{e}");
    }
    for bad in ["-1", "+1", "1e3", "12abc", ""] {
        let text = format!("vcl {{\ntx-fifo-size {bad}\n}}");
        assert!(parse_str(&text, "x").is_err(), "{bad:?}");
    }
    let e = parse_err("vcl {\n  app-socket-api tcp:localhost:1234\n}");
    assert!(
        e.starts_with("/etc/vpp/vcl.conf:2: app-socket-api: "),
        "{e}"
    );
    assert!(parse_err("vcl { namespace-id }").contains("namespace-id: expected a value"));
    assert!(parse_err("vcl { uid -1 }").contains("'-1'"));
}

#[test]
fn floats() {
    assert_eq!(cfg("vcl { app-timeout 0.25 }").app_timeout, 0.25);
    assert_eq!(cfg("vcl { app-timeout 1e2 }").app_timeout, 100.0);
    assert_eq!(cfg("vcl { session-timeout -1 }").session_timeout, -1.0);
}

#[test]
fn socket_syntaxes() {
    assert_eq!(
        parse_sapi_addr("abstract:vpp/session"),
        Ok(abs("vpp/session").unwrap())
    );
    assert_eq!(
        parse_sapi_addr("@vpp/session"),
        Ok(abs("vpp/session").unwrap())
    );
    assert_eq!(
        parse_sapi_addr("/run/vpp/app_ns_sockets/default"),
        Ok(SapiAddr::Path("/run/vpp/app_ns_sockets/default".into()))
    );
    assert_eq!(
        parse_sapi_addr("unix:/run/vpp/s1"),
        Ok(SapiAddr::Path("/run/vpp/s1".into()))
    );
    assert_eq!(
        parse_sapi_addr("rel/sock"),
        Ok(SapiAddr::Path("rel/sock".into()))
    );
    for bad in [
        "",
        "abstract:",
        "@",
        "unix:",
        "tcp:1.2.3.4:80",
        "/has space",
        "@a,netns_name=blue",
        "abstract:a,netns_pid=1",
        "/x:y",
    ] {
        assert!(parse_sapi_addr(bad).is_err(), "{bad:?}");
    }
    assert!(parse_sapi_addr("@a,netns_name=x")
        .unwrap_err()
        .contains("netns"));
    let long = "a".repeat(105);
    assert!(parse_sapi_addr(&format!("@{long}")).is_ok());
    assert!(parse_sapi_addr(&format!("@{long}a")).is_err());
    assert!(parse_sapi_addr(&format!("/{}", "p".repeat(105))).is_ok());
    assert!(parse_sapi_addr(&format!("/{}", "p".repeat(106))).is_err());
}

#[test]
fn socket_display() {
    let a = abs("vpp/session").unwrap();
    assert_eq!(a.to_string(), "abstract:vpp/session");
    assert_eq!(parse_sapi_addr(&a.to_string()), Ok(a.clone()));
    let p = SapiAddr::Path("/run/vpp/x".into());
    assert_eq!(p.to_string(), "/run/vpp/x");
}

#[test]
fn calico_vpp_configs() {
    let base = Config {
        rx_fifo_size: 4_000_000,
        tx_fifo_size: 4_000_000,
        app_scope_local: true,
        app_scope_global: true,
        app_socket_api: abs("vpp/session"),
        ..Config::default()
    };
    let p = parse(
        "vcl {\n  rx-fifo-size 4000000\n  tx-fifo-size 4000000\n  app-scope-local\n  \
         app-scope-global\n  app-socket-api abstract:vpp/session\n}\n",
    );
    assert_eq!(p.config, base);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);

    let p = parse(
        "vcl {\n  rx-fifo-size 4000000\n  tx-fifo-size 4000000\n  app-scope-local\n  \
         app-scope-global\n  use-mq-eventfd\n  event-queue-size 40000\n  \
         segment-size 1000000000\n  app-socket-api abstract:vpp/session\n}\n",
    );
    let want = Config {
        use_mq_eventfd: true,
        event_queue_size: 40000,
        segment_size: 1_000_000_000,
        ..base.clone()
    };
    assert_eq!(p.config, want);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);

    let p = parse(
        "vcl { rx-fifo-size 4000000 tx-fifo-size 4000000 app-scope-local app-scope-global \
         app-socket-api @vpp/session }",
    );
    assert_eq!(p.config, base);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn vpp_run_sh_configs() {
    // What /work/shared/vpp-run/vpp.sh's mkconf writes (with its empty line).
    let p = parse(
        "vcl {\n  rx-fifo-size 4000000\n  tx-fifo-size 4000000\n\n  app-scope-global\n  \
         app-socket-api /tmp/vppbar.x/app_ns_sockets/srv\n  use-mq-eventfd\n}\n",
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(
        p.config.app_socket_api,
        Some(SapiAddr::Path("/tmp/vppbar.x/app_ns_sockets/srv".into()))
    );
    assert!(p.config.use_mq_eventfd && p.config.app_scope_global && !p.config.app_scope_local);
}

#[test]
fn attach_flags_and_proxy_mask() {
    let d = Config::default();
    assert_eq!(
        d.attach_flags(),
        flags::ACCEPT_REDIRECT | flags::ADD_SEGMENT
    );
    assert_eq!(d.attach_flags(), 0x3);
    assert_eq!(d.proxy_transport_mask(), 0);
    assert_eq!(d.tls_engine_option(), 1);
    let c = cfg(
        "vcl { app-scope-local app-scope-global use-mq-eventfd huge_page \
                 app_original_dst app-proxy-transport-udp tls-engine 3 multi-thread-workers }",
    );
    assert_eq!(
        c.attach_flags(),
        0x1 | 0x2 | 0x10 | 0x20 | 0x40 | 0x80 | 0x200 | 0x400
    );
    assert_eq!(c.proxy_transport_mask(), 0b10);
    assert_eq!(c.tls_engine_option(), 3);
    let c = cfg("vcl { app-proxy-transport-tcp }");
    assert_eq!(c.attach_flags(), 0x13);
    assert_eq!(c.proxy_transport_mask(), 0b01);
}
