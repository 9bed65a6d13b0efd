// Floor: handshake, above wait, beside ring; never imports ring (bus joins the two).
//! The bootstrap: one Unix-socket exchange that hands the memfd(s) and the 32-byte handshake
//! from listener to connector, after which the socket is gone. The listener's socket file
//! (bound, locked, removed) is `socket_file`.

pub(crate) mod socket_file;

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
    getsockopt, recvmsg, sendmsg, sockopt,
};

use crate::error::{Error, Result};
use crate::handshake::socket_file::SocketFile;
use crate::sys::peer::{ListenReport, PeerLiveness, PeerWatch};
use crate::wait::OnSignal;
use crate::wait::cancel::CancelToken;
use crate::wire::layout::{FLAG_RPC, Handshake, MAGIC, MSG_ALIGNMENT, VERSION};

/// How often a connector retries while nobody listens.
const CONNECT_RETRY_STEP: Duration = Duration::from_millis(10);
/// How long a connector waits for the handshake once connected, by default (a listener sends
/// it at once).
pub(crate) const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a handshake may wait, and what may cancel it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WaitLimits<'a> {
    /// How long a listener waits for a connector, or a connector retries (`None`: forever).
    pub(crate) timeout: Option<Duration>,
    /// `timeout` from the call's start.
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Option<&'a CancelToken>,
    /// How long a connector waits for the handshake once connected.
    pub(crate) receive_timeout: Duration,
    /// What a signal does to a listener's wait for a connector (`Retry` unless the options
    /// asked for [`BusOptions::interruptible_listen`](crate::BusOptions::interruptible_listen)).
    pub(crate) on_signal: OnSignal,
}

impl<'a> WaitLimits<'a> {
    pub(crate) fn new(timeout: Option<Duration>, cancel: Option<&'a CancelToken>) -> Self {
        WaitLimits {
            timeout,
            deadline: timeout.and_then(crate::wait::deadline_after),
            cancel,
            receive_timeout: RECEIVE_TIMEOUT,
            on_signal: OnSignal::Retry,
        }
    }
}

/// Who may connect to a listener.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AllowedPeers {
    /// Our own effective uid, and root (the default).
    #[default]
    SameUser,
    /// Our own uid, root, and these. The socket file is then `0666`, so they can reach it;
    /// the listener's uid check (`SO_PEERCRED`) refuses everyone else before any fd is sent.
    Uids(Vec<u32>),
    /// Anyone (upstream's behaviour): socket file `0666`, no uid check.
    Anyone,
}

impl AllowedPeers {
    /// The socket file's mode: `0600` when only our own uid may connect (the kernel then
    /// refuses everyone else), `0666` when others may, leaving the choice to the uid check.
    fn socket_mode(&self) -> u32 {
        match self {
            AllowedPeers::SameUser => 0o600,
            AllowedPeers::Uids(_) | AllowedPeers::Anyone => 0o666,
        }
    }

    /// [`admits_beside`](Self::admits_beside) our own effective uid.
    #[cfg(test)]
    fn admits(&self, uid: u32) -> bool {
        self.admits_beside(uid, nix::unistd::geteuid().as_raw())
    }

    /// Whether a connector of uid `uid` may have the bus of a listener whose own uid is `own`
    /// (a parameter, so a test run as root can still tell our own uid from root's, and one run
    /// without root can make its own connectors strangers).
    fn admits_beside(&self, uid: u32, own: u32) -> bool {
        match self {
            AllowedPeers::Anyone => true,
            _ if uid == own || uid == 0 => true,
            AllowedPeers::Uids(uids) => uids.contains(&uid),
            AllowedPeers::SameUser => false,
        }
    }
}

/// Binds `path`, waits for one admitted peer, sends it `handshake` and `fds`, and removes the
/// socket file. Returns the peer's watch and what the listener met on the way.
pub(crate) fn listen_and_send(
    path: &Path,
    handshake: &Handshake,
    fds: &[BorrowedFd<'_>],
    allowed: &AllowedPeers,
    limits: WaitLimits<'_>,
) -> Result<(PeerWatch, ListenReport)> {
    HandshakeListener::bind(path, allowed.clone())?.hand_over(
        handshake,
        fds,
        limits,
        &mut TurnedAway::default(),
    )
}

/// Connectors a listener has turned away, counted as it turns each away (so a wait that ends
/// without serving anyone still shows them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TurnedAway {
    /// Refused for their uid.
    pub(crate) refused: u64,
    /// Gone before their handshake, or with credentials that could not be read.
    pub(crate) vanished: u64,
}

