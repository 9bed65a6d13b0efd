//! `tachyon-bridge out`: bus → JetStream.
//!
//! Two halves joined by a channel:
//!
//! - the **ring thread** takes one message at a time from the bus. Before it releases the
//!   slot it waits for room in the in-flight window (a count and a byte semaphore), copies the
//!   payload and hands it over with its permits. So a full window stops the draining, the ring
//!   fills, and the bus's producer waits in `send_timeout`: back-pressure end to end.
//! - the **publisher** (async, on tokio) publishes every message as soon as it arrives,
//!   without waiting for earlier acknowledgements (pipelined), and releases a message's
//!   permits when the stream has acknowledged it.
//!
//! # Exactly once, in order
//! Every publish carries `Nats-Msg-Id` (bus id, run epoch, sequence: the server refuses a
//! second copy inside its duplicate window) and `Nats-Expected-Last-Sequence`: message `k`
//! is stored only right after message `k − 1`. A lost message therefore cannot be overtaken
//! by a later one: the later one is refused, and the publisher *resyncs*: it asks the stream
//! for its last message, takes every message up to that one as stored (it is ours, or we have
//! not stored anything yet), and publishes the rest of the window again, in order. A copy of
//! a message that was already stored is refused either as a duplicate (inside the window) or
//! by its expected sequence (after it), and the resync then finds it stored. One `out` must
//! be the only writer of its stream.
//!
//! # What a crash can lose
//! A message leaves the ring when its slot is released, which happens once it is in the
//! window. If the bridge process dies, the messages in the window that the stream had not yet
//! acknowledged are lost: at most `--max-inflight` messages and `--max-inflight-bytes` bytes.
//! A crash of the server loses nothing the bridge saw acknowledged (with `sync_interval:
//! always`), and nothing in the window either (it is published again).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tachyon_ring::{CancelToken, Consumer, Error as RingError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::cli::{OutArgs, Oversize as OversizePolicy};
use crate::mapping::{self, MessageId, Oversize};
use crate::nats;
use crate::stats::Stats;

/// How often the ring thread looks at the cancel token and the window while it waits.
const POLL: Duration = Duration::from_millis(100);
/// How often a running bridge logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How a run of `out` ended.
#[derive(Debug)]
pub enum Ended {
    /// A signal: intake stopped and the window drained.
    Signal,
    /// The bus's producer exited; everything it published was bridged.
    PeerGone,
    /// A message too large for the server (`--oversize error`).
    Oversize(Oversize),
    /// The bus failed.
    Ring(RingError),
}

/// One message on its way from the ring to the stream, holding its share of the window.
struct Intake {
    type_id: u32,
    payload: Bytes,
    permits: [OwnedSemaphorePermit; 2],
}

/// What the ring thread tells the publisher.
enum FromRing {
    Message(Intake),
    Skipped,
    End(Ended),
}

