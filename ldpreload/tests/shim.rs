//! Plain socket programs under libvcl_ldpreload.so against the test peer, over transport and
//! cut-through: c-examples/sock_echo.c (blocking and non-blocking clients; blocking, epoll,
//! poll and select servers with a kernel pipe in the wait set) and a python3 socket +
//! selectors echo. Every program runs under a deadline and is killed when it passes.

mod util;

use std::path::Path;

use util::{free_port, repo, require, Env, RUN, START};

fn echo_round(env: &Env, exe: &Path, conf: &Path, mode: &str) {
    let port = free_port().to_string();
    let mut server = env.spawn(conf, exe, &["server", &port, mode, "3"], &[]);
    server.wait_for_text("listening on port", START);
    let clients = [
        env.spawn(
            conf,
            exe,
            &["client", "127.0.0.1", &port, "nonblock", "50", "100000"],
            &[],
        ),
        env.spawn(
            conf,
            exe,
            &["client", "127.0.0.1", &port, "block", "300", "1000"],
            &[],
        ),
        env.spawn(
            conf,
            exe,
            &["client", "127.0.0.1", &port, "nonblock", "3", "2000000"],
            &[],
        ),
    ];
    for c in clients {
        let d = c.finish(RUN);
        // a client's failure is often the server's: show what the server said by then
        assert!(
            d.ok && d.out.contains("ok (") && !d.out.contains("ERROR"),
            "{} failed{}:\n{}\n-- server ({mode}) so far:\n{}",
            d.name,
            if d.timed_out {
                " (deadline passed)"
            } else {
                ""
            },
            d.out,
            server.output()
        );
    }
    let d = server.finish(RUN);
    d.assert_ok();
    assert!(
        d.out.contains("server: 3 clients") && !d.out.contains("ERROR"),
        "{}",
        d.out
    );
}

fn sock_echo(tag: &str, cut_through: bool) {
    require("cc");
    let env = Env::new(tag);
    let exe = env.compile(&repo().join("c-examples/sock_echo.c"), "sock_echo");
    let conf = if cut_through {
        &env.cut_through
    } else {
        &env.transport
    };
    for mode in ["block", "epoll", "poll", "select"] {
        echo_round(&env, &exe, conf, mode);
    }
}

#[test]
fn sock_echo_over_transport() {
    sock_echo("echo-tr", false);
}

#[test]
fn sock_echo_over_cut_through() {
    sock_echo("echo-ct", true);
}

#[test]
fn python_selectors_echo_with_a_kernel_pipe() {
    require("python3");
    let env = Env::new("py");
    let script = repo().join("ldpreload/tests/py_echo.py");
    let py = Path::new("python3");
    for (name, conf) in env.confs() {
        let port = free_port().to_string();
        let s = script.to_str().unwrap();
        let mut server = env.spawn(&conf, py, &[s, "server", &port, "2"], &[]);
        server.wait_for_text("listening on port", START);
        assert!(
            server.output().contains("EpollSelector"),
            "{name}: {}",
            server.output()
        );
        let c1 = env.spawn(&conf, py, &[s, "client", &port, "200", "3000"], &[]);
        let c2 = env.spawn(&conf, py, &[s, "client", &port, "4", "1000000"], &[]);
        c1.finish(RUN).assert_ok();
        c2.finish(RUN).assert_ok();
        let d = server.finish(RUN);
        d.assert_ok();
        assert!(
            d.out.contains("server: 2 clients, 2 pipe events"),
            "{name}: {}",
            d.out
        );
    }
}

/// CPU time (user + system, in clock ticks) a process used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A server blocked in epoll_wait / poll / select on a VPP listener and a kernel pipe sleeps: ~0% CPU over 2 s (it wakes at most every 20 ms to re-check).
#[test]
fn idle_waiters_use_no_cpu() {
    require("cc");
    let env = Env::new("idle");
    let exe = env.compile(&repo().join("c-examples/sock_echo.c"), "sock_echo");
    for mode in ["epoll", "poll", "select"] {
        let port = free_port().to_string();
        let mut server = env.spawn(&env.cut_through, &exe, &["server", &port, mode, "1"], &[]);
        server.wait_for_text("listening on port", START);
        let pid = server.pid();
        // measuring, not synchronising: let the server settle into its wait, then sample
        std::thread::sleep(std::time::Duration::from_millis(300));
        let before = cpu_ticks(pid);
        std::thread::sleep(std::time::Duration::from_secs(2));
        let used = cpu_ticks(pid) - before;
        assert!(
            used <= 10,
            "{mode}: an idle server used {used} ticks in 2 s"
        );
        let c = env.spawn(
            &env.cut_through,
            &exe,
            &["client", "127.0.0.1", &port, "block", "10", "100"],
            &[],
        );
        c.finish(RUN).assert_ok();
        server.finish(RUN).assert_ok();
        println!("{mode}: {used} ticks of CPU in 2 s idle");
    }
}

/// An AF_INET6 listener on `[::]:0` (a port VPP picks) takes IPv6, IPv4 and IPv4-mapped
/// connections; peers show as Linux shows them (over transport: one app connects to itself).
#[test]
fn python_dual_stack_listener_on_port_zero() {
    require("python3");
    let env = Env::new("dual");
    let code = "import socket\n\
        s = socket.socket(socket.AF_INET6); s.bind(('::', 0)); s.listen()\n\
        p = s.getsockname()[1]; assert p != 0\n\
        for host, want in [('::1', '::1'), ('127.0.0.1', '::ffff:127.0.0.1'),\n\
                           ('::ffff:127.0.0.1', '::ffff:127.0.0.1')]:\n\
        \x20   c = socket.create_connection((host, p), timeout=10)\n\
        \x20   a, peer = s.accept()\n\
        \x20   assert peer[0] == want, (host, peer)\n\
        \x20   c.sendall(b'ping'); assert a.recv(4) == b'ping'\n\
        \x20   c.close(); a.close()\n\
        print('dual stack ok')\n";
    let d = env
        .spawn(&env.transport, Path::new("python3"), &["-c", code], &[])
        .finish(RUN);
    d.assert_ok();
    assert!(d.out.contains("dual stack ok"), "{}", d.out);
}

/// A signal whose handler has no SA_RESTART (Python's) interrupts a blocked accept and recv
/// with EINTR, so the handler's exception surfaces, as with the kernel.
#[test]
fn python_signal_interrupts_blocked_calls() {
    require("python3");
    let env = Env::new("eintr");
    let code = "import socket, signal\n\
        def h(*a): raise TimeoutError('alarm')\n\
        signal.signal(signal.SIGALRM, h)\n\
        s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
        signal.alarm(1)\n\
        try: s.accept(); raise SystemExit('accept returned')\n\
        except TimeoutError: pass\n\
        c = socket.create_connection(s.getsockname()); a, _ = s.accept()\n\
        signal.alarm(1)\n\
        try: a.recv(10); raise SystemExit('recv returned')\n\
        except TimeoutError: pass\n\
        print('interrupted ok')\n";
    let d = env
        .spawn(&env.transport, Path::new("python3"), &["-c", code], &[])
        .finish(RUN);
    d.assert_ok();
    assert!(d.out.contains("interrupted ok"), "{}", d.out);
}
