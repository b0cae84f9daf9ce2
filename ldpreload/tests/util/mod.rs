//! Helpers for the shim's tests: the freshest libvcl_ldpreload.so, an in-process test peer
//! with vcl.conf files, and programs run under the shim with deadlines (killed on drop).
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vcl_testpeer::{Peer, PeerConfig, SockAddr};

pub const START: Duration = Duration::from_secs(30);
pub const RUN: Duration = Duration::from_secs(60);

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// The freshest libvcl_ldpreload.so of this profile (cargo leaves one in deps/ too).
pub fn shim() -> PathBuf {
    let name = "libvcl_ldpreload.so";
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let up = profile_dir().join(name);
    let deps = profile_dir().join("deps").join(name);
    let p = match (mtime(&up), mtime(&deps)) {
        (Some(a), Some(b)) if b > a => deps,
        (None, Some(_)) => deps,
        _ => up,
    };
    assert!(
        p.exists(),
        "{} is not built (cargo build -p vcl-ldpreload)",
        p.display()
    );
    p
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Fail (never skip) when a program the test needs is missing.
pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: .ci/run installs it (apt-get install)"
    );
}

/// A scratch directory, a test peer and vcl.conf files for transport and cut-through.
pub struct Env {
    pub dir: PathBuf,
    pub peer: Option<Peer>,
    pub transport: PathBuf,
    pub cut_through: PathBuf,
}

impl Env {
    pub fn new(tag: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("vcl-ldp-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = format!("vcl-ldp-{tag}-{}", std::process::id());
        let peer = Peer::start(PeerConfig::new(SockAddr::Abstract(sock.clone()))).expect("peer");
        let conf = |file: &str, local: bool| {
            let path = dir.join(file);
            let scope = if local { "  app-scope-local\n" } else { "" };
            let text = format!(
                "vcl {{\n  app-socket-api abstract:{sock}\n  rx-fifo-size 1048576\n  \
                 tx-fifo-size 1048576\n  app-scope-global\n{scope}}}\n"
            );
            std::fs::write(&path, text).unwrap();
            path
        };
        Env {
            transport: conf("transport.conf", false),
            cut_through: conf("cut-through.conf", true),
            dir,
            peer: Some(peer),
        }
    }

    /// Both configurations, named.
    pub fn confs(&self) -> [(&'static str, PathBuf); 2] {
        [
            ("transport", self.transport.clone()),
            ("cut-through", self.cut_through.clone()),
        ]
    }

    /// Build a C program with -Wall -Wextra -Werror.
    pub fn compile(&self, src: &Path, out: &str) -> PathBuf {
        let exe = self.dir.join(out);
        let r = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-O1", "-g", "-pthread", "-o"])
            .arg(&exe)
            .arg(src)
            .output()
            .expect("a C compiler is installed");
        assert!(
            r.status.success(),
            "compile {}: {}",
            src.display(),
            String::from_utf8_lossy(&r.stderr)
        );
        exe
    }

    /// Start `prog args` under the shim with `conf`.
    pub fn spawn(&self, conf: &Path, prog: &Path, args: &[&str], env: &[(&str, &str)]) -> Bg {
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .env("LD_PRELOAD", shim())
            .env("VCL_CONFIG", conf)
            .env("LDP_STRICT", "1")
            .env_remove("VCL_DEBUG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Bg::start(cmd, format!("{} {}", prog.display(), args.join(" ")))
    }
}

impl Env {
    /// Stop the test peer (VPP goes away).
    pub fn stop_peer(&mut self) {
        if let Some(p) = self.peer.take() {
            p.stop();
        }
    }

    /// Start `prog args` without the shim (plain kernel sockets).
    pub fn spawn_plain(&self, prog: &Path, args: &[&str]) -> Bg {
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Bg::start(
            cmd,
            format!("{} {} (no shim)", prog.display(), args.join(" ")),
        )
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A program running with its output collected; killed when dropped.
pub struct Bg {
    pub name: String,
    child: Option<Child>,
    out: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(mut pipe: impl Read + Send + 'static, buf: Arc<Mutex<String>>) -> JoinHandle<()> {
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

/// A finished program.
pub struct Done {
    pub name: String,
    pub ok: bool,
    pub timed_out: bool,
    pub out: String,
}

impl Done {
    pub fn assert_ok(&self) -> &Done {
        assert!(
            self.ok,
            "{} failed{}:\n{}",
            self.name,
            if self.timed_out {
                " (deadline passed: killed)"
            } else {
                ""
            },
            self.out
        );
        self
    }
}

impl Bg {
    fn start(mut cmd: Command, name: String) -> Bg {
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let out = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), out.clone()),
            collect(child.stderr.take().unwrap(), out.clone()),
        ];
        Bg {
            name,
            child: Some(child),
            out,
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Wait until the output contains `what` (panics with the output if the program exits or
    /// the deadline passes first).
    pub fn wait_for_text(&mut self, what: &str, deadline: Duration) {
        let end = Instant::now() + deadline;
        while !self.output().contains(what) {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap().is_some();
            assert!(
                !exited && Instant::now() < end,
                "{} never said '{what}':\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait for exit (killed when `deadline` passes): lets a server such as
    /// nginx's master stop its own children.
    pub fn terminate(self, deadline: Duration) -> Done {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.finish(deadline)
    }

    /// Wait for exit, killing the program when `deadline` passes.
    pub fn finish(mut self, deadline: Duration) -> Done {
        let end = Instant::now() + deadline;
        let mut child = self.child.take().unwrap();
        let (ok, timed_out) = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break (st.success(), false);
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                break (false, true);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Done {
            name: self.name.clone(),
            ok,
            timed_out,
            out: self.output(),
        }
    }
}

impl Drop for Bg {
    /// SIGTERM first (a server stops its children), SIGKILL after 2 s.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(2);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    // Free for UDP as well as TCP: the test peer's transport binds kernel sockets, and a port
    // free only for TCP was once a concurrent test's ephemeral UDP port (a UDP server's bind
    // was then refused).
    for _ in 0..100 {
        let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP in 100 tries");
}