/// A bound socket that hands a bus to one admitted peer per [`hand_over`](Self::hand_over);
/// the socket file is removed when it is dropped (if it is still ours).
///
/// The socket file is created in a fresh private directory beside `path`, made `0600`, and only
/// then linked onto `path`: at no moment can anyone else connect through wider permissions.
/// A stale socket at `path` is replaced; a live listener's socket or any other kind of file
/// there is an error and is left untouched. Every connector's uid is checked as it is accepted;
/// connectors that are refused or leave before the handshake are counted and logged, and the
/// listener waits on.
pub(crate) struct HandshakeListener {
    socket: SocketFile,
    allowed: AllowedPeers,
    /// The uid admitted as our own: our effective uid at bind (a field, so that a test run
    /// without root can make its own connectors strangers).
    own_uid: u32,
}

impl HandshakeListener {
    pub(crate) fn bind(path: &Path, allowed: AllowedPeers) -> Result<HandshakeListener> {
        Ok(HandshakeListener {
            socket: SocketFile::bind_private(path, allowed.socket_mode())?,
            allowed,
            own_uid: nix::unistd::geteuid().as_raw(),
        })
    }

    /// The path the socket is bound at.
    pub(crate) fn path(&self) -> &Path {
        &self.socket.path
    }

    /// Admits `uid` as our own from now on, in place of our effective uid.
    #[cfg(test)]
    pub(crate) fn set_own_uid(&mut self, uid: u32) {
        self.own_uid = uid;
    }

    /// Waits for the next admitted peer and sends it `handshake` and `fds`; returns the
    /// peer's watch and what the listener met on the way (refused and vanished connectors).
    /// Each connector turned away is added to `turned_away` at once, whatever the outcome.
    pub(crate) fn hand_over(
        &self,
        handshake: &Handshake,
        fds: &[BorrowedFd<'_>],
        limits: WaitLimits<'_>,
        turned_away: &mut TurnedAway,
    ) -> Result<(PeerWatch, ListenReport)> {
        let path = self.path();
        let (mut refused, mut vanished) = (0, 0);
        loop {
            let stream = self.socket.accept_one(limits)?;
            let peer = match PeerWatch::from_socket(&stream) {
                Ok(peer) => peer,
                Err(err) => {
                    vanished += 1;
                    turned_away.vanished += 1;
                    crate::trace::lifecycle!(
                        warn,
                        "{}: dropped a connector whose credentials could not be read ({err}); waiting for the next",
                        path.display()
                    );
                    continue;
                }
            };
            let cred = peer.credentials;
            if !self.allowed.admits_beside(cred.uid, self.own_uid) {
                // A refused peer gets no fd: close its connection and keep waiting.
                refused += 1;
                turned_away.refused += 1;
                crate::trace::lifecycle!(
                    warn,
                    "{}: refused pid {} of uid {}, not an allowed peer; waiting for the next",
                    path.display(),
                    cred.pid,
                    cred.uid
                );
                continue;
            }
            match send_handshake(&stream, handshake, fds) {
                Ok(()) => {}
                Err(err) if connector_left(&err) => {
                    vanished += 1;
                    turned_away.vanished += 1;
                    crate::trace::lifecycle!(
                        warn,
                        "{}: pid {} left before the handshake ({err}); waiting for the next",
                        path.display(),
                        cred.pid
                    );
                    continue;
                }
                Err(err) => return Err(err),
            }
            if peer.liveness() != PeerLiveness::Pidfd {
                crate::trace::lifecycle!(
                    warn,
                    "{}: no pidfd for peer pid {}; watching it by {:?}",
                    path.display(),
                    cred.pid,
                    peer.liveness()
                );
            }
            let report = ListenReport {
                refused,
                vanished,
                liveness: peer.liveness(),
            };
            return Ok((peer, report));
        }
    }
}

/// The connector closed its end before we could send to it.
fn connector_left(err: &Error) -> bool {
    matches!(err, Error::Os { source, .. }
        if matches!(source.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)))
}

