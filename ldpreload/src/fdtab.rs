//! The fd table: which descriptor numbers are VPP sockets (or epoll fds watching some).
//!
//! Indexed by fd number. A kernel fd costs one atomic load and a bounds check: its slot
//! pointer is null unless that number was ever a VPP socket. Slots, once allocated, are never
//! freed (a number is reused by later sockets), so a loaded pointer stays valid without any
//! reclamation scheme; the entry inside is behind a reader-writer lock held only to clone or
//! swap an `Arc` (never across a call into the library, nor while taking another lock). The
//! locks are fork-safe ones (`vcl_svm::sync`): fork's prepare handler holds them all
//! ([`freeze`]) and the child releases them.

use std::cell::Cell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::Arc;

use vcl_svm::sync::{Mutex, MutexGuard, RwLock, RwLockWriteGuard};

use crate::epset::EpSet;
use crate::sock::VSock;

/// Descriptor numbers the table covers (8 MiB of pointers, only touched pages are mapped).
/// A VPP socket whose reserved fd falls above stays a kernel socket.
pub const MAX_FDS: usize = 1 << 20;

#[derive(Clone)]
pub enum Entry {
    Sock(Arc<VSock>),
    Epoll(Arc<EpSet>),
    /// A forked child's listener from its parent, listened again on first use.
    Inherited(Arc<dyn Adopt>),
}

/// A forked child's inherited listener: what taking it over on first use makes of it (the
/// fork module's rule; a trait so that this table stays below the modules that use it).
pub trait Adopt: Send + Sync {
    /// Listen from this process; `fd` then names the new socket.
    fn adopt(&self, fd: i32) -> Option<Arc<VSock>>;
}

struct Slot(RwLock<Option<Entry>>);

static TABLE: [AtomicPtr<Slot>; MAX_FDS] = [const { AtomicPtr::new(null_mut()) }; MAX_FDS];

/// Highest fd ever given a slot (bounds scans such as close_range).
static HIGH: AtomicI32 = AtomicI32::new(-1);

/// Held to add a slot (rare: the first time a number is a VPP socket), so that [`freeze`] sees
/// every slot.
static NEW_SLOT: Mutex<()> = Mutex::new(());

thread_local! {
    /// Set on the forking thread from fork's prepare handler until ours after fork: the
    /// library's handlers then close and open descriptors of their own through our
    /// interposed calls, which must neither wait for the slots we hold nor see them.
    static BYPASS: Cell<bool> = const { Cell::new(false) };
}

/// See [`BYPASS`].
pub fn set_bypass(on: bool) {
    let _ = BYPASS.try_with(|b| b.set(on));
}

/// The slot of `fd`, bypass or not.
fn slot_raw(fd: i32) -> Option<&'static Slot> {
    let p = TABLE
        .get(usize::try_from(fd).ok()?)?
        .load(Ordering::Acquire);
    // SAFETY: non-null slot pointers come from Box::leak below and are never freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// The slot of `fd` for the interposed calls: none while this thread forks (see [`BYPASS`]).
#[inline]
fn slot(fd: i32) -> Option<&'static Slot> {
    slot_raw(fd).filter(|_| !BYPASS.try_with(Cell::get).unwrap_or(false))
}

fn slot_or_new(fd: i32) -> Option<&'static Slot> {
    let cell = TABLE.get(usize::try_from(fd).ok()?)?;
    if BYPASS.try_with(Cell::get).unwrap_or(true) {
        return None;
    }
    if let Some(s) = slot_raw(fd) {
        return Some(s);
    }
    let _g = NEW_SLOT.lock();
    if let Some(s) = slot_raw(fd) {
        return Some(s);
    }
    let new: &'static Slot = Box::leak(Box::new(Slot(RwLock::new(None))));
    cell.store(std::ptr::from_ref(new).cast_mut(), Ordering::Release);
    HIGH.fetch_max(fd, Ordering::Relaxed);
    Some(new)
}

/// What `fd` is, if it is ours.
#[inline]
pub fn get(fd: i32) -> Option<Entry> {
    slot(fd).and_then(|s| s.0.read().clone())
}

/// The VPP socket `fd` names.
#[inline]
pub fn sock(fd: i32) -> Option<Arc<VSock>> {
    match get(fd)? {
        Entry::Sock(s) => Some(s),
        Entry::Epoll(_) => None,
        Entry::Inherited(i) => i.adopt(fd),
    }
}

/// Whether `fd` is ours (a VPP socket or an epoll fd with VPP members).
#[inline]
pub fn is_ours(fd: i32) -> bool {
    slot(fd).is_some_and(|s| s.0.read().is_some())
}

/// Make `fd` name `e`; returns what it named before (drop it outside any lock of ours).
/// False if `fd` is beyond the table.
pub fn set(fd: i32, e: Entry) -> Result<Option<Entry>, Entry> {
    match slot_or_new(fd) {
        Some(s) => Ok(s.0.write().replace(e)),
        None => Err(e),
    }
}

/// Forget `fd`; returns what it named.
pub fn take(fd: i32) -> Option<Entry> {
    slot(fd).and_then(|s| s.0.write().take())
}

/// Forget every fd in `first..=last`; returns what they named.
pub fn take_range(first: u32, last: u32) -> Vec<Entry> {
    let high = HIGH.load(Ordering::Relaxed);
    if high < 0 {
        return Vec::new();
    }
    let last = last.min(high as u32);
    (first..=last)
        .filter_map(|fd| take(fd as i32))
        .collect::<Vec<_>>()
}

/// Every entry now (an entry that several descriptors name appears once per descriptor).
pub fn snapshot() -> Vec<Entry> {
    let high = HIGH.load(Ordering::Relaxed);
    (0..=high).filter_map(get).collect()
}

/// The whole table locked, for fork: no slot is added, no entry read or changed until it is
/// dropped (in the parent after fork, or in the child, where only this thread exists).
pub struct Frozen {
    _slots: Vec<RwLockWriteGuard<'static, Option<Entry>>>,
    _new: MutexGuard<'static, ()>,
}

/// Lock every slot (waits for the holders: each holds its slot only for a moment and takes no
/// other lock meanwhile).
pub fn freeze() -> Frozen {
    let new = NEW_SLOT.lock();
    let high = HIGH.load(Ordering::Relaxed);
    let slots = (0..=high)
        .filter_map(slot_raw)
        .map(|s| s.0.write())
        .collect();
    Frozen {
        _slots: slots,
        _new: new,
    }
}

/// In a forked child: rewrite every entry with `convert` (only memory operations); a slot
/// whose lock is held (none should be: see [`freeze`]) is left alone.
pub fn fork_child(convert: fn(Entry) -> Option<Entry>) {
    let high = HIGH.load(Ordering::Relaxed);
    for fd in 0..=high {
        let Some(s) = slot_raw(fd) else { continue };
        let Some(mut g) = s.0.try_write() else {
            continue;
        };
        if let Some(e) = g.take() {
            *g = convert(e);
        }
    }
}
