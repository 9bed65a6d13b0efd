//! The listener's socket file: bound in a private staging directory, made `0600`, renamed onto
//! the path; a file already at the path replaced only if it is a socket nobody listens on; and
//! removed on drop only while the path still names *our* socket.

use std::fs::Metadata;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `sun_path` holds 108 bytes, the terminating NUL included: paths up to 107 bytes work, as
/// with upstream.
pub(crate) const MAX_SOCKET_PATH: usize = 108;

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
        remove_stale_socket(path)?;
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
        std::fs::rename(&staged, path).map_err(|e| Error::os_at("rename", path, e))?;
        Ok(SocketFile {
            listener,
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
        })
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
    match crate::sock_diag::listening_socket_files() {
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
