//! `vcl-testpeer`: run the VPP v26.06 session-layer test peer until SIGTERM or SIGINT.
//!
//! ```text
//! vcl-testpeer --socket abstract:NAME|@NAME|/path [--threads N] [--wrk-mq-length N]
//!              [--builtin-apps N] [--refuse-attach ERR] [--drop-after N] [--exit-after N]
//!              [--reply-delay-ms D] [--corrupt ssvm-size|fsh-offset|mq-rings|mq-maxsize] [-v]...
//! ```
//! Logging: `RUST_LOG` if set; else debug with `-v` or `VCL_TESTPEER_DEBUG`, trace with `-vv`;
//! else warnings and errors only. Once listening it prints `READY <address>` on stdout.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use vcl_codec::session_error::SESSION_ERRORS;
use vcl_testpeer::{Corruption, Peer, PeerConfig, SockAddr};

struct Args {
    cfg: PeerConfig,
    verbose: u8,
}

fn usage() -> String {
    "usage: vcl-testpeer --socket abstract:NAME|@NAME|/path [--threads N] [--wrk-mq-length N] \
     [--builtin-apps N] [--refuse-attach ERR] [--drop-after N] [--exit-after N] \
     [--reply-delay-ms D] [--corrupt ssvm-size|fsh-offset|mq-rings|mq-maxsize] [-v]..."
        .to_string()
}

/// A SESSION_E_* error by number (`-10`), or name (`NOSUPPORT`, `SESSION_E_NOSUPPORT`).
fn parse_err(s: &str) -> Result<i32, String> {
    if let Ok(v) = s.parse::<i32>() {
        return Ok(-v.abs());
    }
    let name = s.trim_start_matches("SESSION_E_");
    SESSION_ERRORS
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(name))
        .map(|e| e.code)
        .ok_or_else(|| format!("unknown session error {s:?}"))
}

fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse().map_err(|_| format!("{flag}: bad value {v:?}"))
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut socket = None;
    let mut cfg = PeerConfig::new(SockAddr::Abstract(String::new()));
    let mut verbose = 0u8;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = Some(SockAddr::parse(&num::<String>(&a, it.next())?)?),
            "--threads" => cfg.threads = num::<u8>(&a, it.next())?.max(1),
            "--wrk-mq-length" => cfg.wrk_mq_length = num(&a, it.next())?,
            "--builtin-apps" => cfg.builtin_apps = num(&a, it.next())?,
            "--refuse-attach" => {
                cfg.faults.refuse_attach = Some(parse_err(&num::<String>(&a, it.next())?)?)
            }
            "--drop-after" => cfg.faults.drop_after = Some(num(&a, it.next())?),
            "--exit-after" => cfg.faults.exit_after = Some(num(&a, it.next())?),
            "--reply-delay-ms" => {
                cfg.faults.reply_delay = Some(Duration::from_millis(num(&a, it.next())?))
            }
            "--corrupt" => {
                cfg.faults.corrupt_segment =
                    Some(Corruption::parse(&num::<String>(&a, it.next())?)?)
            }
            "-v" => verbose += 1,
            "-vv" => verbose += 2,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    cfg.socket = socket.ok_or_else(usage)?;
    // The binary is a separate process: an abrupt exit takes the process down.
    cfg.faults.abort_process = true;
    Ok(Args { cfg, verbose })
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::new(s),
        _ if verbose >= 2 => EnvFilter::new("trace"),
        _ if verbose == 1 || std::env::var_os("VCL_TESTPEER_DEBUG").is_some() => {
            EnvFilter::new("debug")
        }
        _ => EnvFilter::new("warn"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_logging(args.verbose);
    // Block the signals before any thread exists so only sigwait below sees them.
    let mut sigs = SigSet::empty();
    sigs.add(Signal::SIGTERM);
    sigs.add(Signal::SIGINT);
    if let Err(e) = sigs.thread_block() {
        tracing::error!(%e, "cannot block signals");
        return ExitCode::FAILURE;
    }
    let peer = match Peer::start(args.cfg) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(%e, "cannot start the test peer");
            eprintln!("vcl-testpeer: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("READY {}", peer.socket_addr());
    let _ = std::io::stdout().flush();
    match sigs.wait() {
        Ok(sig) => tracing::info!(?sig, "stopping"),
        Err(e) => tracing::error!(%e, "sigwait failed; stopping"),
    }
    peer.stop();
    ExitCode::SUCCESS
}
