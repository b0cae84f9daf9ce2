//! Scatter/gather on a fifo: zero-copy read segments (a peek that returns pointers into the
//! chunks, released later with [`Fifo::dequeue_drop`]), gather enqueue with an all-or-nothing
//! option, and the datagram framing (`session_dgram_hdr_t`, 47 bytes packed) built on them.
// Shared memory / fds: zero-copy views of chunk bytes in shared memory.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::sync::atomic::Ordering::{Relaxed, Release};

use super::{pos_gt, Fifo};
use crate::segment::{Result, Segment, SvmError};

/// One contiguous run of fifo data inside a chunk (`svm_fifo_seg_t`).
#[derive(Clone, Copy, Debug)]
pub struct FifoSeg<'a> {
    data: *mut u8,
    len: u32,
    _seg: PhantomData<&'a Segment>,
}

impl Default for FifoSeg<'_> {
    fn default() -> Self {
        FifoSeg {
            data: std::ptr::null_mut(),
            len: 0,
            _seg: PhantomData,
        }
    }
}

impl<'a> FifoSeg<'a> {
    pub fn as_ptr(&self) -> *mut u8 {
        self.data
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// View the bytes.
    ///
    /// # Safety
    /// The bytes live in shared memory. They stay valid while the segment is mapped, but the
    /// caller must not hold the slice past the `dequeue_drop` that frees them, and relies on the
    /// producer not writing between head and tail (the fifo protocol).
    // SAFETY: callers uphold the contract in the `# Safety` section above.
    pub unsafe fn as_slice(&self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `data .. data + len` was bounds-checked inside a validated chunk of a mapping
        // that outlives 'a; the caller upholds the no-concurrent-writer contract above.
        unsafe { std::slice::from_raw_parts(self.data, self.len as usize) }
    }
}

/// Bytes of the datagram header in front of every datagram in a dgram fifo.
pub const SESSION_CONN_HDR_LEN: usize = 47;

/// `session_dgram_hdr_t` (packed, 47 bytes). Integers are host order; ports and addresses are
/// stored exactly as given (VPP keeps ports in network order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionDgramHdr {
    pub data_length: u32,
    pub data_offset: u32,
    pub rmt_ip: [u8; 16],
    pub lcl_ip: [u8; 16],
    pub rmt_port: u16,
    pub lcl_port: u16,
    pub is_ip4: u8,
    pub gso_size: u16,
}

impl SessionDgramHdr {
    pub fn to_bytes(&self) -> [u8; SESSION_CONN_HDR_LEN] {
        let mut b = [0u8; SESSION_CONN_HDR_LEN];
        b[0..4].copy_from_slice(&self.data_length.to_ne_bytes());
        b[4..8].copy_from_slice(&self.data_offset.to_ne_bytes());
        b[8..24].copy_from_slice(&self.rmt_ip);
        b[24..40].copy_from_slice(&self.lcl_ip);
        b[40..42].copy_from_slice(&self.rmt_port.to_ne_bytes());
        b[42..44].copy_from_slice(&self.lcl_port.to_ne_bytes());
        b[44] = self.is_ip4;
        b[45..47].copy_from_slice(&self.gso_size.to_ne_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; SESSION_CONN_HDR_LEN]) -> Self {
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        let mut h = SessionDgramHdr {
            data_length: u32_at(0),
            data_offset: u32_at(4),
            rmt_port: u16_at(40),
            lcl_port: u16_at(42),
            is_ip4: b[44],
            gso_size: u16_at(45),
            ..Default::default()
        };
        h.rmt_ip.copy_from_slice(&b[8..24]);
        h.lcl_ip.copy_from_slice(&b[24..40]);
        h
    }
}

