use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lock_api::RawMutex as _;

use super::*;

/// Whether this machine lets a process register for membarrier (else there is no bias and
/// the lock is the plain mutex: the bias tests then check only that).
fn barriers() -> bool {
    barrier_ready(getpid())
}

fn raw<T>(m: &BiasedMutex<T>) -> &RawBiasedMutex {
    // SAFETY: only the query methods of the raw lock are used through this reference.
    unsafe { m.raw() }
}

#[test]
fn the_first_thread_to_lock_gets_the_bias_and_then_enters_without_the_inner_mutex() {
    let m = BiasedMutex::new(0u32);
    *m.lock() += 1;
    assert_eq!(raw(&m).is_biased_to_me(), barriers());
    let g = m.lock();
    assert_eq!(raw(&m).held_fast.load(Ordering::Relaxed), barriers());
    assert_eq!(raw(&m).inner.is_locked(), !barriers());
    assert!(m.is_locked());
    assert!(m.try_lock().is_none(), "held");
    drop(g);
    assert!(!m.is_locked());
    assert!(m.try_lock().is_some());
}

#[test]
fn a_second_thread_revokes_the_bias_for_good() {
    let m = Arc::new(BiasedMutex::new(0u32));
    *m.lock() += 1;
    let m2 = m.clone();
    std::thread::spawn(move || *m2.lock() += 1).join().unwrap();
    assert_eq!(raw(&m).is_revoked(), barriers());
    assert!(!raw(&m).is_biased_to_me());
    let g = m.lock();
    assert!(
        !raw(&m).held_fast.load(Ordering::Relaxed),
        "revoked: the inner mutex"
    );
    assert_eq!(*g, 2);
}

#[test]
fn a_revoker_waits_until_the_holder_leaves() {
    let m = Arc::new(BiasedMutex::new(0u32));
    drop(m.lock());
    let g = m.lock();
    let got = Arc::new(AtomicBool::new(false));
    let (m2, got2) = (m.clone(), got.clone());
    let t = std::thread::spawn(move || {
        let mut g = m2.lock();
        got2.store(true, Ordering::SeqCst);
        *g += 1;
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(!got.load(Ordering::SeqCst), "in while the holder is");
    drop(g);
    t.join().unwrap();
    assert_eq!(*m.lock(), 1);
}

#[test]
fn try_lock_from_another_thread_fails_while_the_holder_is_in_and_revokes() {
    let m = Arc::new(BiasedMutex::new(()));
    drop(m.lock());
    let g = m.lock();
    let m2 = m.clone();
    let took = std::thread::spawn(move || m2.try_lock().is_some())
        .join()
        .unwrap();
    assert!(!took);
    assert_eq!(raw(&m).is_revoked(), barriers());
    drop(g);
    let m2 = m.clone();
    let took = std::thread::spawn(move || m2.try_lock().is_some())
        .join()
        .unwrap();
    assert!(took);
}

#[test]
fn bump_lets_a_waiting_revoker_in() {
    let m = Arc::new(BiasedMutex::new(0u32));
    drop(m.lock());
    let mut g = m.lock();
    let m2 = m.clone();
    let t = std::thread::spawn(move || *m2.lock() += 1);
    // wait until the other thread has revoked and waits for us
    while !raw(&m).is_revoked() && barriers() {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(20));
    lock_api::MutexGuard::bump(&mut g);
    assert_eq!(*g, 1, "the waiter ran during the bump");
    drop(g);
    t.join().unwrap();
}

#[test]
fn a_fast_guard_released_on_another_thread_unlocks() {
    let m = Arc::new(BiasedMutex::new(0u32));
    drop(m.lock());
    let g = m.lock_arc();
    assert_eq!(raw(&m).held_fast.load(Ordering::Relaxed), barriers());
    std::thread::spawn(move || drop(g)).join().unwrap();
    assert!(!m.is_locked());
    *m.lock() += 1;
    assert_eq!(*m.lock(), 1);
}

/// The bias holder hammers the lock while other threads arrive, revoke and take turns: no two
/// threads are ever inside at once, and no increment is lost.
#[test]
fn mutual_exclusion_across_the_revocation() {
    const N: u32 = 200_000;
    struct Data {
        a: u32,
        b: u32,
    }
    let m = Arc::new(BiasedMutex::new(Data { a: 0, b: 0 }));
    let inside = Arc::new(AtomicU32::new(0));
    let bump = |m: &BiasedMutex<Data>, inside: &AtomicU32| {
        let mut g = m.lock();
        assert_eq!(
            inside.fetch_add(1, Ordering::Relaxed),
            0,
            "two threads inside"
        );
        let a = g.a;
        std::hint::spin_loop();
        g.a = a + 1;
        g.b += 1;
        inside.fetch_sub(1, Ordering::Relaxed);
    };
    bump(&m, &inside); // the bias is the test thread's
    let others: Vec<_> = (0..3)
        .map(|i| {
            let (m, inside) = (m.clone(), inside.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(i * 5));
                for _ in 0..N / 4 {
                    bump(&m, &inside);
                }
            })
        })
        .collect();
    for _ in 0..N {
        bump(&m, &inside);
    }
    for t in others {
        t.join().unwrap();
    }
    let g = m.lock();
    assert_eq!((g.a, g.b), (1 + N + 3 * (N / 4), 1 + N + 3 * (N / 4)));
}

/// The revocation race, many times: a fresh lock biased to this thread, hammered by it while
/// a new thread arrives and revokes.
#[test]
fn many_revocations_under_load() {
    for _ in 0..300 {
        let m = Arc::new(BiasedMutex::new((0u32, 0u32)));
        let inside = Arc::new(AtomicU32::new(0));
        let bump = |m: &BiasedMutex<(u32, u32)>, inside: &AtomicU32| {
            let mut g = m.lock();
            assert_eq!(
                inside.fetch_add(1, Ordering::Relaxed),
                0,
                "two threads inside"
            );
            g.0 += 1;
            g.1 = g.0;
            inside.fetch_sub(1, Ordering::Relaxed);
        };
        bump(&m, &inside);
        let (m2, inside2) = (m.clone(), inside.clone());
        let t = std::thread::spawn(move || (0..200).for_each(|_| bump(&m2, &inside2)));
        (0..200).for_each(|_| bump(&m, &inside));
        t.join().unwrap();
        assert_eq!(*m.lock(), (401, 401));
    }
}
