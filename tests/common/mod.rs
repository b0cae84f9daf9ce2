//! Shared helpers for tests that build and run C programs against libvcl through pkg-config.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The cargo profile directory holding libvcl.so / libvcl.a (target/debug).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A throwaway install prefix: lib/ with the soname links and a vcl.pc pointing at the repo's
/// include/, as `make install` would lay it out.
pub struct Prefix {
    pub dir: PathBuf,
}

impl Prefix {
    pub fn new(name: &str) -> Prefix {
        let dir = std::env::temp_dir().join(format!("vcl-{name}-{}", std::process::id()));
        let lib = dir.join("lib");
        std::fs::create_dir_all(lib.join("pkgconfig")).unwrap();
        let so = profile_dir().join("libvcl.so");
        assert!(so.exists(), "{} not built", so.display());
        for link in ["libvcl.so", "libvcl.so.26.06"] {
            let _ = std::fs::remove_file(lib.join(link));
            std::os::unix::fs::symlink(&so, lib.join(link)).unwrap();
        }
        let _ = std::fs::remove_file(lib.join("libvcl.a"));
        std::os::unix::fs::symlink(profile_dir().join("libvcl.a"), lib.join("libvcl.a")).unwrap();
        let pc = std::fs::read_to_string(repo_dir().join("pkgconfig/vcl.pc.in"))
            .unwrap()
            .replace("@PREFIX@", dir.to_str().unwrap())
            .replace("@LIBDIR@", lib.to_str().unwrap())
            .replace("@INCLUDEDIR@", repo_dir().join("include").to_str().unwrap())
            .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
        std::fs::write(lib.join("pkgconfig/vcl.pc"), pc).unwrap();
        Prefix { dir }
    }

    pub fn lib(&self) -> PathBuf {
        self.dir.join("lib")
    }

    fn pkg_config(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new("pkg-config")
            .args(args)
            .arg("vcl")
            .env("PKG_CONFIG_PATH", self.lib().join("pkgconfig"))
            .output()
            .expect("pkg-config is installed");
        assert!(out.status.success(), "pkg-config failed: {out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect()
    }

    /// Compile `srcs` (C, or C++ with `cxx`) with -Wall -Wextra -Werror and pkg-config flags.
    pub fn compile(&self, srcs: &[PathBuf], out: &str, cxx: bool, static_link: bool) -> PathBuf {
        let exe = self.dir.join(out);
        let mut cmd = Command::new(if cxx { "c++" } else { "cc" });
        cmd.args(["-Wall", "-Wextra", "-Werror", "-g", "-o"])
            .arg(&exe);
        if cxx {
            cmd.args(["-x", "c++", "-std=c++17"]);
        } else {
            cmd.arg("-std=gnu11");
        }
        cmd.args(srcs);
        cmd.args(self.pkg_config(&["--cflags"]));
        if static_link {
            cmd.arg("-Wl,-Bstatic");
            cmd.args(self.pkg_config(&["--libs-only-L"]));
            cmd.arg("-lvcl").arg("-Wl,-Bdynamic");
            cmd.args(["-lpthread", "-ldl", "-lrt", "-lm", "-lgcc_s"]);
        } else {
            cmd.args(self.pkg_config(&["--libs"]));
            if cxx {
                cmd.arg("-x").arg("none");
            }
        }
        let res = cmd.output().expect("a C compiler is installed");
        assert!(
            res.status.success(),
            "compile failed: {}\n{}",
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
        exe
    }

    /// Run a program built against this prefix.
    pub fn run(&self, exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(exe);
        cmd.args(args).env("LD_LIBRARY_PATH", self.lib());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run test program")
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
