//! cabi-tests/: C and C++ programs, built through pkg-config with -Wall -Wextra -Werror, check
//! vppcom.h's layouts and constants against VPP v26.06 and call every export with bad input.

mod common;

use common::{repo_dir, Prefix};

fn run_abi_check(name: &str, cxx: bool, static_link: bool) {
    let p = Prefix::new(name);
    let src = repo_dir().join("cabi-tests/abi_check.c");
    let exe = p.compile(&[src], name, cxx, static_link);
    let work = p.dir.to_str().unwrap().to_owned();
    let out = p.run(&exe, &[&work], &[("VCL_DEBUG", "0")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    // the failures it provokes are explained on stderr, naming what was wrong
    assert!(stderr.contains("no-such-vcl.conf"), "{stderr}");
    assert!(stderr.contains("rx-fifo-size"), "{stderr}");
    assert!(stderr.contains("no-vpp-here"), "{stderr}");
}

#[test]
fn abi_check_c_shared() {
    run_abi_check("abi_c", false, false);
}

#[test]
fn abi_check_cxx_shared() {
    run_abi_check("abi_cxx", true, false);
}

#[test]
fn abi_check_c_static() {
    run_abi_check("abi_c_static", false, true);
}
