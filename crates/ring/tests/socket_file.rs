//! The listener's socket file: long paths, whose file a drop may remove, and a live
//! listener's path left alone.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tachyon_ring::{Bus, Error};

fn connect(path: &Path) -> tachyon_ring::Result<Bus> {
    Bus::options()
        .connect_timeout(Duration::from_secs(5))
        .connect(path)
}

/// Waits until a socket file that is not `old` (device, inode) sits at `path`.
fn wait_for_new_socket(path: &Path, old: Option<(u64, u64)>) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let identity = (meta.dev(), meta.ino());
            if Some(identity) != old {
                return identity;
            }
        }
        assert!(Instant::now() < deadline, "no socket appeared at {path:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn listen_in_thread(path: &Path) -> std::thread::JoinHandle<tachyon_ring::Result<Bus>> {
    let path = path.to_path_buf();
    std::thread::spawn(move || Bus::listen(&path, 4096))
}

/// A path of exactly `len` bytes inside `dir`, its last directory padded to length.
fn path_of_len(dir: &Path, len: usize) -> PathBuf {
    let base = dir.as_os_str().len() + "/".len() + "/x.sock".len();
    let padded = dir.join("d".repeat(len - base));
    std::fs::create_dir(&padded).unwrap();
    let path = padded.join("x.sock");
    assert_eq!(path.as_os_str().len(), len);
    path
}

#[test]
fn socket_paths_up_to_107_bytes_work() {
    let dir = tempfile::tempdir().unwrap();
    for len in [100, 107] {
        let path = path_of_len(dir.path(), len);
        let listener = listen_in_thread(&path);
        let connector = connect(&path);
        let listener = listener.join().unwrap();
        assert!(listener.is_ok(), "{len} bytes: {:?}", listener.err());
        assert!(connector.is_ok(), "{len} bytes: {:?}", connector.err());
        assert!(
            !path.exists(),
            "the socket file is removed after the handshake"
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    }
}

#[test]
fn a_listener_removes_only_its_own_socket_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sock");
    let moved = dir.path().join("moved.sock");
    let first = listen_in_thread(&path);
    let first_file = wait_for_new_socket(&path, None);
    // Someone moves the first listener's file away, and a second listener binds the path.
    std::fs::rename(&path, &moved).unwrap();
    let second = listen_in_thread(&path);
    wait_for_new_socket(&path, Some(first_file));
    // The first listener is served through its moved file and drops its socket file...
    let via_moved = connect(&moved).unwrap();
    first.join().unwrap().unwrap();
    // ... without deleting the second's.
    assert!(
        path.exists(),
        "the first listener removed the second's socket"
    );
    let via_path = connect(&path).unwrap();
    second.join().unwrap().unwrap();
    drop((via_moved, via_path));
}

#[test]
fn a_second_listener_refuses_a_live_listeners_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sock");
    let first = listen_in_thread(&path);
    wait_for_new_socket(&path, None);
    let (done, outcome) = mpsc::channel();
    {
        let path = path.clone();
        std::thread::spawn(move || done.send(Bus::listen(&path, 4096).map(drop)));
    }
    let second = outcome
        .recv_timeout(Duration::from_secs(10))
        .expect("the second listener took the path and waits for a connector");
    match second {
        Err(Error::AddressInUse { path: named }) => assert_eq!(named, path),
        other => panic!("{other:?}"),
    }
    let err = Bus::listen(&path, 4096).unwrap_err();
    assert!(err.to_string().contains("address in use"), "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    // The first listener still has its path and is served through it.
    let connector = connect(&path).unwrap();
    first.join().unwrap().unwrap();
    drop(connector);
}

#[test]
fn a_socket_file_nobody_listens_on_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // leaves the file behind
    let listener = listen_in_thread(&path);
    let connector = connect(&path).unwrap();
    listener.join().unwrap().unwrap();
    drop(connector);
}
