//! ldpreload/tests/c/threads.c under the shim over transport and cut-through: a server whose
//! main thread accepts and hands each connection to a new thread (which exits when done), and
//! a client whose threads use their own sockets or ones the main thread created. No error may
//! be logged (the library logs every failed queue access).

mod util;

use util::{free_port, repo, require, Env, RUN, START};

#[test]
fn sockets_shared_between_threads() {
    require("cc");
    let env = Env::new("threads");
    let exe = env.compile(&repo().join("ldpreload/tests/c/threads.c"), "threads");
    for (name, conf) in env.confs() {
        let port = free_port().to_string();
        let mut server = env.spawn(&conf, &exe, &["server", &port, "8"], &[]);
        server.wait_for_text("listening on port", START);
        let c = env
            .spawn(&conf, &exe, &["client", &port, "8", "300"], &[])
            .finish(RUN);
        c.assert_ok();
        let s = server.finish(RUN);
        s.assert_ok();
        for d in [&c, &s] {
            assert!(!d.out.contains("ERROR"), "{name}: {}:\n{}", d.name, d.out);
        }
        println!("{name}: {} / {}", c.out.trim(), s.out.trim());
    }
}
