//! A listener we must not trust: what it announces and hands over is checked before anything
//! is mapped.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use tachyon_ring::{Bus, Error};

/// Listens at `dir/sock` and sends the first connector `words` (the 32-byte handshake) with
/// `fd`, as a hostile listener may.
fn fake_listener(dir: &Path, words: [u32; 8], fd: OwnedFd) -> (PathBuf, JoinHandle<()>) {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    fake_listener_sending(dir, bytes, fd)
}

/// Like [`fake_listener`], with any bytes in place of the handshake.
fn fake_listener_sending(dir: &Path, bytes: Vec<u8>, fd: OwnedFd) -> (PathBuf, JoinHandle<()>) {
    let path = dir.join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
    });
    (path, thread)
}

fn sealed_memfd(len: i64) -> OwnedFd {
    let fd = memfd_create(
        "hostile",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .unwrap();
    nix::unistd::ftruncate(&fd, len).unwrap();
    fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).unwrap();
    fd
}

#[test]
fn a_2_gib_ring_is_refused_by_default_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 1u32 << 31;
    let words = [0x5441_4348, 4, capacity, 768 + capacity, 0, 0, 64, 0];
    // Small, so nothing large is committed even if the check were missing.
    let (path, listener) = fake_listener(dir.path(), words, sealed_memfd(4096));
    let err = Bus::connect(&path).unwrap_err();
    listener.join().unwrap();
    assert!(
        matches!(
            err,
            Error::CapacityLimit {
                capacity: 0x8000_0000,
                limit: 0x4000_0000
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("max_capacity of 1073741824 bytes"),
        "{err}"
    );
}

#[test]
fn max_capacity_is_per_ring_and_inclusive() {
    let dir = tempfile::tempdir().unwrap();
    for (capacity, accepted) in [(64 << 10, true), (128 << 10, false)] {
        let path = dir.path().join(format!("{capacity}.sock"));
        let listener = {
            let path = path.clone();
            std::thread::spawn(move || Bus::listen(&path, capacity).map(drop))
        };
        let connected = Bus::options()
            .connect_timeout(Duration::from_secs(5))
            .max_capacity(64 << 10)
            .connect(&path);
        listener.join().unwrap().unwrap();
        match connected {
            Ok(bus) => assert!(accepted, "{capacity} accepted: {bus:?}"),
            Err(Error::CapacityLimit { capacity: c, limit }) => {
                assert!(!accepted, "{capacity} refused");
                assert_eq!((c, limit), (capacity as u64, 64 << 10));
            }
            Err(other) => panic!("{other}"),
        }
    }
    let rpc_path = dir.path().join("rpc.sock");
    let callee = {
        let path = rpc_path.clone();
        std::thread::spawn(move || tachyon_ring::RpcBus::listen(&path, 4096, 1 << 20).map(drop))
    };
    let err = Bus::options()
        .connect_timeout(Duration::from_secs(5))
        .max_capacity(64 << 10)
        .rpc_connect(&rpc_path)
        .unwrap_err();
    callee.join().unwrap().unwrap();
    assert!(
        matches!(
            err,
            Error::CapacityLimit {
                capacity: 0x10_0000,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_handshake_cut_short_is_refused_naming_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let words = [0x5441_4348u32, 4, 4096, 768 + 4096, 0, 0, 64, 0];
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .take(10)
        .collect();
    let (path, listener) = fake_listener_sending(dir.path(), bytes, sealed_memfd(4096));
    let err = Bus::connect(&path).unwrap_err();
    listener.join().unwrap();
    assert!(err.to_string().contains("received 10 bytes"), "{err}");
}
