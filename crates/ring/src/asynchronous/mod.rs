// Floor: asynchronous, beside bus, above ring; never imports rpc, select, listener, fuzzing.
//! Async ends (feature `async`, also enabled by `tokio`): receive and wait for space without
//! blocking an executor thread.
//!
//! An end that finds nothing to do registers its ring with the process's one reactor thread
//! (`reactor`), which sleeps on every registered ring's futex word at once, exactly as a
//! [`Selector`](crate::Selector) does, and wakes the task whose ring changed. So any number of
//! async rings cost one sleeping thread, and an idle ring costs a wake-up per 50 ms (the nap
//! that bounds a missed wake and notices a dead peer).

pub(crate) mod reactor;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::asynchronous::reactor::{Interest, WakeCounters, WakeStats, reactor};
use crate::error::{Error, Result};
use crate::ring::consumer::{Consumer, Message, PEER_CHECK_INTERVAL};
use crate::ring::producer::{Producer, WriteSlot};
use crate::wait::{self, Naps};

/// A [`Consumer`] whose receive is a future.
///
/// ```
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # runtime.block_on(async {
/// use tachyon_ring::{AsyncConsumer, Bus};
///
/// let (mut producer, consumer) = Bus::in_memory(1 << 12)?.split();
/// let mut consumer = AsyncConsumer::new(consumer);
/// let sender = std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_millis(20));
///     producer.send(1, b"tick").unwrap();
///     producer.flush();
/// });
/// let message = consumer.recv().await?; // the task sleeps; no thread of the runtime blocks
/// assert_eq!(message.data(), b"tick");
/// # drop(message);
/// # sender.join().unwrap();
/// # Ok(()) })
/// # }
/// ```
pub struct AsyncConsumer {
    consumer: Consumer,
    /// This end's key in the reactor.
    id: u64,
    naps: Naps,
    /// When the current wait found the ring empty (its naps are planned then, by the
    /// consumer's spin policy; an async end never spins).
    wait_started: Option<Instant>,
    next_peer_check: Option<Instant>,
    /// Why the reactor woke this end, counted by the reactor.
    wakes: Arc<WakeCounters>,
}

impl fmt::Debug for AsyncConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncConsumer")
            .field("consumer", &self.consumer)
            .finish()
    }
}

impl AsyncConsumer {
    /// Wraps `consumer` (its cancel token is honoured; its spin settings are not used: an
    /// async receive never spins).
    pub fn new(consumer: Consumer) -> AsyncConsumer {
        AsyncConsumer {
            consumer,
            id: 0,
            naps: Naps::new(),
            wait_started: None,
            next_peer_check: None,
            wakes: Arc::default(),
        }
    }

    /// How this end's waits ended so far: woken by the producer, missed wakes found by a
    /// later look, cancels, naps that ran out, and messages that arrived as a nap ran out.
    /// This crate's producer leaves `missed_wakes` at 0; tachyon-ipc's, which leaves the
    /// sleeping word set, can add one when a message lands as the reactor falls asleep or
    /// wakes from a nap (see [`WakeStats`]).
    pub fn wake_stats(&self) -> WakeStats {
        self.wakes.snapshot()
    }

    /// The next message, waiting without blocking the thread.
    ///
    /// Cancel-safe: dropping the future before it completes loses no message (a message is
    /// taken only in the poll that returns it). Ends with [`Error::PeerGone`] once the
    /// producer has exited and everything it published was delivered, and with
    /// [`Error::Cancelled`] when the consumer's cancel token is cancelled.
    pub fn recv(&mut self) -> Recv<'_> {
        Recv {
            end: Some(self),
            registered: false,
        }
    }

    /// The next message if one is published; never waits.
    pub fn try_recv(&mut self) -> Result<Option<Message<'_>>> {
        self.consumer.try_recv()
    }

    /// The consumer inside.
    pub fn get_mut(&mut self) -> &mut Consumer {
        &mut self.consumer
    }

    /// The consumer back.
    pub fn into_inner(self) -> Consumer {
        self.consumer
    }
}

/// The future of [`AsyncConsumer::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a> {
    end: Option<&'a mut AsyncConsumer>,
    /// Registered with the reactor, the ring's word set to SLEEPING.
    registered: bool,
}

impl fmt::Debug for Recv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv")
            .field("registered", &self.registered)
            .finish()
    }
}

const RECEIVING: &str = "waiting for a message (async)";

