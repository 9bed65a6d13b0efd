//! The guarded anonymous mapping behind an in-memory ring: zeroed pages between two
//! `PROT_NONE` guard pages, so a stray access just past either end faults at once.

use crate::error::{Error, Result};

/// A private anonymous mapping of at least `len` zeroed bytes between two `PROT_NONE` guard
/// pages, its usable block ending against the trailing guard (to within `align`). Unmapped on
/// drop.
#[derive(Debug)]
pub(crate) struct GuardedMapping {
    /// Start of the usable block.
    base: *mut u8,
    /// The whole reservation, guards included.
    start: *mut libc::c_void,
    total: usize,
}

impl GuardedMapping {
    /// Maps `len` bytes, guards around them, with the block's start a multiple of `align` (a
    /// power of two no larger than a page) past the leading guard.
    pub(crate) fn new(len: usize, align: usize) -> Result<GuardedMapping> {
        let page = page_size();
        let body = len.div_ceil(page) * page;
        let total = body + 2 * page;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(Error::os(
                "mmap (in-memory ring)",
                std::io::Error::last_os_error(),
            ));
        }
        let mapping = GuardedMapping {
            // The block ends at the trailing guard (to within the alignment).
            // SAFETY: page + (body - len) rounded down stays inside the `total` bytes mapped.
            base: unsafe { (start as *mut u8).add(page + ((body - len) & !(align - 1))) },
            start,
            total,
        };
        for guard in [0, page + body] {
            // SAFETY: each guard is one whole page inside the mapping made above.
            let done = unsafe {
                libc::mprotect((start as *mut u8).add(guard).cast(), page, libc::PROT_NONE)
            };
            if done != 0 {
                return Err(Error::os(
                    "mprotect (guard page)",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        Ok(mapping)
    }

    /// Start of the usable block: `len` zeroed, writable bytes.
    pub(crate) fn base(&self) -> *mut u8 {
        self.base
    }
}

impl Drop for GuardedMapping {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`, unmapped only here, once.
        unsafe {
            libc::munmap(self.start, self.total);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => 4096,
    }
}
