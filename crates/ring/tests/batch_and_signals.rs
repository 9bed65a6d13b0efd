//! Batches of consecutive messages (`Consumer::try_batch`, `recv_batch`,
//! `recv_batch_interruptible`), the opt-in interruptible waits, `RingState`, and
//! `ReplySlot::commit_to`, through the public API.

use std::time::{Duration, Instant};

use tachyon_ring::{Bus, Error, RpcBus, layout};

#[test]
fn a_batch_holds_consecutive_messages_until_committed() -> Result<(), Error> {
    let (mut producer, mut consumer) = Bus::in_memory(4096)?.split();
    for i in 0..5u8 {
        producer.send_unflushed(10 + u32::from(i), &[i; 3])?;
    }
    assert!(consumer.try_batch(8)?.is_empty(), "nothing published yet");
    producer.flush();
    {
        let batch = consumer.try_batch(3)?;
        assert_eq!(batch.len(), 3);
        let seen: Vec<(u32, Vec<u8>)> = batch
            .iter()
            .map(|m| (m.type_id(), m.data().to_vec()))
            .collect();
        assert_eq!(seen, [(10, vec![0; 3]), (11, vec![1; 3]), (12, vec![2; 3])]);
        assert_eq!(batch.get(0).unwrap().slot_len(), 128);
        assert!(batch.get(3).is_none());
        // Only the first two are released: the third comes again.
        batch.commit_first(2);
    }
    let batch = consumer.try_batch(8)?;
    let types: Vec<u32> = batch.iter().map(|m| m.type_id()).collect();
    assert_eq!(types, [12, 13, 14]);
    batch.commit();
    assert!(consumer.try_recv()?.is_none());
    assert!(consumer.try_batch(0)?.is_empty());
    assert!(
        consumer.recv_batch(0, None)?.is_empty(),
        "max 0 never waits"
    );
    Ok(())
}

#[test]
fn batches_follow_the_wrap_and_stop_at_a_skip() -> Result<(), Error> {
    let (mut producer, mut consumer) = Bus::in_memory(1024)?.split();
    let mut expected = 0u32;
    for round in 0..50u32 {
        // One or two messages of 50..250 bytes each round (with the wrap's skip, at most
        // 960 of the 1024 bytes); some wrap.
        for k in 0..(1 + round % 2) {
            let len = 50 + ((round * 3 + k) as usize * 37) % 200;
            producer.send_timeout(round * 10 + k, &vec![k as u8; len], Duration::from_secs(5))?;
        }
        let mut got = 0;
        while got < 1 + round % 2 {
            let batch = consumer.recv_batch(16, Some(Duration::from_secs(5)))?;
            for message in batch.iter() {
                let k = got;
                assert_eq!(message.type_id(), round * 10 + k);
                assert!(message.data().iter().all(|&b| b == k as u8));
                got += 1;
                expected += 1;
            }
        }
        // Finding the ring empty returns the space to the producer (this thread).
        assert!(consumer.try_recv()?.is_none());
    }
    assert_eq!(expected, 75);
    Ok(())
}

#[test]
fn a_blocking_batch_waits_and_times_out() -> Result<(), Error> {
    let (mut producer, mut consumer) = Bus::in_memory(4096)?.split();
    let started = Instant::now();
    let timed_out = consumer.recv_batch(4, Some(Duration::from_millis(30)));
    assert!(matches!(timed_out, Err(Error::Timeout(_))), "{timed_out:?}");
    drop(timed_out);
    assert!(started.elapsed() >= Duration::from_millis(30));
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        producer.send(1, b"late").unwrap();
        producer
    });
    let batch = consumer.recv_batch_interruptible(4, Some(Duration::from_secs(10)))?;
    assert_eq!(batch.len(), 1);
    drop(batch);
    drop(sender.join().unwrap());
    Ok(())
}

extern "C" fn on_signal(_: libc::c_int) {}

