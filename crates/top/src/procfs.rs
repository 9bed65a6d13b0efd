//! Everything read from `/proc`: processes, their memfd fds and mappings, the Unix socket paths
//! bound on the machine, and the futex words a process's threads wait on. Only this module
//! names `/proc` paths; a process that exits while we read it is simply "gone".

use std::collections::HashSet;
use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

/// What reading one of a process's `/proc` files gave.
#[derive(Debug)]
pub(crate) enum Listing<T> {
    /// Read.
    Read(T),
    /// Refused (another uid, no ptrace right): said why.
    Denied(String),
    /// The process exited.
    Gone,
}

fn listing_error<T>(error: io::Error) -> Listing<T> {
    match error.kind() {
        ErrorKind::NotFound => Listing::Gone,
        // ESRCH shows as "other" when the process dies between open and read.
        _ if error.raw_os_error() == Some(libc::ESRCH) => Listing::Gone,
        _ => Listing::Denied(error.to_string()),
    }
}

/// Every process id in `/proc`.
pub(crate) fn pids() -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Who a process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessInfo {
    pub(crate) pid: u32,
    pub(crate) comm: String,
    pub(crate) cmdline: Vec<String>,
    /// Real uid, from `/proc/PID/status`.
    pub(crate) uid: Option<u32>,
}

/// `comm`, `cmdline` and uid of `pid` (readable for any uid); `None` when it has exited.
pub(crate) fn process_info(pid: u32) -> Option<ProcessInfo> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    Some(ProcessInfo {
        pid,
        comm: comm.trim_end_matches('\n').to_string(),
        cmdline: cmdline
            .split(|&byte| byte == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect(),
        uid: status_uid(&status),
    })
}

fn status_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The name a memfd was given, from a `/proc/PID/fd` link or a `/proc/PID/maps` path:
/// `/memfd:NAME (deleted)` gives `NAME`.
pub(crate) fn memfd_name(link: &str) -> Option<&str> {
    let name = link.strip_prefix("/memfd:")?;
    Some(name.strip_suffix(" (deleted)").unwrap_or(name))
}

/// An open fd of a process that refers to a memfd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemfdFd {
    pub(crate) fd: i32,
    pub(crate) name: String,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// The process's fds that are memfds.
pub(crate) fn memfd_fds(pid: u32) -> Listing<Vec<MemfdFd>> {
    let dir = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(dir) => dir,
        Err(error) => return listing_error(error),
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let Some(name) = link.to_str().and_then(memfd_name) else {
            continue;
        };
        // The fd may be closed between readlink and stat: then it is simply not listed.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        found.push(MemfdFd {
            fd,
            name: name.to_string(),
            dev: meta.dev(),
            ino: meta.ino(),
        });
    }
    found.sort_by_key(|f| f.fd);
    Listing::Read(found)
}

/// A shared mapping of a memfd in a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemfdMapping {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// File offset of `start`.
    pub(crate) offset: u64,
    /// Mapped writable (a ring's ends do; an observer such as tachyon-top does not).
    pub(crate) writable: bool,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) name: String,
}

/// The process's shared memfd mappings.
pub(crate) fn memfd_mappings(pid: u32) -> Listing<Vec<MemfdMapping>> {
    match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        Ok(maps) => Listing::Read(maps.lines().filter_map(parse_maps_line).collect()),
        Err(error) => listing_error(error),
    }
}

/// One line of `/proc/PID/maps`, when it is a shared mapping of a memfd.
pub(crate) fn parse_maps_line(line: &str) -> Option<MemfdMapping> {
    let mut rest = line;
    let mut field = || {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        rest = after;
        token
    };
    let (range, perms, offset, dev, inode) = (field(), field(), field(), field(), field());
    let name = memfd_name(rest.trim_start())?;
    let (start, end) = range.split_once('-')?;
    let (major, minor) = dev.split_once(':')?;
    let perms = perms.as_bytes();
    if perms.len() != 4 || perms[3] != b's' {
        return None;
    }
    Some(MemfdMapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        writable: perms[1] == b'w',
        dev: libc::makedev(
            u32::from_str_radix(major, 16).ok()?,
            u32::from_str_radix(minor, 16).ok()?,
        ),
        ino: inode.parse().ok()?,
        name: name.to_string(),
    })
}

/// `/proc/PID/fd/N`.
pub(crate) fn fd_path(pid: u32, fd: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/fd/{fd}"))
}

