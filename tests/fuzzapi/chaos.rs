//! The peer side of the fuzz: kernel listeners our sessions connect to, kernel clients that
//! connect to our listeners, and on both random data, closes and resets (RST); now and then
//! the test peer resets one of its sessions. Paced (about one action per ms) so it stresses
//! the library's event paths without exhausting loopback ports over a 10M-call run.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use vcl_testpeer::Peer;

use super::rng::Rng;

const MAX_CONNS: usize = 64;

#[derive(Default)]
pub struct Counts {
    pub accepted: AtomicU64,
    pub connected: AtomicU64,
    pub resets: AtomicU64,
    pub peer_resets: AtomicU64,
}

/// Close `s` with a RST (SO_LINGER 0) instead of a FIN.
fn reset(s: TcpStream) {
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a linger struct of the size passed.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        );
    }
}

pub fn run(
    seed: u64,
    peer: Arc<Peer>,
    listeners: Vec<TcpListener>,
    our_ports: Vec<u16>,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let mut rng = Rng::new(seed ^ 0xC4A0_5C4A_05C4_A05C);
    let mut conns: Vec<TcpStream> = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    for l in &listeners {
        l.set_nonblocking(true).unwrap();
    }
    while !stop.load(Relaxed) {
        for l in &listeners {
            while let Ok((s, _)) = l.accept() {
                counts.accepted.fetch_add(1, Relaxed);
                let _ = s.set_nonblocking(true);
                conns.push(s);
            }
        }
        if rng.one_in(20) {
            let port = rng.pick(&our_ports).unwrap();
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(20)) {
                counts.connected.fetch_add(1, Relaxed);
                let _ = s.set_nonblocking(true);
                conns.push(s);
            }
        }
        while conns.len() > MAX_CONNS {
            let s = conns.swap_remove(rng.below(conns.len() as u64) as usize);
            reset(s);
        }
        if !conns.is_empty() {
            let k = rng.below(conns.len() as u64) as usize;
            match rng.below(10) {
                0..=3 => {
                    let n = rng.below(buf.len() as u64) as usize;
                    let _ = conns[k].write(&buf[..n]);
                }
                4..=6 => {
                    let _ = conns[k].read(&mut buf);
                }
                7 => drop(conns.swap_remove(k)),
                8 => {
                    counts.resets.fetch_add(1, Relaxed);
                    reset(conns.swap_remove(k));
                }
                _ => {
                    let _ = conns[k].shutdown(std::net::Shutdown::Write);
                }
            }
        }
        if rng.one_in(200) {
            let ss = peer.sessions();
            if let Some(s) = ss.get(rng.below(ss.len().max(1) as u64) as usize) {
                if !s.is_listener && peer.reset_session(s.handle) {
                    counts.peer_resets.fetch_add(1, Relaxed);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1)); // pacing, not synchronisation
    }
}
