//! UDP through the shim, over VPP's transport (the test peer): ldpreload/tests/c/udp_echo.c
//! (blocking and epoll servers; connected and unconnected clients whose datagrams carry their
//! sequence number, length and checksum; MSG_PEEK, MSG_TRUNC, EMSGSIZE, EDESTADDRREQ,
//! sendmsg/recvmsg) and python3's socket module (ldpreload/tests/py_udp.py), every program
//! under the shim but one plain kernel client. Cut-through is not covered: see the README.

mod util;

use std::path::Path;

use util::{free_port, repo, require, Env, RUN, START};

#[test]
fn c_udp_echo_blocking_and_epoll_servers() {
    require("cc");
    let env = Env::new("udp");
    let prog = env.compile(&repo().join("ldpreload/tests/c/udp_echo.c"), "udp_echo");
    for mode in ["block", "epoll"] {
        let port = free_port().to_string();
        let mut server = env.spawn(&env.transport, &prog, &["server", &port, mode], &[]);
        server.wait_for_text("udp server ready", START);
        for c in ["connected", "unconnected"] {
            let a = ["client", "127.0.0.1", &port, c, "200"];
            let d = env.spawn(&env.transport, &prog, &a, &[]).finish(RUN);
            d.assert_ok();
            assert!(d.out.contains("udp client ok 200"), "{mode} {c}: {}", d.out);
        }
        // a plain kernel client reaches the VPP server too
        let a = ["client", "127.0.0.1", &port, "unconnected", "50"];
        env.spawn_plain(&prog, &a).finish(RUN).assert_ok();
        println!("{mode} server: connected, unconnected and kernel clients echoed");
    }
}

#[test]
fn python_udp_echo() {
    require("cc");
    require("python3");
    let env = Env::new("pyudp");
    let prog = env.compile(&repo().join("ldpreload/tests/c/udp_echo.c"), "udp_echo");
    let script = repo().join("ldpreload/tests/py_udp.py");
    let script = script.to_str().unwrap();
    let py = Path::new("python3");
    let port = free_port().to_string();
    let mut server = env.spawn(&env.transport, py, &[script, "server", &port], &[]);
    server.wait_for_text("py udp server ready", START);
    for c in ["connected", "unconnected"] {
        let d = env
            .spawn(
                &env.transport,
                py,
                &[script, "client", &port, "200", c],
                &[],
            )
            .finish(RUN);
        d.assert_ok();
        assert!(d.out.contains("py udp client ok 200"), "{c}: {}", d.out);
    }
    let a = ["client", "127.0.0.1", &port, "connected", "100"];
    env.spawn(&env.transport, &prog, &a, &[])
        .finish(RUN)
        .assert_ok();
    println!("python3 UDP server and clients, C client: all echoed");
}

/// `ldp-kernel` for UDP: a plain kernel echo server, reached from python3 (a socket with a
/// timeout: it polls for writability before its first sendto) under the shim with a vcl.conf
/// that gives VPP no route to it (local scope only). With `LDP_KERNEL=port=P` the socket
/// moves to the kernel at its first sendto and gets the echo; without, VPP refuses it.
#[test]
fn kernel_rule_keeps_udp_destinations_in_the_kernel() {
    require("cc");
    require("python3");
    let env = Env::new("udpkernel");
    let prog = env.compile(&repo().join("ldpreload/tests/c/udp_echo.c"), "udp_echo");
    let conf = env.dir.join("local-only.conf");
    let global = std::fs::read_to_string(&env.transport).unwrap();
    std::fs::write(&conf, global.replace("app-scope-global", "app-scope-local")).unwrap();
    let port = free_port().to_string();
    let mut server = env.spawn_plain(&prog, &["server", &port, "block"]);
    server.wait_for_text("udp server ready", START);
    let code = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.settimeout(5)\ns.sendto(b'hi', ('127.0.0.1', {port}))\n\
         assert s.recvfrom(10) == (b'hi', ('127.0.0.1', {port}))\nprint('kernel echo ok')\n"
    );
    let py = Path::new("python3");
    let rule = format!("port={port}");
    let d = env
        .spawn(&conf, py, &["-c", &code], &[("LDP_KERNEL", &rule)])
        .finish(RUN);
    d.assert_ok();
    assert!(d.out.contains("kernel echo ok"), "{}", d.out);
    let d = env.spawn(&conf, py, &["-c", &code], &[]).finish(RUN);
    assert!(
        !d.ok && !d.timed_out,
        "without the rule VPP has no route:\n{}",
        d.out
    );
    println!("LDP_KERNEL=port=P: UDP to P went to the kernel");
}
