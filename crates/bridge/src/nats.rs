//! The NATS side shared by both directions: a client that reconnects forever (logging every
//! connection event through `tracing`), and the stream, created when absent.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::watch;

use crate::cli::NatsArgs;

/// How long to wait between attempts while the server is unreachable or JetStream not ready.
pub const RETRY_EVERY: Duration = Duration::from_millis(250);

/// A client that keeps reconnecting (no limit) and logs connects, disconnects and errors.
/// Returns at once even when no server is up yet: the first connect happens in the
/// background, and requests wait for it.
pub async fn connect(url: &str, request_timeout: Duration) -> Result<Client, async_nats::Error> {
    let options = ConnectOptions::new()
        .name("tachyon-bridge")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .request_timeout(Some(request_timeout))
        .reconnect_delay_callback(|attempts| {
            // 50 ms, doubling up to 1 s: quick after a short blip, gentle on a long outage.
            Duration::from_millis(50u64 << attempts.min(5)).min(Duration::from_secs(1))
        })
        .event_callback(|event| async move {
            match event {
                Event::Connected => tracing::info!("connected to the NATS server"),
                Event::Disconnected => {
                    tracing::warn!("disconnected from the NATS server; reconnecting")
                }
                Event::ClientError(err) => tracing::warn!(%err, "NATS client error"),
                Event::ServerError(err) => tracing::warn!(%err, "NATS server error"),
                other => tracing::info!(event = %other, "NATS event"),
            }
        });
    Ok(options.connect(url).await?)
}

/// The stream configuration either side creates when the stream is absent.
///
/// - `discard: new`: a full stream refuses new messages (the publisher retries, so back-pressure
///   reaches the bus) instead of silently dropping the oldest.
/// - `duplicate_window`: the span in which a retried publish is recognised by its
///   `Nats-Msg-Id`; see docs/bridge.md for how it bounds the outage that stays exactly-once
///   by id alone (the publisher's expected-sequence check covers longer ones).
pub fn stream_config(name: &str, subjects: &str, args: &NatsArgs) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![subjects.to_owned()],
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        duplicate_window: args.duplicate_window,
        num_replicas: args.replicas,
        ..Default::default()
    }
}

/// Gets the stream, creating it when absent; retries (logging) until the server answers or
/// `stop` turns true.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
    stop: &mut watch::Receiver<bool>,
) -> Option<stream::Stream> {
    let mut attempts = 0u64;
    loop {
        if *stop.borrow() {
            return None;
        }
        // A request waits for the connection (up to its timeout): a signal ends it at once.
        let attempt = tokio::select! {
            attempt = js.get_or_create_stream(config.clone()) => attempt,
            _ = stop.changed() => return None,
        };
        match attempt {
            Ok(stream) => {
                tracing::info!(stream = %config.name, "stream ready");
                return Some(stream);
            }
            Err(err) => {
                attempts += 1;
                if attempts == 1 || attempts % 20 == 0 {
                    tracing::warn!(stream = %config.name, %err, attempts, "stream not reachable yet; retrying");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}
