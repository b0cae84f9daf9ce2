//! Two processes, one memfd: the parent streams a pseudo-random byte stream through fifo A, a
//! forked child (which maps the segment again from a dup of the fd) echoes it back through fifo
//! B, and the parent checks every byte. Both fifos start with one 4 KiB chunk, so chunks are
//! allocated by one process and released by the other through the shared free lists the whole
//! time. Volume: 1 GiB in release builds, 64 MiB in debug builds.
// unsafe here: dups fds and forks to test across processes.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};

use std::time::{Duration, Instant};

use nix::unistd::{fork, ForkResult};
use vcl_svm::fifo::Fifo;
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::{Segment, SvmError};

mod watchdog;

/// The whole exchange, however slow the machine: a stall or a dead child fails the test.
const LIMIT: Duration = Duration::from_secs(600);

const VOLUME: u64 = if cfg!(debug_assertions) {
    64 << 20
} else {
    1 << 30
};
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// xorshift64* stream of bytes, 8 at a time.
struct Stream {
    s: u64,
    buf: [u8; 8],
    at: usize,
}

impl Stream {
    fn new() -> Self {
        Stream {
            s: SEED,
            buf: [0; 8],
            at: 8,
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.at == 8 {
                self.s ^= self.s >> 12;
                self.s ^= self.s << 25;
                self.s ^= self.s >> 27;
                self.buf = self.s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_ne_bytes();
                self.at = 0;
            }
            *b = self.buf[self.at];
            self.at += 1;
        }
    }
}

fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The child: map the segment again, echo VOLUME bytes from `a` to `b`.
fn child(fd: i32, a_off: u64, b_off: u64) -> i32 {
    // SAFETY: dup returns a new descriptor (checked) that nobody else owns.
    let fd = unsafe { libc::dup(fd) };
    if fd < 0 {
        return 2;
    }
    // SAFETY: fd is fresh and owned by this OwnedFd only.
    let seg = match Segment::map(unsafe { OwnedFd::from_raw_fd(fd) }) {
        Ok(s) => s,
        Err(_) => return 3,
    };
    let Ok(fs) = FifoSegment::attach(&seg) else {
        return 4;
    };
    let (Ok(a), Ok(b)) = (Fifo::attach(fs, a_off), Fifo::attach(fs, b_off)) else {
        return 5;
    };
    let mut buf = vec![0u8; 100_000];
    let mut moved = 0u64;
    let mut spins = 0;
    while moved < VOLUME {
        let n = match a.dequeue(&mut buf) {
            Ok(n) => n,
            Err(SvmError::Empty) => {
                backoff(&mut spins);
                continue;
            }
            Err(_) => return 6,
        };
        spins = 0;
        let mut off = 0;
        while off < n {
            match b.enqueue(&buf[off..n]) {
                Ok(k) => off += k,
                Err(SvmError::Full) => backoff(&mut spins),
                Err(_) => return 7,
            }
        }
        moved += n as u64;
    }
    0
}

/// The parent: write the stream into `a`, read the echo from `b`, compare; fail if the child
/// stops (a dead echo would otherwise leave this loop spinning for good) or time runs out.
fn parent(a: &Fifo, b: &Fifo, child: &watchdog::Child) {
    let deadline = Instant::now() + LIMIT;
    let (mut tx, mut rx) = (Stream::new(), Stream::new());
    let (mut sent, mut got) = (0u64, 0u64);
    let mut wbuf = vec![0u8; 70_000];
    let (mut wlen, mut woff) = (0usize, 0usize);
    let mut rbuf = vec![0u8; 50_000];
    let mut want = vec![0u8; 50_000];
    let mut step = 1usize;
    let mut spins = 0;
    while got < VOLUME {
        if woff == wlen && sent < VOLUME {
            step = (step * 7919 + 13) % 65_536 + 1; // 1 B .. 64 KiB writes
            wlen = step.min((VOLUME - sent) as usize);
            tx.fill(&mut wbuf[..wlen]);
            woff = 0;
        }
        let mut progress = false;
        if woff < wlen {
            if let Ok(k) = a.enqueue(&wbuf[woff..wlen]) {
                woff += k;
                sent += k as u64;
                progress = true;
            }
        }
        match b.dequeue(&mut rbuf) {
            Ok(n) => {
                rx.fill(&mut want[..n]);
                assert!(rbuf[..n] == want[..n], "echo differs near byte {got}");
                got += n as u64;
                progress = true;
            }
            Err(SvmError::Empty) => {}
            Err(e) => panic!("{e}"),
        }
        if progress {
            spins = 0;
        } else {
            backoff(&mut spins);
            if spins % 1024 == 1023 {
                assert!(child.alive(), "the echo child died after {got} bytes");
                assert!(Instant::now() < deadline, "stalled after {got} bytes");
            }
        }
    }
}

#[test]
fn stream_through_a_fifo_pair_across_processes() {
    let seg = Segment::create("fifo-fork", 64 << 20, 8192).unwrap();
    let fs = FifoSegment::init(&seg, 1).unwrap();
    let a = fs.alloc_fifo(0, 256 << 10).unwrap();
    let b = fs.alloc_fifo(0, 192 << 10).unwrap();
    let (a_off, b_off) = (a.offset(), b.offset());
    let start = std::time::Instant::now();
    // SAFETY: the child only maps memory, runs the echo loop and leaves with _exit; glibc's malloc
    // is usable after fork.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(|| child(seg.fd(), a_off, b_off)).unwrap_or(9);
            // SAFETY: _exit ends the child without running the test harness's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        ForkResult::Parent { child } => {
            let child = watchdog::Child(child.as_raw());
            parent(&a, &b, &child);
            let st = child.wait(Duration::from_secs(60));
            assert!(
                libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
                "child failed ({st:#x})"
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "fifo_fork: {} MiB echoed in {secs:.2} s ({:.2} GB/s each way)",
        VOLUME >> 20,
        VOLUME as f64 / secs / 1e9
    );
    for f in [a, b] {
        assert_eq!(f.max_dequeue(), 0);
        fs.free_fifo(f).unwrap();
    }
    let fss = fs.slice(0).unwrap();
    let carved: u64 = (0..11)
        .map(|i| {
            u64::from(fss.num_chunks[i].load(std::sync::atomic::Ordering::Relaxed))
                * u64::from(vcl_svm::fifo_segment::fl_size(i))
        })
        .sum();
    assert_eq!(
        fs.cached_bytes(),
        carved,
        "every chunk is back on a free list"
    );
}
