//! Read-only views of a ring: the one check a file must pass before it is mapped, the mapping
//! (`PROT_READ`, `MAP_SHARED`, never populated), and the reads through it. Nothing here ever
//! writes to a ring.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::Ordering;

use memmap2::{MmapOptions, MmapRaw};
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::stat::fstat;
use nix::sys::statfs::{TMPFS_MAGIC, fstatfs};
use tachyon_ring::layout::{
    self, ARENA_HEADER_LEN, ArenaHeader, MAGIC, MSG_ALIGNMENT, SLOT_HEADER_LEN, SlotHeader, VERSION,
};

use crate::error::InspectError;

/// The header words of one ring, as loaded at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderWords {
    /// `state` (see [`tachyon_ring::layout::state`]).
    pub(crate) state: u32,
    /// The producer's published head, in bytes since the ring was made.
    pub(crate) head: u64,
    /// The consumer's published tail.
    pub(crate) tail: u64,
    /// The consumer's futex word (see [`tachyon_ring::layout::sleeping`]).
    pub(crate) consumer_sleeping: u32,
    /// What the consumer advertises at offset 648 (0 unless it is tachyon-ring's).
    pub(crate) consumer_features: u64,
}

/// A ring's header mapped read-only (and, for `--peek`, the whole ring).
#[derive(Debug)]
pub(crate) struct RingMap {
    map: MmapRaw,
    capacity: usize,
    /// The ring bytes are mapped too (not only the header).
    whole: bool,
}

impl RingMap {
    /// Opens `path` (a `/proc/PID/fd/N` or `/proc/PID/map_files/…` link), checks it with
    /// [`verify_before_mapping`], maps the header (or, with `whole`, header and ring) and
    /// checks that the header describes a ring the file is large enough for.
    pub(crate) fn open(path: &Path, whole: bool) -> Result<RingMap, InspectError> {
        let file = File::open(path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => InspectError::Vanished,
            _ => InspectError::Refused {
                path: path.to_path_buf(),
                reason: error.to_string(),
            },
        })?;
        let size = verify_before_mapping(&file)?;
        let header_map = MmapOptions::new()
            .len(ARENA_HEADER_LEN)
            .map_raw_read_only(&file)
            .map_err(|e| InspectError::os("mmap", e))?;
        let header = RingMap {
            map: header_map,
            capacity: 0,
            whole: false,
        };
        let capacity = header.check_header(size)?;
        if !whole {
            return Ok(RingMap { capacity, ..header });
        }
        let map = MmapOptions::new()
            .len(layout::shm_size(capacity))
            .map_raw_read_only(&file)
            .map_err(|e| InspectError::os("mmap", e))?;
        Ok(RingMap {
            map,
            capacity,
            whole: true,
        })
    }

    /// The upstream attach checks (magic, version, alignment, capacity a power of two of at
    /// least 64) and ours: the file holds the whole ring its header announces. Returns the
    /// capacity.
    fn check_header(&self, file_size: u64) -> Result<usize, InspectError> {
        let header = self.header();
        let magic = header.magic.load(Ordering::Relaxed);
        if magic != MAGIC {
            return Err(InspectError::NotARing(format!(
                "magic {magic:#010x}, a ring has {MAGIC:#010x} (\"TACH\")"
            )));
        }
        let version = header.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(InspectError::NotARing(format!(
                "format version {version}, this tool reads {VERSION}"
            )));
        }
        let alignment = header.msg_alignment.load(Ordering::Relaxed);
        if alignment != MSG_ALIGNMENT {
            return Err(InspectError::NotARing(format!(
                "msg_alignment {alignment}, the format has {MSG_ALIGNMENT}"
            )));
        }
        let capacity = header.capacity.load(Ordering::Relaxed) as usize;
        if let Some(problem) = layout::capacity_problem(capacity) {
            return Err(InspectError::NotARing(format!(
                "capacity {capacity}: {problem}"
            )));
        }
        let needed = layout::shm_size(capacity) as u64;
        if file_size < needed {
            return Err(InspectError::Truncated {
                size: file_size,
                needed,
                what: "768 header bytes and the capacity its header announces",
            });
        }
        Ok(capacity)
    }

    /// Ring bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    fn header(&self) -> &ArenaHeader {
        // SAFETY: the mapping is at least ARENA_HEADER_LEN bytes of a file at least that long
        // and sealed against shrinking (checked before mapping), page aligned; `ArenaHeader`
        // is atomics and `UnsafeCell` padding, so bytes other processes write may be seen
        // through it. We only ever load: the mapping is PROT_READ.
        unsafe { &*(self.map.as_ptr() as *const ArenaHeader) }
    }

    /// Loads the header's words (acquire, as the ends do).
    pub(crate) fn words(&self) -> HeaderWords {
        let header = self.header();
        HeaderWords {
            state: header.state.load(Ordering::Acquire),
            head: header.head.load(Ordering::Acquire),
            tail: header.tail.load(Ordering::Acquire),
            consumer_sleeping: header.consumer_sleeping.load(Ordering::Relaxed),
            consumer_features: header.consumer_features.load(Ordering::Relaxed),
        }
    }

    /// The published tail now (the peek's re-read).
    pub(crate) fn tail(&self) -> u64 {
        self.header().tail.load(Ordering::Acquire)
    }

    /// A copy of the slot header at absolute stream position `position` (reduced modulo the
    /// capacity), read once; `None` unless the whole ring is mapped.
    pub(crate) fn slot_header(&self, position: u64) -> Option<SlotHeader> {
        if !self.whole {
            return None;
        }
        // Positions are 64-byte aligned and the capacity a power of two of at least 64, so
        // the 64-byte header lies wholly inside the ring.
        let offset = (position % self.capacity as u64) as usize & !(SLOT_HEADER_LEN - 1);
        // SAFETY: ARENA_HEADER_LEN + offset + 64 <= shm_size(capacity), the mapped length;
        // the address is 8-aligned (page + 768 + a multiple of 64) as `SlotHeader` needs. The
        // producer may be writing these bytes: one volatile copy, then only the copy is used.
        Some(unsafe {
            std::ptr::read_volatile(
                self.map.as_ptr().add(ARENA_HEADER_LEN + offset) as *const SlotHeader
            )
        })
    }
}

