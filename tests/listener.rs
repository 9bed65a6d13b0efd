//! A listener that keeps waiting: connectors that vanish before the handshake or are refused
//! are reported, not fatal, and a peer we cannot take a pidfd for is still served and
//! watched.

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use nix::sys::signal::Signal;
use tachyon_itest::{
    Proc, command, python_script, rust_bin, serial, socket_path, wait_for_socket, world_executable,
};
use tachyon_ring::{AllowedPeers, Bus, ListenReport, PeerLiveness};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_connector_that_closes_before_the_handshake_does_not_end_the_listen() {
    let _serial = serial();
    let socket = socket_path("vanish");
    let path = socket.to_str().unwrap();
    let listener = Proc::spawn(
        "consumer",
        command(
            rust_bin("consumer"),
            &["--listen", "--socket", path, "--idle-timeout", "20s"],
        ),
    );
    wait_for_socket(&socket, LIMIT);
    // Stopped, the listener cannot serve the first connector before it closes: the handshake
    // then meets a closed socket (EPIPE).
    listener.signal(Signal::SIGSTOP);
    drop(UnixStream::connect(&socket).unwrap());
    listener.signal(Signal::SIGCONT);
    let producer = Proc::spawn(
        "producer",
        command(
            rust_bin("producer"),
            &["--connect", "--socket", path, "--count", "10"],
        ),
    )
    .finish(LIMIT);
    producer.assert_success();
    let listener = listener.finish(LIMIT);
    listener.assert_success();
    assert_eq!(listener.field("received"), 10);
    assert_eq!(listener.field("vanished"), 1);
    assert_eq!(listener.field("refused"), 0);
}

/// Collects the crate's log records (a test binary has one logger).
struct Recorder(std::sync::Mutex<Vec<String>>);

impl log::Log for Recorder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("tachyon_ring")
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{} {}", record.level(), record.args());
            self.0.lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder(std::sync::Mutex::new(Vec::new()));

#[test]
fn refused_connectors_are_counted_and_logged() {
    let _serial = serial();
    log::set_logger(&RECORDER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs a connector as uid 65534 and must run as root (it does in CI)"
    );
    let socket = socket_path("report");
    let listener = {
        let socket = socket.clone();
        std::thread::spawn(move || {
            Bus::options()
                .allowed_peers(AllowedPeers::Uids(vec![65533]))
                .listen(&socket, 4096)
        })
    };
    wait_for_socket(&socket, LIMIT);
    let mut stranger = command(
        world_executable("producer"),
        &["--connect", "--socket", socket.to_str().unwrap()],
    );
    stranger.uid(65534).gid(65534);
    let stranger = Proc::spawn("producer as uid 65534", stranger).finish(LIMIT);
    assert!(stranger.stderr.contains("received 0 bytes"), "{stranger:?}");
    let bus = Bus::options()
        .connect_timeout(Duration::from_secs(5))
        .connect(&socket)
        .unwrap();
    let served = listener.join().unwrap().unwrap();
    assert_eq!(
        served.listen_report(),
        Some(ListenReport {
            refused: 1,
            vanished: 0,
            liveness: PeerLiveness::Pidfd
        })
    );
    assert_eq!(bus.listen_report(), None);
    let logged = RECORDER.0.lock().unwrap().clone();
    assert!(
        logged.iter().any(|line| line.starts_with("WARN")
            && line.contains("refused pid")
            && line.contains("uid 65534")),
        "{logged:?}"
    );
}

/// Installs, in the child about to exec, a seccomp filter that denies what a sandbox without
/// pidfds denies: `pidfd_open` (ENOSYS) and `getsockopt(SO_PEERPIDFD)` (ENOPROTOOPT).
fn without_pidfds(command: &mut std::process::Command) {
    const SO_PEERPIDFD: u32 = 77;
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const LOAD: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    const ALLOW: u32 = 0x7FFF_0000;
    const ERRNO: u32 = 0x0005_0000;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LOAD, 0, 0, 4),                          // seccomp_data.arch
        op(JEQ, 0, 5, AUDIT_ARCH_X86_64),           // other arch: allow
        op(LOAD, 0, 0, 0),                          // seccomp_data.nr
        op(JEQ, 4, 0, libc::SYS_pidfd_open as u32), // -> ENOSYS
        op(JEQ, 0, 2, libc::SYS_getsockopt as u32), // else allow
        op(LOAD, 0, 0, 32),                         // args[2] (optname), low half
        op(JEQ, 2, 0, SO_PEERPIDFD),                // -> ENOPROTOOPT
        op(RET, 0, 0, ALLOW),
        op(RET, 0, 0, ERRNO | libc::ENOSYS as u32),
        op(RET, 0, 0, ERRNO | libc::ENOPROTOOPT as u32),
    ];
    // SAFETY: the closure runs in the forked child before exec and only makes two prctl
    // calls on a filter program it owns (copied into the closure), allocating nothing.
    unsafe {
        command.pre_exec(move || {
            let program = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

#[test]
fn a_peer_without_a_pidfd_is_served_and_its_death_noticed() {
    let _serial = serial();
    // The listener runs where no pidfd can be had; the real Python producer connects, streams,
    // and is killed mid-stream.
    let socket = socket_path("nopidfd");
    let path = socket.to_str().unwrap();
    let mut consumer = command(
        rust_bin("tachyon-consumer"),
        &["--json", "--socket", path, "--listen"],
    );
    without_pidfds(&mut consumer);
    let consumer = Proc::spawn("tachyon-consumer without pidfds", consumer);
    wait_for_socket(&socket, LIMIT);
    let mut producer = python_script("producer.py");
    producer.args([
        "--socket",
        path,
        "--connect",
        "--count",
        "100000000",
        "--no-timestamp",
        "--retry-full",
    ]);
    let producer = Proc::spawn("producer.py", producer);
    std::thread::sleep(Duration::from_millis(1500));
    let pid = producer.pid();
    producer.signal(Signal::SIGKILL);
    let consumer = consumer.finish(LIMIT);
    assert_eq!(consumer.status.code(), Some(1), "{consumer:?}");
    assert!(
        consumer.stderr.contains(&format!(
            "the producer (pid {pid}) exited before its sentinel"
        )),
        "{}",
        consumer.stderr
    );
    assert!(consumer.field("received") > 0);
}