/// Runs `out` to its end; the statistics are filled in either way.
pub fn run(
    args: &OutArgs,
    consumer: Consumer,
    cancel: CancelToken,
    stop: watch::Receiver<bool>,
    runtime: &tokio::runtime::Runtime,
    stats: &mut Stats,
) -> Result<Ended, String> {
    stats.direction = "out";
    let bus_id = match &args.bus_id {
        Some(id) => id.clone(),
        None => default_bus_id(&args.bus.socket),
    };
    mapping::valid_bus_id(&bus_id)?;
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|err| err.to_string())?
        .as_micros() as u64;
    runtime.block_on(async {
        let mut stop = stop;
        let client = nats::connect(&args.nats.nats, args.ack_timeout)
            .await
            .map_err(|err| format!("NATS {}: {err}", args.nats.nats))?;
        let js = jetstream::context::ContextBuilder::new()
            .timeout(args.ack_timeout)
            // The window is bounded by the count and byte semaphores below; the client's own bound
            // would only park a publish on copies a resync already abandoned.
            .max_ack_inflight(1 << 24)
            .backpressure_on_inflight(true)
            .build(client.clone());
        let config = nats::stream_config(
            &args.nats.stream,
            &format!("{}.>", args.subject_prefix),
            &args.nats,
        );
        let Some(stream) = nats::ensure_stream(&js, config, &mut stop).await else {
            return Ok(Ended::Signal);
        };
        let max_payload = client.server_info().max_payload;
        tracing::info!(%bus_id, epoch, max_payload, "publishing");

        let count = Arc::new(Semaphore::new(args.max_inflight as usize));
        let bytes = Arc::new(Semaphore::new(args.max_inflight_bytes as usize));
        let (to_publisher, from_ring) = mpsc::unbounded_channel();
        let ring = RingThread {
            consumer,
            cancel: cancel.clone(),
            count,
            bytes,
            max_bytes: args.max_inflight_bytes,
            bus_id: bus_id.clone(),
            max_payload,
            oversize: args.oversize,
            runtime: tokio::runtime::Handle::current(),
            to_publisher,
        };
        let ring_thread = std::thread::Builder::new()
            .name("ring".into())
            .spawn(move || ring.run())
            .map_err(|err| format!("cannot start the ring thread: {err}"))?;

        let mut publisher = Publisher {
            js,
            stream,
            prefix: args.subject_prefix.clone(),
            bus_id,
            epoch,
            window: VecDeque::new(),
            next_seq: 0,
            stored_below: 0,
            anchor: (0, 0),
            generation: 0,
            pending: FuturesUnordered::new(),
            stats,
            started: None,
        };
        let ended = publisher.run(from_ring, stop).await;
        // The ring thread has ended (it sent its end) or ends now that the token is cancelled.
        cancel.cancel();
        let _ = ring_thread.join();
        Ok(ended)
    })
}

/// `{host name}:{socket path}`.
fn default_bus_id(socket: &std::path::Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let id = format!("{host}:{}", socket.display());
    id.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != mapping::MSG_ID_SEPARATOR {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect()
}

struct RingThread {
    consumer: Consumer,
    cancel: CancelToken,
    count: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_bytes: u32,
    bus_id: String,
    max_payload: usize,
    oversize: OversizePolicy,
    runtime: tokio::runtime::Handle,
    to_publisher: mpsc::UnboundedSender<FromRing>,
}

impl RingThread {
    fn run(mut self) {
        let end = self.drain();
        let _ = self.to_publisher.send(FromRing::End(end));
    }

    fn drain(&mut self) -> Ended {
        loop {
            let message = match self.consumer.recv_timeout(POLL) {
                Ok(message) => message,
                Err(RingError::Timeout(_)) => continue,
                Err(RingError::Cancelled(_)) => return Ended::Signal,
                Err(RingError::PeerGone { .. }) => return Ended::PeerGone,
                Err(err) => return Ended::Ring(err),
            };
            if let Err(oversize) =
                mapping::check_size(message.len(), &self.bus_id, self.max_payload)
            {
                match self.oversize {
                    OversizePolicy::Error => return Ended::Oversize(oversize),
                    OversizePolicy::Skip => {
                        tracing::warn!(%oversize, "skipped");
                        let _ = self.to_publisher.send(FromRing::Skipped);
                        continue;
                    }
                }
            }
            // Room in the window first; the slot stays taken (the message stays in the ring)
            // until there is.
            let share = (message.len() as u32).min(self.max_bytes);
            let permits = loop {
                if self.cancel.is_cancelled() {
                    return Ended::Signal;
                }
                let count = Arc::clone(&self.count);
                let bytes = Arc::clone(&self.bytes);
                let acquired = self.runtime.block_on(async {
                    tokio::time::timeout(POLL, async {
                        let one = count.acquire_owned().await.ok()?;
                        let share = bytes.acquire_many_owned(share).await.ok()?;
                        Some([one, share])
                    })
                    .await
                });
                match acquired {
                    Ok(Some(permits)) => break permits,
                    Ok(None) => return Ended::Signal, // the publisher closed the semaphores
                    Err(_elapsed) => continue,
                }
            };
            let intake = Intake {
                type_id: message.type_id(),
                payload: Bytes::copy_from_slice(message.data()),
                permits,
            };
            if self.to_publisher.send(FromRing::Message(intake)).is_err() {
                return Ended::Signal;
            }
            drop(message); // the slot is released: the message is now the window's
        }
    }
}

/// A message published and not yet known to be stored.
struct Entry {
    seq: u64,
    type_id: u32,
    payload: Bytes,
    /// Which resync round published it last; a failure of an older copy is ignored.
    generation: u64,
    _permits: [OwnedSemaphorePermit; 2],
}

type AckResult = (u64, u64, Result<PublishAck, PublishError>);

struct Publisher<'s> {
    js: jetstream::Context,
    stream: stream::Stream,
    prefix: String,
    bus_id: String,
    epoch: u64,
    /// Un-acknowledged messages, oldest first, consecutive sequences.
    window: VecDeque<Entry>,
    next_seq: u64,
    /// Every message of this run with a lower sequence is stored.
    stored_below: u64,
    /// `(k, s)`: message `k` goes right after stream sequence `s` (so `k + j` after `s + j`).
    anchor: (u64, u64),
    generation: u64,
    pending: FuturesUnordered<BoxFuture<'static, AckResult>>,
    stats: &'s mut Stats,
    started: Option<Instant>,
}

