//! Shared regions: memfd creation and sealing, the one check a received fd must pass before it
//! is mapped, the mapping itself, and the arena header inside it.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;

use memmap2::{Advice, MmapOptions, MmapRaw};
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::stat::{Mode, fchmod, fstat};
use nix::sys::statfs::{HUGETLBFS_MAGIC, TMPFS_MAGIC, fstatfs};

use crate::error::{Error, Result};
#[cfg(not(miri))]
use crate::sys::memory::GuardedMapping;
use crate::wire::layout::{
    self, ARENA_HEADER_LEN, ArenaHeader, MAGIC, MSG_ALIGNMENT, VERSION, sleeping, state,
};

/// One shared region: the 768-byte arena header followed by the ring.
///
/// Owns whatever backs the bytes (a shared mapping of a memfd, or a heap block for in-process
/// buses and Miri) and hands out the header and the ring's base pointer. Producer and consumer
/// each hold an `Arc<Region>`, so the bytes outlive both.
pub(crate) struct Region {
    base: *mut u8,
    capacity: usize,
    _backing: Backing,
    /// Fuzzing and tests: cursor writes a scripted peer makes, one before each cursor load.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) scripted_peer: ScriptedPeer,
}

/// Held only for its `Drop`: unmapping or freeing the bytes.
#[allow(dead_code)]
enum Backing {
    /// The mapping, and a close-on-exec fd on the memfd kept open for as long as the ring
    /// lives: one fd per ring end. Tools that find rings by `/proc/PID/fd` (upstream's, and
    /// `tachyon-top`, which then also tells which process holds which end) see ours as they
    /// see upstream's, which keeps its fd open too.
    Mapped(MmapRaw, File),
    Heap(HeapArena),
}