impl<'a> Fifo<'a> {
    /// Zero-copy peek: fill `segs` with runs of data starting `offset` bytes after head, at most
    /// `max_bytes` in total. Returns (segments used, bytes covered). Free with `dequeue_drop`.
    pub fn segments(
        &self,
        offset: u32,
        segs: &mut [FifoSeg<'a>],
        max_bytes: u32,
    ) -> Result<(usize, u32)> {
        let (head, _, used) = self.load_cons()?;
        if used == 0 || offset >= used {
            return Err(SvmError::Empty);
        }
        if segs.is_empty() {
            return Ok((0, 0));
        }
        let to_read = (used - offset).min(max_bytes);
        let start = head.wrapping_add(offset);
        let mut c = self.cons_chunk_for(head, start)?;
        let at = start.wrapping_sub(c.start());
        if at >= c.len {
            return Err(crate::fifo_segment::corrupt_with(|| {
                format!("fifo at {}: chunk moved under position {start}", self.off)
            }));
        }
        let first = (c.len - at).min(to_read);
        // SAFETY: `at < c.len` because `c` includes `start`; the chunk's data was bounds-checked.
        segs[0] = seg(unsafe { c.data.add(at as usize) }, first);
        let (mut n_bytes, mut n) = (first, 1);
        while n_bytes < to_read && n < segs.len() {
            c = self.next_chunk(&c, c.next())?;
            let l = c.len.min(to_read - n_bytes);
            segs[n] = seg(c.data, l);
            n_bytes += l;
            n += 1;
        }
        Ok((n, n_bytes))
    }

    /// Gather-enqueue `segs` in order. With `allow_partial == false` either everything is
    /// written or nothing (`Full`). Returns the bytes written.
    pub fn enqueue_segments(&self, segs: &[&[u8]], allow_partial: bool) -> Result<usize> {
        self.enqueue_gather(&[], segs, allow_partial)
    }

    fn enqueue_gather(&self, first: &[u8], rest: &[&[u8]], allow_partial: bool) -> Result<usize> {
        let (head, tail, size) = self.load_prod()?;
        let free = size.saturating_sub(tail.wrapping_sub(head));
        if free == 0 {
            return Err(SvmError::Full);
        }
        let total = rest
            .iter()
            .fold(first.len() as u64, |a, s| a + s.len() as u64);
        if !allow_partial && u64::from(free) < total {
            return Err(SvmError::Full);
        }
        let want = u64::from(free).min(total) as u32;
        if want == 0 {
            return Ok(0);
        }
        // Fast path (as `enqueue`'s): everything fits in the validated tail chunk, so no growth
        // check against end_chunk; the pieces then share that one chunk lookup.
        let fast = match self.shr.tail_chunk.load(Relaxed) {
            0 => None,
            off => self
                .fs
                .chunk(off)
                .ok()
                .filter(|c| c.includes(tail) && !pos_gt(tail.wrapping_add(want), c.end())),
        };
        let (len, mut cur) = match fast {
            Some(c) => (want, Some(c)),
            None => (
                self.prepare_write(head, tail, want, size, allow_partial)?,
                None,
            ),
        };
        let (mut pos, mut left) = (tail, len);
        let mut tc = self.shr.tail_chunk.load(Relaxed);
        for piece in std::iter::once(first).chain(rest.iter().copied()) {
            let n = (piece.len() as u64).min(u64::from(left)) as u32;
            if n == 0 {
                continue;
            }
            let c = match cur.take() {
                Some(c) if c.includes(pos) => c,
                _ => self.tail_chunk_at(tc, pos)?,
            };
            tc = self.copy_in(c, pos, &piece[..n as usize])?;
            if tc == c.off {
                cur = Some(c);
            }
            pos = pos.wrapping_add(n);
            left -= n;
        }
        self.shr.tail_chunk.store(tc, Relaxed);
        self.shr.tail.store(tail.wrapping_add(len), Release);
        self.prod_moved(tail.wrapping_add(len), Some(head));
        Ok(len as usize)
    }

    fn tail_chunk_at(&self, off: u64, pos: u32) -> Result<super::ChunkRef<'a>> {
        let c = self.fs.chunk(off)?;
        if !c.includes(pos) {
            return Err(crate::fifo_segment::corrupt_with(|| {
                format!("fifo at {}: tail chunk misses {pos}", self.off)
            }));
        }
        Ok(c)
    }