/// Connects to `path`, retrying until the deadline while nobody listens, and receives the
/// handshake and the fds. Checks magic, version, alignment and the RPC flag against
/// `expect_rpc`; what the fds hold is checked by the caller.
pub(crate) fn connect_and_receive(
    path: &Path,
    limits: WaitLimits<'_>,
    expect_rpc: bool,
) -> Result<(Handshake, Vec<OwnedFd>, PeerWatch)> {
    let stream = connect_retrying(path, limits)?;
    let peer = PeerWatch::from_socket(&stream)?;
    // A listener that accepts and never sends must not hang us: one deadline for the whole
    // receive, which no signal restarts.
    let (handshake, fds) = receive_handshake(&stream, limits.receive_timeout, limits.cancel)?;
    validate(&handshake, expect_rpc)?;
    let want_fds = if expect_rpc { 2 } else { 1 };
    if fds.len() != want_fds {
        return Err(Error::Handshake(format!(
            "the listener sent {} file descriptors, a bus of this kind needs {want_fds}",
            fds.len()
        )));
    }
    Ok((handshake, fds, peer))
}

/// Connects to `path`, retrying every 10 ms (cancellably) while nobody listens or the
/// listener's backlog is full, until the connect deadline.
///
/// Each attempt is a non-blocking `connect`: a blocking one would wait, deaf to the deadline
/// and the token, for as long as a listener that has stopped accepting keeps its queue full.
/// The stream returned stays non-blocking: the handshake is read with `poll` and
/// `MSG_DONTWAIT`.
fn connect_retrying(path: &Path, limits: WaitLimits<'_>) -> Result<UnixStream> {
    let address = UnixAddr::new(path).map_err(|e| Error::os_at("connect", path, e))?;
    loop {
        crate::wait::check(limits.cancel, CONNECTING)?;
        let errno = match connect_once(&address, path, limits)? {
            Ok(stream) => return Ok(stream),
            Err(errno) => errno,
        };
        if !matches!(
            errno,
            Errno::ENOENT | Errno::ECONNREFUSED | Errno::EAGAIN | Errno::ETIMEDOUT
        ) {
            return Err(Error::os_at("connect", path, errno));
        }
        let left = crate::wait::remaining(limits.deadline);
        if left.is_zero() {
            return Err(Error::NobodyListening {
                path: path.to_path_buf(),
                source: nobody_accepting(errno),
            });
        }
        crate::wait::pause(CONNECT_RETRY_STEP.min(left), limits.cancel, CONNECTING)?;
    }
}

const CONNECTING: &str = "connecting";

/// One non-blocking connect to `address`: the connected stream, or what `connect` (or, for a
/// connect the kernel finishes later, `SO_ERROR`) said; `ETIMEDOUT` when the deadline passed
/// first. Cancellation and failures of the machinery itself are the outer `Err`.
fn connect_once(
    address: &UnixAddr,
    path: &Path,
    limits: WaitLimits<'_>,
) -> Result<std::result::Result<UnixStream, Errno>> {
    let socket = nix::sys::socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::os_at("socket", path, e))?;
    match nix::sys::socket::connect(socket.as_raw_fd(), address) {
        Ok(()) => {}
        // Linux finishes a Unix connect at once (or says EAGAIN: backlog full), but the
        // contract of a non-blocking connect allows it to finish later, and a signal may
        // leave it running in the background: wait for it, then ask how it ended.
        Err(Errno::EINPROGRESS | Errno::EALREADY | Errno::EINTR) => {
            if !crate::wait::writable(socket.as_fd(), limits.deadline, limits.cancel, CONNECTING)? {
                return Ok(Err(Errno::ETIMEDOUT));
            }
            let code = getsockopt(&socket, sockopt::SocketError)
                .map_err(|e| Error::os_at("getsockopt(SO_ERROR)", path, e))?;
            if code != 0 {
                return Ok(Err(Errno::from_raw(code)));
            }
        }
        Err(errno) => return Ok(Err(errno)),
    }
    Ok(Ok(UnixStream::from(socket)))
}

/// Why a connector gave up on a socket that exists: `connect`'s own error, except for the
/// two that mean a listener is there but takes no connection, which get a sentence saying so.
fn nobody_accepting(errno: Errno) -> std::io::Error {
    let why = match errno {
        Errno::EAGAIN => "its connection backlog is full: the listener is not accepting (EAGAIN)",
        Errno::ETIMEDOUT => "the connection was not completed before the connect timeout",
        other => return other.into(),
    };
    std::io::Error::new(std::io::ErrorKind::WouldBlock, why)
}

