//! Unmodified applications under libvcl_ldpreload.so against the test peer, over transport and
//! cut-through: iperf3 (-P 4, -R, --bidir) and redis-server + redis-benchmark (also with
//! --threads 2). A missing application fails the test (`.ci/run` installs them).
//!
//! LDP_STRICT is set, so a socket that could not go to VPP fails instead of quietly using
//! the kernel.

mod util;

use std::path::Path;
use std::time::Duration;

use util::{free_port, require, Env, RUN, START};

#[test]
fn iperf3_tcp_parallel_reverse_bidir() {
    require("iperf3");
    let env = Env::new("iperf3");
    let iperf = Path::new("iperf3");
    for (name, conf) in env.confs() {
        for args in [&["-P", "4"][..], &["-R"], &["--bidir"]] {
            let port = free_port().to_string();
            let mut server = env.spawn(
                &conf,
                iperf,
                &["-4", "-s", "-1", "--forceflush", "-p", &port],
                &[],
            );
            server.wait_for_text("Server listening", START);
            let mut a = vec!["-4", "-c", "127.0.0.1", "-p", &port, "-t", "2"];
            a.extend_from_slice(args);
            let c = env.spawn(&conf, iperf, &a, &[]).finish(RUN);
            c.assert_ok();
            let summary = c
                .out
                .lines()
                .rev()
                .find(|l| l.contains("receiver"))
                .unwrap_or("");
            assert!(
                !summary.is_empty(),
                "{name} {args:?}: no summary:\n{}",
                c.out
            );
            println!("iperf3 {name} {args:?}: {}", summary.trim());
            server.finish(Duration::from_secs(20)).assert_ok();
        }
    }
}

/// `iperf3 -s` without -4 listens on `[::]` (dual-stack): IPv4 and IPv6 clients both reach it.
#[test]
fn iperf3_dual_stack_listener() {
    require("iperf3");
    let env = Env::new("iperf3-ds");
    let iperf = Path::new("iperf3");
    for (name, conf) in env.confs() {
        for host in ["127.0.0.1", "::1"] {
            let port = free_port().to_string();
            let mut server = env.spawn(
                &conf,
                iperf,
                &["-s", "-1", "--forceflush", "-p", &port],
                &[],
            );
            server.wait_for_text("Server listening", START);
            let c = env
                .spawn(&conf, iperf, &["-c", host, "-p", &port, "-t", "1"], &[])
                .finish(RUN);
            c.assert_ok();
            assert!(c.out.contains("receiver"), "{name} {host}:\n{}", c.out);
            server.finish(Duration::from_secs(20)).assert_ok();
        }
    }
}

#[test]
fn redis_server_and_benchmark() {
    require("redis-server");
    require("redis-benchmark");
    let env = Env::new("redis");
    for (name, conf) in env.confs() {
        let port = free_port().to_string();
        let args = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ];
        let mut server = env.spawn(&conf, Path::new("redis-server"), &args, &[]);
        server.wait_for_text("Ready to accept connections", START);
        for threads in ["1", "2"] {
            let a = [
                "-p",
                &port,
                "-q",
                "-n",
                "20000",
                "-t",
                "set,get",
                "--threads",
                threads,
            ];
            let c = env
                .spawn(&conf, Path::new("redis-benchmark"), &a, &[])
                .finish(RUN);
            c.assert_ok();
            for op in ["SET", "GET"] {
                let line = c
                    .out
                    .split(['\r', '\n'])
                    .find(|l| {
                        l.starts_with(&format!("{op}: ")) && l.contains("requests per second")
                    })
                    .unwrap_or_else(|| panic!("{name}: no {op} result:\n{}", c.out));
                println!("redis {name} --threads {threads}: {line}");
            }
        }
        drop(server);
    }
}