/// The one decision on whether a file is safe to map: a memfd (it answers `F_GET_SEALS`) on
/// tmpfs (not hugetlbfs), sealed against shrinking, and at least a header long. Anything else
/// could be truncated under the mapping (`SIGBUS` on the next read), so it is never mapped.
/// Returns the file's size.
pub(crate) fn verify_before_mapping(file: &File) -> Result<u64, InspectError> {
    let seals = fcntl(file, FcntlArg::F_GET_SEALS).map_err(|errno| {
        InspectError::Unsafe(format!("not a sealable memfd (F_GET_SEALS: {errno})"))
    })?;
    let seals = SealFlag::from_bits_truncate(seals);
    if !seals.contains(SealFlag::F_SEAL_SHRINK) {
        return Err(InspectError::Unsafe(format!(
            "the memfd is not sealed against shrinking (seals {:#x}): it could be truncated \
             under a mapping",
            seals.bits()
        )));
    }
    let filesystem = fstatfs(file).map_err(|e| InspectError::os("fstatfs", e))?;
    if filesystem.filesystem_type() != TMPFS_MAGIC {
        return Err(InspectError::Unsafe(format!(
            "the memfd is not on tmpfs (filesystem type {:#x})",
            filesystem.filesystem_type().0
        )));
    }
    let size = fstat(file.as_fd())
        .map_err(|e| InspectError::os("fstat", e))?
        .st_size
        .max(0) as u64;
    if size < ARENA_HEADER_LEN as u64 {
        return Err(InspectError::Truncated {
            size,
            needed: ARENA_HEADER_LEN as u64,
            what: "the arena header",
        });
    }
    Ok(size)
}
