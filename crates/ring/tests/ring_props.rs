//! Property tests of one in-process ring: random payload sizes, reserve/rollback and
//! send/receive interleavings through many wrap-arounds, checked against a model queue.

use std::collections::VecDeque;

use proptest::prelude::*;
use tachyon_ring::{Bus, Error};

#[derive(Clone, Debug)]
enum Op {
    /// Copying send of `len` bytes; publishing (`send`) or batched (`send_unflushed`).
    Send { len: usize, publish: bool },
    /// Zero-copy reserve of `max` bytes, committing `Some(len)` of them (publishing or
    /// batched) or rolling back.
    Reserve {
        max: usize,
        commit: Option<usize>,
        publish: bool,
    },
    /// Receive up to `n` messages.
    Recv(usize),
    /// Publish the producer's pending commits.
    Flush,
}

fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (seq.wrapping_mul(31).wrapping_add(j as u64) % 251) as u8)
        .collect()
}

fn ops(max_payload: usize) -> impl Strategy<Value = Vec<Op>> {
    // Mostly small messages, sometimes up to the largest that fits.
    let len = prop_oneof![4 => 0..=max_payload.min(200), 1 => 0..=max_payload];
    let op = prop_oneof![
        4 => (len.clone(), any::<bool>()).prop_map(|(len, publish)| Op::Send { len, publish }),
        2 => (len, any::<Option<prop::sample::Index>>(), any::<bool>()).prop_map(
            |(max, commit, publish)| Op::Reserve {
                max,
                commit: commit.map(|i| i.index(max + 1)),
                publish,
            }
        ),
        4 => (1usize..40).prop_map(Op::Recv),
        1 => Just(Op::Flush),
    ];
    prop::collection::vec(op, 1..400)
}

fn capacity_and_ops() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (6u32..=13).prop_flat_map(|shift| {
        let capacity = 1usize << shift;
        (Just(capacity), ops(capacity - 64))
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_committed_message_arrives_once_in_order((capacity, ops) in capacity_and_ops()) {
        let (mut producer, mut consumer) = Bus::in_memory(capacity).unwrap().split();
        let mut published: VecDeque<(u32, Vec<u8>)> = VecDeque::new();
        let mut pending: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut seq = 0u64;

        for op in ops {
            match op {
                Op::Send { len, publish } => {
                    let message = (1 + (seq % 1000) as u32, payload(seq, len));
                    let sent = if publish {
                        producer.send(message.0, &message.1)
                    } else {
                        producer.send_unflushed(message.0, &message.1)
                    };
                    match sent {
                        Ok(()) => { pending.push(message); seq += 1; }
                        Err(Error::Full { .. }) => {}
                        Err(other) => panic!("send: {other}"),
                    }
                }
                Op::Reserve { max, commit, publish } => match producer.reserve(max) {
                    Ok(mut slot) => {
                        let bytes = payload(seq, max);
                        slot.copy_from_slice(&bytes);
                        if let Some(len) = commit {
                            let type_id = 1 + (seq % 1000) as u32;
                            if publish {
                                slot.commit(len, type_id).unwrap();
                            } else {
                                slot.commit_unflushed(len, type_id).unwrap();
                            }
                            pending.push((type_id, bytes[..len].to_vec()));
                            seq += 1;
                        }
                    }
                    Err(Error::Full { .. }) => {}
                    Err(other) => panic!("reserve: {other}"),
                },
                Op::Flush => producer.flush(),
                Op::Recv(n) => {
                    for _ in 0..n {
                        let Some(message) = consumer.try_recv().unwrap() else { break };
                        let expected = published.pop_front().expect("received more than was published");
                        prop_assert_eq!(message.type_id(), expected.0);
                        prop_assert_eq!(message.data(), &expected.1[..]);
                    }
                }
            }
            // What the producer has published is exactly the batches it has flushed: pending
            // drops to zero on every publish (each publishing send or commit is one).
            if producer.unpublished() == 0 {
                published.extend(pending.drain(..));
            }
        }
        producer.flush();
        published.extend(pending.drain(..));
        while let Some(message) = consumer.try_recv().unwrap() {
            let expected = published.pop_front().expect("received more than was published");
            prop_assert_eq!(message.type_id(), expected.0);
            prop_assert_eq!(message.data(), &expected.1[..]);
        }
        prop_assert!(published.is_empty(), "{} published messages never arrived", published.len());

        // No capacity deadlock: with the consumer drained, the largest message always gets
        // through, wherever the head stands. When a skip plus the slot exceed the ring, the
        // producer first publishes the skip alone; one pass of the consumer frees it.
        let largest = payload(seq, producer.max_payload());
        let mut drains = 0;
        loop {
            match producer.send(7, &largest) {
                Ok(()) => break,
                Err(Error::Full { .. }) if drains < 1 => {
                    drains += 1;
                    prop_assert!(consumer.try_recv().unwrap().is_none(), "only a skip was pending");
                }
                Err(other) => panic!("largest message after a drain: {other}"),
            }
        }
        let message = consumer.try_recv().unwrap().expect("send published the largest message");
        prop_assert_eq!(message.data(), &largest[..]);
    }
}
