//! A listener that is bound and listening but never accepts: once its backlog is full, the
//! kernel queues no more connections. A connector must still keep its connect timeout and
//! its cancel token, not block in `connect(2)` until the listener wakes up.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, connect, listen, socket,
};
use tachyon_ring::{Bus, CancelToken, Error};

/// How long any one connect may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(20);

/// A listening socket at `dir/hung.sock` with a backlog of 1 that nobody accepts on, and the
/// connections that fill its backlog (kept open: closing them would free the queue).
struct HungListener {
    path: PathBuf,
    socket: OwnedFd,
    queued: Vec<OwnedFd>,
}

impl HungListener {
    fn bind(dir: &Path) -> HungListener {
        let path = dir.join("hung.sock");
        let address = UnixAddr::new(&path).unwrap();
        let socket = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(socket.as_raw_fd(), &address).unwrap();
        listen(&socket, Backlog::new(1).unwrap()).unwrap();
        // Non-blocking connects until the kernel says the queue is full (EAGAIN).
        let mut queued = Vec::new();
        loop {
            let filler = nix::sys::socket::socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                None,
            )
            .unwrap();
            match connect(filler.as_raw_fd(), &address) {
                Ok(()) => queued.push(filler),
                Err(Errno::EAGAIN) => break,
                Err(other) => panic!("filling the backlog: {other}"),
            }
            assert!(queued.len() < 100, "the backlog of 1 never filled");
        }
        assert!(!queued.is_empty());
        HungListener {
            path,
            socket,
            queued,
        }
    }
}

/// Runs `connect` on a thread and returns its outcome, how long it took and when it ended,
/// or fails the test if it takes longer than [`HANG`] (the thread is then left blocked).
fn connect_bounded(
    path: &Path,
    options: tachyon_ring::BusOptions,
) -> (tachyon_ring::Result<Bus>, Duration, Instant) {
    let path = path.to_path_buf();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        let outcome = options.connect(&path);
        let _ = tx.send((outcome, started.elapsed(), Instant::now()));
    });
    rx.recv_timeout(HANG)
        .expect("connect hung on a listener whose backlog is full")
}

#[test]
fn a_full_backlog_ends_in_nobody_listening_after_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hung = HungListener::bind(dir.path());
    let timeout = Duration::from_millis(300);
    for _ in 0..5 {
        let (outcome, took, _) =
            connect_bounded(&hung.path, Bus::options().connect_timeout(timeout));
        let err = outcome.unwrap_err();
        assert!(
            matches!(&err, Error::NobodyListening { path, .. } if *path == hung.path),
            "{err:?}"
        );
        assert!(err.to_string().contains("backlog is full"), "{err}");
        assert!(
            took >= timeout,
            "gave up after {took:?}, before its timeout"
        );
        assert!(
            took < timeout + Duration::from_secs(2),
            "took {took:?} for a {timeout:?} timeout"
        );
    }
    // Without a connect timeout (the default), one attempt: refused at once.
    let (outcome, took, _) = connect_bounded(&hung.path, Bus::options());
    assert!(
        matches!(outcome, Err(Error::NobodyListening { .. })),
        "{:?}",
        outcome.err()
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_cancel_ends_a_connect_to_a_full_backlog_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let hung = HungListener::bind(dir.path());
    let cancel_after = Duration::from_millis(100);
    for round in 0..50 {
        let token = CancelToken::new();
        let canceller = {
            let token = token.clone();
            std::thread::spawn(move || {
                std::thread::sleep(cancel_after);
                let cancelled_at = Instant::now();
                token.cancel();
                cancelled_at
            })
        };
        let options = Bus::options()
            .connect_timeout(Duration::from_secs(3600))
            .cancel_token(token);
        let (outcome, _, ended) = connect_bounded(&hung.path, options);
        let cancelled_at = canceller.join().unwrap();
        assert!(
            matches!(outcome, Err(Error::Cancelled(_))),
            "round {round}: {:?}",
            outcome.err()
        );
        // Nothing but the cancel ends it, and the cancel ends it at once.
        assert!(
            ended >= cancelled_at,
            "round {round}: ended before the cancel"
        );
        let late = ended - cancelled_at;
        assert!(
            late < Duration::from_millis(500),
            "round {round}: the cancel took {late:?} to end the connect"
        );
    }
}

#[test]
fn a_connector_waiting_on_a_full_backlog_gets_in_once_the_listener_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let hung = HungListener::bind(dir.path());
    let path = hung.path.clone();
    // The connector retries for up to 20 s; once connected it waits 300 ms for a handshake
    // that never comes, which proves it got a connection (not NobodyListening).
    let connector = std::thread::spawn(move || {
        Bus::options()
            .connect_timeout(Duration::from_secs(20))
            .handshake_timeout(Duration::from_millis(300))
            .connect(&path)
    });
    std::thread::sleep(Duration::from_millis(200));
    // The listener wakes up: it takes every queued connection (the fillers', then the
    // connector's once it is queued), keeping them open.
    let listener = std::os::unix::net::UnixListener::from(hung.socket);
    listener.set_nonblocking(true).unwrap();
    let mut accepted = Vec::new();
    let deadline = Instant::now() + HANG;
    while !connector.is_finished() {
        assert!(Instant::now() < deadline, "the connector never finished");
        match listener.accept() {
            Ok((stream, _)) => accepted.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(other) => panic!("accept: {other}"),
        }
    }
    assert!(
        accepted.len() > hung.queued.len(),
        "the connector was never queued"
    );
    let err = connector.join().unwrap().unwrap_err();
    assert!(
        err.to_string().contains("accepted but sent no handshake"),
        "{err}"
    );
}