/// The handshake fields a connector checks before touching the fds.
pub(crate) fn validate(handshake: &Handshake, expect_rpc: bool) -> Result<()> {
    let mismatch = |field, expected: u32, found: u32| Error::AbiMismatch {
        field,
        expected: expected.into(),
        found: found.into(),
    };
    if handshake.magic != MAGIC {
        return Err(mismatch("magic", MAGIC, handshake.magic));
    }
    if handshake.version != VERSION {
        return Err(mismatch("version", VERSION, handshake.version));
    }
    if handshake.msg_alignment != MSG_ALIGNMENT {
        return Err(mismatch(
            "msg_alignment",
            MSG_ALIGNMENT,
            handshake.msg_alignment,
        ));
    }
    let expected_flags = if expect_rpc { FLAG_RPC } else { 0 };
    if handshake.flags & FLAG_RPC != expected_flags {
        return Err(Error::AbiMismatch {
            field: if expect_rpc {
                "flags (an RPC connector met an SPSC listener)"
            } else {
                "flags (an SPSC connector met an RPC listener)"
            },
            expected: expected_flags.into(),
            found: handshake.flags.into(),
        });
    }
    Ok(())
}

fn send_handshake(
    stream: &UnixStream,
    handshake: &Handshake,
    fds: &[BorrowedFd<'_>],
) -> Result<()> {
    let raw_fds: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let iov = [IoSlice::new(bytemuck::bytes_of(handshake))];
    let cmsg = [ControlMessage::ScmRights(&raw_fds)];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| Error::os("sendmsg", e))?;
    if sent != size_of::<Handshake>() {
        return Err(Error::Handshake(format!(
            "sent {sent} of the handshake's 32 bytes"
        )));
    }
    Ok(())
}

/// Receives the 32-byte handshake and its fds in one message: waits (cancellably, until
/// `deadline`) for the socket to turn readable, then takes what is there without blocking.
fn receive_handshake(
    stream: &UnixStream,
    timeout: Duration,
    cancel: Option<&CancelToken>,
) -> Result<(Handshake, Vec<OwnedFd>)> {
    let deadline = crate::wait::deadline_after(timeout);
    let mut handshake = Handshake::new(0, None);
    let mut cmsg_space = nix::cmsg_space!([RawFd; 4]);
    let mut fds = Vec::new();
    let received = {
        let mut iov = [IoSliceMut::new(bytemuck::bytes_of_mut(&mut handshake))];
        let msg = loop {
            if !crate::wait::readable(stream.as_fd(), deadline, cancel, "receiving the handshake")?
            {
                return Err(Error::Handshake(format!(
                    "the listener accepted but sent no handshake within {timeout:?}"
                )));
            }
            match recvmsg::<()>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
            ) {
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                other => break other.map_err(|e| Error::os("recvmsg", e))?,
            }
        };
        for cmsg in msg.cmsgs().map_err(|e| Error::os("recvmsg", e))? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: the kernel installed these fds in our table for this message; we are
                // their only owner.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
            return Err(Error::Handshake(
                "the listener sent more file descriptors than a bus uses".into(),
            ));
        }
        msg.bytes
    };
    if received < size_of::<Handshake>() {
        return Err(Error::Handshake(format!(
            "received {received} bytes, the handshake is 32 (did the listener close the connection?)"
        )));
    }
    if fds.is_empty() {
        return Err(Error::Handshake(
            "the listener sent no file descriptor (SCM_RIGHTS)".into(),
        ));
    }
    Ok((handshake, fds))
}

