//! Notification flags of a fifo (`svm_fifo_signals_t`): the "event outstanding" flag both sides
//! race on, the producer's dequeue-notification wishes, the consumer's decision whether a
//! dequeue must be notified (VPP v26.06 `svm_fifo_needs_deq_ntf`:
//! docs/wire.md#dequeue-notifications), and subscribers.

use std::sync::atomic::fence;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};

use super::{Fifo, SvmFifoSignals};

/// Notify on every dequeue that leaves at least `deq_thresh` bytes free.
pub const SVM_FIFO_WANT_DEQ_NOTIF: u32 = 1;
/// Notify when a dequeue takes the fifo from full to not full.
pub const SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL: u32 = 2;
/// Notify when a dequeue empties the fifo.
pub const SVM_FIFO_WANT_DEQ_NOTIF_IF_EMPTY: u32 = 4;
/// Most extra app workers that can subscribe to a fifo's events.
pub const SVM_FIFO_MAX_EVT_SUBSCRIBERS: u8 = 7;

impl SvmFifoSignals {
    /// [`Fifo::set_event`], for holders of a fifo that need no view of it
    /// ([`super::FifoHandle::set_event`]: a writer signals on every call).
    #[inline]
    pub(super) fn set_event(&self) -> bool {
        fence(SeqCst);
        if self.has_event.load(Relaxed) != 0 {
            return false;
        }
        self.has_event.swap(1, AcqRel) == 0
    }
}

