//! A session's view of one fifo: the segment that holds it and its offset there. Data and
//! signals can live in different fifos (cut-through clients read the server's fifos but
//! signal through their own), so a session keeps both.

use std::sync::Arc;

use vcl_svm::fifo::{Fifo, FifoHandle};
use vcl_svm::{Segment, SvmError};

/// One fifo in a mapped segment, validated when the session got it.
#[derive(Clone)]
pub struct FifoRef(FifoHandle);

impl FifoRef {
    /// Validate the fifo at `off` (and its segment's header) once, when a session gets it.
    pub fn new(seg: Arc<Segment>, off: u64) -> Result<FifoRef, SvmError> {
        FifoHandle::new(seg, off).map(FifoRef)
    }

    /// The same fifo, for the app's reading end of a session: its reads keep recently
    /// consumed chunks linked a while ([`vcl_svm::fifo::Fifo::keeping`]) until
    /// [`Fifos::release_kept`].
    pub fn keeping_consumed(self) -> FifoRef {
        FifoRef(self.0.keeping_consumed())
    }

    /// The same fifo, for the app's writing end: it grows by whole steps
    /// ([`vcl_svm::fifo::Fifo::growing_whole`]).
    pub fn growing_whole(self) -> FifoRef {
        FifoRef(self.0.growing_whole())
    }

    /// A view to operate on the fifo. Cheap: the header checks were done in `new`, and each
    /// fifo operation validates what it reads from shared memory.
    pub(crate) fn fifo(&self) -> Fifo<'_> {
        self.0.fifo()
    }

    /// Producer: mark an event outstanding; true if the caller must send it
    /// ([`Fifo::set_event`], without building a view: a writer signals on every call).
    #[inline]
    pub(crate) fn set_event(&self) -> bool {
        self.0.set_event()
    }

    /// Whether the producer asked for dequeue notifications ([`FifoHandle::wants_deq_ntf`]).
    #[inline]
    pub(crate) fn wants_deq_ntf(&self) -> bool {
        self.0.wants_deq_ntf()
    }
}

/// The rx and tx fifos of a session: `data` moves bytes, `sig` carries has_event and the
/// dequeue-notification flags VPP looks at.
#[derive(Clone)]
pub struct Fifos {
    pub rx: FifoRef,
    pub tx: FifoRef,
    pub rx_sig: FifoRef,
    pub tx_sig: FifoRef,
}

impl Fifos {
    /// An ordinary session: signals live in the data fifos.
    pub fn plain(rx: FifoRef, tx: FifoRef) -> Fifos {
        Fifos {
            rx_sig: rx.clone(),
            tx_sig: tx.clone(),
            rx,
            tx,
        }
    }

    /// The reader went idle: release the consumed chunks its reads kept, so an idle session
    /// holds no more chunk memory than with a reader that keeps none. A corrupt chunk list is
    /// not reported here: the next read meets it and resets the session.
    pub(crate) fn release_kept(&self) {
        let _ = self.rx.fifo().release_kept();
    }

    /// The reader's side of VPP's has_event protocol on a drained rx fifo: clear the flag,
    /// then look again. True when bytes raced in and this call set the flag again: VPP will
    /// not signal them, so the caller marks the session readable itself.
    pub(crate) fn clear_rx_event(&self) -> bool {
        let sig = self.rx_sig.fifo();
        sig.unset_event();
        !self.rx.fifo().is_empty_cons() && sig.set_event()
    }
}