/// Signals `thread` (SIGUSR2) every 20 ms until `done` says so, at most 30 s: a signal that
/// lands before the thread blocks is lost, the next one is not.
fn signal_until(thread: libc::pthread_t, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < give_up, "the signalled call never ended");
        // SAFETY: the thread is not joined yet, so its id is valid; the handler does nothing.
        unsafe { libc::pthread_kill(thread, libc::SIGUSR2) };
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Only the `_interruptible` receive ends on a signal; a plain receive sleeps on.
#[test]
fn an_interruptible_receive_ends_on_a_signal_and_a_plain_one_does_not() -> Result<(), Error> {
    // SAFETY: a handler that does nothing, installed without SA_RESTART so that the futex
    // sleep returns EINTR.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
            0
        );
    }
    let (mut producer, mut consumer) = Bus::options().spin_threshold(0).in_memory(4096)?.split();
    let (tx, rx) = std::sync::mpsc::channel();
    let (phase_tx, phase_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        tx.send(unsafe { libc::pthread_self() }).unwrap();
        let interrupted = consumer.recv_interruptible(None).map(|m| m.to_vec());
        phase_tx.send(()).unwrap();
        let plain = consumer
            .recv_timeout(Duration::from_secs(30))
            .map(|m| m.to_vec());
        (interrupted, plain, consumer)
    });
    let thread = rx.recv().unwrap();
    signal_until(thread, || phase_rx.try_recv().is_ok());
    // Signals keep coming for 300 ms; the plain receive sleeps on through them.
    let until = Instant::now() + Duration::from_millis(300);
    signal_until(thread, || Instant::now() >= until);
    assert!(!waiter.is_finished(), "a signal ended the plain receive");
    producer.send(3, b"after")?;
    let (interrupted, plain, _consumer) = waiter.join().unwrap();
    assert!(
        matches!(interrupted, Err(Error::Interrupted(_))),
        "{interrupted:?}"
    );
    assert!(!Error::Interrupted("x").is_fatal());
    assert_eq!(plain?, b"after", "the signal did not end the plain receive");
    Ok(())
}

#[test]
fn ring_state_reads_and_marks_the_shared_word() -> Result<(), Error> {
    let (producer, mut consumer) = Bus::in_memory(4096)?.split();
    let state = producer.ring_state();
    let other = consumer.ring_state().clone();
    assert_eq!(state.load(), layout::state::READY);
    std::thread::spawn(move || other.mark_fatal())
        .join()
        .unwrap();
    assert!(state.is_fatal());
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(200)),
        Err(Error::Corrupt(_))
    ));
    Ok(())
}

#[test]
fn a_reply_slot_is_addressed_at_commit() -> Result<(), Error> {
    let path = std::env::temp_dir().join(format!("ring-commit-to-{}.sock", std::process::id()));
    let callee = {
        let path = path.clone();
        std::thread::spawn(move || -> Result<(), Error> {
            let mut callee = RpcBus::listen(&path, 1 << 16, 1 << 16)?;
            let id = callee.serve_timeout(Duration::from_secs(10))?.defer();
            let mut slot = callee.reserve_reply(u64::MAX, 2)?;
            slot.copy_from_slice(b"ok");
            slot.commit_to(id, 2, 5)?;
            let slot = callee.reserve_reply(u64::MAX, 2)?;
            assert!(matches!(
                slot.commit_to(0, 0, 5),
                Err(Error::ZeroCorrelationId)
            ));
            Ok(())
        })
    };
    let mut caller = Bus::options()
        .connect_timeout(Duration::from_secs(10))
        .rpc_connect(&path)?;
    assert_eq!(caller.ring_states()[0].load(), layout::state::READY);
    let id = caller.call(1, b"?")?;
    let reply = caller.wait_interruptible(id)?;
    assert_eq!((reply.msg_type(), reply.data()), (5, &b"ok"[..]));
    drop(reply);
    callee.join().unwrap()
}

/// `interruptible_listen` ends a listen's wait for a peer on a signal (socket file removed);
/// without it a signal changes nothing and the listen runs to its timeout.
#[test]
fn an_interruptible_listen_ends_on_a_signal_and_a_plain_one_does_not() {
    // SAFETY: as in the receive test above (a handler that does nothing, no SA_RESTART).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
            0
        );
    }
    for interruptible in [true, false] {
        let path = std::env::temp_dir().join(format!(
            "ring-listen-signal-{interruptible}-{}.sock",
            std::process::id()
        ));
        let (tx, rx) = std::sync::mpsc::channel();
        let listening = {
            let path = path.clone();
            std::thread::spawn(move || {
                // SAFETY: pthread_self has no preconditions.
                tx.send(unsafe { libc::pthread_self() }).unwrap();
                Bus::options()
                    .interruptible_listen(interruptible)
                    .listen_timeout(Duration::from_millis(600))
                    .listen(&path, 4096)
                    .map(drop)
            })
        };
        let thread = rx.recv().unwrap();
        let give_up = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < give_up, "never listened");
            std::thread::sleep(Duration::from_millis(5));
        }
        signal_until(thread, || listening.is_finished());
        let outcome = listening.join().unwrap();
        if interruptible {
            assert!(matches!(outcome, Err(Error::Interrupted(_))), "{outcome:?}");
        } else {
            assert!(matches!(outcome, Err(Error::Timeout(_))), "{outcome:?}");
        }
        assert!(!path.exists(), "the socket file was left behind");
    }
}
