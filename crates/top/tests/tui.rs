//! The interactive view tested as a person uses it: `tachyon-top` runs in a pseudo-terminal,
//! its output is rendered by a terminal emulator (`vt100`), and the test reads the screen and
//! types keys. No tmux: a fresh CI machine has only Rust and Python.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nix::pty::{Winsize, openpty};
use tachyon_itest::serial;

const ROWS: u16 = 40;
const COLS: u16 = 180;

/// tachyon-top on a pty of ROWS x COLS, and the screen its output paints.
struct Terminal {
    master: File,
    child: Child,
    screen: Arc<Mutex<vt100::Parser>>,
}

impl Terminal {
    fn start(args: &[&str]) -> Terminal {
        let size = Winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).expect("openpty");
        let slave = File::from(pty.slave);
        let mut command = top();
        command
            .args(args)
            .env("TERM", "xterm-256color")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: between fork and exec the child only calls setsid and ioctl, both
        // async-signal-safe, touching no lock or allocation of the parent.
        unsafe {
            command.pre_exec(|| {
                // A session of its own with the pty as controlling terminal, as a shell gives.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start tachyon-top");
        drop(command); // closes our copies of the slave: EOF on the master once the child ends
        let master = File::from(pty.master);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let mut reader = master.try_clone().unwrap();
        let painted = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = reader.read(&mut chunk) {
                painted.lock().unwrap().process(&chunk[..n]);
            }
        });
        Terminal {
            master,
            child,
            screen,
        }
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen satisfies `check`; panics showing the screen past 20 s.
    fn wait_until(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let contents = self.contents();
            if check(&contents) {
                return contents;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{contents}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn press(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }

    fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader paint the last bytes.
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tachyon-top did not exit:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The terminal as the person gets it back: main screen, cursor shown.
    fn assert_restored(&self) {
        let parser = self.screen.lock().unwrap();
        let screen = parser.screen();
        assert!(!screen.alternate_screen(), "still on the alternate screen");
        assert!(!screen.hide_cursor(), "the cursor is still hidden");
        assert!(
            !screen.contents().contains("q quit"),
            "the view is still shown"
        );
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn row_of(contents: &str, needle: &str) -> Option<usize> {
    contents.lines().position(|line| line.contains(needle))
}

#[test]
fn a_person_sorts_filters_opens_the_detail_pane_and_quits() {
    let _serial = serial();
    let prefix = format!("/tmp/tachyon-top-tui-{}", std::process::id());
    // A memfd named like a ring that is not one: a row with an error.
    let not_a_ring = {
        use nix::fcntl::{FcntlArg, SealFlag, fcntl};
        use nix::sys::memfd::{MFdFlags, memfd_create};
        let fd = memfd_create(
            format!("{prefix}-a-notaring.sock").as_str(),
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .unwrap();
        nix::unistd::ftruncate(&fd, 4096).unwrap();
        fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).unwrap();
        fd
    };
    let live = std::path::PathBuf::from(format!("{prefix}-b-live.sock"));
    let (consumer, producer) = python_into_ours(&live, 1 << 20, 100);
    wait_for_pair(&live, &[consumer.pid(), producer.pid()], &[]);

    let glob = format!("{prefix}-*");
    let mut terminal = Terminal::start(&["--label", &glob, "--interval", "0.25"]);
    let screen = terminal.wait_until("the header, both rings and the keys", |s| {
        s.contains("tachyon-top")
            && s.contains("rings 2/2")
            && s.contains("a-notaring.sock")
            && s.contains("b-live.sock")
            && s.contains("q quit")
            && s.contains("/ filter")
    });
    assert!(screen.contains("LABEL") && screen.contains("FILL%") && screen.contains("CONSUMER"));
    let live_row = screen.lines().find(|l| l.contains("b-live.sock")).unwrap();
    assert!(
        live_row.contains("spsc") && live_row.contains("ready"),
        "{live_row}"
    );
    assert!(live_row.contains("1.0 MiB"), "{live_row}");
    assert!(live_row.contains(&consumer.pid().to_string()), "{live_row}");
    let error_row = screen
        .lines()
        .find(|l| l.contains("a-notaring.sock"))
        .unwrap();
    assert!(
        error_row.contains("error") && error_row.contains("not a tachyon ring"),
        "{error_row}"
    );
    assert!(row_of(&screen, "a-notaring") < row_of(&screen, "b-live"));

    terminal.press("r");
    let screen = terminal.wait_until("the order reversed", |s| {
        s.contains("sort label desc") && row_of(s, "b-live") < row_of(s, "a-notaring")
    });
    assert!(screen.contains("b-live.sock"));
    terminal.press("s");
    terminal.wait_until("sorting by fill", |s| s.contains("sort fill desc"));

    terminal.press("/live\r");
    let screen = terminal.wait_until("the filter applied", |s| {
        s.contains("filter: live") && s.contains("rings 1/2") && !s.contains("a-notaring")
    });
    assert!(screen.contains("b-live.sock"));

    terminal.press("\r");
    let detail = terminal.wait_until("the detail pane", |s| {
        s.contains("published bytes/s") && s.contains(&format!("pid {}", consumer.pid()))
    });
    assert!(
        detail.contains(&format!("pid {}", producer.pid())),
        "{detail}"
    );
    assert!(detail.contains("features 0x54524e47"), "{detail}");

    terminal.press("q");
    let status = terminal.exit_status();
    assert_eq!(status.code(), Some(0), "{}", terminal.contents());
    terminal.assert_restored();
    drop((consumer, producer, not_a_ring));
}

#[test]
fn sigint_restores_the_terminal() {
    let _serial = serial();
    let mut terminal = Terminal::start(&["--label", "/nonexistent/*", "--interval", "0.25"]);
    terminal.wait_until("the view", |s| {
        s.contains("tachyon-top") && s.contains("no tachyon ring found") && s.contains("q quit")
    });
    assert!(terminal.screen.lock().unwrap().screen().alternate_screen());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(terminal.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = terminal.exit_status();
    assert_eq!(status.code(), Some(130), "{}", terminal.contents());
    terminal.assert_restored();
}
