//! The listener's socket file: bound in a private staging directory, made `0600`, linked onto
//! the path without ever replacing what is there; a file already at the path removed first
//! only if it is a socket nobody listens on; and removed on drop only while the path still
//! names *our* socket.
//!
//! Two of our listeners racing for one path end with exactly one owner: the check of what is
//! at the path, the removal of a stale socket and the link run under an exclusive `flock` on
//! the directory, and the link fails (`EEXIST`) rather than replace a socket that a listener
//! not taking the lock (upstream's) bound in the meantime.

use std::fs::{File, Metadata};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys::fs::try_lock_exclusive;

/// `sun_path` holds 108 bytes, the terminating NUL included: paths up to 107 bytes work, as
/// with upstream.
pub(crate) const MAX_SOCKET_PATH: usize = 108;

/// How long a listener waits for the directory lock. Another of our listeners holds it for a
/// `stat`, a sock_diag query and a `link`: a millisecond or so. Past this bound some
/// process is sitting on the lock (anyone who can read the directory can take it), and
/// `listen` says so rather than hang.
const DIR_LOCK_WAIT: Duration = Duration::from_secs(5);

/// How often a listener removes a stale socket at the path and still finds the path taken
/// when it links its own: each time, a listener that does not take the directory lock put a
/// file there in between.
const PLACE_ATTEMPTS: usize = 8;

/// A listening socket bound at a path; the file is removed on drop if it is still ours.
#[derive(Debug)]
pub(crate) struct SocketFile {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    /// Device and inode of the socket file we bound, to recognise it at drop.
    identity: (u64, u64),
}

impl SocketFile {
    /// Binds a non-blocking listening socket with `mode` at `path`, never visible there with
    /// wider permissions, refusing to replace anything but a stale socket.
    pub(crate) fn bind_private(path: &Path, mode: u32) -> Result<SocketFile> {
        let len = path.as_os_str().len();
        if len >= MAX_SOCKET_PATH {
            return Err(Error::Os {
                syscall: "bind",
                path: Some(path.to_path_buf()),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "the socket path is {len} bytes; a Unix socket path must be under \
                         {MAX_SOCKET_PATH}"
                    ),
                ),
            });
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // 0700, removed with whatever is left in it on every path out of here.
        let staging = tempfile::Builder::new()
            .prefix(".tachyon-")
            .tempdir_in(dir)
            .map_err(|e| Error::os_at("mkdir (staging directory)", path, e))?;
        let staged = staging.path().join("s");
        let listener = bind_staged(staging.path(), &staged, path)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::os_at("chmod", path, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::os_at("fcntl(O_NONBLOCK)", path, e))?;
        let meta = std::fs::symlink_metadata(&staged).map_err(|e| Error::os_at("stat", path, e))?;
        // The last fallible step: from here on the file at `path` is ours and removed on drop.
        // (The staged name goes with the staging directory.)
        place(&staged, dir, path)?;
        Ok(SocketFile {
            listener,
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
        })
    }
}

/// Links the listening socket at `staged` onto `path`, replacing nothing but a stale socket:
/// a live listener's socket gives [`Error::AddressInUse`], any other file an error naming it.
///
/// Under the directory's lock, so that no other listener of ours can link its socket between
/// our finding a stale socket at `path` and our unlinking it (we would unlink *its* socket and
/// both would think they own the path). `link` never replaces: a file that a listener not
/// taking the lock put there since is looked at again.
fn place(staged: &Path, dir: &Path, path: &Path) -> Result<()> {
    let _lock = DirLock::take(dir, path, DIR_LOCK_WAIT)?;
    for _ in 0..PLACE_ATTEMPTS {
        remove_stale_socket(path)?;
        match std::fs::hard_link(staged, path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::os_at("link", path, e)),
        }
    }
    Err(Error::Os {
        syscall: "link",
        path: Some(path.to_path_buf()),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "a stale socket reappeared at the path each of {PLACE_ATTEMPTS} times it was \
                 removed; some process keeps binding and abandoning it"
            ),
        ),
    })
}