impl SocketFile {
    /// Waits for one connection until the deadline ([`Error::Timeout`]) or a cancel
    /// ([`Error::Cancelled`]); the socket file is removed on drop either way. Signals are
    /// retried, unless `limits.on_signal` asks for [`Error::Interrupted`].
    fn accept_one(&self, limits: WaitLimits<'_>) -> Result<UnixStream> {
        const ACCEPTING: &str = "waiting for a peer to connect";
        loop {
            if !crate::wait::readable_with(
                self.listener.as_fd(),
                limits.deadline,
                limits.cancel,
                ACCEPTING,
                limits.on_signal,
            )? {
                return Err(Error::Timeout(limits.timeout.unwrap_or_default()));
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream
                        .set_nonblocking(false)
                        .map_err(|e| Error::os_at("fcntl(O_NONBLOCK)", &self.path, e))?;
                    return Ok(stream);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(Error::os_at("accept", &self.path, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_mismatching_field() {
        let mut hs = Handshake::new(1024, None);
        assert!(validate(&hs, false).is_ok());
        hs.version = 3;
        let err = validate(&hs, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ABI mismatch: peer sent version 3, we speak 4"
        );
        let rpc = Handshake::new(1024, Some(1024));
        assert!(matches!(
            validate(&rpc, false),
            Err(Error::AbiMismatch { .. })
        ));
        assert!(validate(&rpc, true).is_ok());
        let mut hs = Handshake::new(1024, None);
        hs.magic = 0xdead_beef;
        assert!(
            validate(&hs, false)
                .unwrap_err()
                .to_string()
                .contains("magic 0xdeadbeef")
        );
    }

    #[test]
    fn a_socket_path_too_long_for_sun_path_is_refused_at_listen() {
        let path = std::env::temp_dir().join("x".repeat(120));
        let err = SocketFile::bind_private(&path, 0o600).err().unwrap();
        assert!(err.to_string().contains("must be under 108"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn writable_waits_for_room_until_its_deadline_or_a_cancel() {
        use std::io::Write;
        let (mut full, other) = UnixStream::pair().unwrap();
        let never = None;
        assert!(crate::wait::writable(full.as_fd(), never, None, "test").unwrap());
        // Fill the socket's buffer: no room until the other end reads.
        full.set_nonblocking(true).unwrap();
        while full.write(&[0; 4096]).is_ok() {}
        let soon = crate::wait::deadline_after(Duration::from_millis(50));
        let started = Instant::now();
        assert!(!crate::wait::writable(full.as_fd(), soon, None, "test").unwrap());
        assert!(started.elapsed() >= Duration::from_millis(50));
        // A cancel from another thread ends a wait that nothing else would end.
        for round in 0..20 {
            let token = CancelToken::new();
            let canceller = {
                let token = token.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    token.cancel();
                })
            };
            let outcome = crate::wait::writable(full.as_fd(), never, Some(&token), "filling");
            assert!(
                matches!(outcome, Err(Error::Cancelled("filling"))),
                "round {round}: {outcome:?}"
            );
            canceller.join().unwrap();
        }
        // The peer hanging up makes it "ready" too: the next write reports the error.
        drop(other);
        assert!(crate::wait::writable(full.as_fd(), never, None, "test").unwrap());
    }

    #[test]
    fn a_connect_retries_while_the_path_is_missing_and_gets_in_once_it_is_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.sock");
        let binder = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                std::os::unix::net::UnixListener::bind(&path).unwrap()
            })
        };
        let limits = WaitLimits::new(Some(Duration::from_secs(20)), None);
        let stream = connect_retrying(&path, limits).expect("connected once bound");
        let listener = binder.join().unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let peer = PeerWatch::from_socket(&accepted).unwrap();
        assert_eq!(peer.credentials.pid, std::process::id() as i32);
        // The connector's end is close-on-exec.
        let fd_flags = nix::fcntl::fcntl(&stream, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn the_error_after_a_full_backlog_says_so() {
        let err = nobody_accepting(Errno::EAGAIN).to_string();
        assert!(err.contains("backlog is full"), "{err}");
        let err = nobody_accepting(Errno::ETIMEDOUT).to_string();
        assert!(err.contains("connect timeout"), "{err}");
        let refused = nobody_accepting(Errno::ECONNREFUSED);
        assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));
    }

    #[test]
    fn allowed_peers() {
        let own = nix::unistd::geteuid().as_raw();
        assert!(AllowedPeers::SameUser.admits(own));
        assert!(AllowedPeers::SameUser.admits(0));
        assert!(!AllowedPeers::SameUser.admits(own + 12345));
        assert!(AllowedPeers::Uids(vec![own + 12345]).admits(own + 12345));
        assert!(AllowedPeers::Anyone.admits(own + 1));
    }

    #[test]
    fn our_own_uid_and_root_are_admitted_separately() {
        // As a service running as uid 1000 sees it: its own uid, and root, each on its own.
        for peers in [AllowedPeers::SameUser, AllowedPeers::Uids(vec![7])] {
            assert!(peers.admits_beside(1000, 1000), "{peers:?}: our own uid");
            assert!(peers.admits_beside(0, 1000), "{peers:?}: root");
            assert!(!peers.admits_beside(1001, 1000), "{peers:?}: a stranger");
        }
        assert!(AllowedPeers::Uids(vec![7]).admits_beside(7, 1000));
    }
}

#[cfg(test)]
mod mutant_kills {
    //! Claims of this module that a mutation test (`cargo mutants`, `docs/reliability.md`)
    //! showed no other test would notice breaking. Every wait is bounded.
    use super::*;
    use crate::handshake::socket_file::remove_stale_socket;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;

    /// A fresh private directory for one test's socket paths.
    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tr-mk-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    /// A connector thread at `path` (SPSC, or RPC with `rpc`), bounded by 30 s.
    fn spawn_connector(
        path: &Path,
        rpc: bool,
    ) -> std::thread::JoinHandle<Result<(Handshake, Vec<OwnedFd>, PeerWatch)>> {
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            connect_and_receive(
                &path,
                WaitLimits::new(Some(Duration::from_secs(30)), None),
                rpc,
            )
        })
    }

