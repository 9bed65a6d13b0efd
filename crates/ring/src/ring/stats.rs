//! Counters of one end of a ring, for a service to export (Prometheus, logs, a status page).
//! Each end counts only what it does itself, in plain fields updated on its own thread: taking
//! a snapshot costs one atomic load of the other end's cursor, and nothing on the hot path.

/// A producer's counters since the bus opened; see [`Producer::stats`](crate::Producer::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProducerStats {
    /// Messages committed (published or not yet).
    pub committed: u64,
    /// Payload bytes of those messages.
    pub committed_bytes: u64,
    /// Messages visible to the consumer (committed minus the unpublished batch).
    pub published: u64,
    /// Times a send or reserve found the ring full (a waiting send counts once, however long
    /// it waits).
    pub full_events: u64,
    /// Publishes that woke a consumer asleep on the futex.
    pub wakes: u64,
    /// Ring bytes in use now: committed messages the consumer has not released.
    pub depth_bytes: u64,
    /// Ring bytes.
    pub capacity: u64,
}

impl ProducerStats {
    /// `depth_bytes` as a share of the ring, 0.0 to 1.0.
    pub fn fill(&self) -> f64 {
        fill(self.depth_bytes, self.capacity)
    }
}

/// A consumer's counters since the bus opened; see [`Consumer::stats`](crate::Consumer::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConsumerStats {
    /// Messages received and released.
    pub received: u64,
    /// Payload bytes of those messages.
    pub received_bytes: u64,
    /// Sleeps on the futex (after spinning on an empty ring).
    pub sleeps: u64,
    /// Sleeps a producer's wake ended (the rest timed out).
    pub wakeups: u64,
    /// Ring bytes published by the producer and not yet released here.
    pub depth_bytes: u64,
    /// Ring bytes.
    pub capacity: u64,
}

impl ConsumerStats {
    /// `depth_bytes` as a share of the ring, 0.0 to 1.0.
    pub fn fill(&self) -> f64 {
        fill(self.depth_bytes, self.capacity)
    }
}

fn fill(depth: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        0.0
    } else {
        depth.min(capacity) as f64 / capacity as f64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{Bus, Error};

    #[test]
    fn both_ends_count_messages_bytes_depth_and_full_events() {
        let (mut producer, mut consumer) = Bus::in_memory(1024).unwrap().split();
        producer.send(1, &[7; 100]).unwrap();
        producer.send_unflushed(1, &[7; 10]).unwrap();
        let stats = producer.stats();
        assert_eq!(
            (stats.committed, stats.committed_bytes, stats.published),
            (2, 110, 1)
        );
        assert_eq!((stats.depth_bytes, stats.capacity), (192 + 128, 1024));
        assert_eq!(
            consumer.stats().depth_bytes,
            192,
            "only the published message"
        );
        producer.flush();

        // Fill the ring: one full event, however many times the send retries.
        while producer.send(1, &[7; 100]).is_ok() {}
        assert!(matches!(
            producer.send_timeout(1, &[7; 100], Duration::from_millis(20)),
            Err(Error::Timeout(_))
        ));
        assert_eq!(producer.stats().full_events, 1);
        // 192 + 128, then three more 192-byte slots: 128 bytes left, too few for a fourth.
        assert_eq!(producer.stats().fill(), 896.0 / 1024.0);

        let mut received_bytes = 0;
        while let Some(message) = consumer.try_recv().unwrap() {
            received_bytes += message.len() as u64;
        }
        let stats = consumer.stats();
        assert_eq!(stats.received, producer.stats().committed);
        assert_eq!(stats.received_bytes, received_bytes);
        assert_eq!((stats.depth_bytes, stats.fill()), (0, 0.0));
        producer.send(1, &[]).unwrap();
        producer.send(1, &[]).unwrap();
        let _ = producer.send(1, &[]);
        assert_eq!(
            producer.stats().full_events,
            1,
            "space came back: no new event"
        );
    }
}
