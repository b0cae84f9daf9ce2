//! Which drained sessions still keep consumed rx chunks (`vcl_svm::fifo::Fifo::keeping`):
//! non-blocking ones drained by a read, and blocking ones another session's drain displaced
//! from hold. The last few, so that an app reading a few streams through epoll keeps the
//! benefit across drains, and no more, so that a server with many connections does not hold
//! up to 1 MiB of chunks for each. Data only; `Sessions` releases.

/// How many drained sessions keep their chunks at once (per worker).
pub(crate) const KEPT_SLOTS: usize = 4;

/// The sessions, oldest replaced first.
#[derive(Default)]
pub(crate) struct KeptRx {
    slots: [Option<u32>; KEPT_SLOTS],
    next: usize,
}

impl KeptRx {
    /// Remember session `i`; returns the session it displaced, which must release now.
    pub(crate) fn add(&mut self, i: u32) -> Option<u32> {
        if self.slots.contains(&Some(i)) {
            return None;
        }
        let old = self.slots[self.next].replace(i);
        self.next = (self.next + 1) % KEPT_SLOTS;
        old
    }

    /// Forget session `i` (freed: its fifos are no longer ours to touch).
    pub(crate) fn forget(&mut self, i: u32) {
        for s in &mut self.slots {
            if *s == Some(i) {
                *s = None;
            }
        }
    }

    /// Take every remembered session, to release them all.
    pub(crate) fn take_all(&mut self) -> [Option<u32>; KEPT_SLOTS] {
        std::mem::take(&mut self.slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_few_and_displaces_the_oldest() {
        let mut k = KeptRx::default();
        for i in 0..KEPT_SLOTS as u32 {
            assert_eq!(k.add(i), None);
        }
        assert_eq!(k.add(1), None, "already kept: nothing displaced");
        assert_eq!(k.add(100), Some(0));
        assert_eq!(k.add(101), Some(1));
        k.forget(2);
        let all: Vec<u32> = k.take_all().into_iter().flatten().collect();
        assert_eq!(all.len(), KEPT_SLOTS - 1);
        assert!(!all.contains(&2) && all.contains(&100) && all.contains(&101));
        assert!(k.take_all().iter().all(Option::is_none));
    }
}
