//! The async ends on a tokio runtime: receive and wait for space without blocking a worker,
//! cancel-safe, cancellable, on the process's one reactor thread.
#![cfg(feature = "tokio")]

use std::time::Duration;

use tachyon_ring::{AsyncConsumer, AsyncProducer, Bus, CancelToken, Error};

const LONG: Duration = Duration::from_secs(20);

/// Many receivers on a one-thread runtime: each waits on its own ring, none blocks the only
/// worker (a blocking wait would starve the others and the test would time out).
#[tokio::test(flavor = "current_thread")]
async fn many_receivers_share_one_worker_thread() {
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for ring in 0..8u8 {
        let (producer, consumer) = Bus::in_memory(1 << 12).unwrap().split();
        senders.push(producer);
        tasks.push(tokio::spawn(async move {
            let mut consumer = AsyncConsumer::new(consumer);
            let mut seen = Vec::new();
            for _ in 0..3 {
                let message = consumer.recv().await.unwrap();
                seen.push(message.data()[0]);
            }
            (ring, seen)
        }));
    }
    let sender = std::thread::spawn(move || {
        for round in 0..3u8 {
            std::thread::sleep(Duration::from_millis(10));
            for (ring, producer) in senders.iter_mut().enumerate() {
                producer.send(1, &[ring as u8 * 10 + round]).unwrap();
                producer.flush();
            }
        }
        senders
    });
    for task in tasks {
        let (ring, seen) = tokio::time::timeout(LONG, task).await.unwrap().unwrap();
        assert_eq!(seen, [ring * 10, ring * 10 + 1, ring * 10 + 2]);
    }
    drop(sender.join().unwrap());
}

/// Dropping a receive in the middle of its wait (a `select!` that another branch won) loses
/// nothing: the message published afterwards is the next one received.
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_receive_loses_no_message() {
    let (mut producer, consumer) = Bus::in_memory(1 << 12).unwrap().split();
    let mut consumer = AsyncConsumer::new(consumer);
    for round in 0..20u8 {
        tokio::select! {
            received = consumer.recv() => panic!("nothing was sent yet: {:?}", received.map(|m| m.len())),
            _ = tokio::time::sleep(Duration::from_millis(1 + round as u64 % 3)) => {}
        }
        producer.send(1, &[round]).unwrap();
        producer.flush();
        let message = tokio::time::timeout(LONG, consumer.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(message.data(), [round]);
    }
    // The ring's sleeping word was handed back: a plain blocking receive still works.
    producer.send(1, b"after").unwrap();
    producer.flush();
    let mut consumer = consumer.into_inner();
    assert_eq!(consumer.recv_timeout(LONG).unwrap().data(), b"after");
}

/// A cancel reaches a receive that is waiting, and a wait for space.
#[tokio::test(flavor = "current_thread")]
async fn a_cancel_ends_a_waiting_receive_and_a_waiting_reserve() {
    for round in 0..10u64 {
        let token = CancelToken::new();
        let (mut producer, consumer) = Bus::options()
            .cancel_token(token.clone())
            .in_memory(1 << 12)
            .unwrap()
            .split();
        let canceller = {
            let token = token.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(round % 4));
                token.cancel();
            })
        };
        let mut consumer = AsyncConsumer::new(consumer);
        let outcome = tokio::time::timeout(LONG, consumer.recv()).await.unwrap();
        assert!(
            matches!(outcome, Err(Error::Cancelled(_))),
            "{:?}",
            outcome.map(|m| m.len())
        );
        canceller.join().unwrap();
        // Full ring, then wait for space with a token cancelled from another thread.
        while producer.send(1, &[0; 200]).is_ok() {}
        let token = CancelToken::new();
        producer.set_cancel_token(Some(token.clone()));
        let mut producer = AsyncProducer::new(producer);
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(round % 4));
            token.cancel();
        });
        let outcome = tokio::time::timeout(LONG, producer.reserve(200))
            .await
            .unwrap();
        assert!(
            matches!(outcome, Err(Error::Cancelled(_))),
            "{:?}",
            outcome.map(|s| s.len())
        );
        canceller.join().unwrap();
    }
}

