//! fork under the shim (nginx's model): ldpreload/tests/c/forker.c listens, runs system() and
//! a child that exits at once, then forks 2 children that accept on the inherited listener
//! (epoll, EPOLLEXCLUSIVE) while the parent only waits. Clients must all be served, by both
//! children, over transport and cut-through. Between the exiting child and the real ones, the
//! parent probes its own listener for a second: every connect must succeed.

mod util;

use std::collections::HashSet;

use util::{free_port, repo, require, Env, RUN, START};

#[test]
// Once failed as a child that exited at once had stopped the parent's worker listening: VPP
// had no listening worker left and refused connects (forker's probes catch that window).
fn forked_children_accept_on_the_inherited_listener() {
    require("cc");
    let env = Env::new("fork");
    let forker = env.compile(&repo().join("ldpreload/tests/c/forker.c"), "forker");
    let echo = env.compile(&repo().join("c-examples/sock_echo.c"), "sock_echo");
    for (name, conf) in env.confs() {
        let port = free_port().to_string();
        let mut server = env.spawn(&conf, &forker, &[&port, "2"], &[]);
        server.wait_for_text("listening on port", START);
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let a = ["client", "127.0.0.1", &port, "block", "20", "2000"];
                env.spawn(&conf, &echo, &a, &[])
            })
            .collect();
        for c in clients {
            c.finish(RUN).assert_ok();
        }
        // every connection was closed by its client: wait until both children said so
        let deadline = std::time::Instant::now() + RUN;
        while server.output().matches(" served ").count() < 8 {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: {}",
                server.output()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = server.output();
        let pids: HashSet<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("child ")?.split(' ').next())
            .collect();
        assert_eq!(pids.len(), 2, "{name}: both children accept:\n{out}");
        assert!(
            !out.contains("ERROR") && !out.contains("forker"),
            "{name}:\n{out}"
        );
        println!("{name}: 8 connections served by 2 forked children");
    }
}

/// ldpreload/tests/c/forkstorm.c: four threads hammer sockets, options and a shared epoll set
/// while the main thread forks 50 times; every child makes socket calls and exits within 10 s
/// (a shim lock another thread held at fork would hang it).
#[test]
fn fork_while_threads_hammer_the_shim() {
    require("cc");
    let env = Env::new("forkstorm");
    let storm = env.compile(&repo().join("ldpreload/tests/c/forkstorm.c"), "forkstorm");
    let d = env.spawn(&env.transport, &storm, &["50"], &[]).finish(RUN);
    d.assert_ok();
    assert!(d.out.contains("forks 50 hung 0 failed 0"), "{}", d.out);
    println!("{}", d.out.trim());
}
