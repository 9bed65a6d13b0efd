//! `tachyon-bridge in`: JetStream → bus.
//!
//! A durable pull consumer fetches up to `--batch` messages; each is committed into the ring
//! (waiting while the ring is full) and acknowledged only then. The next fetch starts when the
//! batch is in the ring, so a full ring stops fetching.
//!
//! # Exactly once, in order
//! - At start the durable consumer is (re)created to deliver from the message after its
//!   acknowledgement floor, so a restart neither waits out the `ack_wait` of messages an
//!   earlier run took and never acknowledged, nor delivers them after newer ones: the
//!   stream's order is kept.
//! - A message is acknowledged after its commit. If the bridge dies between the two, the
//!   next run commits it again: the duplicates a crash can cause are at most the messages
//!   committed and not yet acknowledged (one batch, bounded by `--max-ack-pending`).
//! - A delivery can be lost (a pull request that dies with a consumer leader, or with the
//!   connection): the server would redeliver it only after `ack_wait`, behind newer messages.
//!   So a message whose stream sequence is not the next one after the last committed is
//!   checked against the stream (the first message matching the filter from there on): a
//!   gap of other subjects or deleted messages is passed; a lost delivery makes `in` restart
//!   its consumer after the last committed message and drop the rest of the batch unacknowledged
//!   (counted in `retries`).
//! - Replacing the consumer is a delete and a create; the floor is recorded first in a
//!   key-value bucket ([`PROGRESS_BUCKET`]) and cleared after, so a run that dies in between
//!   is resumed after it rather than from the stream's start.
//! - A redelivery within one run (its `ack_wait` passed while the ring was full) of a message
//!   this run already committed is recognised by its stream sequence, acknowledged, skipped
//!   and counted (`duplicates`).

use std::time::{Duration, Instant};

use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, ErrorCode, consumer, kv};
use futures::StreamExt;
use tachyon_ring::{Error as RingError, Producer};
use tokio::sync::watch;

use crate::bus::PeerWatch;
use crate::cli::InArgs;
use crate::mapping;
use crate::nats;
use crate::stats::Stats;

/// How long one fetch waits for messages on an idle stream.
const FETCH_EXPIRES: Duration = Duration::from_secs(1);
/// How long one commit attempt waits for ring space before looking at the stop signal.
const COMMIT_SLICE: Duration = Duration::from_millis(100);
/// How often a running bridge logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How a run of `in` ended.
#[derive(Debug)]
pub enum Ended {
    /// A signal: fetching stopped; delivered messages not yet committed are left to the next
    /// run (not acknowledged, so the server keeps them).
    Signal,
    /// The bus's consumer exited.
    PeerGone,
    /// The bus failed, or a message does not fit it.
    Ring(RingError),
    /// A message whose subject or header does not name a type id.
    Mapping(String),
}

/// Runs `in` to its end; the statistics are filled in either way.
pub fn run(
    args: &InArgs,
    producer: Producer,
    peer: PeerWatch,
    stop: watch::Receiver<bool>,
    runtime: &tokio::runtime::Runtime,
    stats: &mut Stats,
) -> Result<Ended, String> {
    stats.direction = "in";
    runtime.block_on(async {
        let mut stop = stop;
        let client = nats::connect(&args.nats.nats, Duration::from_secs(5))
            .await
            .map_err(|err| format!("NATS {}: {err}", args.nats.nats))?;
        let js = jetstream::new(client.clone());
        let stream = match &args.filter {
            Some(filter) => {
                let config = nats::stream_config(&args.nats.stream, filter, &args.nats);
                nats::ensure_stream(&js, config, &mut stop).await
            }
            None => existing_stream(&js, &args.nats.stream, &mut stop).await,
        };
        let Some(stream) = stream else {
            return Ok(Ended::Signal);
        };
        let Some(progress) = Progress::open(&js, args, &mut stop).await else {
            return Ok(Ended::Signal);
        };
        let Some((consumer, floor)) =
            recreate_consumer(&stream, &progress, args, None, &mut stop).await
        else {
            return Ok(Ended::Signal);
        };
        tracing::info!(durable = %args.durable, from = floor + 1, "fetching");
        let mut inbound = Inbound {
            stream,
            progress,
            args,
            consumer,
            producer,
            peer,
            committed_upto: floor,
            batch: args.batch,
            stats,
            started: None,
        };
        let ended = inbound.run(&mut stop).await;
        // Acknowledgements are fire-and-forget: make sure the last ones left.
        if let Err(err) = client.flush().await {
            tracing::warn!(%err, "cannot flush the last acknowledgements");
        }
        if let Some(started) = inbound.started {
            inbound.stats.elapsed_s = started.elapsed().as_secs_f64();
        }
        Ok(ended)
    })
}