// SAFETY: the region is plain memory; all cross-thread access to its header goes through
// atomics, and the ring bytes are handed out only to the single producer and single consumer
// under the publication protocol (release store of a cursor, acquire load by the other side).
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` only exposes atomics and a raw pointer.
unsafe impl Sync for Region {}

impl Region {
    /// Creates, sizes, seals and maps a memfd for a ring of `capacity` bytes, and formats its
    /// header. Returns the region and the fd to send to the peer. `name` shows in
    /// `/proc/PID/fd` (upstream passes the socket path).
    pub(crate) fn create_memfd(name: &str, capacity: usize) -> Result<(Region, OwnedFd)> {
        check_capacity(capacity)?;
        let shm_size = layout::shm_size(capacity);
        // memfd names are limited to 249 bytes; the name is only a label.
        let label: String = name.chars().take(200).collect();
        let fd = memfd_create(
            label.as_str(),
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|e| Error::os("memfd_create", e))?;
        nix::unistd::ftruncate(&fd, shm_size as libc::off_t)
            .map_err(|e| Error::os("ftruncate", e))?;
        fchmod(&fd, Mode::from_bits_truncate(0o600)).map_err(|e| Error::os("fchmod", e))?;
        fcntl(
            &fd,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
            ),
        )
        .map_err(|e| Error::os("fcntl(F_ADD_SEALS)", e))?;
        let region = Region::map(&fd, capacity)?;
        region.format();
        Ok((region, fd))
    }

    /// Maps a region received from a peer, after [`verify_received_fd`] says it is safe to,
    /// and checks the header the peer formatted.
    pub(crate) fn attach(fd: &OwnedFd, capacity: usize, shm_size: usize) -> Result<Region> {
        check_capacity(capacity)?;
        if shm_size != layout::shm_size(capacity) {
            return Err(Error::AbiMismatch {
                field: "shm_size",
                expected: layout::shm_size(capacity) as u64,
                found: shm_size as u64,
            });
        }
        verify_received_fd(fd, shm_size)?;
        let region = Region::map(fd, capacity)?;
        region.validate_header()?;
        Ok(region)
    }

    /// A heap-backed region, formatted: for in-process buses, tests and Miri.
    pub(crate) fn heap(capacity: usize) -> Result<Region> {
        check_capacity(capacity)?;
        let heap = HeapArena::zeroed(layout::shm_size(capacity))?;
        let region = Region {
            base: heap.base,
            capacity,
            _backing: Backing::Heap(heap),
            #[cfg(any(test, feature = "fuzzing"))]
            scripted_peer: ScriptedPeer::default(),
        };
        region.format();
        Ok(region)
    }

    fn map(fd: &OwnedFd, capacity: usize) -> Result<Region> {
        let shm_size = layout::shm_size(capacity);
        let file = File::from(fd.try_clone().map_err(|e| Error::os("dup", e))?);
        let map = MmapOptions::new()
            .len(shm_size)
            .populate()
            .map_raw(&file)
            .map_err(|e| Error::os("mmap", e))?;
        // Children forked later (a shell-out from the application) must not share the ring.
        map.advise(Advice::DontFork)
            .map_err(|e| Error::os("madvise(MADV_DONTFORK)", e))?;
        Ok(Region {
            base: map.as_mut_ptr(),
            capacity,
            _backing: Backing::Mapped(map, file),
            #[cfg(any(test, feature = "fuzzing"))]
            scripted_peer: ScriptedPeer::default(),
        })
    }

    /// Writes a fresh header; `state = READY` goes last, with release ordering, so a peer that
    /// sees READY sees the rest.
    fn format(&self) {
        let header = self.header();
        header.state.store(state::INITIALIZING, Ordering::Relaxed);
        header.magic.store(MAGIC, Ordering::Relaxed);
        header.version.store(VERSION, Ordering::Relaxed);
        header
            .capacity
            .store(self.capacity as u32, Ordering::Relaxed);
        header.msg_alignment.store(MSG_ALIGNMENT, Ordering::Relaxed);
        header.head.store(0, Ordering::Relaxed);
        header.tail.store(0, Ordering::Relaxed);
        header
            .consumer_sleeping
            .store(sleeping::AWAKE, Ordering::Relaxed);
        header.producer_heartbeat.store(0, Ordering::Relaxed);
        header.consumer_heartbeat.store(0, Ordering::Relaxed);
        header.consumer_features.store(0, Ordering::Relaxed);
        header.state.store(state::READY, Ordering::Release);
    }

    /// The attach-side checks: upstream's (magic, alignment, capacity) and ours (version,
    /// capacity equal to the handshake's, state ready, cursors sane).
    pub(crate) fn validate_header(&self) -> Result<()> {
        let header = self.header();
        let found_state = header.state.load(Ordering::Acquire);
        let expect = |field, expected: u64, found: u64| {
            if expected == found {
                Ok(())
            } else {
                Err(Error::AbiMismatch {
                    field,
                    expected,
                    found,
                })
            }
        };
        expect(
            "arena magic",
            MAGIC.into(),
            header.magic.load(Ordering::Relaxed).into(),
        )?;
        expect(
            "arena version",
            VERSION.into(),
            header.version.load(Ordering::Relaxed).into(),
        )?;
        expect(
            "arena msg_alignment",
            MSG_ALIGNMENT.into(),
            header.msg_alignment.load(Ordering::Relaxed).into(),
        )?;
        expect(
            "arena capacity",
            self.capacity as u64,
            header.capacity.load(Ordering::Relaxed).into(),
        )?;
        if found_state != state::READY {
            return Err(Error::Corrupt(format!(
                "the peer's ring is in state {found_state}, not ready ({})",
                state::READY
            )));
        }
        let head = header.head.load(Ordering::Acquire);
        let tail = header.tail.load(Ordering::Acquire);
        if let Some(problem) = layout::cursor_problem(head, tail, self.capacity) {
            return Err(Error::Corrupt(format!(
                "cursors at attach are inconsistent ({problem}): head {head}, tail {tail}, \
                 capacity {}",
                self.capacity
            )));
        }
        Ok(())
    }

    /// Checks the cursors an end found when it started, as it loaded them (a peer may rewrite
    /// them between two loads, so the values checked must be the values used): `None` when
    /// consistent, else marks the ring fatal and says why.
    pub(crate) fn start_cursor_problem(&self, head: u64, tail: u64) -> Option<String> {
        let problem = layout::cursor_problem(head, tail, self.capacity)?;
        self.mark_fatal();
        Some(format!(
            "cursors at start are inconsistent ({problem}): head {head}, tail {tail}, capacity {}",
            self.capacity
        ))
    }

    /// The producer's published head (acquire). Every load by an end goes through here or
    /// [`load_tail`](Region::load_tail), so the fuzz targets can interleave peer writes.
    #[inline(always)]
    pub(crate) fn load_head(&self) -> u64 {
        self.scripted_peer_step();
        self.header().head.load(Ordering::Acquire)
    }

    /// The consumer's published tail (acquire); see [`load_head`](Region::load_head).
    #[inline(always)]
    pub(crate) fn load_tail(&self) -> u64 {
        self.scripted_peer_step();
        self.header().tail.load(Ordering::Acquire)
    }

    #[cfg(any(test, feature = "fuzzing"))]
    fn scripted_peer_step(&self) {
        let write = self
            .scripted_peer
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop_front();
        match write {
            Some(CursorWrite::Head(head)) => self.header().head.store(head, Ordering::Release),
            Some(CursorWrite::Tail(tail)) => self.header().tail.store(tail, Ordering::Release),
            None => {}
        }
    }

    #[cfg(not(any(test, feature = "fuzzing")))]
    #[inline(always)]
    fn scripted_peer_step(&self) {}

    pub(crate) fn header(&self) -> &ArenaHeader {
        // SAFETY: `base` points to at least ARENA_HEADER_LEN bytes that live as long as `self`,
        // aligned to a page (mapping) or to 128 (heap); `ArenaHeader` is all atomics and
        // `UnsafeCell` padding, so shared access from other threads and processes is allowed.
        unsafe { &*(self.base as *const ArenaHeader) }
    }

    /// Base of the ring: `capacity` bytes after the header, 64-byte aligned.
    pub(crate) fn ring(&self) -> *mut u8 {
        // SAFETY: the region is ARENA_HEADER_LEN + capacity bytes long.
        unsafe { self.base.add(ARENA_HEADER_LEN) }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Marks the ring dead (state 4): a consumer found a header the format forbids.
    pub(crate) fn mark_fatal(&self) {
        self.header()
            .state
            .store(state::FATAL_ERROR, Ordering::Release);
    }
}

pub(crate) fn check_capacity(capacity: usize) -> Result<()> {
    match layout::capacity_problem(capacity) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidCapacity {
            capacity: capacity as u64,
            reason,
        }),
    }
}

/// The one decision on whether a peer's fd is safe to map.
///
/// It must be a memfd (it answers `F_GET_SEALS`) sealed against shrinking: otherwise the peer
/// could truncate it under our mapping and kill us with `SIGBUS` on the next access. It must be
/// on tmpfs (not a hugetlb memfd) and at least `shm_size` bytes long, for the same reason.
pub(crate) fn verify_received_fd(fd: &OwnedFd, shm_size: usize) -> Result<()> {
    let seals = fcntl(fd, FcntlArg::F_GET_SEALS).map_err(|errno| {
        Error::Handshake(format!(
            "the peer's fd is not a sealable memfd (F_GET_SEALS: {errno}); refusing to map it"
        ))
    })?;
    let seals = SealFlag::from_bits_truncate(seals);
    if !seals.contains(SealFlag::F_SEAL_SHRINK) {
        return Err(Error::Handshake(format!(
            "the peer's memfd is not sealed against shrinking (seals {:#x}); it could truncate it \
             under our mapping",
            seals.bits()
        )));
    }
    // A memfd lives on tmpfs, unless it was made with MFD_HUGETLB: a hole punched in a
    // hugetlbfs file while the huge-page pool is exhausted SIGBUSes whoever touches it.
    let filesystem = fstatfs(fd).map_err(|e| Error::os("fstatfs", e))?;
    if filesystem.filesystem_type() != TMPFS_MAGIC {
        return Err(Error::Handshake(format!(
            "the peer's memfd is not on tmpfs (filesystem type {:#x}{}); refusing to map it",
            filesystem.filesystem_type().0,
            if filesystem.filesystem_type() == HUGETLBFS_MAGIC {
                ", hugetlbfs: it could SIGBUS us when the huge-page pool runs out"
            } else {
                ""
            }
        )));
    }
    let stat = fstat(fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
    if (stat.st_size as u64) < shm_size as u64 {
        return Err(Error::Handshake(format!(
            "the peer's memfd holds {} bytes, the handshake announced {shm_size}",
            stat.st_size
        )));
    }
    Ok(())
}

/// A cursor write by a scripted (fuzzed) peer.
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Clone, Copy, Debug)]
pub(crate) enum CursorWrite {
    Head(u64),
    Tail(u64),
}

/// The writes a scripted peer makes, one before each cursor load of ours: the fuzz targets'
/// way to change cursors between any two loads, deterministically.
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Debug, Default)]
pub(crate) struct ScriptedPeer(
    pub(crate) std::sync::Mutex<std::collections::VecDeque<CursorWrite>>,
);

/// A zeroed, 128-byte-aligned block standing in for a mapping, between two `PROT_NONE` guard
/// pages, its end against the second: a read or write past the arena (or just before it)
/// faults at once instead of passing silently, which makes the hostile-input proptests and
/// fuzzers prove "never outside the ring", not only "never panics". Under Miri, which checks
/// every access itself and cannot `mprotect`, a plain heap block.
struct HeapArena {
    base: *mut u8,
    /// Held for its `Drop`: the guarded mapping `base` points into.
    #[cfg(not(miri))]
    _mapping: GuardedMapping,
    /// Under Miri: the heap block's length in blocks, to free it on drop.
    #[cfg(miri)]
    blocks: usize,
}

#[cfg(miri)]
#[repr(C, align(128))]
#[derive(Clone, Copy)]
struct Block([u8; 128]);

impl HeapArena {
    #[cfg(not(miri))]
    fn zeroed(len: usize) -> Result<HeapArena> {
        let mapping = GuardedMapping::new(len, 128)?;
        Ok(HeapArena {
            base: mapping.base(),
            _mapping: mapping,
        })
    }

    #[cfg(miri)]
    fn zeroed(len: usize) -> Result<HeapArena> {
        let blocks = len.div_ceil(size_of::<Block>());
        let slice: Box<[Block]> = vec![Block([0; 128]); blocks].into_boxed_slice();
        // Leak to a raw pointer once, so every later access derives from the same provenance.
        let base = Box::into_raw(slice) as *mut Block as *mut u8;
        Ok(HeapArena { base, blocks })
    }
}

#[cfg(miri)]
impl Drop for HeapArena {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.base as *mut Block, self.blocks);
        // SAFETY: `base` and `blocks` came from `Box::into_raw` of exactly this slice in
        // `zeroed`, and it is freed only here, once.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// A hostile peer for tests: a thread that keeps rewriting (head, tail) through `pairs`, so
/// that two loads of the cursors see different pairs. Stops when the returned guard drops.
#[cfg(test)]
pub(crate) struct CursorFlipper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[cfg(test)]
impl CursorFlipper {
    pub(crate) fn start(region: &std::sync::Arc<Region>, pairs: &'static [(u64, u64)]) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (region, stop) = (std::sync::Arc::clone(region), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for &(head, tail) in pairs {
                        region.header().head.store(head, Ordering::Release);
                        region.header().tail.store(tail, Ordering::Release);
                    }
                }
            })
        };
        CursorFlipper {
            stop,
            thread: Some(thread),
        }
    }
}

#[cfg(test)]
impl Drop for CursorFlipper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one byte at `offset` from the arena's base in a forked child; true when the child
    /// died of SIGSEGV (the read hit a guard page).
    #[cfg(not(miri))]
    fn read_faults(region: &Region, offset: isize) -> bool {
        // SAFETY: the child only performs one volatile read and `_exit`s; it touches no lock
        // or allocator state of the (multithreaded) parent.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: deliberately possibly out of bounds: the point of the test; in the child.
            unsafe {
                std::ptr::read_volatile(region.base.offset(offset));
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above; `status` is a live int.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV
    }

    #[test]
    #[cfg(not(miri))]
    fn an_in_memory_arena_is_fenced_by_guard_pages() {
        for capacity in [128usize, 4096, 1 << 16] {
            let region = Region::heap(capacity).unwrap();
            let len = layout::shm_size(capacity) as isize;
            assert!(
                !read_faults(&region, 0),
                "the arena's first byte is readable"
            );
            assert!(
                !read_faults(&region, len - 1),
                "the arena's last byte is readable"
            );
            assert!(
                read_faults(&region, len),
                "one byte past the ring's end must fault"
            );
            assert!(
                read_faults(&region, len + 4095),
                "a page past the end must fault"
            );
        }
    }

    /// Each end holds one close-on-exec fd on the memfd for as long as its region lives (so
    /// tools that list `/proc/PID/fd` find the ring), and closes it with the region.
    #[test]
    fn a_mapped_region_holds_one_cloexec_fd_on_its_memfd_until_dropped() {
        use std::os::fd::AsRawFd;
        let name = format!("/tmp/held-{}.sock", std::process::id());
        let (region, fd) = Region::create_memfd(&name, 4096).unwrap();
        let sent = fd.as_raw_fd();
        drop(fd); // as the bus does once the fd is sent
        let held = || -> Vec<(i32, i32)> {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .flatten()
                .filter_map(|entry| {
                    let target = std::fs::read_link(entry.path()).ok()?;
                    let number: i32 = entry.file_name().to_str()?.parse().ok()?;
                    (target.to_string_lossy() == format!("/memfd:{name} (deleted)")).then(|| {
                        // SAFETY: F_GETFD on a number we just listed; at worst EBADF.
                        (number, unsafe { libc::fcntl(number, libc::F_GETFD) })
                    })
                })
                .collect()
        };
        let open = held();
        assert_eq!(open.len(), 1, "fds on the memfd: {open:?}");
        assert_ne!(open[0].0, sent, "the sent fd was closed; another is held");
        assert_eq!(open[0].1 & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "{open:?}");
        drop(region);
        assert_eq!(held(), [], "the region's fd outlived it");
    }

    #[test]
    fn memfd_region_is_sealed_sized_and_formatted() {
        let (region, fd) = Region::create_memfd("/tmp/test.sock", 4096).unwrap();
        let seals = fcntl(&fd, FcntlArg::F_GET_SEALS).unwrap();
        assert_eq!(seals, 7, "shrink | grow | seal, as upstream");
        let stat = fstat(fd.as_fd()).unwrap();
        assert_eq!(stat.st_size, 768 + 4096);
        assert_eq!(stat.st_mode & 0o777, 0o600);
        assert_eq!(region.header().state.load(Ordering::Relaxed), state::READY);
        let again = Region::attach(&fd, 4096, 768 + 4096).unwrap();
        assert_eq!(again.header().capacity.load(Ordering::Relaxed), 4096);
    }

    #[test]
    fn attach_refuses_unsealed_and_short_fds() {
        let fd = memfd_create("unsealed", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&fd, 768 + 64).unwrap();
        let err = Region::attach(&fd, 64, 832).err().unwrap();
        assert!(err.to_string().contains("not sealed"), "{err}");

        let fd =
            memfd_create("short", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).unwrap();
        nix::unistd::ftruncate(&fd, 100).unwrap();
        fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).unwrap();
        let err = Region::attach(&fd, 64, 832).err().unwrap();
        assert!(err.to_string().contains("holds 100 bytes"), "{err}");

        let file: OwnedFd = File::open("/proc/self/exe").unwrap().into();
        let err = Region::attach(&file, 64, 832).err().unwrap();
        assert!(err.to_string().contains("not a sealable memfd"), "{err}");
    }

    #[test]
    fn a_sealed_hugetlb_memfd_is_refused() {
        let fd = memfd_create(
            "huge",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_HUGETLB,
        )
        .expect("memfd_create(MFD_HUGETLB)");
        // Sizing a hugetlb file needs no pages from the pool (mapping it would).
        nix::unistd::ftruncate(&fd, 2 << 20).expect("ftruncate to one 2 MiB huge page");
        fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).unwrap();
        let err = verify_received_fd(&fd, 768 + 1024).unwrap_err();
        assert!(err.to_string().contains("not on tmpfs"), "{err}");
        assert!(err.to_string().contains("hugetlbfs"), "{err}");
    }

    #[test]
    fn attach_refuses_a_wrong_shm_size_or_capacity() {
        let (_region, fd) = Region::create_memfd("x", 1024).unwrap();
        assert!(matches!(
            Region::attach(&fd, 1024, 1000),
            Err(Error::AbiMismatch {
                field: "shm_size",
                ..
            })
        ));
        assert!(matches!(
            Region::attach(&fd, 1000, 1768),
            Err(Error::InvalidCapacity { capacity: 1000, .. })
        ));
        assert!(matches!(
            Region::attach(&fd, 512, 1280),
            Err(Error::AbiMismatch {
                field: "arena capacity",
                ..
            })
        ));
    }
}
