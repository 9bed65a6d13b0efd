//! Which Unix sockets are listening, and on which files: one `NETLINK_SOCK_DIAG` dump (what
//! `ss -xl` reads), without connecting to anything.

use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket,
};

use crate::error::{Error, Result};

/// `<linux/sock_diag.h>` and `<linux/unix_diag.h>`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;
const UDIAG_SHOW_VFS: u32 = 0x2;
const UNIX_DIAG_VFS: u16 = 1;
const NLMSG_HEADER_LEN: usize = 16;
const UNIX_DIAG_MSG_LEN: usize = 16;

/// (inode, device) of the file every listening Unix socket in our network namespace is bound
/// to, the device in the kernel's encoding (`major << 20 | minor`), the inode's low 32 bits.
pub(crate) fn listening_socket_files() -> Result<Vec<(u32, u64)>> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .map_err(|e| Error::os("socket(NETLINK_SOCK_DIAG)", e))?;
    let mut request = Vec::with_capacity(40);
    request.extend(40u32.to_ne_bytes()); // nlmsg_len
    request.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend(1u32.to_ne_bytes()); // seq
    request.extend(0u32.to_ne_bytes()); // pid: the kernel
    request.extend([libc::AF_UNIX as u8, 0, 0, 0]); // family, protocol, pad
    request.extend((1u32 << TCP_LISTEN).to_ne_bytes()); // states
    request.extend(0u32.to_ne_bytes()); // ino: any
    request.extend(UDIAG_SHOW_VFS.to_ne_bytes());
    request.extend([0xFF; 8]); // cookie: none
    send(fd.as_raw_fd(), &request, MsgFlags::empty())
        .map_err(|e| Error::os("send(NETLINK_SOCK_DIAG)", e))?;

    let mut files = Vec::new();
    let mut buffer = vec![0u8; 32 << 10];
    loop {
        let len = recv(fd.as_raw_fd(), &mut buffer, MsgFlags::empty())
            .map_err(|e| Error::os("recv(NETLINK_SOCK_DIAG)", e))?;
        let mut messages = &buffer[..len];
        while messages.len() >= NLMSG_HEADER_LEN {
            let message_len = (u32_at(messages, 0) as usize).min(messages.len());
            let kind = u16::from_ne_bytes([messages[4], messages[5]]);
            match kind {
                NLMSG_DONE => return Ok(files),
                NLMSG_ERROR => {
                    let errno = messages
                        .get(NLMSG_HEADER_LEN..NLMSG_HEADER_LEN + 4)
                        .map_or(libc::EIO, |_| -(u32_at(messages, NLMSG_HEADER_LEN) as i32));
                    return Err(Error::os(
                        "NETLINK_SOCK_DIAG",
                        std::io::Error::from_raw_os_error(errno),
                    ));
                }
                SOCK_DIAG_BY_FAMILY => {
                    let attributes = messages
                        .get(NLMSG_HEADER_LEN + UNIX_DIAG_MSG_LEN..message_len)
                        .unwrap_or_default();
                    files.extend(vfs_attribute(attributes));
                }
                _ => {}
            }
            if message_len < NLMSG_HEADER_LEN {
                break; // malformed; nothing more to read in this datagram
            }
            messages = messages
                .get(message_len.next_multiple_of(4)..)
                .unwrap_or_default();
        }
        if len == 0 {
            return Ok(files);
        }
    }
}

/// The `UNIX_DIAG_VFS` attribute among a message's attributes: (inode, device).
fn vfs_attribute(mut attributes: &[u8]) -> Option<(u32, u64)> {
    while attributes.len() >= 4 {
        let len = u16::from_ne_bytes([attributes[0], attributes[1]]) as usize;
        let kind = u16::from_ne_bytes([attributes[2], attributes[3]]);
        if len < 4 || len > attributes.len() {
            return None;
        }
        if kind == UNIX_DIAG_VFS && len >= 12 {
            return Some((u32_at(attributes, 4), u32_at(attributes, 8).into()));
        }
        attributes = attributes
            .get(len.next_multiple_of(4)..)
            .unwrap_or_default();
    }
    None
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_listening_socket_is_found_by_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let kernel_dev =
            (u64::from(libc::major(meta.dev())) << 20) | u64::from(libc::minor(meta.dev()));
        let wanted = (meta.ino() as u32, kernel_dev);
        assert!(super::listening_socket_files().unwrap().contains(&wanted));
        drop(listener);
        // Another test's short-lived forked child may still hold the fd for a moment.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while super::listening_socket_files().unwrap().contains(&wanted) {
            assert!(
                std::time::Instant::now() < give_up,
                "the closed socket is still listed as listening"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