/// An exclusive `flock` on a directory, held while a listener checks and takes a path in it;
/// released when the fd closes (on drop).
struct DirLock {
    /// `None` when the directory could not be locked at all: see [`DirLock::take`].
    _dir: Option<File>,
}

impl DirLock {
    /// Takes the lock on `dir` (for a listener at `path`), waiting up to `wait` for whoever
    /// holds it.
    ///
    /// A directory we cannot open for reading, or on a file system without `flock`, is not
    /// locked: the listener then goes on without the lock, where `link` still never replaces
    /// a live socket but two listeners that both find one stale socket may both replace it.
    fn take(dir: &Path, path: &Path, wait: Duration) -> Result<DirLock> {
        let Ok(file) = File::open(dir) else {
            return Ok(DirLock { _dir: None });
        };
        let deadline = Instant::now() + wait;
        loop {
            let err = match try_lock_exclusive(&file) {
                Ok(()) => return Ok(DirLock { _dir: Some(file) }),
                Err(err) => err,
            };
            match err.kind() {
                ErrorKind::Interrupted => {}
                ErrorKind::WouldBlock if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                ErrorKind::WouldBlock => {
                    return Err(Error::Os {
                        syscall: "flock",
                        path: Some(path.to_path_buf()),
                        source: std::io::Error::new(
                            ErrorKind::WouldBlock,
                            format!(
                                "another process has held the lock on the directory {} for \
                                 {wait:?}; a listener holds it for a millisecond or so",
                                dir.display()
                            ),
                        ),
                    });
                }
                _ => return Ok(DirLock { _dir: None }),
            }
        }
    }
}

/// Binds at `staged` (inside the private `staging` directory). When that full path is too
/// long for `sun_path` though the final path is not, binds through the short alias
/// `/proc/self/fd/N/s` of an fd of the staging directory: the kernel resolves it to the same
/// place.
fn bind_staged(staging: &Path, staged: &Path, path: &Path) -> Result<UnixListener> {
    if staged.as_os_str().len() < MAX_SOCKET_PATH {
        return UnixListener::bind(staged).map_err(|e| Error::os_at("bind", path, e));
    }
    let dir = std::fs::File::open(staging).map_err(|e| Error::os_at("open (staging)", path, e))?;
    let alias = PathBuf::from(format!("/proc/self/fd/{}/s", dir.as_raw_fd()));
    UnixListener::bind(&alias).map_err(|e| Error::os_at("bind", path, e))
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Another listener may have bound the path since ours was moved away: remove only
        // the file we bound. (A swap between this check and the unlink is not excluded.)
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Removes a leftover socket at `path`. Refuses a socket some process still listens on
/// (`Error::AddressInUse`), and anything that is not a socket.
pub(crate) fn remove_stale_socket(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::os_at("stat", path, e)),
        Ok(meta) if meta.file_type().is_socket() => {
            if someone_listens_on(&meta, path) {
                return Err(Error::AddressInUse {
                    path: path.to_path_buf(),
                });
            }
            std::fs::remove_file(path).map_err(|e| Error::os_at("unlink", path, e))
        }
        Ok(meta) => Err(Error::Os {
            syscall: "listen",
            path: Some(path.to_path_buf()),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "the path holds a {}, not a socket; refusing to replace it",
                    describe(&meta.file_type())
                ),
            ),
        }),
    }
}

/// Whether a listening socket is bound to the socket file `meta` describes, found without
/// connecting (a probe connect would take a live upstream listener's one handshake): from
/// sock_diag, which names each listening socket's file by device and inode, else from
/// `/proc/net/unix`, which names it by the path it was bound at. When neither can be read the
/// file is taken as stale, as upstream takes every file.
fn someone_listens_on(meta: &Metadata, path: &Path) -> bool {
    match crate::sys::sock_diag::listening_socket_files() {
        Ok(files) => {
            let dev = meta.dev();
            let kernel_dev = (u64::from(libc::major(dev)) << 20) | u64::from(libc::minor(dev));
            files.iter().any(|&(ino, file_dev)| {
                u64::from(ino) == meta.ino() & 0xFFFF_FFFF && file_dev == kernel_dev
            })
        }
        Err(_) => listed_in_proc_net_unix(path),
    }
}

