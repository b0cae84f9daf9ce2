//! nginx under the shim (`master_process on; worker_processes 2; use epoll; sendfile on`): the
//! master listens and forks two workers that accept on the inherited listener. Over transport
//! and cut-through: curl fetches a 10 MB file (sha256 compared), `ab -k -n 20000 -c 20`
//! reports 0 failed requests, `wrk -t 2 -c 50 -d 3s` reports no socket errors. Every client
//! runs under the shim too.

mod util;

use std::path::Path;

use util::{free_port, require, Env, RUN};

fn nginx_conf(dir: &Path, port: &str) -> std::path::PathBuf {
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 2;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log notice;\nevents {{ use epoll; worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  keepalive_requests 100000;\n\
         client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
         fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
         scgi_temp_path {d}/tmp/scgi;\n  server {{ listen 127.0.0.1:{port}; root {d}/www; }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

fn sha256(p: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn nginx_master_workers_curl_ab_wrk() {
    for tool in ["nginx", "curl", "ab", "wrk", "sha256sum"] {
        require(tool);
    }
    let env = Env::new("nginx");
    let www = env.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(env.dir.join("tmp")).unwrap();
    let big: Vec<u8> = (0..10_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(www.join("big.bin"), &big).unwrap();
    std::fs::write(www.join("index.html"), "hello\n").unwrap();
    let want = sha256(&www.join("big.bin"));
    for (name, conf) in env.confs() {
        let port = free_port().to_string();
        let nconf = nginx_conf(&env.dir, &port);
        let p = env.dir.to_str().unwrap();
        let args = ["-p", p, "-c", nconf.to_str().unwrap()];
        let server = env.spawn(&conf, Path::new("nginx"), &args, &[]);
        // nginx says nothing on stdout: wait until a plain request is answered. Each try gives
        // up after 3 s: a connection that lands on the master's listener before a worker has
        // taken it over is never accepted (as with upstream's shim), so a try can hang.
        let url = format!("http://127.0.0.1:{port}/index.html");
        let deadline = std::time::Instant::now() + util::START;
        loop {
            let c = env
                .spawn(&conf, Path::new("curl"), &["-sf", "-m", "3", &url], &[])
                .finish(RUN);
            if c.ok && c.out.contains("hello") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: nginx never answered: {}",
                c.out
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let got = env.dir.join("got.bin");
        let big_url = format!("http://127.0.0.1:{port}/big.bin");
        let g = got.to_str().unwrap();
        env.spawn(&conf, Path::new("curl"), &["-sf", "-o", g, &big_url], &[])
            .finish(RUN)
            .assert_ok();
        assert_eq!(sha256(&got), want, "{name}: the 10 MB file arrived changed");
        let ab = ["-k", "-n", "20000", "-c", "20", &url];
        let d = env.spawn(&conf, Path::new("ab"), &ab, &[]).finish(RUN);
        d.assert_ok();
        assert!(
            d.out.contains("Failed requests:        0"),
            "{name}: ab:\n{}",
            d.out
        );
        let wrk = ["-t", "2", "-c", "50", "-d", "3s", &url];
        let d = env.spawn(&conf, Path::new("wrk"), &wrk, &[]).finish(RUN);
        d.assert_ok();
        assert!(
            !d.out.contains("Socket errors") && d.out.contains("Requests/sec"),
            "{name}: wrk:\n{}",
            d.out
        );
        let rps = |out: &str, key: &str| {
            out.lines()
                .find(|l| l.contains(key))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        println!("{name}: sha256 ok; wrk {}", rps(&d.out, "Requests/sec"));
        let stop = server.terminate(RUN);
        assert!(!stop.timed_out, "{name}: nginx did not stop on SIGTERM");
        let log = std::fs::read_to_string(env.dir.join("error.log")).unwrap_or_default();
        assert!(
            !log.contains("[alert]") && !log.contains("[crit]") && !log.contains("[emerg]"),
            "{name}:\n{log}"
        );
        let _ = std::fs::remove_file(env.dir.join("error.log"));
    }
}
