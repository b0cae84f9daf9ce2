//! The I/O thread's poll and the sockets it names: a kernel socket closed by another thread
//! while the I/O thread is inside poll(2) is only released when that poll returns (poll holds
//! a reference to every file it waits on). VPP frees a transport's port at cleanup, before the
//! app hears of it; an app that then binds the same port (UDP's "learn the local address, then
//! listen there", a listener re-opened on its port) must find it free. [`IoGate::quiesce`],
//! called after such a close, wakes the I/O thread and waits for its current poll to end.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};

/// Longest wait for the I/O thread to leave its poll (it polls at most a few ms; more means a
/// stopped peer, where nothing is waiting for the port anyway).
const QUIESCE_MAX: Duration = Duration::from_secs(2);

pub struct IoGate {
    /// Odd while the I/O thread is inside poll; bumped on entry and on exit.
    gen: AtomicU64,
    /// In the I/O thread's poll set: a write ends its poll early.
    wake: EventFd,
}

impl Default for IoGate {
    fn default() -> IoGate {
        IoGate {
            gen: AtomicU64::new(0),
            wake: EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
                .expect("eventfd for the peer's I/O thread"),
        }
    }
}

impl IoGate {
    /// The fd the I/O thread adds to its poll set.
    pub fn wake_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Around the I/O thread's poll.
    pub fn enter_poll(&self) {
        self.gen.fetch_add(1, Ordering::AcqRel);
    }

    pub fn leave_poll(&self) {
        let _ = self.wake.read(); // drain (non-blocking)
        self.gen.fetch_add(1, Ordering::AcqRel);
    }

    /// After closing a socket the I/O thread may be polling: wait until no poll that began
    /// before the close is still running. Called with the state lock held: the I/O thread
    /// leaves its poll before it takes that lock.
    pub fn quiesce(&self) {
        let g = self.gen.load(Ordering::Acquire);
        if g % 2 == 0 {
            return;
        }
        let _ = self.wake.write(1);
        let t = Instant::now();
        while self.gen.load(Ordering::Acquire) == g && t.elapsed() < QUIESCE_MAX {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn quiesce_waits_for_the_poll_in_progress() {
        let g = Arc::new(IoGate::default());
        g.quiesce(); // no poll: returns at once
        g.enter_poll();
        let g2 = g.clone();
        let poller = std::thread::spawn(move || {
            // a poll that ends when woken
            let fd = g2.wake_fd();
            let mut p = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(10_000u16));
            g2.leave_poll();
        });
        let t = Instant::now();
        g.quiesce();
        assert!(t.elapsed() < Duration::from_secs(2), "woken, not timed out");
        assert_eq!(g.gen.load(Ordering::Acquire) % 2, 0, "the poll has ended");
        poller.join().unwrap();
    }
}
