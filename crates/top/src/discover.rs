//! Finding rings: every process's memfd fds (`/proc/PID/fd`) and shared memfd mappings
//! (`/proc/PID/maps`), grouped by the memfd's (device, inode). A process that mapped its memfd
//! and closed the fd is found by its mapping alone.

use std::collections::BTreeMap;
use std::fmt;

use crate::procfs::{self, Listing};

/// A memfd's identity: the device and inode of the file (every process sees the same pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RingKey {
    /// `st_dev` of the memfd.
    pub dev: u64,
    /// `st_ino` of the memfd.
    pub ino: u64,
}

impl fmt::Display for RingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            libc::major(self.dev),
            libc::minor(self.dev),
            self.ino
        )
    }
}

/// How one process holds one memfd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holding {
    /// Its fds on the memfd.
    pub(crate) fds: Vec<i32>,
    /// Its shared writable mappings: (start, end, file offset).
    pub(crate) writable: Vec<(u64, u64, u64)>,
    /// Its read-only shared mappings (an observer such as tachyon-top).
    pub(crate) read_only: usize,
}

impl Holding {
    /// A ring's end holds an fd or maps it writable; a process with only read-only mappings
    /// is an observer.
    pub(crate) fn is_end(&self) -> bool {
        !self.fds.is_empty() || !self.writable.is_empty()
    }

    /// Where the consumer's futex word (offset 384 of the arena) sits in this process, for
    /// each writable mapping that starts at the file's beginning.
    pub(crate) fn sleeping_word_addresses(&self) -> impl Iterator<Item = u64> + '_ {
        self.writable
            .iter()
            .filter(|(_, _, offset)| *offset == 0)
            .map(|(start, _, _)| start + 384)
    }
}

/// One memfd and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundMemfd {
    pub(crate) key: RingKey,
    /// The name given to `memfd_create` (a ring's: its socket path).
    pub(crate) name: String,
    pub(crate) holders: BTreeMap<u32, Holding>,
}

/// A process whose fds or mappings we may not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    pub(crate) pid: u32,
    pub(crate) reason: String,
}

/// What one scan of `/proc` found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) memfds: BTreeMap<RingKey, FoundMemfd>,
    pub(crate) denied: Vec<Denied>,
}

/// Scans every process. Processes that exit meanwhile are left out; processes we may not read
/// are listed in [`Found::denied`].
pub(crate) fn scan() -> std::io::Result<Found> {
    let mut found = Found::default();
    for pid in procfs::pids()? {
        scan_process(pid, &mut found);
    }
    Ok(found)
}

fn scan_process(pid: u32, found: &mut Found) {
    let mut denied = None;
    match procfs::memfd_fds(pid) {
        Listing::Read(fds) => {
            for fd in fds {
                let key = RingKey {
                    dev: fd.dev,
                    ino: fd.ino,
                };
                holding(found, key, &fd.name, pid).fds.push(fd.fd);
            }
        }
        Listing::Denied(reason) => denied = Some(format!("/proc/{pid}/fd: {reason}")),
        Listing::Gone => return,
    }
    match procfs::memfd_mappings(pid) {
        Listing::Read(mappings) => {
            for mapping in mappings {
                let key = RingKey {
                    dev: mapping.dev,
                    ino: mapping.ino,
                };
                let holding = holding(found, key, &mapping.name, pid);
                if mapping.writable {
                    holding
                        .writable
                        .push((mapping.start, mapping.end, mapping.offset));
                } else {
                    holding.read_only += 1;
                }
            }
        }
        Listing::Denied(reason) => {
            let reason = format!("/proc/{pid}/maps: {reason}");
            denied = Some(match denied {
                Some(first) => format!("{first}; {reason}"),
                None => reason,
            });
        }
        Listing::Gone => {}
    }
    if let Some(reason) = denied {
        found.denied.push(Denied { pid, reason });
    }
}

fn holding<'a>(found: &'a mut Found, key: RingKey, name: &str, pid: u32) -> &'a mut Holding {
    found
        .memfds
        .entry(key)
        .or_insert_with(|| FoundMemfd {
            key,
            name: name.to_string(),
            holders: BTreeMap::new(),
        })
        .holders
        .entry(pid)
        .or_default()
}

/// The socket path a memfd name stands for: the name itself, less the `#N` suffix
/// tachyon-ring's `Listener` adds for its Nth connector.
pub(crate) fn socket_path_of(name: &str) -> &str {
    match name.rsplit_once('#') {
        Some((path, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => path,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_suffixes_are_stripped_from_socket_paths() {
        assert_eq!(socket_path_of("/tmp/a.sock#3"), "/tmp/a.sock");
        assert_eq!(socket_path_of("/tmp/a.sock"), "/tmp/a.sock");
        assert_eq!(socket_path_of("/tmp/a#b.sock"), "/tmp/a#b.sock");
        assert_eq!(socket_path_of("/tmp/a.sock#"), "/tmp/a.sock#");
    }

    #[test]
    fn our_own_memfd_is_found_by_fd_and_by_mapping() {
        use std::os::fd::AsRawFd;
        let fd = nix::sys::memfd::memfd_create(
            "/tmp/discover-self-test.sock",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .unwrap();
        nix::unistd::ftruncate(&fd, 4096).unwrap();
        let file = std::fs::File::from(fd);
        let map = memmap2::MmapOptions::new()
            .len(4096)
            .map_raw(&file)
            .unwrap();
        let found = scan().unwrap();
        let me = std::process::id();
        let memfd = found
            .memfds
            .values()
            .find(|m| m.name == "/tmp/discover-self-test.sock")
            .expect("our memfd is found");
        let holding = &memfd.holders[&me];
        assert_eq!(holding.fds, vec![file.as_raw_fd()]);
        assert_eq!(holding.writable.len(), 1);
        assert_eq!(holding.writable[0].0, map.as_ptr() as u64);
        drop(file);
        let found = scan().unwrap();
        let memfd = found
            .memfds
            .values()
            .find(|m| m.name == "/tmp/discover-self-test.sock")
            .expect("still found by its mapping once the fd is closed");
        assert!(memfd.holders[&me].fds.is_empty());
        assert!(memfd.holders[&me].is_end());
        drop(map);
    }
}