async fn existing_stream(
    js: &jetstream::Context,
    name: &str,
    stop: &mut watch::Receiver<bool>,
) -> Option<jetstream::stream::Stream> {
    let mut attempts = 0u64;
    loop {
        if *stop.borrow() {
            return None;
        }
        let attempt = tokio::select! {
            attempt = js.get_stream(name) => attempt,
            _ = stop.changed() => return None,
        };
        match attempt {
            Ok(stream) => return Some(stream),
            Err(err) => {
                attempts += 1;
                if attempts == 1 || attempts % 20 == 0 {
                    tracing::warn!(stream = name, %err, "stream not there yet (give --filter to create it); retrying");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(nats::RETRY_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The JetStream key-value bucket where `in` writes its floor before it replaces its consumer
/// (and clears it after), so that a run that dies between the delete and the create does not
/// start over. A consumer missing with no floor recorded was deleted on purpose: the next run
/// delivers the stream from its start.
pub const PROGRESS_BUCKET: &str = "tachyon-bridge-in";

/// Where the consumer's floor survives a replacement: the bucket and this consumer's key.
struct Progress {
    store: kv::Store,
    key: String,
}

impl Progress {
    /// The bucket (created when absent), retried until the server answers or a signal.
    async fn open(
        js: &jetstream::Context,
        args: &InArgs,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Progress> {
        let key = format!("{}.{}", args.nats.stream, args.durable);
        let mut attempts = 0u64;
        loop {
            if *stop.borrow() {
                return None;
            }
            let attempt = tokio::select! {
                attempt = Progress::bucket(js, args.nats.replicas) => attempt,
                _ = stop.changed() => return None,
            };
            match attempt {
                Ok(store) => return Some(Progress { store, key }),
                Err(err) => {
                    attempts += 1;
                    if attempts == 1 || attempts % 20 == 0 {
                        tracing::warn!(%err, "cannot open the progress bucket yet; retrying");
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(nats::RETRY_EVERY) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn bucket(
        js: &jetstream::Context,
        replicas: usize,
    ) -> Result<kv::Store, async_nats::Error> {
        if let Ok(store) = js.get_key_value(PROGRESS_BUCKET).await {
            return Ok(store);
        }
        Ok(js
            .create_key_value(kv::Config {
                bucket: PROGRESS_BUCKET.to_owned(),
                description:
                    "tachyon-bridge in: each durable consumer's floor while it is replaced".into(),
                history: 1,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await?)
    }

    async fn floor(&self) -> Result<Option<u64>, async_nats::Error> {
        let value = self.store.get(&self.key).await?;
        Ok(value.and_then(|bytes| std::str::from_utf8(&bytes).ok()?.parse().ok()))
    }

    async fn record(&self, floor: u64) -> Result<(), async_nats::Error> {
        self.store.put(&self.key, floor.to_string().into()).await?;
        Ok(())
    }

    /// The replacement is done: a consumer missing from now on was deleted on purpose (a
    /// replay from the start), not lost halfway.
    async fn clear(&self) {
        if let Err(err) = self.store.delete(&self.key).await {
            tracing::warn!(%err, key = %self.key, "cannot clear the recorded floor");
        }
    }
}

/// The durable consumer, replaced by one delivering after `after` (the last message
/// committed), or when `None` after its own acknowledgement floor (see the module docs), and
/// that floor. Retried until the server answers or a signal (never between the delete and the
/// create, whose floor is recorded first).
async fn recreate_consumer(
    stream: &jetstream::stream::Stream,
    progress: &Progress,
    args: &InArgs,
    mut after: Option<u64>,
    stop: &mut watch::Receiver<bool>,
) -> Option<(consumer::PullConsumer, u64)> {
    let mut attempts = 0u64;
    loop {
        if *stop.borrow() {
            return None;
        }
        let attempt = match after {
            // Learning the floor changes nothing: a signal may end it.
            None => tokio::select! {
                floor = current_floor(stream, progress, args) => floor.map(|floor| {
                    after = Some(floor);
                    None
                }),
                _ = stop.changed() => return None,
            },
            // The replacement is not cancelled halfway (each request is bounded by its timeout).
            Some(floor) => replace_consumer(stream, progress, args, floor)
                .await
                .map(Some),
        };
        match attempt {
            Ok(Some(consumer)) => return Some((consumer, after.expect("set"))),
            Ok(None) => continue,
            Err(err) => {
                attempts += 1;
                if attempts == 1 || attempts % 20 == 0 {
                    tracing::warn!(durable = %args.durable, %err, "cannot set up the consumer yet; retrying");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(nats::RETRY_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The consumer's acknowledgement floor; if the consumer is missing, the floor recorded before
/// its last replacement (a run died between the delete and the create), else 0.
async fn current_floor(
    stream: &jetstream::stream::Stream,
    progress: &Progress,
    args: &InArgs,
) -> Result<u64, async_nats::Error> {
    match stream.consumer_info(&args.durable).await {
        Ok(info) => {
            let floor = info.ack_floor.stream_sequence;
            tracing::info!(
                durable = %args.durable,
                ack_floor = floor,
                unacknowledged = info.num_ack_pending,
                "resuming the durable consumer after its acknowledgement floor"
            );
            Ok(floor)
        }
        Err(err) if err.kind() == ConsumerInfoErrorKind::NotFound => {
            let recorded = progress.floor().await?;
            if let Some(floor) = recorded {
                tracing::warn!(durable = %args.durable, floor, "the consumer is missing; resuming after the floor recorded before its last replacement");
            }
            Ok(recorded.unwrap_or(0))
        }
        Err(err) => Err(err.into()),
    }
}

/// Records `floor`, deletes the consumer (if there) and creates it delivering from `floor + 1`.
async fn replace_consumer(
    stream: &jetstream::stream::Stream,
    progress: &Progress,
    args: &InArgs,
    floor: u64,
) -> Result<consumer::PullConsumer, async_nats::Error> {
    progress.record(floor).await?;
    if let Err(err) = stream.delete_consumer(&args.durable).await {
        let missing = matches!(
            err.kind(),
            ConsumerErrorKind::JetStream(ref js_err) if js_err.error_code() == ErrorCode::CONSUMER_NOT_FOUND
        );
        if !missing {
            return Err(err.into());
        }
    }
    let deliver_policy = if floor == 0 {
        consumer::DeliverPolicy::All
    } else {
        consumer::DeliverPolicy::ByStartSequence {
            start_sequence: floor + 1,
        }
    };
    let config = consumer::pull::Config {
        durable_name: Some(args.durable.clone()),
        filter_subject: args.filter.clone().unwrap_or_default(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: args.ack_wait,
        max_ack_pending: args.max_ack_pending,
        deliver_policy,
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await?;
    progress.clear().await;
    Ok(consumer)
}

struct Inbound<'s> {
    stream: jetstream::stream::Stream,
    progress: Progress,
    args: &'s InArgs,
    consumer: consumer::PullConsumer,
    producer: Producer,
    peer: PeerWatch,
    /// The stream sequence of the last message committed into the ring (or the floor).
    committed_upto: u64,
    batch: usize,
    stats: &'s mut Stats,
    started: Option<Instant>,
}

impl Inbound<'_> {
    async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> Ended {
        let mut next_progress = Instant::now() + PROGRESS_EVERY;
        loop {
            if *stop.borrow() {
                return Ended::Signal;
            }
            if self.peer.is_gone() {
                return Ended::PeerGone;
            }
            if Instant::now() >= next_progress {
                tracing::info!("{}", self.stats.progress_line());
                next_progress = Instant::now() + PROGRESS_EVERY;
            }
            let fetched = self
                .consumer
                .fetch()
                .max_messages(self.batch)
                .expires(FETCH_EXPIRES)
                .messages()
                .await;
            let mut messages = match fetched {
                Ok(messages) => messages,
                Err(err) => {
                    self.stats.retries += 1;
                    tracing::warn!(%err, "fetch failed; retrying");
                    tokio::time::sleep(nats::RETRY_EVERY).await;
                    continue;
                }
            };
            let mut delivered = 0u64;
            loop {
                let message = tokio::select! {
                    message = messages.next() => message,
                    _ = stop.changed() => return Ended::Signal,
                };
                let Some(message) = message else { break };
                let message = match message {
                    Ok(message) => message,
                    Err(err) => {
                        self.stats.retries += 1;
                        tracing::warn!(%err, "fetch interrupted; fetching again");
                        break;
                    }
                };
                delivered += 1;
                self.stats.inflight_high_water = self.stats.inflight_high_water.max(delivered);
                match self.deliver(message, stop).await {
                    Step::Next => {}
                    Step::End(end) => return end,
                    Step::Restart => {
                        // Drop this batch (its rest is not acknowledged) and deliver again
                        // from the message after the last one committed.
                        drop(messages);
                        let after = Some(self.committed_upto);
                        match recreate_consumer(
                            &self.stream,
                            &self.progress,
                            self.args,
                            after,
                            stop,
                        )
                        .await
                        {
                            Some((consumer, _)) => self.consumer = consumer,
                            None => return Ended::Signal,
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Commits one message into the ring and acknowledges it.
    async fn deliver(&mut self, message: jetstream::Message, stop: &watch::Receiver<bool>) -> Step {
        let stream_seq = match message.info() {
            Ok(info) => info.stream_sequence,
            Err(err) => return Step::End(Ended::Mapping(format!("no delivery info: {err}"))),
        };
        if stream_seq <= self.committed_upto {
            self.stats.duplicates += 1;
            ack(&message).await;
            return Step::Next;
        }
        if stream_seq > self.committed_upto + 1 && !self.is_next(stream_seq).await {
            tracing::warn!(
                committed = self.committed_upto,
                delivered = stream_seq,
                "the consumer skipped ahead (a delivery was lost); restarting it after the last committed message"
            );
            self.stats.retries += 1;
            return Step::Restart;
        }
        let header = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(mapping::TYPE_ID_HEADER))
            .map(|value| value.as_str());
        let type_id = match mapping::type_id_of(message.subject.as_str(), header) {
            Ok(type_id) => type_id,
            Err(err) => {
                return Step::End(Ended::Mapping(format!(
                    "stream sequence {stream_seq} on {}: {err}",
                    message.subject
                )));
            }
        };
        let payload = &message.payload;
        // The ring's waits are blocking calls: run them where tokio expects blocking.
        let committed = tokio::task::block_in_place(|| {
            loop {
                match self.producer.send_timeout(type_id, payload, COMMIT_SLICE) {
                    Ok(()) => return Ok(()),
                    Err(RingError::Timeout(_)) if !*stop.borrow() => continue,
                    Err(RingError::Timeout(_)) | Err(RingError::Cancelled(_)) => return Err(None),
                    Err(RingError::PeerGone { .. }) => return Err(Some(Ended::PeerGone)),
                    Err(err) => return Err(Some(Ended::Ring(err))),
                }
            }
        });
        match committed {
            Ok(()) => {}
            Err(None) => return Step::End(Ended::Signal), // not acknowledged: the next run has it
            Err(Some(end)) => return Step::End(end),
        }
        self.started.get_or_insert_with(Instant::now);
        self.committed_upto = stream_seq;
        self.stats.messages += 1;
        self.stats.bytes += payload.len() as u64;
        ack(&message).await;
        Step::Next
    }

    /// Whether `stream_seq` is the first message after the last one committed that the filter
    /// matches (a gap of other subjects, or of deleted messages), rather than a message that
    /// overtook a lost delivery. Asks the stream; `false` when it cannot tell.
    async fn is_next(&self, stream_seq: u64) -> bool {
        let filter = self.args.filter.as_deref().unwrap_or(">");
        let next = self
            .stream
            .raw_message_builder()
            .sequence(self.committed_upto + 1)
            .next_by_subject(filter.to_owned())
            .send()
            .await;
        match next {
            Ok(next) => next.sequence == stream_seq,
            Err(err) => {
                tracing::warn!(%err, "cannot look up the next message");
                false
            }
        }
    }
}

/// What one delivered message asks of the fetch loop.
enum Step {
    /// Go on with the next message.
    Next,
    /// A delivery was lost: restart the consumer after the last committed message.
    Restart,
    /// The run ends.
    End(Ended),
}

async fn ack(message: &jetstream::Message) {
    if let Err(err) = message.ack().await {
        // The server redelivers it; this run then skips it as a duplicate.
        tracing::warn!(%err, "acknowledgement not sent");
    }
}
