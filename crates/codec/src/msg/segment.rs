//! Segment add/delete notices (docs/wire.md#segment-messages). Unlike the other control
//! messages these structs are NOT packed: natural C alignment applies
//! (see application_interface.h `app_map_another_segment_msg_`).

use crate::error::DecodeError;
use crate::wire::{Reader, WireMsg, Writer};

/// APP_ADD_SEGMENT (28), 152 B, align 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddSegment {
    /// Unused towards the app.
    pub client_index: u32,
    /// Unused towards the app.
    pub context: u32,
    /// `fd_flags`; MEMFD_SEGMENT means the fd arrives via sapi SEND_FDS.
    pub fd_flags: u8,
    /// Segment size truncated to u32; map using the ssvm header instead.
    pub segment_size: u32,
    /// NUL-terminated name.
    pub segment_name: [u8; 128],
    /// Segment handle.
    pub segment_handle: u64,
}

impl AddSegment {
    /// Name up to the first NUL.
    pub fn name_bytes(&self) -> &[u8] {
        let end = self
            .segment_name
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(128);
        &self.segment_name[..end]
    }
}

impl WireMsg for AddSegment {
    const NAME: &'static str = "app add segment";
    const LEN: usize = 152;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u32(4, self.context);
        w.u8(8, self.fd_flags);
        w.u32(12, self.segment_size);
        w.bytes(16, &self.segment_name);
        w.u64(144, self.segment_handle);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            context: r.u32(4)?,
            fd_flags: r.u8(8)?,
            segment_size: r.u32(12)?,
            segment_name: r.array(16)?,
            segment_handle: r.u64(144)?,
        })
    }
}

/// APP_DEL_SEGMENT (29), 16 B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DelSegment {
    /// Unused towards the app.
    pub client_index: u32,
    /// Unused towards the app.
    pub context: u32,
    /// Segment handle (full u64, CT bits included).
    pub segment_handle: u64,
}

impl WireMsg for DelSegment {
    const NAME: &'static str = "app del segment";
    const LEN: usize = 16;
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(0, self.client_index);
        w.u32(4, self.context);
        w.u64(8, self.segment_handle);
    }
    fn get(r: &Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            client_index: r.u32(0)?,
            context: r.u32(4)?,
            segment_handle: r.u64(8)?,
        })
    }
}