impl Fifo<'_> {
    /// Whether a notification is outstanding.
    pub fn has_event(&self) -> bool {
        self.shr.signals.has_event.load(Relaxed) != 0
    }

    /// Mark a notification outstanding. True if we won, i.e. the flag was clear and the caller
    /// must send the event.
    ///
    /// Looks before it exchanges: a producer that finds the flag already set (the common case
    /// in a stream: it stays set until VPP or the reader handles the last event) returns as the
    /// exchange would have (writing 1 over 1 changes nothing), without taking the cache line
    /// for writing from the side that reads it. The fence keeps the look after the caller's
    /// enqueue, as the exchange did: a consumer that clears the flag and then finds the fifo
    /// empty was seen clearing it here (we then exchange and win), or its emptiness check
    /// comes after our enqueue.
    #[inline]
    pub fn set_event(&self) -> bool {
        self.shr.signals.set_event()
    }

    /// Clear the outstanding notification. A flag already clear is left alone (no write to
    /// the line the producer looks at); the caller's re-check of the fifo comes after the look.
    pub fn unset_event(&self) {
        if self.shr.signals.has_event.load(Acquire) != 0 {
            self.shr.signals.has_event.swap(0, AcqRel);
        }
    }

    /// Producer: ask for dequeue notifications of the given kinds (atomic or, release). Bits
    /// already set are not written again: a blocked writer re-asks on every look, and each
    /// write would take the line the consumer reads on every dequeue.
    pub fn add_want_deq_ntf(&self, kinds: u32) {
        let want = &self.shr.signals.want_deq_ntf;
        if want.load(Acquire) & kinds != kinds {
            want.fetch_or(kinds, Release);
        }
    }

    /// Producer: stop asking for the given kinds (atomic and-not, release; nothing written
    /// when none of them is set).
    pub fn del_want_deq_ntf(&self, kinds: u32) {
        let want = &self.shr.signals.want_deq_ntf;
        if want.load(Acquire) & kinds != 0 {
            want.fetch_and(!kinds, Release);
        }
    }

    pub fn want_deq_ntf(&self) -> u32 {
        self.shr.signals.want_deq_ntf.load(Acquire)
    }

    pub fn has_deq_ntf(&self) -> bool {
        self.shr.signals.has_deq_ntf.load(Acquire) != 0
    }

    /// Producer: acknowledge a dequeue notification so IF_FULL / IF_EMPTY can fire again.
    pub fn reset_has_deq_ntf(&self) {
        if self.shr.signals.has_deq_ntf.load(Relaxed) != 0 {
            self.shr.signals.has_deq_ntf.store(0, Relaxed);
        }
    }

    pub fn set_deq_thresh(&self, thresh: u32) {
        if self.shr.signals.deq_thresh.load(Relaxed) != thresh {
            self.shr.signals.deq_thresh.store(thresh, Relaxed);
        }
    }

    pub fn deq_thresh(&self) -> u32 {
        self.shr.signals.deq_thresh.load(Relaxed)
    }

    /// Consumer, after dequeueing `n_last_deq` bytes: must the producer be notified? Bit 1
    /// decides alone when set (free space ≥ deq_thresh); otherwise IF_FULL then IF_EMPTY, both
    /// only while no notification is pending acknowledgement.
    pub fn needs_deq_ntf(&self, n_last_deq: u32) -> bool {
        self.needs_deq_ntf_signalled_by(self, n_last_deq)
    }

    /// [`Fifo::needs_deq_ntf`] for a fifo whose notification flags live in another fifo, `sig`
    /// (a cut-through session moves data through one fifo and signals through another): the
    /// fill level is this fifo's, the wishes, threshold and pending flag are `sig`'s.
    pub fn needs_deq_ntf_signalled_by(&self, sig: &Fifo<'_>, n_last_deq: u32) -> bool {
        let want = sig.want_deq_ntf();
        if want == 0 {
            return false;
        }
        if want & SVM_FIFO_WANT_DEQ_NOTIF != 0 {
            return self.max_enqueue() >= sig.deq_thresh();
        }
        if want & SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL != 0 {
            let max_deq = self.max_dequeue_cons();
            let size = self.size();
            if max_deq < size
                && u64::from(max_deq) + u64::from(n_last_deq) >= u64::from(size)
                && !sig.has_deq_ntf()
            {
                return true;
            }
        }
        want & SVM_FIFO_WANT_DEQ_NOTIF_IF_EMPTY != 0
            && !sig.has_deq_ntf()
            && self.max_dequeue() == 0
    }

    /// Consumer, about to send a dequeue notification: mark IF_FULL / IF_EMPTY as pending and
    /// make WANT_DEQ_NOTIF one-shot.
    pub fn clear_deq_ntf(&self) {
        let want = self.want_deq_ntf();
        if want & (SVM_FIFO_WANT_DEQ_NOTIF_IF_FULL | SVM_FIFO_WANT_DEQ_NOTIF_IF_EMPTY) != 0 {
            self.shr.signals.has_deq_ntf.store(1, Release);
        }
        if want & SVM_FIFO_WANT_DEQ_NOTIF != 0 {
            self.del_want_deq_ntf(SVM_FIFO_WANT_DEQ_NOTIF);
        }
    }

    pub fn n_subscribers(&self) -> u8 {
        self.shr.signals.n_subscribers.load(Relaxed)
    }

    /// Add a subscriber (VPP app-worker index); ignored when 7 are already there. Not atomic
    /// with respect to concurrent adders, as in VPP.
    pub fn add_subscriber(&self, sub: u8) {
        let sig = &self.shr.signals;
        let n = sig.n_subscribers.load(Relaxed);
        if n >= SVM_FIFO_MAX_EVT_SUBSCRIBERS {
            return;
        }
        sig.subscribers[usize::from(n)].store(sub, Relaxed);
        sig.n_subscribers.store(n + 1, Release);
    }

    /// Remove a subscriber by moving the last one into its place.
    pub fn del_subscriber(&self, sub: u8) {
        let sig = &self.shr.signals;
        let n = sig
            .n_subscribers
            .load(Relaxed)
            .min(SVM_FIFO_MAX_EVT_SUBSCRIBERS);
        for i in 0..usize::from(n) {
            if sig.subscribers[i].load(Relaxed) != sub {
                continue;
            }
            let last = sig.subscribers[usize::from(n) - 1].load(Relaxed);
            sig.subscribers[i].store(last, Relaxed);
            sig.n_subscribers.store(n - 1, Release);
            return;
        }
    }

    /// Subscriber `i` (i < n_subscribers, at most 7).
    pub fn subscriber(&self, i: usize) -> Option<u8> {
        let n = usize::from(self.n_subscribers()).min(usize::from(SVM_FIFO_MAX_EVT_SUBSCRIBERS));
        (i < n).then(|| self.shr.signals.subscribers[i].load(Relaxed))
    }
}
