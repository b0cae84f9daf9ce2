//! Several streams into one epoll loop over blocking sessions, the way VPP's `vcl_test_server`
//! reads: edge-triggered, each session drained (read until GET_NREAD says 0) per event. Every
//! drain displaces the previously held session, whose consumed rx chunks then stay kept until
//! more sessions than the kept slots have drained (`Sessions::hold_rx`, `table::kept`); the
//! writer grows its fifos from the same segment meanwhile. Every byte of every stream must
//! arrive as written, over cut-through and over transport, with 64 KiB fifos (chunks are
//! released and reused all the time).
// unsafe here: calls the C ABI the way a C program does (extern "C" calls are unsafe).
#![allow(unsafe_code)]

mod vclapp;

use std::time::{Duration, Instant};

use vclapp::*;

/// More sessions than the kept slots (4) plus the held one, so displacements overflow them.
const SESSIONS: usize = 6;
const PER_SESSION: usize = 2 << 20;
const WRITE: usize = 8192;
const VPPCOM_ATTR_GET_NREAD: u32 = 0;
const VPPCOM_ATTR_GET_NWRITE: u32 = 1;
/// The fifo size `vclapp::write_conf` configures.
const FIFO: usize = 65536;

/// Byte `i` of stream `k`: differs between streams and along each (no period a lost or
/// repeated chunk could hide in).
fn pattern(k: usize, i: usize) -> u8 {
    ((i as u64).wrapping_mul(2_654_435_761) >> 13) as u8 ^ (k as u8).wrapping_mul(37)
}

#[test]
fn child_stream_sink() {
    if let Ok(port) = std::env::var("VCL_TEST_SINK_PORT") {
        sink(port.parse().unwrap());
    }
}

/// Child mode: accept SESSIONS blocking sessions, each opening with its stream number, and
/// check every byte they carry.
fn sink(port: u16) {
    // SAFETY: (every call in this block) plain calls into our own C ABI with valid pointers.
    unsafe {
        assert_eq!(vppcom_app_create(c"stream-sink".as_ptr()), 0);
        let ls = vppcom_session_create(0, 0) as u32;
        let mut ip = [0u8; 4];
        assert_eq!(vppcom_session_bind(ls, &mut endpt(&mut ip, port)), 0);
        assert_eq!(vppcom_session_listen(ls, 16), 0);
        println!("LISTENING");
        let vep = vppcom_epoll_create() as u32;
        // stream number (from the first byte), then bytes of the stream checked so far
        let mut streams: Vec<(u32, Option<usize>, usize)> = Vec::new();
        for _ in 0..SESSIONS {
            let mut pe = endpt(&mut [0; 4], 0);
            let mut pip = [0u8; 16];
            pe.ip = pip.as_mut_ptr();
            let cs = vppcom_session_accept(ls, &mut pe, 0);
            assert!(cs >= 0, "accept: {cs}");
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: streams.len() as u64,
            };
            assert_eq!(
                vppcom_epoll_ctl(vep, libc::EPOLL_CTL_ADD, cs as u32, &mut ev),
                0
            );
            streams.push((cs as u32, None, 0));
        }
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 16];
        let mut buf = vec![0u8; 16384];
        let deadline = Instant::now() + Duration::from_secs(60);
        while streams.iter().any(|s| s.2 < PER_SESSION) {
            assert!(Instant::now() < deadline, "streams stalled: {streams:?}");
            let n = vppcom_epoll_wait(vep, evs.as_mut_ptr(), 16, 100.0);
            assert!(n >= 0, "epoll_wait: {n}");
            for e in &evs[..n as usize] {
                let (sh, k, got) = &mut streams[e.u64 as usize];
                loop {
                    let r = vppcom_session_read(*sh, buf.as_mut_ptr() as *mut _, buf.len());
                    if r == 0 {
                        // the writer closed: only once everything it sent is in
                        assert_eq!(*got, PER_SESSION, "end of stream early");
                        break;
                    }
                    assert!(r > 0, "read: {r} after {got} bytes");
                    let mut bytes = &buf[..r as usize];
                    if k.is_none() {
                        *k = Some(bytes[0] as usize);
                        bytes = &bytes[1..];
                    }
                    let kk = k.unwrap();
                    for (j, &b) in bytes.iter().enumerate() {
                        let i = *got + j;
                        assert!(i < PER_SESSION, "stream {kk}: more than it sent");
                        assert_eq!(b, pattern(kk, i), "stream {kk}, byte {i}");
                    }
                    *got += bytes.len();
                    let more = vppcom_session_attr(
                        *sh,
                        VPPCOM_ATTR_GET_NREAD,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    );
                    if more <= 0 {
                        break;
                    }
                }
            }
        }
        let mut seen: Vec<usize> = streams.iter().map(|s| s.1.unwrap()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..SESSIONS).collect::<Vec<_>>());
        for (sh, _, _) in streams {
            vppcom_session_close(sh);
        }
        vppcom_session_close(vep);
        vppcom_session_close(ls);
        vppcom_app_destroy();
    }
}

fn streams_arrive_whole(local: bool) {
    let tag = if local { "streams-ct" } else { "streams-tpt" };
    let spawn = |conf: &std::path::Path, port: u16| {
        spawn_child(
            "child_stream_sink",
            conf,
            &[("VCL_TEST_SINK_PORT", port.to_string())],
        )
    };
    with_peer(tag, local, false, spawn, |port, _| {
        // SAFETY: plain calls into our own C ABI with valid pointers.
        unsafe {
            let mut ss = Vec::new();
            for k in 0..SESSIONS {
                let s = vppcom_session_create(0, 0) as u32;
                let mut ip = [127, 0, 0, 1];
                assert_eq!(vppcom_session_connect(s, &mut endpt(&mut ip, port)), 0);
                let id = [k as u8];
                assert_eq!(vppcom_session_write(s, id.as_ptr() as *mut _, 1), 1);
                ss.push(s);
            }
            // a write of each stream in turn, as `vcl_test_client -U` does
            let mut chunk = vec![0u8; WRITE];
            for at in (0..PER_SESSION).step_by(WRITE) {
                for (k, &s) in ss.iter().enumerate() {
                    for (j, b) in chunk.iter_mut().enumerate() {
                        *b = pattern(k, at + j);
                    }
                    let mut off = 0;
                    while off < WRITE {
                        let n = vppcom_session_write(
                            s,
                            chunk[off..].as_mut_ptr() as *mut _,
                            WRITE - off,
                        );
                        assert!(n > 0, "stream {k}: write {n} at {}", at + off);
                        off += n as usize;
                    }
                }
            }
            // close once the sink has taken everything (the tx fifo is empty again)
            let deadline = Instant::now() + Duration::from_secs(60);
            for &s in &ss {
                while vppcom_session_attr(
                    s,
                    VPPCOM_ATTR_GET_NWRITE,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                ) < FIFO as i32
                {
                    assert!(Instant::now() < deadline, "the sink stopped reading");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            for s in ss {
                assert_eq!(vppcom_session_close(s), 0);
            }
        }
    });
}

#[test]
fn ct_streams_into_one_epoll_loop_arrive_whole() {
    streams_arrive_whole(true);
}

#[test]
fn transport_streams_into_one_epoll_loop_arrive_whole() {
    streams_arrive_whole(false);
}
