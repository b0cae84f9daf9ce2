//! Offset-addressed little helpers for reading and writing fixed layouts.
//!
//! All multi-byte integers are host order (little-endian on the targets VPP
//! supports) except ports, which have explicit big-endian accessors. Reads are
//! bounds-checked and return errors; writes go to a buffer whose length was
//! checked once up front by [`WireMsg::encode_into`].

use crate::error::{BufferTooSmall, DecodeError};

/// Bounds-checked reader over a received buffer.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Checks that `buf` holds at least `need` bytes before any field is read,
    /// so a short message is reported once with its full expected size.
    pub fn new(buf: &'a [u8], need: usize, what: &'static str) -> Result<Self, DecodeError> {
        if buf.len() < need {
            return Err(DecodeError::Short {
                what,
                need,
                got: buf.len(),
            });
        }
        Ok(Self { buf, what })
    }

    /// Name of the structure being read (for error messages).
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Fixed-size byte array at `off`.
    pub fn array<const N: usize>(&self, off: usize) -> Result<[u8; N], DecodeError> {
        let end = off.saturating_add(N);
        self.buf
            .get(off..end)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(DecodeError::Short {
                what: self.what,
                need: end,
                got: self.buf.len(),
            })
    }

    /// Byte at `off`.
    pub fn u8(&self, off: usize) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(off)?[0])
    }

    /// Non-zero byte at `off` as a boolean (VPP tests these fields for truth).
    pub fn bool(&self, off: usize) -> Result<bool, DecodeError> {
        Ok(self.u8(off)? != 0)
    }

    /// Host-order u16.
    pub fn u16(&self, off: usize) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(off)?))
    }

    /// Network-order u16 (L4 ports), returned in host order.
    pub fn u16_be(&self, off: usize) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(off)?))
    }

    /// Host-order u32.
    pub fn u32(&self, off: usize) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(off)?))
    }

    /// Host-order i32.
    pub fn i32(&self, off: usize) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(off)?))
    }

    /// Host-order u64.
    pub fn u64(&self, off: usize) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(off)?))
    }

    /// Error for an unknown value in an enum-like field.
    pub fn bad(&self, field: &'static str, value: u64) -> DecodeError {
        DecodeError::BadValue {
            what: self.what,
            field,
            value,
        }
    }
}

/// Writer over an output buffer already known to be large enough.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
}

impl<'a> Writer<'a> {
    /// Wraps `buf` (callers check its length) and zeroes it so padding bytes
    /// go out as zero, as VPP's own producers do.
    pub fn new(buf: &'a mut [u8]) -> Self {
        buf.fill(0);
        Self { buf }
    }

    /// Copies `v` to `off`.
    pub fn bytes(&mut self, off: usize, v: &[u8]) {
        self.buf[off..off + v.len()].copy_from_slice(v);
    }

    /// Byte.
    pub fn u8(&mut self, off: usize, v: u8) {
        self.bytes(off, &[v]);
    }

    /// Boolean as 0/1.
    pub fn bool(&mut self, off: usize, v: bool) {
        self.u8(off, u8::from(v));
    }

    /// Host-order u16.
    pub fn u16(&mut self, off: usize, v: u16) {
        self.bytes(off, &v.to_le_bytes());
    }

    /// Host-order value written in network order (L4 ports).
    pub fn u16_be(&mut self, off: usize, v: u16) {
        self.bytes(off, &v.to_be_bytes());
    }

    /// Host-order u32.
    pub fn u32(&mut self, off: usize, v: u32) {
        self.bytes(off, &v.to_le_bytes());
    }

    /// Host-order i32.
    pub fn i32(&mut self, off: usize, v: i32) {
        self.bytes(off, &v.to_le_bytes());
    }

    /// Host-order u64.
    pub fn u64(&mut self, off: usize, v: u64) {
        self.bytes(off, &v.to_le_bytes());
    }
}

/// A fixed-size wire structure.
///
/// `LEN` is the C `sizeof` of the VPP struct; decoders accept longer buffers
/// (ring elements are larger than the messages they carry) and ignore the tail.
pub trait WireMsg: Sized {
    /// Name used in error messages.
    const NAME: &'static str;
    /// Size on the wire.
    const LEN: usize;

    /// Writes the fields; `w` covers exactly `LEN` zeroed bytes.
    fn put(&self, w: &mut Writer<'_>);

    /// Reads the fields; `r` holds at least `LEN` bytes.
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes into the front of `out`, returning `LEN`.
    fn encode_into(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let got = out.len();
        let dst = out.get_mut(..Self::LEN).ok_or(BufferTooSmall {
            need: Self::LEN,
            got,
        })?;
        self.put(&mut Writer::new(dst));
        Ok(Self::LEN)
    }

    /// Encodes into a fresh vector of `LEN` bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![0u8; Self::LEN];
        self.put(&mut Writer::new(&mut v));
        v
    }

    /// Decodes from the front of `buf`, which must hold at least `LEN` bytes.
    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        Self::get(&Reader::new(buf, Self::LEN, Self::NAME)?)
    }
}
