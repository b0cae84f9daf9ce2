//! The message-queue offsets this module uses, checked against the table in
//! docs/wire-images.md (written from VPP v26.06's src/svm/message_queue.h), so a wrong
//! constant cannot be "confirmed" by another constant in layout.rs.

use super::layout::*;
use std::mem::{offset_of, size_of};

/// `| `name` | value |` rows of the doc's tables.
fn documented() -> Vec<(String, usize)> {
    include_str!("../../../../docs/wire-images.md")
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            match cells.as_slice() {
                ["", name, value, ""] if name.starts_with('`') => {
                    Some((name.trim_matches('`').to_string(), value.parse().ok()?))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn offsets_match_the_documented_vpp_layout() {
    let ours: &[(&str, usize)] = &[
        (
            "svm_msg_q_shared_t.n_rings",
            offset_of!(MsgQShared, n_rings),
        ),
        ("svm_msg_q_shared_t.pad", offset_of!(MsgQShared, pad)),
        ("svm_msg_q_shared_t.q", QUEUE_OFFSET),
        ("svm_msg_q_shared_queue_t.mutex", Q_MUTEX),
        ("svm_msg_q_shared_queue_t.condvar", Q_COND),
        ("svm_msg_q_shared_queue_t.head", Q_HEAD),
        ("svm_msg_q_shared_queue_t.tail", Q_TAIL),
        ("svm_msg_q_shared_queue_t.cursize", Q_CURSIZE),
        ("svm_msg_q_shared_queue_t.maxsize", Q_MAXSIZE),
        ("svm_msg_q_shared_queue_t.elsize", Q_ELSIZE),
        (
            "svm_msg_q_shared_queue_t.pad",
            offset_of!(MsgQSharedQueue, pad),
        ),
        ("svm_msg_q_shared_queue_t.data", Q_DATA),
        ("svm_msg_q_ring_shared_t.cursize", R_CURSIZE),
        ("svm_msg_q_ring_shared_t.nitems", R_NITEMS),
        ("svm_msg_q_ring_shared_t.head", R_HEAD),
        ("svm_msg_q_ring_shared_t.tail", R_TAIL),
        ("svm_msg_q_ring_shared_t.elsize", R_ELSIZE),
        ("svm_msg_q_ring_shared_t.data", RING_HDR_SIZE),
        (
            "svm_msg_q_msg_t.ring_index",
            offset_of!(MsgSlot, ring_index),
        ),
        ("svm_msg_q_msg_t.elt_index", offset_of!(MsgSlot, elt_index)),
        ("sizeof(svm_msg_q_msg_t)", SLOT_SIZE),
    ];
    let doc = documented();
    assert_eq!(doc.len(), ours.len(), "documented rows: {doc:?}");
    for (name, off) in ours {
        let d = doc.iter().find(|(n, _)| n == name);
        assert_eq!(d.map(|d| d.1), Some(*off), "{name}");
    }
    // what the code derives from these
    assert_eq!(size_of::<MsgQShared>(), QUEUE_OFFSET);
    assert_eq!(size_of::<MsgQSharedQueue>(), Q_DATA);
    assert_eq!(QUEUE_HDR_SIZE, Q_DATA);
    let slot = MsgSlot {
        ring_index: 0x0102_0304,
        elt_index: 0x0506_0708,
    };
    // svm_msg_q_msg_t's as_u64 view: ring_index in the low half on little-endian
    assert_eq!(slot.to_u64(), 0x0506_0708_0102_0304);
}
