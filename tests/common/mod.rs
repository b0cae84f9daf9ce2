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

/// The freshest build of `name` (libvcl.so / libvcl.a): `cargo test` leaves its build in
/// target/<profile>/deps, `cargo build` copies one up to target/<profile>.
pub fn lib_artifact(name: &str) -> PathBuf {
    let up = profile_dir().join(name);
    let deps = profile_dir().join("deps").join(name);
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (mtime(&up), mtime(&deps)) {
        (Some(a), Some(b)) if b > a => deps,
        (None, Some(_)) => deps,
        _ => up,
    }
}

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where C programs find libvcl: a throwaway install prefix (lib/ with the soname links to this
/// build and a vcl.pc pointing at the repo's include/, as `make install` lays it out), or, when
/// VCL_TEST_PREFIX names one, a real `make install` prefix (scripts/test installs the release
/// build there, so the C checks also run against what is shipped). `dir` holds what tests
/// build and write.
pub struct Prefix {
    pub dir: PathBuf,
    libdir: PathBuf,
}

impl Prefix {
    pub fn new(name: &str) -> Prefix {
        let dir = std::env::temp_dir().join(format!("vcl-{name}-{}", std::process::id()));
        if let Some(inst) = std::env::var_os("VCL_TEST_PREFIX") {
            let libdir = PathBuf::from(inst).join("lib");
            assert!(
                libdir.join("pkgconfig/vcl.pc").exists(),
                "VCL_TEST_PREFIX: no lib/pkgconfig/vcl.pc in {}",
                libdir.display()
            );
            std::fs::create_dir_all(&dir).unwrap();
            return Prefix { dir, libdir };
        }
        let lib = dir.join("lib");
        std::fs::create_dir_all(lib.join("pkgconfig")).unwrap();
        let so = lib_artifact("libvcl.so");
        assert!(so.exists(), "{} not built", so.display());
        for link in ["libvcl.so", "libvcl.so.26.06"] {
            let _ = std::fs::remove_file(lib.join(link));
            std::os::unix::fs::symlink(&so, lib.join(link)).unwrap();
        }
        let _ = std::fs::remove_file(lib.join("libvcl.a"));
        std::os::unix::fs::symlink(lib_artifact("libvcl.a"), lib.join("libvcl.a")).unwrap();
        let pc = std::fs::read_to_string(repo_dir().join("pkgconfig/vcl.pc.in"))
            .unwrap()
            .replace("@PREFIX@", dir.to_str().unwrap())
            .replace("@LIBDIR@", lib.to_str().unwrap())
            .replace("@INCLUDEDIR@", repo_dir().join("include").to_str().unwrap())
            .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
        std::fs::write(lib.join("pkgconfig/vcl.pc"), pc).unwrap();
        Prefix { dir, libdir: lib }
    }

    pub fn lib(&self) -> PathBuf {
        self.libdir.clone()
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

impl Prefix {
    /// Compile one C program with -Wall -Wextra -Werror, `extra` flags (e.g. -pthread) and
    /// pkg-config's flags, as a user of the installed library would.
    pub fn compile_c(&self, src: &Path, out: &str, extra: &[&str]) -> PathBuf {
        let exe = self.dir.join(out);
        let res = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-std=gnu11", "-g", "-o"])
            .arg(&exe)
            .args(extra)
            .arg(src)
            .args(self.pkg_config(&["--cflags", "--libs"]))
            .output()
            .expect("a C compiler is installed");
        assert!(
            res.status.success(),
            "compile {} failed: {}\n{}",
            src.display(),
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
        exe
    }
}

/// A loopback TCP port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Write a vcl.conf for the test peer at `socket` (`abstract:NAME`) into `dir`; `local` adds
/// app-scope-local (cut-through between apps) to app-scope-global.
pub fn write_vcl_conf(dir: &Path, file: &str, socket: &str, local: bool) -> PathBuf {
    let path = dir.join(file);
    let scope = if local {
        "  app-scope-local\n  app-scope-global\n"
    } else {
        "  app-scope-global\n"
    };
    let text = format!(
        "vcl {{\n  app-socket-api {socket}\n  segment-size 67108864\n  rx-fifo-size 1048576\n  \
         tx-fifo-size 1048576\n{scope}}}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A program built against a [`Prefix`], running in the background (a server); killed when
/// dropped, so a failing test never leaves it behind. Its output is collected as it comes.
pub struct Bg {
    pub name: String,
    child: Option<std::process::Child>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Collect a pipe into `buf` on a thread (so a chatty program never blocks on a full pipe).
fn collect(
    mut pipe: impl std::io::Read + Send + 'static,
    buf: std::sync::Arc<std::sync::Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    })
}

impl Prefix {
    /// Start `exe` with its output collected.
    pub fn spawn(&self, exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Bg {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env("LD_LIBRARY_PATH", self.lib())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn test program");
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        let mut name = exe.file_name().unwrap().to_string_lossy().into_owned();
        for a in args {
            name.push(' ');
            name.push_str(a);
        }
        Bg {
            name,
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }

    /// Run `exe` to completion, killing it after `timeout` (then `timed_out` is set).
    pub fn run_for(
        &self,
        exe: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        timeout: std::time::Duration,
    ) -> Finished {
        self.spawn(exe, args, env).wait_for(timeout)
    }
}

/// What a program printed and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub name: String,
    pub status: Option<std::process::ExitStatus>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: std::time::Duration,
}

impl Finished {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// Panic with everything the program said unless it exited with 0.
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.success(),
            "`{}` failed (status {:?}, timed out: {}, after {:?}):\n--- stdout\n{}--- stderr\n{}",
            self.name,
            self.status,
            self.timed_out,
            self.elapsed,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The first stdout line containing `what` (panics, showing the output, if none does).
    pub fn line(&self, what: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| {
                panic!(
                    "`{}` printed no line with {what:?}:\n--- stdout\n{}--- stderr\n{}",
                    self.name, self.stdout, self.stderr
                )
            })
    }
}

impl Bg {
    /// Wait up to `timeout` for the program to exit; kill it if it does not.
    pub fn wait_for(self, timeout: std::time::Duration) -> Finished {
        self.wait_for_with(timeout, || {})
    }

    /// [`Bg::wait_for`], calling `each` every few milliseconds while waiting.
    pub fn wait_for_with(
        mut self,
        timeout: std::time::Duration,
        mut each: impl FnMut(),
    ) -> Finished {
        let mut child = self.child.take().expect("not yet waited for");
        let start = std::time::Instant::now();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait().expect("try_wait") {
                Some(s) => break Some(s),
                None if start.elapsed() >= timeout => {
                    timed_out = true;
                    let _ = child.kill();
                    break child.wait().ok();
                }
                None => {
                    each();
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
            }
        };
        let elapsed = start.elapsed();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            name: self.name.clone(),
            status,
            timed_out,
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
            elapsed,
        }
    }

    /// Wait until the program has printed `what` on stdout (a server saying it listens).
    /// False after `timeout`, or as soon as the program exits without printing it.
    pub fn wait_output(&mut self, what: &str, timeout: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        loop {
            if self.stdout.lock().unwrap().contains(what) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited || start.elapsed() >= timeout {
                // one last look: the line may have come just before the exit
                std::thread::sleep(std::time::Duration::from_millis(20));
                return self.stdout.lock().unwrap().contains(what);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
