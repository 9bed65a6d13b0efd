//! A cancel ends every blocking state of the crate, and an unrelated signal ends none.
//!
//! Each case starts the blocking call on a thread, waits until it is really blocked (in the
//! kernel where that can be seen), cancels, and checks the call returned `Cancelled`. Cases run
//! in loops so that a window between "checked the token" and "went to sleep" shows up as a
//! hang (bounded: every wait has a long timeout, so a lost cancel fails instead of hanging).

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tachyon_ring::{Bus, CancelToken, Error, RpcBus};

/// Far longer than any case: a wait that the cancel did not end fails the test with Timeout.
const LONG: Duration = Duration::from_secs(20);
/// Upper bound on cancel-to-return in these tests (the mechanism is a direct wake; the bound
/// only catches a cancel that waited for a timeout or a poll step).
const PROMPT: Duration = Duration::from_secs(1);
const ROUNDS: usize = 25;

fn socket(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "tachyon-cancel-{}-{tag}-{n}.sock",
        std::process::id()
    ))
}

/// Runs `call` on a thread with a fresh token, cancels after `delay`, and returns what the
/// call returned and how long after the cancel it did.
fn cancel_after<T: Send + 'static>(
    delay: Duration,
    call: impl FnOnce(CancelToken) -> Result<T, Error> + Send + 'static,
) -> (Result<T, Error>, Duration) {
    let token = CancelToken::new();
    let worker = {
        let token = token.clone();
        std::thread::spawn(move || call(token))
    };
    std::thread::sleep(delay);
    let cancelled_at = Instant::now();
    token.cancel();
    let outcome = worker.join().expect("the blocking call panicked");
    (outcome, cancelled_at.elapsed())
}

fn assert_cancelled<T>(what: &str, (outcome, took): (Result<T, Error>, Duration)) -> Duration {
    match outcome {
        Err(Error::Cancelled(_)) => {}
        Err(other) => panic!("{what}: expected Cancelled, got {other}"),
        Ok(_) => panic!("{what}: expected Cancelled, the call succeeded"),
    }
    assert!(took < PROMPT, "{what}: returned {took:?} after the cancel");
    took
}

/// Delays from 0 (cancel races the call's start) to a few ms (the call is asleep).
fn delay(round: usize) -> Duration {
    Duration::from_micros((round as u64 % 5) * 700)
}

#[test]
fn a_cancel_ends_a_listen_waiting_for_its_connector() {
    for round in 0..ROUNDS {
        let path = socket("listen");
        let moved = path.clone();
        assert_cancelled(
            "listen",
            cancel_after(delay(round), move |token| {
                Bus::options().cancel_token(token).listen(&moved, 4096)
            }),
        );
        assert!(
            !path.exists(),
            "the cancelled listener left its socket file"
        );
    }
}

#[test]
fn a_cancel_ends_a_connect_retrying_while_nobody_listens() {
    for round in 0..ROUNDS {
        let path = socket("connect");
        assert_cancelled(
            "connect",
            cancel_after(delay(round), move |token| {
                Bus::options()
                    .cancel_token(token)
                    .connect_timeout(LONG)
                    .connect(&path)
            }),
        );
    }
}

