//! Tests of [`super::RwLock`] (kept apart so that sync.rs stays short).

use super::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn readers_share_writers_exclude() {
    // writers keep the two halves equal; a reader must never see them differ
    let l = Arc::new(RwLock::new((0u64, 0u64)));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let l = l.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    if (i + t) % 4 == 0 {
                        let mut g = l.write();
                        g.0 += 1;
                        std::hint::spin_loop();
                        g.1 += 1;
                    } else {
                        let g = l.read();
                        assert_eq!(g.0, g.1, "a reader saw a writer's half-done update");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let g = l.read();
    assert_eq!(*g, (20_000, 20_000));
}

#[test]
fn readers_hold_together() {
    let l = RwLock::new(());
    let a = l.read();
    let b = l.try_read().expect("a second reader gets in");
    assert!(l.try_write().is_none());
    drop(a);
    assert!(l.try_write().is_none());
    drop(b);
    let w = l.try_write().expect("free again");
    assert!(l.try_read().is_none());
    assert!(l.is_locked_exclusive());
    drop(w);
    assert!(!l.is_locked());
}

/// Readers that keep overlapping must not keep a writer out: a waiting writer holds new
/// readers back.
#[test]
fn a_writer_gets_in_between_busy_readers() {
    let l = Arc::new(RwLock::new(0u32));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (l, stop) = (l.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let g = l.read();
                    for _ in 0..200 {
                        std::hint::spin_loop();
                    }
                    drop(g);
                }
            })
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let l = l.clone();
        std::thread::spawn(move || {
            for _ in 0..200 {
                *l.write() += 1;
            }
            let _ = tx.send(());
        })
    };
    let done = rx.recv_timeout(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    assert!(done.is_ok(), "the writer starved");
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(*l.read(), 200);
}

/// The property fork needs: a write lock held across fork while other threads sleep on it
/// (a reader and a writer) is usable in the child once the holder unlocks it there.
#[test]
fn child_unlocks_and_relocks_a_contended_rwlock() {
    let l = Arc::new(RwLock::new(()));
    let held = l.write();
    let sleepers: Vec<_> = (0..2)
        .map(|i| {
            let l = l.clone();
            std::thread::spawn(move || {
                if i == 0 {
                    drop(l.read())
                } else {
                    drop(l.write())
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    // SAFETY: raw() is only read here (its state word), never unlocked behind the guard.
    let raw = unsafe { l.raw() };
    while raw.state.load(Ordering::Relaxed) & RW_SLEEPERS == 0 {
        assert!(Instant::now() < deadline, "no thread slept on the lock");
        std::thread::yield_now();
    }
    // the child only does atomics, futex calls and _exit (no allocation, no lock another
    // thread could hold).
    // SAFETY: see above.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(held);
        let ok = l.try_read().is_some() && l.try_write().is_some() && {
            drop(l.read());
            drop(l.write());
            true
        };
        // SAFETY: leaves the child at once, running nothing of the test harness.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    drop(held);
    for t in sleepers {
        t.join().unwrap();
    }
    assert_child_ok(pid);
}

/// Reap forked child `pid` and require a 0 exit; a child still running after 30 s hung on
/// a lock: it is killed and the test fails.
pub(super) fn assert_child_ok(pid: libc::pid_t) {
    let start = Instant::now();
    let status = loop {
        let mut status = 0;
        // SAFETY: status is a valid int for the call; pid is our child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            // SAFETY: pid is our child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("child hung on the lock");
        }
        std::thread::sleep(Duration::from_millis(5)); // polling a child's exit
    };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}

/// A reader arriving while a writer holds the lock, a second writer sleeps and both flags are
/// set (the word is all ones) waits; it must not compute a reader count past the word (that
/// overflowed, a panic in debug builds: `readers_share_writers_exclude` failed 2 runs of 5).
#[test]
fn a_reader_waits_on_an_all_ones_word() {
    let l = Arc::new(RwLock::new(0u32));
    let w = l.write();
    let l2 = l.clone();
    let writer = std::thread::spawn(move || *l2.write() += 1);
    let t = Instant::now();
    // the second writer marks itself waiting and asleep: all 32 bits set
    // SAFETY: only reads the lock word; nothing is locked or unlocked through it.
    let word = unsafe { l.raw() };
    while word.state.load(Ordering::Relaxed) != u32::MAX {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the writer never slept"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let l3 = l.clone();
    let reader = std::thread::spawn(move || *l3.read());
    std::thread::sleep(Duration::from_millis(50)); // the reader looks at the word and waits
    drop(w);
    writer.join().expect("the writer got in");
    // woken together, either may get in first
    let seen = reader.join().expect("the reader got in");
    assert!(seen <= 1, "the reader saw {seen}");
    assert_eq!(*l.read(), 1);
}