impl Publisher<'_> {
    async fn run(
        &mut self,
        mut from_ring: mpsc::UnboundedReceiver<FromRing>,
        mut stop: watch::Receiver<bool>,
    ) -> Ended {
        // The stream's last sequence now is where message 0 goes.
        self.resync_anchor().await;
        let mut ended: Option<Ended> = None;
        let mut next_progress = Instant::now() + PROGRESS_EVERY;
        loop {
            if ended.is_some() && self.window.is_empty() {
                break;
            }
            tokio::select! {
                intake = from_ring.recv(), if ended.is_none() => match intake {
                    Some(FromRing::Message(intake)) => self.admit(intake).await,
                    Some(FromRing::Skipped) => self.stats.oversize_skipped += 1,
                    Some(FromRing::End(end)) => {
                        tracing::info!(inflight = self.window.len(), "intake ended; draining the window");
                        ended = Some(end);
                    }
                    None => ended = Some(Ended::Signal),
                },
                Some((seq, generation, result)) = self.pending.next() => {
                    self.on_ack(seq, generation, result).await;
                }
                _ = stop.changed(), if !*stop.borrow() => {
                    // Intake stops at the ring thread (the token is cancelled); keep going until
                    // it reports its end, then drain.
                }
                _ = tokio::time::sleep_until(next_progress.into()) => {
                    tracing::info!("{}", self.stats.progress_line());
                    next_progress = Instant::now() + PROGRESS_EVERY;
                }
            }
        }
        if let Some(started) = self.started {
            self.stats.elapsed_s = started.elapsed().as_secs_f64();
        }
        ended.unwrap_or(Ended::Signal)
    }

    async fn admit(&mut self, intake: Intake) {
        self.started.get_or_insert_with(Instant::now);
        let entry = Entry {
            seq: self.next_seq,
            type_id: intake.type_id,
            payload: intake.payload,
            generation: self.generation,
            _permits: intake.permits,
        };
        self.next_seq += 1;
        self.publish(&entry).await;
        self.window.push_back(entry);
        self.stats.inflight_high_water =
            self.stats.inflight_high_water.max(self.window.len() as u64);
    }

    async fn publish(&mut self, entry: &Entry) {
        let (anchor_seq, anchor_stream) = self.anchor;
        let expected_last = anchor_stream + entry.seq.saturating_sub(anchor_seq);
        let id = MessageId {
            bus_id: self.bus_id.clone(),
            epoch: self.epoch,
            seq: entry.seq,
        };
        let mut publish = PublishMessage::build()
            .payload(entry.payload.clone())
            .message_id(id.to_string())
            .header(mapping::TYPE_ID_HEADER, entry.type_id.to_string().as_str());
        if expected_last > 0 {
            publish = publish.expected_last_sequence(expected_last);
        }
        let subject = mapping::subject_for(&self.prefix, entry.type_id);
        let (seq, generation) = (entry.seq, entry.generation);
        match self.js.send_publish(subject, publish).await {
            Ok(ack) => self
                .pending
                .push(Box::pin(async move { (seq, generation, ack.await) })),
            Err(err) => self
                .pending
                .push(Box::pin(async move { (seq, generation, Err(err)) })),
        }
    }

    async fn on_ack(
        &mut self,
        seq: u64,
        generation: u64,
        result: Result<PublishAck, PublishError>,
    ) {
        match result {
            Ok(ack) => {
                if ack.duplicate {
                    self.stats.duplicates += 1;
                }
                self.mark_stored(seq, ack.sequence);
            }
            Err(err) => {
                let live = self
                    .window
                    .front()
                    .and_then(|front| seq.checked_sub(front.seq))
                    .and_then(|index| self.window.get(index as usize))
                    .is_some_and(|entry| entry.generation == generation);
                if !live {
                    return; // stored meanwhile, or an older copy of a message sent again
                }
                if !matches!(err.kind(), PublishErrorKind::WrongLastSequence) {
                    tracing::warn!(seq, %err, "publish failed; resyncing with the stream");
                    tokio::time::sleep(nats::RETRY_EVERY).await;
                } else {
                    tracing::debug!(seq, %err, "publish refused by sequence; resyncing");
                }
                self.resync().await;
            }
        }
    }

    /// Message `seq` of this run is at `stream_seq`, so every earlier one is stored too.
    fn mark_stored(&mut self, seq: u64, stream_seq: u64) {
        if seq + 1 > self.stored_below {
            self.stored_below = seq + 1;
        }
        if seq + 1 > self.anchor.0 {
            self.anchor = (seq + 1, stream_seq);
        }
        while self
            .window
            .front()
            .is_some_and(|front| front.seq < self.stored_below)
        {
            let entry = self.window.pop_front().expect("front exists");
            self.stats.messages += 1;
            self.stats.bytes += entry.payload.len() as u64;
        }
    }

    /// Learns from the stream what is stored, then publishes the rest of the window again.
    async fn resync(&mut self) {
        // The acknowledgements still awaited are of copies this resync replaces: what they
        // would tell, the stream tells below.
        self.pending = FuturesUnordered::new();
        self.resync_anchor().await;
        self.generation += 1;
        let generation = self.generation;
        let mut window = std::mem::take(&mut self.window);
        for entry in window.iter_mut() {
            entry.generation = generation;
            self.stats.retries += 1;
            self.publish(entry).await;
        }
        self.window = window;
    }

    /// Reads the stream's last message until the server answers: if it is one of ours, every
    /// message up to it is stored; either way the first unstored message goes right after it.
    async fn resync_anchor(&mut self) {
        let mut attempts = 0u64;
        let (last_stream_seq, last_id) = loop {
            match self.last_message().await {
                Ok(last) => break last,
                Err(err) => {
                    attempts += 1;
                    if attempts == 1 || attempts % 20 == 0 {
                        tracing::warn!(%err, attempts, "cannot read the stream's last message yet; retrying");
                    }
                    tokio::time::sleep(nats::RETRY_EVERY).await;
                }
            }
        };
        match last_id {
            Some(id) if id.bus_id == self.bus_id && id.epoch == self.epoch => {
                self.mark_stored(id.seq, last_stream_seq);
            }
            _ => {
                // Nothing of this run is stored: the first unstored message goes next.
                self.anchor = (self.stored_below, last_stream_seq);
            }
        }
    }

    async fn last_message(&mut self) -> Result<(u64, Option<MessageId>), async_nats::Error> {
        let info = self.stream.get_info().await?;
        let last = info.state.last_sequence;
        if last == 0 || info.state.messages == 0 {
            return Ok((last, None));
        }
        let message = self.stream.get_raw_message(last).await?;
        let id = message
            .headers
            .get(mapping::MSG_ID_HEADER)
            .and_then(|value| MessageId::parse(value.as_str()));
        Ok((last, id))
    }
}
