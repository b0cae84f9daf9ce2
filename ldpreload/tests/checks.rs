//! ldpreload/tests/c/checks.c under the shim (over transport: it connects to its own listener,
//! which the test peer's cut-through, as VPP's, does not offer within one app):
//! 2,000 kernel fds and 2,000 VPP sockets at once with no number shared and select() on low
//! fds; the errno of bad input and wrong-state calls, options, dup, SO_RCVTIMEO, epoll errors;
//! an epoll fd with a VPP socket nested in another.

mod util;

use util::{free_port, repo, require, Env, RUN};

#[test]
fn fds_and_bad_input() {
    require("cc");
    let env = Env::new("checks");
    let exe = env.compile(&repo().join("ldpreload/tests/c/checks.c"), "checks");
    let port = free_port().to_string();
    let d = env
        .spawn(&env.transport, &exe, &["errors", &port], &[])
        .finish(RUN);
    d.assert_ok();
    println!("{}", d.out.trim());
    let port = free_port().to_string();
    let d = env
        .spawn(&env.transport, &exe, &["fds", &port, "1048576"], &[])
        .finish(RUN);
    d.assert_ok();
    println!("{}", d.out.trim());
    let port = free_port().to_string();
    let d = env
        .spawn(&env.transport, &exe, &["nested", &port], &[])
        .finish(RUN);
    d.assert_ok();
    println!("{}", d.out.trim());
}

/// `LDP_KERNEL=port=N` keeps that listener on the kernel stack: a client without the shim
/// reaches it.
#[test]
fn kernel_rule_keeps_a_listener_in_the_kernel() {
    let env = Env::new("rules");
    let exe = env.compile(&repo().join("c-examples/sock_echo.c"), "sock_echo");
    let port = free_port().to_string();
    let rule = format!("port={port}");
    let mut server = env.spawn(
        &env.transport,
        &exe,
        &["server", &port, "epoll", "1"],
        &[("LDP_KERNEL", &rule)],
    );
    server.wait_for_text("listening on port", util::START);
    let c = env.spawn_plain(&exe, &["client", "127.0.0.1", &port, "block", "20", "1000"]);
    c.finish(RUN).assert_ok();
    server.finish(RUN).assert_ok();
}

/// VPP unreachable: one stderr line and the kernel stack by default; with LDP_STRICT socket()
/// fails (EAFNOSUPPORT) instead.
#[test]
fn unreachable_vpp_falls_back_or_fails_strictly() {
    let env = Env::new("down");
    let exe = env.compile(&repo().join("c-examples/sock_echo.c"), "sock_echo");
    let conf = env.dir.join("down.conf");
    std::fs::write(
        &conf,
        "vcl {\n  app-socket-api abstract:vcl-ldp-nobody-here\n}\n",
    )
    .unwrap();
    let port = free_port().to_string();
    let args = ["server", &port, "poll", "1"];
    let mut server = env.spawn(&conf, &exe, &args, &[("LDP_STRICT", "0")]);
    server.wait_for_text("listening on port", util::START);
    let c = env.spawn_plain(
        &exe,
        &["client", "127.0.0.1", &port, "nonblock", "20", "1000"],
    );
    c.finish(RUN).assert_ok();
    let d = server.finish(RUN);
    d.assert_ok();
    let lines: Vec<&str> = d
        .out
        .lines()
        .filter(|l| l.contains("vcl_ldpreload"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", d.out);
    assert!(
        lines[0].contains("cannot attach to VPP") && lines[0].contains("kernel"),
        "{}",
        d.out
    );
    let d = env.spawn(&conf, &exe, &args, &[]).finish(RUN);
    assert!(
        !d.ok && d.out.contains("socket: Address family not supported"),
        "{}",
        d.out
    );
}

/// VPP goes away under a waiter: its sockets report EPOLLHUP|EPOLLERR and fail
/// (ECONNRESET/EPIPE), a kernel pipe in the same set keeps working.
#[test]
fn vpp_going_away_fails_its_sockets_only() {
    require("cc");
    let mut env = Env::new("dies");
    let exe = env.compile(&repo().join("ldpreload/tests/c/checks.c"), "checks");
    let port = free_port().to_string();
    let mut p = env.spawn(&env.transport, &exe, &["vppdies", &port], &[]);
    p.wait_for_text("ready", util::START);
    env.stop_peer();
    let d = p.finish(RUN);
    d.assert_ok();
    println!("{}", d.out.trim());
}
