//! Extended endpoint config (`transport_endpt_ext_cfg_t`), the blob an app
//! places in a chunk of the VPP mqs segment and names by seg-offset in the
//! `ext_config` field of LISTEN / CONNECT / CONNECT_STREAM.
//!
//! Layout: type u16 @0, len u16 @2, body @4. `len` counts the body only and
//! VPP reads `len + 4` bytes, so the chunk must hold at least that
//! (docs/wire.md#ext-config-blob). The crypto body uses the v26.06 layout (284 B, total 288):
//! see transport_types.h `transport_endpt_crypto_cfg_t`.

use crate::error::DecodeError;
use crate::wire::{Reader, Writer};

/// Header size (type + len).
pub const EXT_CFG_HEADER_LEN: usize = 4;
/// Crypto body size in v26.06.
pub const CRYPTO_CFG_LEN: usize = 284;
/// Whole crypto ext-config size in v26.06.
pub const EXT_CFG_CRYPTO_LEN: usize = EXT_CFG_HEADER_LEN + CRYPTO_CFG_LEN;

/// `transport_endpt_ext_cfg_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ExtCfgType {
    /// None.
    None = 0,
    /// TLS/DTLS/QUIC crypto parameters.
    Crypto = 1,
    /// HTTP transport parameters.
    Http = 2,
    /// QUIC transport parameters (v26.06+).
    Quic = 3,
}

/// `TLS_VERIFY_F_*` bits for [`CryptoCfg::verify_cfg`].
pub mod tls_verify {
    /// No verification.
    pub const NONE: u32 = 1 << 0;
    /// Verify the peer.
    pub const PEER: u32 = 1 << 1;
    /// Require a peer certificate.
    pub const PEER_CERT: u32 = 1 << 2;
    /// Check hostname.
    pub const HOSTNAME: u32 = 1 << 3;
    /// Strict hostname check.
    pub const HOSTNAME_STRICT: u32 = 1 << 4;
    /// App verifies the peer cert itself (v26.06).
    pub const PEER_CERT_APP_VERIFY: u32 = 1 << 5;
}

/// `transport_endpt_crypto_cfg_t`, v26.06 layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoCfg {
    /// Cert/key pair index (from sapi ADD_DEL_CERT_KEY).
    pub ckpair_index: u32,
    /// CA trust index.
    pub ca_trust_index: u32,
    /// TLS profile, ~0 = VPP defaults.
    pub tls_profile_index: u32,
    /// App worker owning app-scoped crypto objects; ~0 = the connecting
    /// worker. VPP takes any other value as a global app-worker index
    /// (docs/wire.md#ext-config-blob), so keep ~0 unless you mean it.
    pub owner_app_wrk_index: u32,
    /// ALPN protocol ids, in preference order.
    pub alpn_protos: [u8; 4],
    /// Crypto engine id (`sapi::crypto_engine`).
    pub crypto_engine: u8,
    /// [`tls_verify`] bits.
    pub verify_cfg: u32,
    /// NUL-terminated server name.
    pub hostname: [u8; 256],
}

impl Default for CryptoCfg {
    /// Zero everything except the two "~0 = default" indices.
    fn default() -> Self {
        Self {
            ckpair_index: 0,
            ca_trust_index: 0,
            tls_profile_index: u32::MAX,
            owner_app_wrk_index: u32::MAX,
            alpn_protos: [0; 4],
            crypto_engine: 0,
            verify_cfg: 0,
            hostname: [0; 256],
        }
    }
}

impl CryptoCfg {
    /// Sets the hostname, truncated to 255 bytes so it stays NUL-terminated.
    pub fn set_hostname(&mut self, name: &str) {
        self.hostname = [0; 256];
        let b = name.as_bytes();
        let n = b.len().min(255);
        self.hostname[..n].copy_from_slice(&b[..n]);
    }

    fn put(&self, w: &mut Writer<'_>, o: usize) {
        w.u32(o, self.ckpair_index);
        w.u32(o + 4, self.ca_trust_index);
        w.u32(o + 8, self.tls_profile_index);
        w.u32(o + 12, self.owner_app_wrk_index);
        w.bytes(o + 16, &self.alpn_protos);
        w.u8(o + 20, self.crypto_engine);
        w.u32(o + 24, self.verify_cfg);
        w.bytes(o + 28, &self.hostname);
    }

    fn get(r: &Reader<'_>, o: usize) -> Result<Self, DecodeError> {
        Ok(Self {
            ckpair_index: r.u32(o)?,
            ca_trust_index: r.u32(o + 4)?,
            tls_profile_index: r.u32(o + 8)?,
            owner_app_wrk_index: r.u32(o + 12)?,
            alpn_protos: r.array(o + 16)?,
            crypto_engine: r.u8(o + 20)?,
            verify_cfg: r.u32(o + 24)?,
            hostname: r.array(o + 28)?,
        })
    }
}

/// Body of an ext config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtCfgBody {
    /// Typed crypto parameters (always 284 bytes on the wire).
    Crypto(Box<CryptoCfg>),
    /// Any other type's body, as raw bytes.
    Raw(Vec<u8>),
}