    #[test]
    fn the_socket_file_is_0600_for_our_uid_and_0666_when_others_may_connect_and_gone_on_drop() {
        let dir = scratch("mode");
        for (allowed, mode) in [
            (AllowedPeers::SameUser, 0o600),
            (AllowedPeers::Uids(vec![65533]), 0o666),
            (AllowedPeers::Anyone, 0o666),
        ] {
            let path = dir.join("s.sock");
            let listener = HandshakeListener::bind(&path, allowed.clone()).unwrap();
            assert_eq!(listener.path(), path);
            let meta = std::fs::symlink_metadata(&path).unwrap();
            assert!(meta.file_type().is_socket());
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{allowed:?}");
            drop(listener);
            assert!(!path.exists(), "the socket file is removed on drop");
        }
        // Nothing is left of the staging directories either.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_socket_path_of_107_bytes_binds_and_one_of_108_does_not() {
        let dir = scratch("len");
        let prefix = dir.as_os_str().len() + 1;
        for (len, binds) in [(107, true), (108, false)] {
            let path = dir.join("p".repeat(len - prefix));
            assert_eq!(path.as_os_str().len(), len);
            let outcome = SocketFile::bind_private(&path, 0o600);
            assert_eq!(outcome.is_ok(), binds, "{len} bytes");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_a_stale_socket_is_replaced_and_the_refusal_names_what_is_there() {
        let dir = scratch("stale");
        let file = dir.join("file");
        std::fs::write(&file, b"keep").unwrap();
        let sub = dir.join("dir");
        std::fs::create_dir(&sub).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        for (path, kind) in [
            (&file, "regular file"),
            (&sub, "directory"),
            (&link, "symbolic link"),
            (&fifo, "special file"),
        ] {
            let err = remove_stale_socket(path).unwrap_err().to_string();
            assert!(
                err.contains(&format!("holds a {kind}, not a socket")),
                "{err}"
            );
            assert!(
                std::fs::symlink_metadata(path).is_ok(),
                "{kind} left in place"
            );
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
        let stale = dir.join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        assert!(stale.exists());
        remove_stale_socket(&stale).unwrap();
        assert!(!stale.exists());
        remove_stale_socket(&stale).unwrap(); // nothing there: fine
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_listener_nobody_connects_to_times_out_with_its_timeout() {
        let dir = scratch("accept");
        let listener =
            HandshakeListener::bind(&dir.join("s.sock"), AllowedPeers::SameUser).unwrap();
        let timeout = Duration::from_millis(20);
        let outcome = listener.hand_over(
            &Handshake::new(4096, None),
            &[],
            WaitLimits::new(Some(timeout), None),
            &mut TurnedAway::default(),
        );
        assert!(
            matches!(outcome, Err(Error::Timeout(t)) if t == timeout),
            "{:?}",
            outcome.err()
        );
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_connector_gives_up_with_nobody_listening_once_its_timeout_passes() {
        let dir = scratch("connect");
        let path = dir.join("nobody.sock");
        let outcome = connect_and_receive(
            &path,
            WaitLimits::new(Some(Duration::from_millis(30)), None),
            false,
        );
        assert!(
            matches!(&outcome, Err(Error::NobodyListening { path: p, .. }) if *p == path),
            "{:?}",
            outcome.err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_handshake_is_received_whole_with_its_fds_and_checked() {
        let dir = scratch("whole");
        let path = dir.join("s.sock");
        let listener = HandshakeListener::bind(&path, AllowedPeers::SameUser).unwrap();
        let sent = Handshake::new(4096, None);
        let connector = spawn_connector(&path, false);
        let (spare, _other) = UnixStream::pair().unwrap();
        let peer = listener
            .hand_over(
                &sent,
                &[spare.as_fd()],
                WaitLimits::new(Some(Duration::from_secs(30)), None),
                &mut TurnedAway::default(),
            )
            .unwrap()
            .0;
        assert_eq!(peer.credentials.pid, std::process::id() as i32);
        let (received, fds, peer) = connector.join().unwrap().unwrap();
        assert_eq!(bytemuck::bytes_of(&received), bytemuck::bytes_of(&sent));
        assert_eq!(fds.len(), 1);
        // Close-on-exec, else every child the process spawns would inherit the ring.
        let fd_flags = nix::fcntl::fcntl(&fds[0], nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0, "fd flags {fd_flags:#x}");
        assert_eq!(peer.credentials.pid, std::process::id() as i32);
        // The same listener, an RPC connector: the flags say SPSC, so it is refused.
        let connector = spawn_connector(&path, true);
        listener
            .hand_over(
                &sent,
                &[spare.as_fd()],
                WaitLimits::new(Some(Duration::from_secs(30)), None),
                &mut TurnedAway::default(),
            )
            .unwrap();
        let err = connector.join().unwrap().err().unwrap();
        assert!(
            err.to_string()
                .contains("an RPC connector met an SPSC listener"),
            "{err}"
        );
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_connector_that_left_before_the_handshake_is_counted_and_the_next_one_served() {
        let dir = scratch("left");
        let path = dir.join("s.sock");
        let listener = HandshakeListener::bind(&path, AllowedPeers::SameUser).unwrap();
        // Connected and closed before the listener accepts: sending to it fails with EPIPE.
        drop(UnixStream::connect(&path).unwrap());
        let connector = spawn_connector(&path, false);
        let (spare, _other) = UnixStream::pair().unwrap();
        let (_peer, report) = listener
            .hand_over(
                &Handshake::new(4096, None),
                &[spare.as_fd()],
                WaitLimits::new(Some(Duration::from_secs(30)), None),
                &mut TurnedAway::default(),
            )
            .expect("a connector that left is skipped, not an error");
        assert_eq!((report.vanished, report.refused), (1, 0));
        let (_, fds, _) = connector.join().unwrap().unwrap();
        assert_eq!(fds.len(), 1, "the next connector got the handshake");
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_connect_error_other_than_nobody_listening_fails_at_once() {
        // A path through a regular file: ENOTDIR, which no retry can cure. Run in a thread so
        // a retry loop shows up as a failure, not a hang.
        let file = scratch("notdir").join("file");
        std::fs::write(&file, b"").unwrap();
        let path = file.join("s.sock");
        let (tx, rx) = std::sync::mpsc::channel();
        let started = Instant::now();
        std::thread::spawn(move || {
            let outcome = connect_and_receive(
                &path,
                WaitLimits::new(Some(Duration::from_secs(3600)), None),
                false,
            );
            let _ = tx.send(outcome.map(|_| ()));
        });
        let outcome = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("connect kept retrying an error that cannot go away");
        let err = outcome.unwrap_err();
        assert!(
            matches!(&err, Error::Os { source, .. } if source.raw_os_error() == Some(libc::ENOTDIR)),
            "{err:?}"
        );
        assert!(err.to_string().contains("s.sock"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
        std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
    }

    #[test]
    fn validate_checks_alignment_and_both_directions_of_the_rpc_flag() {
        let mut hs = Handshake::new(1024, None);
        hs.msg_alignment = 32;
        assert!(
            validate(&hs, false)
                .unwrap_err()
                .to_string()
                .contains("msg_alignment")
        );
        let spsc = Handshake::new(1024, None);
        let err = validate(&spsc, true).unwrap_err().to_string();
        assert!(
            err.contains("an RPC connector met an SPSC listener"),
            "{err}"
        );
        let rpc = Handshake::new(1024, Some(1024));
        let err = validate(&rpc, false).unwrap_err().to_string();
        assert!(
            err.contains("an SPSC connector met an RPC listener"),
            "{err}"
        );
    }
}