/// A producer on a full ring waits (as a task) until the consumer frees space.
#[tokio::test(flavor = "current_thread")]
async fn a_full_ring_is_waited_out_and_every_message_arrives() {
    let (producer, mut consumer) = Bus::in_memory(1 << 10).unwrap().split();
    let receiver = std::thread::spawn(move || {
        let mut values = Vec::new();
        loop {
            let message = consumer.recv_timeout(LONG).unwrap();
            if message.type_id() == 0 {
                return values;
            }
            values.push(u32::from_le_bytes(message.data().try_into().unwrap()));
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let mut producer = AsyncProducer::new(producer);
    for i in 0..500u32 {
        producer.send(1, &i.to_le_bytes()).await.unwrap();
    }
    producer.send(0, &[]).await.unwrap();
    assert_eq!(receiver.join().unwrap(), (0..500).collect::<Vec<_>>());
}

/// An async receive idle for 300 ms (asleep in the reactor, its naps at their cap) is woken by
/// our producer's send, not found later by a nap running out: the reactor counts which.
///
/// A send can land in the microseconds after a nap ran out and before the task looked again;
/// that message is counted as `found_after_nap` (it waited for nothing; the interleaving is
/// driven step by step in `a_message_landing_as_a_nap_runs_out_is_found_after_the_nap`), so
/// the count per round is exact only as a sum. The regression this guards against (readiness
/// that ignores the ring) delivers every round by a nap: most rounds must be woken.
#[tokio::test(flavor = "current_thread")]
async fn an_idle_async_receive_is_woken_by_the_send() {
    const ROUNDS: u64 = 5;
    let (mut producer, consumer) = Bus::in_memory(1 << 12).unwrap().split();
    let sender = std::thread::spawn(move || {
        for round in 0..ROUNDS {
            std::thread::sleep(Duration::from_millis(300));
            producer.send(1, &[round as u8]).unwrap();
        }
    });
    let mut consumer = AsyncConsumer::new(consumer);
    for round in 0..ROUNDS {
        let message = tokio::time::timeout(LONG, consumer.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(message.data(), [round as u8]);
        drop(message);
        let stats = consumer.wake_stats();
        assert_eq!(
            stats.woken_by_ring + stats.found_after_nap,
            round + 1,
            "each idle round is one wake or one find: {stats:?}"
        );
        assert_eq!(stats.missed_wakes, 0, "{stats:?}");
        assert!(
            stats.naps_run_out > 0,
            "it was idle between sends: {stats:?}"
        );
    }
    let stats = consumer.wake_stats();
    assert!(
        stats.woken_by_ring * 2 > ROUNDS,
        "most rounds are delivered by the send's wake: {stats:?}"
    );
    sender.join().unwrap();
}

/// The window between a nap running out and the task's next look, driven step by step: the
/// receive registers, its nap runs out with the ring empty (the reactor wakes the task), and
/// only then is a message sent. The task's look finds it, and it is counted as found after a
/// nap, not as a wake and not as a missed wake.
#[test]
fn a_message_landing_as_a_nap_runs_out_is_found_after_the_nap() {
    use std::future::Future;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Signal(std::sync::Mutex<mpsc::Sender<()>>);
    impl Wake for Signal {
        fn wake(self: Arc<Self>) {
            let _ = self.0.lock().unwrap().send(());
        }
    }

    let (mut producer, consumer) = Bus::in_memory(1 << 12).unwrap().split();
    let mut consumer = AsyncConsumer::new(consumer);
    let (woke, wakes) = mpsc::channel();
    let waker = Waker::from(Arc::new(Signal(std::sync::Mutex::new(woke))));
    let mut cx = Context::from_waker(&waker);
    {
        let mut receive = std::pin::pin!(consumer.recv());
        // Step 1: nothing published; the receive registers with the reactor.
        assert!(receive.as_mut().poll(&mut cx).is_pending());
        // Step 2: its first nap (5 ms) runs out with the ring empty; the reactor wakes it.
        wakes.recv_timeout(LONG).expect("the nap runs out");
        // Step 3: the message lands after the reactor's look, before the task's.
        producer.send(9, b"late").unwrap();
        producer.flush();
        // Step 4: the task's look finds it.
        match receive.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(message)) => assert_eq!(message.data(), b"late"),
            other => panic!("expected the message, got {other:?}"),
        }
    }
    let stats = consumer.wake_stats();
    assert_eq!(stats.found_after_nap, 1, "{stats:?}");
    assert_eq!(stats.naps_run_out, 1, "{stats:?}");
    assert_eq!(
        (stats.woken_by_ring, stats.missed_wakes),
        (0, 0),
        "{stats:?}"
    );

    // And a message found on a receive's first look is counted nowhere: it was not waited for.
    producer.send(9, b"ready").unwrap();
    producer.flush();
    {
        let mut receive = std::pin::pin!(consumer.recv());
        assert!(receive.as_mut().poll(&mut cx).is_ready());
    }
    assert_eq!(consumer.wake_stats(), stats);
}

/// `reactor_sleeps` counts the reactor thread's sleeps: an async receive idle for 200 ms (naps
/// of 5 ms doubling to 50 ms) makes the thread sleep several times. Other tests share the
/// reactor and only add sleeps.
#[tokio::test(flavor = "current_thread")]
async fn the_reactor_counts_its_sleeps() {
    let (_producer, consumer) = Bus::in_memory(1 << 12).unwrap().split();
    let mut consumer = AsyncConsumer::new(consumer);
    let before = tachyon_ring::reactor_sleeps();
    let outcome = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await;
    assert!(outcome.is_err(), "nothing was sent");
    let after = tachyon_ring::reactor_sleeps();
    assert!(after >= before + 3, "sleeps {before} -> {after}");
}

/// `AsyncConsumer::try_recv` takes a published message without waiting, and finds none on an
/// empty ring.
#[test]
fn an_async_consumers_try_recv_takes_what_is_published() {
    let (mut producer, consumer) = Bus::in_memory(1 << 12).unwrap().split();
    let mut consumer = AsyncConsumer::new(consumer);
    assert!(consumer.try_recv().unwrap().is_none());
    producer.send(7, b"now").unwrap();
    producer.flush();
    let message = consumer.try_recv().unwrap().expect("a published message");
    assert_eq!((message.type_id(), message.data()), (7, &b"now"[..]));
}

/// Two producers on full rings wait for space at once, each in a task of its own: each is
/// woken when its own consumer frees space (each end registers with the reactor under a key
/// of its own, so one's wait cannot replace the other's).
#[tokio::test(flavor = "current_thread")]
async fn two_producers_wait_for_space_at_once_and_both_get_it() {
    let mut tasks = Vec::new();
    let mut drains = Vec::new();
    for ring in 0..2u8 {
        let (mut producer, mut consumer) = Bus::in_memory(1 << 10).unwrap().split();
        while producer.send(1, &[ring; 100]).is_ok() {}
        producer.flush();
        tasks.push(tokio::spawn(async move {
            let mut producer = AsyncProducer::new(producer);
            producer.send(2, &[ring]).await.unwrap();
            producer.wake_stats()
        }));
        drains.push(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30 + 40 * u64::from(ring)));
            loop {
                let message = consumer.recv_timeout(LONG).unwrap();
                if message.type_id() == 2 {
                    return message.data().to_vec();
                }
            }
        }));
    }
    for (ring, task) in tasks.into_iter().enumerate() {
        let stats = tokio::time::timeout(LONG, task).await.unwrap().unwrap();
        // The wait was woken by the reactor at least once (space found, or its nap ran out).
        assert!(
            stats.woken_by_ring + stats.naps_run_out >= 1,
            "ring {ring}: {stats:?}"
        );
    }
    for (ring, drain) in drains.into_iter().enumerate() {
        assert_eq!(drain.join().unwrap(), [ring as u8]);
    }
}

/// A producer waiting for space on a ring nobody drains naps 50 ms between its looks at the
/// peer (the reactor watches the tail meanwhile): 150 ms of waiting wakes the task a few
/// times, never in a loop.
#[tokio::test(flavor = "current_thread")]
async fn a_wait_for_space_wakes_its_task_every_50_ms_not_in_a_loop() {
    let (mut producer, _consumer) = Bus::in_memory(1 << 10).unwrap().split();
    while producer.send(1, &[0; 100]).is_ok() {}
    let mut producer = AsyncProducer::new(producer);
    let outcome = tokio::time::timeout(Duration::from_millis(150), producer.reserve(100)).await;
    assert!(outcome.is_err(), "nobody freed space");
    let stats = producer.wake_stats();
    assert!(stats.naps_run_out <= 10, "{stats:?}");
    assert_eq!(stats.woken_by_ring, 0, "{stats:?}");
}