impl<'a> Future for Recv<'a> {
    type Output = Result<Message<'a>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.unregister();
        let Some(end) = this.end.as_deref_mut() else {
            return Poll::Ready(Err(Error::Handshake(
                "a finished receive future was polled again".into(),
            )));
        };
        let reactor = match reactor() {
            Ok(reactor) => reactor,
            Err(error) => return Poll::Ready(Err(error)),
        };
        loop {
            match end.consumer.poll_slot() {
                Ok(Some(slot)) => {
                    // Only a receive that registered has a wake to attribute: one that found
                    // the message at its first look touches no shared counter.
                    if let Some(started) = end.wait_started.take() {
                        end.consumer.pace_mut().arrived_after(started.elapsed());
                        end.wakes.found_message();
                    }
                    end.next_peer_check = None;
                    // The message borrows the consumer for 'a: take the end out of the future.
                    return Poll::Ready(match this.end.take() {
                        Some(end) => Ok(end.consumer.message(slot)),
                        None => Err(Error::Handshake("receive future lost its consumer".into())),
                    });
                }
                Ok(None) => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
            if let Err(error) = wait::check(end.consumer.cancel_token(), RECEIVING) {
                return Poll::Ready(Err(error));
            }
            let now = Instant::now();
            let check_at = *end.next_peer_check.get_or_insert(now + PEER_CHECK_INTERVAL);
            if now >= check_at {
                end.next_peer_check = Some(now + PEER_CHECK_INTERVAL);
                if let Err(error) = end.consumer.check_peer() {
                    return Poll::Ready(Err(error));
                }
            }
            if !end.consumer.announce_sleep() {
                end.consumer.end_sleep();
                continue; // published meanwhile
            }
            if end.id == 0 {
                end.id = reactor.id();
            }
            if end.wait_started.is_none() {
                end.wait_started = Some(now);
                let plan = end.consumer.pace_mut().plan(std::time::Duration::ZERO);
                end.naps = Naps::starting_at(plan.first_nap);
            }
            let due = now + end.naps.next(None);
            end.wakes.registering();
            let registered = reactor.register(
                end.id,
                end.consumer.region(),
                Interest::Message {
                    tail: end.consumer.read_cursor(),
                },
                end.consumer.cancel_token(),
                due,
                cx.waker(),
                &end.wakes,
            );
            if let Err(error) = registered {
                end.consumer.end_sleep();
                return Poll::Ready(Err(error));
            }
            this.registered = true;
            return Poll::Pending;
        }
    }
}

impl Recv<'_> {
    /// Leaves the reactor and wakes the word back up (on every poll and on drop).
    fn unregister(&mut self) {
        if !std::mem::take(&mut self.registered) {
            return;
        }
        if let (Some(end), Ok(reactor)) = (self.end.as_deref_mut(), reactor()) {
            reactor.deregister(end.id);
            end.consumer.end_sleep();
        }
    }
}

impl Drop for Recv<'_> {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// A [`Producer`] whose wait for space is a future.
pub struct AsyncProducer {
    producer: Producer,
    id: u64,
    /// Why the reactor woke this end, counted by the reactor.
    wakes: Arc<WakeCounters>,
}

impl fmt::Debug for AsyncProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncProducer")
            .field("producer", &self.producer)
            .finish()
    }
}

impl AsyncProducer {
    /// Wraps `producer` (its cancel token is honoured).
    pub fn new(producer: Producer) -> AsyncProducer {
        AsyncProducer {
            producer,
            id: 0,
            wakes: Arc::default(),
        }
    }

    /// How this end's waits for space ended so far (space found, cancels, naps run out).
    pub fn wake_stats(&self) -> WakeStats {
        self.wakes.snapshot()
    }

    /// A slot of up to `max_len` bytes, waiting for space without blocking the thread.
    ///
    /// Cancel-safe: dropping the future reserves nothing. Ends with [`Error::PeerGone`] once
    /// the consumer has exited, [`Error::Cancelled`] on a cancel, and at once with errors that
    /// waiting cannot fix ([`Error::MessageTooLarge`], a corrupt ring).
    pub fn reserve(&mut self, max_len: usize) -> Reserve<'_> {
        Reserve {
            end: Some(self),
            max_len,
            registered: false,
            next_peer_check: None,
        }
    }

    /// Sends `payload` as one message of `type_id` once there is space, then publishes it.
    pub async fn send(&mut self, type_id: u32, payload: &[u8]) -> Result<()> {
        let mut slot = self.reserve(payload.len()).await?;
        slot[..payload.len()].copy_from_slice(payload);
        slot.commit(payload.len(), type_id)?;
        self.producer.flush();
        Ok(())
    }

    /// The producer inside.
    pub fn get_mut(&mut self) -> &mut Producer {
        &mut self.producer
    }

    /// The producer back.
    pub fn into_inner(self) -> Producer {
        self.producer
    }
}

/// The future of [`AsyncProducer::reserve`].
#[must_use = "futures do nothing unless awaited"]
pub struct Reserve<'a> {
    end: Option<&'a mut AsyncProducer>,
    max_len: usize,
    registered: bool,
    next_peer_check: Option<Instant>,
}