#[test]
fn a_cancel_ends_a_handshake_receive_from_a_silent_listener() {
    for round in 0..ROUNDS {
        let path = socket("silent");
        let listener = UnixListener::bind(&path).unwrap();
        let moved = path.clone();
        let silent = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
        let (outcome, took) = cancel_after(delay(round) + Duration::from_millis(2), move |token| {
            Bus::options()
                .cancel_token(token)
                .connect_timeout(LONG)
                .connect(&moved)
        });
        assert_cancelled("handshake receive", (outcome, took));
        // A cancel that came before the connect left the accept waiting: release it.
        let _unblock = std::os::unix::net::UnixStream::connect(&path);
        drop(silent.join().unwrap());
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn a_cancel_ends_a_receive_on_an_empty_ring_and_a_wait_for_space() {
    for round in 0..ROUNDS {
        let (producer, _consumer) = Bus::in_memory(4096).unwrap().split();
        let mut producer = producer;
        assert_cancelled(
            "recv",
            cancel_after(delay(round), move |token| {
                let (_producer, mut consumer) = Bus::options()
                    .cancel_token(token)
                    .in_memory(4096)
                    .unwrap()
                    .split();
                consumer.recv_timeout(LONG).map(|m| m.len())
            }),
        );
        // Fill the ring, then wait for space that never comes.
        while producer.send(1, &[0; 100]).is_ok() {}
        assert_cancelled(
            "send_timeout",
            cancel_after(delay(round), move |token| {
                producer.set_cancel_token(Some(token));
                producer.send_timeout(1, &[0; 100], LONG)
            }),
        );
    }
}

#[test]
fn a_cancel_ends_an_rpc_wait_and_an_rpc_serve() {
    for round in 0..10 {
        let path = socket("rpc");
        let token = CancelToken::new();
        let callee = {
            let (path, token) = (path.clone(), token.clone());
            std::thread::spawn(move || -> Result<(), Error> {
                let mut callee = Bus::options()
                    .cancel_token(token)
                    .rpc_listen(&path, 4096, 4096)?;
                // The caller's call arrives; we defer it (no answer, no error reply), then
                // wait for the next one.
                callee.serve_timeout(LONG)?.defer();
                callee.serve_timeout(LONG).map(drop)
            })
        };
        let caller_token = CancelToken::new();
        let caller = {
            let (path, caller_token) = (path.clone(), caller_token.clone());
            std::thread::spawn(move || -> Result<(), Error> {
                let mut caller = Bus::options()
                    .cancel_token(caller_token)
                    .connect_timeout(LONG)
                    .rpc_connect(&path)?;
                let id = caller.call(1, b"ping")?;
                caller.wait_timeout(id, LONG).map(drop)
            })
        };
        std::thread::sleep(Duration::from_millis(20) + delay(round));
        caller_token.cancel();
        token.cancel();
        assert!(matches!(caller.join().unwrap(), Err(Error::Cancelled(_))));
        assert!(matches!(callee.join().unwrap(), Err(Error::Cancelled(_))));
        let _ = RpcBus::connect(&path).err(); // the path is gone: nobody listens
    }
}

/// A token given to built RPC ends (`set_cancel_token`, as the Python binding does for each
/// wait) ends a wait for a reply, a serve, and a wait for room for a reply; `None` takes it
/// away again, so a later wait ends at its own deadline.
#[test]
fn a_token_set_on_built_rpc_ends_ends_their_waits() {
    for round in 0..10 {
        let path = socket("rpc-set");
        let room_token = CancelToken::new();
        let callee_token = CancelToken::new();
        let caller_token = CancelToken::new();
        // The callee tells the caller when its wait for room has ended (so that the caller's
        // reading of replies cannot make room first).
        let (room_done, go) = std::sync::mpsc::channel::<()>();
        let callee = {
            let (path, room_token, callee_token) =
                (path.clone(), room_token.clone(), callee_token.clone());
            std::thread::spawn(move || -> Result<(), Error> {
                // A reply ring of one page: a few replies nobody reads fill it.
                let mut callee = RpcBus::listen(&path, 4096, 4096)?;
                let first = callee.serve_timeout(LONG)?.defer();
                while callee.reply(first, 2, &[0; 512]).is_ok() {}
                callee.set_cancel_token(Some(room_token));
                let room = callee.reserve_reply_timeout(first, 512, LONG).map(drop);
                assert!(matches!(room, Err(Error::Cancelled(_))), "room: {room:?}");
                room_done.send(()).unwrap();
                // The second call is never answered; the third request never comes.
                callee.set_cancel_token(None);
                callee.serve_timeout(LONG)?.defer();
                callee.set_cancel_token(Some(callee_token));
                callee.serve_timeout(LONG).map(drop)
            })
        };
        let caller = {
            let (path, caller_token) = (path.clone(), caller_token.clone());
            std::thread::spawn(move || -> Result<(), Error> {
                let mut caller = Bus::options().connect_timeout(LONG).rpc_connect(&path)?;
                caller.call(1, b"first")?;
                go.recv().unwrap();
                let second = caller.call(1, b"second")?;
                caller.set_cancel_token(Some(caller_token));
                let waited = caller.wait_timeout(second, LONG).map(drop);
                // Without the token a wait runs to its own deadline.
                caller.set_cancel_token(None);
                match caller.wait_timeout(second, Duration::from_millis(5)) {
                    Err(Error::Timeout(_)) => waited,
                    other => panic!("after set_cancel_token(None): {:?}", other.map(drop)),
                }
            })
        };
        std::thread::sleep(Duration::from_millis(20) + delay(round));
        room_token.cancel();
        std::thread::sleep(Duration::from_millis(20) + delay(round));
        caller_token.cancel();
        callee_token.cancel();
        let caller = caller.join().unwrap();
        assert!(
            matches!(caller, Err(Error::Cancelled(_))),
            "caller: {caller:?}"
        );
        let callee = callee.join().unwrap();
        assert!(
            matches!(callee, Err(Error::Cancelled(_))),
            "callee: {callee:?}"
        );
    }
}

/// `pthread_kill`s `thread` with SIGUSR1 every 2 ms until `stop` is set.
fn bombard(thread: libc::pthread_t, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    struct Thread(libc::pthread_t);
    // SAFETY: a pthread_t is an opaque id; sending it to another thread to signal it is fine.
    unsafe impl Send for Thread {}
    let thread = Thread(thread);
    std::thread::spawn(move || {
        let thread = thread;
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: the target thread outlives this loop (its owner sets `stop` first).
            unsafe { libc::pthread_kill(thread.0, libc::SIGUSR1) };
            sent += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        sent
    })
}

/// A profiler's SIGPROF (here SIGUSR1 with a handler) neither ends nor extends a wait: the
/// calls end at their own deadline with their own error, never `Interrupted`/`Cancelled`.
#[test]
fn signals_with_a_handler_neither_end_nor_extend_a_wait() {
    let _handler = signal_hook::flag::register(
        signal_hook::consts::SIGUSR1,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let limit = Duration::from_millis(300);
    type Case = Box<dyn FnOnce() -> Result<(), Error> + Send>;
    let cases: Vec<(&str, Case)> = vec![
        (
            "listen",
            Box::new(move || {
                Bus::options()
                    .listen_timeout(limit)
                    .listen(socket("sig-listen"), 4096)
                    .map(drop)
            }),
        ),
        (
            "connect",
            Box::new(move || {
                Bus::options()
                    .connect_timeout(limit)
                    .connect(socket("sig-connect"))
                    .map(drop)
            }),
        ),
        (
            "handshake receive",
            Box::new(move || {
                let path = socket("sig-silent");
                let listener = UnixListener::bind(&path).expect("bind the silent listener");
                let outcome = Bus::options()
                    .connect_timeout(limit)
                    .handshake_timeout(limit)
                    .connect(&path)
                    .map(drop);
                drop(listener);
                let _ = std::fs::remove_file(&path);
                outcome
            }),
        ),
        (
            "recv",
            Box::new(move || {
                let (_p, mut consumer) = Bus::in_memory(4096)?.split();
                consumer.recv_timeout(limit).map(drop)
            }),
        ),
        (
            "send_timeout",
            Box::new(move || {
                let (mut producer, _c) = Bus::in_memory(4096)?.split();
                while producer.send(1, &[0; 100]).is_ok() {}
                producer.send_timeout(1, &[0; 100], limit)
            }),
        ),
    ];
    for (what, case) in cases {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            tx.send(unsafe { libc::pthread_self() }).unwrap();
            let started = Instant::now();
            (case(), started.elapsed())
        });
        let signaller = bombard(rx.recv().unwrap(), Arc::clone(&stop));
        let (outcome, took) = worker.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        let sent = signaller.join().unwrap();
        assert!(sent > 10, "{what}: only {sent} signals were sent");
        match outcome {
            Err(Error::Timeout(_) | Error::NobodyListening { .. }) => {}
            Err(Error::Handshake(why)) if why.contains("sent no handshake") => {}
            other => panic!("{what}: expected its own timeout under signals, got {other:?}"),
        }
        assert!(
            took >= limit && took < limit * 10,
            "{what}: a {limit:?} wait took {took:?} under signals"
        );
    }
}