/// One `transport_endpt_ext_cfg_t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtCfg {
    /// Config type.
    pub cfg_type: ExtCfgType,
    /// The header's `len` field. Normally the body size; VCL writes 288 for
    /// crypto (whole struct), which VPP tolerates if the chunk is big enough.
    pub len: u16,
    /// Body.
    pub body: ExtCfgBody,
}

impl ExtCfg {
    /// Crypto config with `len` = 284 (the body size, as VPP's own code sets).
    pub fn crypto(cfg: CryptoCfg) -> Self {
        Self {
            cfg_type: ExtCfgType::Crypto,
            len: CRYPTO_CFG_LEN as u16,
            body: ExtCfgBody::Crypto(Box::new(cfg)),
        }
    }

    /// Bytes [`ExtCfg::encode`] produces: header plus body.
    pub fn encoded_len(&self) -> usize {
        EXT_CFG_HEADER_LEN
            + match &self.body {
                ExtCfgBody::Crypto(_) => CRYPTO_CFG_LEN,
                ExtCfgBody::Raw(v) => v.len(),
            }
    }

    /// Minimum chunk data size VPP will read from: `max(len + 4, encoded)`.
    pub fn chunk_len(&self) -> usize {
        self.encoded_len()
            .max(EXT_CFG_HEADER_LEN + usize::from(self.len))
    }

    /// Header and body, ready to copy into the chunk's data area.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.encoded_len()];
        let mut w = Writer::new(&mut v);
        w.u16(0, self.cfg_type as u16);
        w.u16(2, self.len);
        match &self.body {
            ExtCfgBody::Crypto(c) => c.put(&mut w, EXT_CFG_HEADER_LEN),
            ExtCfgBody::Raw(b) => w.bytes(EXT_CFG_HEADER_LEN, b),
        }
        v
    }

    /// Parses an ext config as VPP would read it from a chunk: `buf` must
    /// hold `len + 4` bytes, and at least the full crypto struct for type
    /// CRYPTO. Raw bodies are `len` bytes long.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "ext config";
        let h = Reader::new(buf, EXT_CFG_HEADER_LEN, WHAT)?;
        let ty = h.u16(0)?;
        let len = h.u16(2)?;
        let cfg_type = match ty {
            0 => ExtCfgType::None,
            1 => ExtCfgType::Crypto,
            2 => ExtCfgType::Http,
            3 => ExtCfgType::Quic,
            other => return Err(h.bad("type", other.into())),
        };
        let mut need = EXT_CFG_HEADER_LEN + usize::from(len);
        if cfg_type == ExtCfgType::Crypto {
            need = need.max(EXT_CFG_CRYPTO_LEN);
        }
        let r = Reader::new(buf, need, WHAT)?;
        let body = match cfg_type {
            ExtCfgType::Crypto => ExtCfgBody::Crypto(Box::new(CryptoCfg::get(&r, 4)?)),
            _ => ExtCfgBody::Raw(buf.get(4..need).unwrap_or_default().to_vec()),
        };
        Ok(Self {
            cfg_type,
            len,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crypto_image_v26_06_offsets() {
        let mut c = CryptoCfg {
            ckpair_index: 0x11,
            ca_trust_index: 0x22,
            alpn_protos: [1, 2, 0, 0],
            crypto_engine: 1,
            verify_cfg: tls_verify::PEER | tls_verify::HOSTNAME,
            ..Default::default()
        };
        c.set_hostname("example.com");
        let e = ExtCfg::crypto(c);
        let b = e.encode();
        assert_eq!(b.len(), 288);
        assert_eq!(&b[0..4], &[1, 0, 28, 1]); // type 1, len 284
        assert_eq!(b[4], 0x11);
        assert_eq!(b[8], 0x22);
        assert_eq!(&b[12..20], &[0xff; 8]); // profile + owner = ~0
        assert_eq!(&b[20..24], &[1, 2, 0, 0]);
        assert_eq!(b[24], 1);
        assert_eq!(&b[25..28], &[0, 0, 0]); // padding before verify_cfg
        assert_eq!(&b[28..32], &10u32.to_le_bytes());
        assert_eq!(&b[32..43], b"example.com");
        assert!(b[43..].iter().all(|&x| x == 0));
        assert_eq!(ExtCfg::decode(&b).unwrap(), e);
        assert_eq!(e.chunk_len(), 288);
    }

    #[test]
    fn vcl_len_quirk_and_errors() {
        let mut e = ExtCfg::crypto(CryptoCfg::default());
        e.len = 288; // what VCL writes for SET_CKPAIR
        assert_eq!(e.chunk_len(), 292);
        let b = e.encode();
        assert_eq!(
            ExtCfg::decode(&b).unwrap_err().to_string(),
            "ext config: need 292 bytes, got 288"
        );
        assert!(matches!(
            ExtCfg::decode(&[9, 0, 0, 0]),
            Err(DecodeError::BadValue { .. })
        ));
        assert!(ExtCfg::decode(&[1, 0, 4, 0, 0, 0, 0, 0]).is_err()); // crypto too short
        let raw = ExtCfg {
            cfg_type: ExtCfgType::Http,
            len: 4,
            body: ExtCfgBody::Raw(vec![1, 2, 3, 4]),
        };
        assert_eq!(ExtCfg::decode(&raw.encode()).unwrap(), raw);
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..320)) {
            let _ = ExtCfg::decode(&b);
        }
    }
}