impl fmt::Debug for Reserve<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve")
            .field("max_len", &self.max_len)
            .field("registered", &self.registered)
            .finish()
    }
}

const RESERVING: &str = "waiting for space in the ring (async)";

impl<'a> Future for Reserve<'a> {
    type Output = Result<WriteSlot<'a>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if std::mem::take(&mut this.registered) {
            if let (Some(end), Ok(reactor)) = (this.end.as_deref(), reactor()) {
                reactor.deregister(end.id);
            }
        }
        let Some(end) = this.end.as_deref_mut() else {
            return Poll::Ready(Err(Error::Handshake(
                "a finished reserve future was polled again".into(),
            )));
        };
        let reactor = match reactor() {
            Ok(reactor) => reactor,
            Err(error) => return Poll::Ready(Err(error)),
        };
        let tail_seen = match space_or_tail(&mut end.producer, this.max_len, || {}) {
            Ok(None) => {
                return Poll::Ready(match this.end.take() {
                    Some(end) => end.producer.reserve(this.max_len),
                    None => Err(Error::Handshake("reserve future lost its producer".into())),
                });
            }
            Ok(Some(tail_seen)) => tail_seen,
            Err(other) => return Poll::Ready(Err(other)),
        };
        if let Err(error) = wait::check(end.producer.cancel_token(), RESERVING) {
            return Poll::Ready(Err(error));
        }
        let now = Instant::now();
        let check_at = *this
            .next_peer_check
            .get_or_insert(now + PEER_CHECK_INTERVAL);
        if now >= check_at {
            this.next_peer_check = Some(now + PEER_CHECK_INTERVAL);
            if let Err(error) = end.producer.check_peer() {
                return Poll::Ready(Err(error));
            }
        }
        if end.id == 0 {
            end.id = reactor.id();
        }
        if let Err(error) = reactor.register(
            end.id,
            end.producer.region(),
            Interest::Space { tail_seen },
            end.producer.cancel_token(),
            now + PEER_CHECK_INTERVAL,
            cx.waker(),
            &end.wakes,
        ) {
            return Poll::Ready(Err(error));
        }
        this.registered = true;
        Poll::Pending
    }
}

impl Drop for Reserve<'_> {
    fn drop(&mut self) {
        if self.registered {
            if let (Some(end), Ok(reactor)) = (self.end.as_deref(), reactor()) {
                reactor.deregister(end.id);
            }
        }
    }
}

/// Whether `max_len` bytes fit now (`None`), or else the consumer's tail as it was *before*
/// the ring was found full (`Some`): the tail to wait past. Loaded first, so a consumer that
/// drains and publishes its tail after our look (`between`, a no-op outside tests) has moved
/// it past what we wait on, and the reactor finds the wait over at once instead of napping.
///
/// The trial reservation is rolled back at once: the slot handed out must borrow the producer
/// for the future's lifetime, which only the end taken out of the future can give.
fn space_or_tail(
    producer: &mut Producer,
    max_len: usize,
    between: impl FnOnce(),
) -> Result<Option<u64>> {
    let tail_seen = producer.region().header().tail.load(Ordering::Acquire);
    match producer.reserve(max_len).map(drop) {
        Ok(()) => Ok(None),
        Err(Error::Full { .. }) => {
            between();
            Ok(Some(tail_seen))
        }
        Err(other) => Err(other),
    }
}

