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