/// `/proc/PID/map_files/START-END`: opens the file behind a mapping (root or `CAP_SYS_ADMIN`).
pub(crate) fn map_file_path(pid: u32, start: u64, end: u64) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/map_files/{start:x}-{end:x}"))
}

/// Every filesystem path a Unix socket is bound to in this network namespace
/// (`/proc/net/unix`; abstract names are left out).
pub(crate) fn bound_unix_paths() -> HashSet<String> {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(7))
        .filter(|path| path.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// Syscall numbers whose first argument we understand.
#[cfg(target_arch = "x86_64")]
const SYS_FUTEX: u64 = 202;
#[cfg(target_arch = "aarch64")]
const SYS_FUTEX: u64 = 98;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYS_FUTEX: u64 = u64::MAX;
/// `futex_waitv` has one number on every architecture.
const SYS_FUTEX_WAITV: u64 = 449;
/// `struct futex_waitv`: val u64, uaddr u64, flags u32, reserved u32.
const FUTEX_WAITV_LEN: usize = 24;

/// The addresses of the futex words the process's threads are blocked on now, from
/// `/proc/PID/task/TID/syscall` (and, for `futex_waitv`, the waiter array in `/proc/PID/mem`).
/// Empty when nothing waits or we may not look (ptrace access is needed).
pub(crate) fn futex_words_waited_on(pid: u32) -> Vec<u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut words = Vec::new();
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("syscall")) else {
            continue;
        };
        let mut fields = text.split_whitespace();
        let Some(number) = fields.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue; // "running", or "-1 ..." (not in a syscall)
        };
        let args: Vec<u64> = fields
            .take(2)
            .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
            .collect();
        match (number, args.as_slice()) {
            (SYS_FUTEX, [uaddr, ..]) => words.push(*uaddr),
            (SYS_FUTEX_WAITV, [waiters, count]) => {
                words.extend(futex_waitv_words(pid, *waiters, *count))
            }
            _ => {}
        }
    }
    words
}

fn futex_waitv_words(pid: u32, waiters: u64, count: u64) -> Vec<u64> {
    // The kernel allows at most 128 waiters per call.
    let count = count.min(128) as usize;
    let Ok(mem) = std::fs::File::open(format!("/proc/{pid}/mem")) else {
        return Vec::new();
    };
    let mut bytes = vec![0u8; count * FUTEX_WAITV_LEN];
    if mem.read_exact_at(&mut bytes, waiters).is_err() {
        return Vec::new();
    }
    bytes
        .chunks_exact(FUTEX_WAITV_LEN)
        .map(|waiter| u64::from_ne_bytes(waiter[8..16].try_into().expect("8 bytes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_of_memfds_are_parsed_and_others_ignored() {
        let ring = "7f2c1a000000-7f2c1a101000 rw-s 00000000 00:01 4711                       /memfd:/tmp/a b.sock (deleted)";
        let parsed = parse_maps_line(ring).expect("a shared memfd mapping");
        assert_eq!(parsed.start, 0x7f2c_1a00_0000);
        assert_eq!(parsed.end, 0x7f2c_1a10_1000);
        assert_eq!(parsed.offset, 0);
        assert!(parsed.writable);
        assert_eq!(parsed.dev, libc::makedev(0, 1));
        assert_eq!(parsed.ino, 4711);
        assert_eq!(parsed.name, "/tmp/a b.sock");
        let observer = ring.replace("rw-s", "r--s");
        assert!(!parse_maps_line(&observer).unwrap().writable);
        let private = ring.replace("rw-s", "rw-p");
        assert_eq!(parse_maps_line(&private), None);
        let file = "55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/python3";
        assert_eq!(parse_maps_line(file), None);
        assert_eq!(parse_maps_line("7f00-7f10 rw-s 0 00:01 1"), None);
    }

    #[test]
    fn memfd_names_lose_their_prefix_and_deleted_suffix() {
        assert_eq!(
            memfd_name("/memfd:/tmp/x.sock (deleted)"),
            Some("/tmp/x.sock")
        );
        assert_eq!(memfd_name("/memfd:x"), Some("x"));
        assert_eq!(memfd_name("/dev/null"), None);
    }

    #[test]
    fn the_uid_is_the_first_of_status_uids() {
        assert_eq!(
            status_uid("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n"),
            Some(1000)
        );
        assert_eq!(status_uid("Name:\tx\n"), None);
    }
}
