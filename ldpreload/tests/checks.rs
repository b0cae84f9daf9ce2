//! ldpreload/tests/c/checks.c under the shim (over transport: it connects to its own listener,
//! which the test peer's cut-through, as VPP's, does not offer within one app):
//! 2,000 kernel fds and 2,000 VPP sockets at once with no number shared and select() on low
//! fds; the errno of bad input and wrong-state calls, options, dup, SO_RCVTIMEO, epoll errors.

mod util;

use util::{free_port, repo, require, Env, RUN};

#[test]
fn fds_and_bad_input() {
    require("cc");
    let env = Env::new("checks");
    let exe = env.compile(&repo().join("ldpreload/tests/c/checks.c"), "checks");
    let port = free_port().to_string();
    let d = env.spawn(&env.transport, &exe, &["errors", &port], &[]).finish(RUN);
    d.assert_ok();
    println!("{}", d.out.trim());
    let port = free_port().to_string();
    let d = env.spawn(&env.transport, &exe, &["fds", &port, "1048576"], &[]).finish(RUN);
    d.assert_ok();
    println!("{}", d.out.trim());
}