    /// Write one datagram (header + payload pieces) all-or-nothing. `data_length` and
    /// `data_offset` of `hdr` are filled in. Returns the payload length; `Full` unless
    /// 47 + payload bytes are free.
    pub fn enqueue_dgram(&self, hdr: &SessionDgramHdr, payload: &[&[u8]]) -> Result<usize> {
        let total = payload.iter().map(|p| p.len() as u64).sum::<u64>();
        let Ok(data_length) = u32::try_from(total) else {
            return Err(SvmError::Full);
        };
        // all or nothing: `Full` unless header and payload fit (one look at head, there)
        let h = SessionDgramHdr {
            data_length,
            data_offset: 0,
            ..*hdr
        };
        self.enqueue_gather(&h.to_bytes(), payload, false)?;
        Ok(total as usize)
    }

    /// Read one datagram like VCL: nothing unless more than 47 bytes and the whole datagram are
    /// queued; copies min(buf, payload) bytes, and unless `peek` drops the whole datagram
    /// (excess payload is truncated). Returns the header and the bytes copied. One look at the
    /// indices and one chunk lookup per datagram in the common case (a per-datagram cost).
    pub fn dequeue_dgram(
        &self,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Option<(SessionDgramHdr, usize)>> {
        const HDR: u32 = SESSION_CONN_HDR_LEN as u32;
        let (head, _, used) = self.load_cons()?;
        // more than a header is queued: all of it is
        if used <= HDR {
            return Ok(None);
        }
        let c = self.cons_chunk_for(head, head)?;
        let mut raw = [0u8; SESSION_CONN_HDR_LEN];
        // the chunk holding the byte after the header (0: the list ended right there)
        let after = self.copy_out(c, head, &mut raw)?;
        let ph = SessionDgramHdr::from_bytes(&raw);
        if ph.data_offset > ph.data_length {
            return Err(crate::fifo_segment::corrupt_with(|| {
                format!(
                    "dgram offset {} > length {}",
                    ph.data_offset, ph.data_length
                )
            }));
        }
        let whole = u64::from(ph.data_length) + u64::from(HDR);
        if u64::from(used) < whole {
            return Ok(None);
        }
        let len = buf.len().min((ph.data_length - ph.data_offset) as usize);
        let pos = head.wrapping_add(HDR).wrapping_add(ph.data_offset);
        // the chunk holding the byte after what was copied
        let mut end = after;
        if len > 0 {
            let pc = match self.fs.chunk(after) {
                Ok(pc) if after != 0 && pc.includes(pos) => pc,
                _ => self.cons_chunk_for(head, pos)?,
            };
            end = self.copy_out(pc, pos, &mut buf[..len])?;
        }
        if peek {
            return Ok(Some((ph, len)));
        }
        if ph.data_offset != 0 || len != ph.data_length as usize {
            // truncated (or an offset): the next datagram's chunk is not known, drop by length
            self.dequeue_drop(whole as u32)?;
            return Ok(Some((ph, len)));
        }
        // as `dequeue`: the next datagram's chunk becomes head_chunk, and chunks are released
        // only once head leaves the start chunk
        let new_head = head.wrapping_add(whole as u32);
        self.shr.head_chunk.store(end, Relaxed);
        if self.leaves(&c, new_head) {
            self.release_consumed(new_head)?;
        }
        self.shr.head.store(new_head, Release);
        Ok(Some((ph, len)))
    }
}

fn seg<'a>(data: *mut u8, len: u32) -> FifoSeg<'a> {
    FifoSeg {
        data,
        len,
        _seg: PhantomData,
    }
}
