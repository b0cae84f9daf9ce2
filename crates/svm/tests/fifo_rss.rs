//! An app's fifo handles fault in none of a fifo's shared pages until the fifo is used: an app
//! holding many idle sessions must not pay a page of shared memory per fifo (upstream's VCL
//! reads nothing of a fifo when a session connects). Pages are counted in the app's own
//! mapping of the segment (smaps Rss of that mapping), not in the mapping the "peer" used to
//! lay the fifos out, as two processes would see it.

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use vcl_svm::fifo::FifoHandle;
use vcl_svm::fifo_segment::FifoSegment;
use vcl_svm::Segment;

/// Rss (KiB) of the mapping of this process holding address `addr`.
fn rss_kib_at(addr: usize) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    for line in smaps.lines() {
        let range = line
            .split_whitespace()
            .next()
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| {
                Some((
                    usize::from_str_radix(a, 16).ok()?,
                    usize::from_str_radix(b, 16).ok()?,
                ))
            });
        if let Some((a, b)) = range {
            inside = (a..b).contains(&addr);
        } else if inside {
            if let Some(kb) = line.strip_prefix("Rss:") {
                return kb.trim().trim_end_matches("kB").trim().parse().unwrap();
            }
        }
    }
    panic!("no mapping holds {addr:#x}");
}

#[test]
fn fifo_handles_fault_in_no_fifo_pages_until_used() {
    const N: usize = 1000;
    // the peer's side: N fifos with their first chunks, laid out (and touched) in its mapping
    let peer = Segment::create("fifo-rss", 64 << 20, 8192).unwrap();
    let fs = FifoSegment::init(&peer, 1).unwrap();
    let offs: Vec<u64> = (0..N)
        .map(|_| fs.alloc_fifo(0, 4096).unwrap().offset())
        .collect();
    // the app's side: its own mapping of the same memfd
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{}", peer.fd()))
        .unwrap();
    let app = Arc::new(Segment::map(OwnedFd::from(file)).unwrap());
    let base = app.at(0, 1, 1).unwrap() as usize;
    let mapped = rss_kib_at(base);
    let handles: Vec<FifoHandle> = offs
        .iter()
        .map(|&o| FifoHandle::new(app.clone(), o).unwrap())
        .collect();
    let held = rss_kib_at(base);
    // the segment header (already read by the map) is all a handle reads
    assert!(
        held - mapped <= 64,
        "{N} fifo handles faulted in {} KiB of the segment",
        held - mapped
    );
    // and the count does see pages once the fifos are used
    for h in &handles {
        assert_eq!(h.fifo().enqueue(b"x").unwrap(), 1);
    }
    let used = rss_kib_at(base);
    assert!(
        used >= held + 4 * N as u64,
        "using {N} fifos faulted in only {} KiB",
        used - held
    );
}