/// Sleeps of the process's reactor thread so far (one per wait on all async rings).
pub fn reactor_sleeps() -> u64 {
    reactor().map_or(0, |reactor| reactor.sleeps())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::shm::Region;

    #[test]
    fn a_wait_for_space_waits_past_the_tail_seen_before_the_ring_was_found_full() {
        // The interleaving of the defect, step by step: the ring is full when the producer
        // tries, then the consumer drains everything and publishes its tail before the
        // producer registers. The tail the producer waits past must be the old one, so the
        // wait ends at once (the tail has already moved past it).
        let region = Arc::new(Region::heap(256).unwrap());
        let mut producer = Producer::new(Arc::clone(&region), None);
        let mut consumer = Consumer::new(Arc::clone(&region), 0, false, None);
        while producer.send(1, b"x").is_ok() {}
        let tail_before = region.header().tail.load(Ordering::Acquire);
        let tail_seen = space_or_tail(&mut producer, 1, || {
            while consumer.try_recv().unwrap().is_some() {}
            consumer.flush();
        })
        .unwrap();
        let tail_now = region.header().tail.load(Ordering::Acquire);
        assert_ne!(tail_now, tail_before, "the consumer published its tail");
        assert_eq!(
            tail_seen,
            Some(tail_before),
            "waits past the tail from before"
        );
        // With space free, no wait at all.
        assert_eq!(space_or_tail(&mut producer, 1, || {}).unwrap(), None);
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// Marks `region` fatal (state 4) after 300 ms: long enough for a waiting end's naps to
    /// have grown to their 50 ms cap.
    fn mark_fatal_later(region: &Arc<Region>) -> std::thread::JoinHandle<()> {
        let region = Arc::clone(region);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            region.mark_fatal();
        })
    }

    #[test]
    fn a_ring_marked_fatal_ends_a_long_idle_receive_and_a_long_wait_for_space() {
        // The peer is looked at every 50 ms however long the wait has been idle: a wait whose
        // polls come 50 ms apart (naps at their cap) must still look.
        let bound = std::time::Duration::from_secs(10);
        let runtime = runtime();
        let region = Arc::new(Region::heap(1 << 12).unwrap());
        let mut consumer = AsyncConsumer::new(Consumer::new(Arc::clone(&region), 0, false, None));
        let marker = mark_fatal_later(&region);
        let outcome = runtime.block_on(async {
            tokio::time::timeout(bound, consumer.recv())
                .await
                .map(|received| received.map(|message| message.len()))
        });
        assert!(
            matches!(outcome, Ok(Err(Error::Corrupt(_)))),
            "receive: {outcome:?}"
        );
        marker.join().unwrap();

        let region = Arc::new(Region::heap(256).unwrap());
        let mut producer = Producer::new(Arc::clone(&region), None);
        while producer.send(1, b"x").is_ok() {}
        let mut producer = AsyncProducer::new(producer);
        let marker = mark_fatal_later(&region);
        let outcome = runtime.block_on(async {
            tokio::time::timeout(bound, producer.reserve(1))
                .await
                .map(|reserved| reserved.map(|slot| slot.len()))
        });
        assert!(
            matches!(outcome, Ok(Err(Error::Corrupt(_)))),
            "reserve: {outcome:?}"
        );
        marker.join().unwrap();
    }

    #[test]
    fn a_dropped_wait_for_space_leaves_the_reactor() {
        // A reserve future dropped while it waits must not be woken (nor counted) when the
        // consumer later frees space.
        use std::sync::atomic::AtomicUsize;
        use std::task::{Wake, Waker};
        struct Counting(AtomicUsize);
        impl Wake for Counting {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let region = Arc::new(Region::heap(256).unwrap());
        let mut producer = Producer::new(Arc::clone(&region), None);
        let mut consumer = Consumer::new(Arc::clone(&region), 0, false, None);
        while producer.send(1, b"x").is_ok() {}
        let mut producer = AsyncProducer::new(producer);
        let counting = Arc::new(Counting(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counting));
        let mut cx = Context::from_waker(&waker);
        {
            let mut reserve = std::pin::pin!(producer.reserve(1));
            assert!(
                reserve.as_mut().poll(&mut cx).is_pending(),
                "the ring is full"
            );
        } // dropped: leaves the reactor
        // 0 unless this thread stalled for the 50 ms of the reserve's nap.
        let woken_before = counting.0.load(Ordering::SeqCst);
        while consumer.try_recv().unwrap().is_some() {}
        consumer.flush();
        // The reactor looks at a waiting producer's tail every 200 µs.
        std::thread::sleep(std::time::Duration::from_millis(150));
        assert_eq!(
            counting.0.load(Ordering::SeqCst),
            woken_before,
            "a dropped reserve was woken"
        );
        if woken_before == 0 {
            assert_eq!(producer.wake_stats(), WakeStats::default());
        }
    }

    #[test]
    fn an_async_receive_hands_a_pure_spin_ring_its_advertisement_back() {
        use crate::wire::layout::sleeping;
        use std::task::{Wake, Waker};
        struct Nothing;
        impl Wake for Nothing {
            fn wake(self: Arc<Self>) {}
        }
        let region = Arc::new(Region::heap(1 << 12).unwrap());
        let word = || region.header().consumer_sleeping.load(Ordering::Acquire);
        let consumer = Consumer::new(Arc::clone(&region), 0, true, None);
        assert_eq!(word(), sleeping::PURE_SPIN);
        let mut consumer = AsyncConsumer::new(consumer);
        let waker = Waker::from(Arc::new(Nothing));
        let mut cx = Context::from_waker(&waker);
        {
            let mut receive = std::pin::pin!(consumer.recv());
            assert!(receive.as_mut().poll(&mut cx).is_pending());
            assert_eq!(word(), sleeping::SLEEPING, "asleep in the reactor: wake me");
        } // dropped: leaves the reactor
        assert_eq!(word(), sleeping::PURE_SPIN, "the advertisement is back");
    }
}
