//! Datagram framing inside fifos: `session_dgram_hdr_t` (packed, 47 B =
//! `SESSION_CONN_HDR_LEN`) precedes every datagram's payload.
//! Same address convention as [`crate::msg::common`]: raw ip46, ports in
//! host order here and network order on the wire.

use crate::error::DecodeError;
use crate::msg::common::Ip46;
use crate::wire::{Reader, Writer};

/// `SESSION_CONN_HDR_LEN`.
pub const DGRAM_HDR_LEN: usize = 47;
/// `session_dgram_pre_hdr_t`: the data_length/data_offset prefix.
pub const DGRAM_PRE_HDR_LEN: usize = 8;

/// `session_dgram_hdr_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DgramHdr {
    /// Payload bytes following the header.
    pub data_length: u32,
    /// Bytes of payload already consumed; the payload starts at 47 + this.
    pub data_offset: u32,
    /// Remote address.
    pub rmt_ip: Ip46,
    /// Local address.
    pub lcl_ip: Ip46,
    /// Remote port, host order.
    pub rmt_port: u16,
    /// Local port, host order.
    pub lcl_port: u16,
    /// Address family.
    pub is_ip4: bool,
    /// GSO segment size (host order; not a port).
    pub gso_size: u16,
}

impl DgramHdr {
    /// The 47-byte header.
    pub fn encode(&self) -> [u8; DGRAM_HDR_LEN] {
        let mut out = [0u8; DGRAM_HDR_LEN];
        let mut w = Writer::new(&mut out);
        w.u32(0, self.data_length);
        w.u32(4, self.data_offset);
        w.bytes(8, &self.rmt_ip.0);
        w.bytes(24, &self.lcl_ip.0);
        w.u16_be(40, self.rmt_port);
        w.u16_be(42, self.lcl_port);
        w.bool(44, self.is_ip4);
        w.u16(45, self.gso_size);
        out
    }

    /// Parses the first 47 bytes of `buf`. Whether `data_length` bytes of
    /// payload are really present is the fifo reader's check, not ours.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let r = Reader::new(buf, DGRAM_HDR_LEN, "dgram header")?;
        Ok(Self {
            data_length: r.u32(0)?,
            data_offset: r.u32(4)?,
            rmt_ip: Ip46(r.array(8)?),
            lcl_ip: Ip46(r.array(24)?),
            rmt_port: r.u16_be(40)?,
            lcl_port: r.u16_be(42)?,
            is_ip4: r.bool(44)?,
            gso_size: r.u16(45)?,
        })
    }

    /// Bytes the whole datagram occupies in the fifo (header + payload),
    /// computed without overflow.
    pub fn total_len(&self) -> u64 {
        DGRAM_HDR_LEN as u64 + u64::from(self.data_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    #[test]
    fn image() {
        let h = DgramHdr {
            data_length: 5,
            data_offset: 0,
            rmt_ip: Ip46::from_v4(Ipv4Addr::new(10, 0, 0, 1)),
            lcl_ip: Ip46::from_v4(Ipv4Addr::new(10, 0, 0, 2)),
            rmt_port: 0x1234,
            lcl_port: 53,
            is_ip4: true,
            gso_size: 0x0102,
        };
        let b = h.encode();
        assert_eq!(&b[0..8], &[5, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[20..24], &[10, 0, 0, 1]);
        assert_eq!(&b[36..40], &[10, 0, 0, 2]);
        assert_eq!(&b[40..47], &[0x12, 0x34, 0, 53, 1, 0x02, 0x01]);
        assert_eq!(DgramHdr::decode(&b).unwrap(), h);
        assert_eq!(h.total_len(), 52);
        assert_eq!(
            DgramHdr::decode(&b[..46]).unwrap_err().to_string(),
            "dgram header: need 47 bytes, got 46"
        );
    }

    proptest! {
        #[test]
        fn roundtrip(a: (u32, u32, [u8; 16], [u8; 16]), b: (u16, u16, bool, u16)) {
            let h = DgramHdr {
                data_length: a.0, data_offset: a.1, rmt_ip: Ip46(a.2), lcl_ip: Ip46(a.3),
                rmt_port: b.0, lcl_port: b.1, is_ip4: b.2, gso_size: b.3,
            };
            prop_assert_eq!(DgramHdr::decode(&h.encode()).unwrap(), h);
        }
    }
}
