//! A session's view of one fifo: the segment that holds it and its offset there. Data and
//! signals can live in different fifos (cut-through clients read the server's fifos but
//! signal through their own), so a session keeps both.

use std::sync::Arc;

use vcl_svm::fifo::Fifo;
use vcl_svm::fifo_segment::{FifoSegment, FifoSegmentInfo};
use vcl_svm::{Segment, SvmError};

/// One fifo in a mapped segment.
#[derive(Clone)]
pub struct FifoRef {
    pub seg: Arc<Segment>,
    pub off: u64,
    info: FifoSegmentInfo,
}

impl FifoRef {
    /// Validate the fifo at `off` (and its segment's header) once, when a session gets it.
    pub fn new(seg: Arc<Segment>, off: u64) -> Result<FifoRef, SvmError> {
        let fs = FifoSegment::attach(&seg)?;
        Fifo::attach(fs, off)?;
        let info = fs.info();
        Ok(FifoRef { seg, off, info })
    }

    /// A handle to operate on the fifo. Cheap: the header checks were done in `new`, and each
    /// fifo operation validates what it reads from shared memory.
    pub fn get(&self) -> Result<Fifo<'_>, SvmError> {
        Fifo::view(FifoSegment::from_info(&self.seg, self.info)?, self.off)
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
}