/// `/proc/net/unix` lists listening sockets (flag `__SO_ACCEPTCON`, 0x10000) with the path
/// they were bound at: enough for listeners that bind the path itself, as upstream's do.
fn listed_in_proc_net_unix(path: &Path) -> bool {
    const ACCEPTCON: u32 = 0x1_0000;
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return false;
    };
    let wanted = path.as_os_str().to_string_lossy();
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() >= 8
            && u32::from_str_radix(fields[3], 16).is_ok_and(|flags| flags & ACCEPTCON != 0)
            && fields[7] == wanted
    })
}

fn describe(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_file() {
        "regular file"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback when sock_diag cannot be read (it can here, so nothing else reaches it):
    /// a listening socket is found by the path it was bound at; a socket bound but not
    /// listening, a path nobody bound, and another listener's path are not.
    #[test]
    fn proc_net_unix_names_a_listening_socket_by_its_path_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let listening = dir.path().join("listening.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&listening).unwrap();
        assert!(listed_in_proc_net_unix(&listening));
        let bound = dir.path().join("bound.sock");
        let _datagram = std::os::unix::net::UnixDatagram::bind(&bound).unwrap();
        assert!(!listed_in_proc_net_unix(&bound), "bound, not listening");
        assert!(!listed_in_proc_net_unix(&dir.path().join("nobody.sock")));
    }

    #[test]
    fn binding_waits_for_the_directory_lock_and_gives_up_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let held = DirLock::take(dir.path(), &path, DIR_LOCK_WAIT).unwrap();
        assert!(held._dir.is_some(), "a temporary directory can be locked");
        // Held by someone else: a short wait gives up, naming the lock and the directory.
        let err = DirLock::take(dir.path(), &path, Duration::from_millis(30))
            .err()
            .unwrap();
        let message = err.to_string();
        assert!(message.contains("flock"), "{message}");
        assert!(
            message.contains("held the lock on the directory"),
            "{message}"
        );
        // A listener binding meanwhile waits for the lock, and binds once it is released.
        let binder = {
            let path = path.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                SocketFile::bind_private(&path, 0o600).map(|socket| (socket, started.elapsed()))
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(!path.exists(), "bound while the directory lock was held");
        drop(held);
        let (socket, waited) = binder.join().unwrap().unwrap();
        assert!(
            waited >= Duration::from_millis(150),
            "waited only {waited:?}"
        );
        assert!(path.exists());
        drop(socket);
        assert!(!path.exists());
    }

    #[test]
    fn placing_never_replaces_a_live_socket_or_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged.sock");
        let _staged_listener = UnixListener::bind(&staged).unwrap();
        let live = dir.path().join("live.sock");
        let _live_listener = UnixListener::bind(&live).unwrap();
        let before = std::fs::symlink_metadata(&live).unwrap().ino();
        let err = place(&staged, dir.path(), &live).err().unwrap();
        assert!(matches!(err, Error::AddressInUse { .. }), "{err}");
        assert_eq!(std::fs::symlink_metadata(&live).unwrap().ino(), before);
        let file = dir.path().join("file");
        std::fs::write(&file, b"keep").unwrap();
        assert!(place(&staged, dir.path(), &file).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
        // A stale socket is replaced, by the staged socket itself (same inode).
        let stale = dir.path().join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        place(&staged, dir.path(), &stale).unwrap();
        assert_eq!(
            std::fs::symlink_metadata(&stale).unwrap().ino(),
            std::fs::symlink_metadata(&staged).unwrap().ino()
        );
    }
}
