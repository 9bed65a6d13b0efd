//! Entry points for fuzzing the parts a hostile peer controls: the bytes of a shared region,
//! as seen at attach and by a consumer. Built for the crate's own tests and, with the
//! `fuzzing` feature, for the `cargo fuzz` targets in `crates/ring/fuzz/`. Not a stable API.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::consumer::Consumer;
use crate::error::Error;
use crate::layout::ARENA_HEADER_LEN;
use crate::shm::Region;

/// Reads little-endian u64s off the front of the input, then the rest as bytes.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u64(&mut self) -> u64 {
        let mut word = [0u8; 8];
        let n = self.0.len().min(8);
        word[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(word)
    }
}

/// A heap ring of 64 << (first byte mod 11) bytes (64 B to 64 KiB) whose cursors and ring
/// bytes the rest of the input sets, consumed until it runs dry or reports corruption.
/// Every payload is read in full. Returns the messages delivered and the error, if any.
///
/// Whatever the input, this must neither panic nor touch memory outside the region.
pub fn consume_untrusted(input: &[u8]) -> (u64, Option<Error>) {
    let Some((&shift, rest)) = input.split_first() else {
        return (0, None);
    };
    let capacity = 64usize << (shift % 11);
    let mut input = Input(rest);
    let (head, tail) = (input.u64(), input.u64());
    let region = Region::heap(capacity).expect("capacities 64 << 0..=10 are valid");
    let ring_bytes = &input.0[..input.0.len().min(capacity)];
    // SAFETY: the ring is `capacity` bytes and nobody else holds the fresh region.
    unsafe { std::ptr::copy_nonoverlapping(ring_bytes.as_ptr(), region.ring(), ring_bytes.len()) };
    region.header().head.store(head, Ordering::Release);
    region.header().tail.store(tail, Ordering::Release);
    let mut consumer = Consumer::new(Arc::new(region), 0, false, None);
    let mut checksum = 0u64;
    // A hostile ring can hold at most capacity / 64 slots per lap; bound the walk anyway.
    for _ in 0..=capacity / 64 {
        let step = match consumer.try_recv() {
            Ok(Some(message)) => {
                checksum = message
                    .data()
                    .iter()
                    .fold(checksum, |sum, &b| sum.wrapping_add(b.into()));
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(err) => Err(err),
        };
        match step {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => return (consumer.received(), Some(err)),
        }
    }
    std::hint::black_box(checksum);
    (consumer.received(), None)
}

/// A producer on a heap ring of 64 << (first byte mod 11) bytes whose consumer is hostile:
/// the input is a script of steps, each either a send (of a size the step's bytes choose, up
/// to twice the ring) or a tail value the "consumer" publishes, however absurd. Returns the
/// messages committed and the first error that is not `Full`/`MessageTooLarge`/`CannotPlace`.
///
/// Whatever the script, this must neither panic nor write outside the region.
pub fn produce_untrusted(input: &[u8]) -> (u64, Option<Error>) {
    let Some((&shift, rest)) = input.split_first() else {
        return (0, None);
    };
    let capacity = 64usize << (shift % 11);
    let region = Arc::new(Region::heap(capacity).expect("capacities 64 << 0..=10 are valid"));
    let mut producer = crate::producer::Producer::new(Arc::clone(&region), None);
    let mut input = Input(rest);
    let payload = vec![0xA5u8; 2 * capacity];
    let mut committed = 0;
    while !input.0.is_empty() {
        let step = input.u64();
        if step & 1 == 0 {
            let len = ((step >> 1) as usize) % (2 * capacity);
            match producer.send_unflushed(1, &payload[..len]) {
                Ok(()) => committed += 1,
                Err(
                    Error::Full { .. } | Error::MessageTooLarge { .. } | Error::CannotPlace { .. },
                ) => {}
                Err(other) => return (committed, Some(other)),
            }
        } else {
            region.header().tail.store(step >> 1, Ordering::Release);
        }
    }
    (committed, None)
}

/// A ring whose 768 header bytes are the input's, checked as a connector checks a region it
/// received. Must never panic.
pub fn attach_untrusted(input: &[u8]) -> Result<(), Error> {
    let capacity = 1024;
    let region = Region::heap(capacity).expect("1024 is a valid capacity");
    let header_bytes = &input[..input.len().min(ARENA_HEADER_LEN)];
    // SAFETY: the region starts with ARENA_HEADER_LEN header bytes; nobody else holds it.
    unsafe {
        let base = region.ring().sub(ARENA_HEADER_LEN);
        std::ptr::copy_nonoverlapping(header_bytes.as_ptr(), base, header_bytes.len());
    }
    region.validate_header()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{SKIP_MARKER, SlotHeader};
    use proptest::prelude::*;

    fn slot(size: u32, reserved: u32) -> Vec<u8> {
        let header = SlotHeader {
            size,
            type_id: 1,
            reserved_size: reserved,
            padding: 0,
            correlation_id: 0,
        };
        let mut bytes = bytemuck::bytes_of(&header).to_vec();
        bytes.resize(64, 0);
        bytes
    }

    fn arena(shift: u8, head: u64, tail: u64, ring: &[u8]) -> Vec<u8> {
        let mut input = vec![shift];
        input.extend_from_slice(&head.to_le_bytes());
        input.extend_from_slice(&tail.to_le_bytes());
        input.extend_from_slice(ring);
        input
    }

    #[test]
    fn each_corruption_rule_is_caught() {
        // 256-byte ring (shift 2).
        let cases: [(&str, Vec<u8>, u64); 7] = [
            ("below the 64-byte header", slot(0, 32), 64),
            ("larger than the ring", slot(0, 512), 64),
            ("not a multiple of 64", slot(0, 100), 128),
            ("size larger than the slot", slot(65, 128), 128),
            ("past the published head", slot(0, 192), 64),
            ("skip marker at ring offset 0", slot(SKIP_MARKER, 0), 64),
            ("head is more than a ring ahead", slot(0, 64), 1 << 40),
        ];
        for (what, ring, head) in cases {
            let (delivered, err) = consume_untrusted(&arena(2, head, 0, &ring));
            assert_eq!(delivered, 0, "{what}");
            let err = err.unwrap_or_else(|| panic!("{what}: accepted"));
            assert!(matches!(err, Error::Corrupt(_)), "{what}: {err}");
            assert!(err.to_string().contains(what), "{what}: {err}");
        }
        // A slot running past the ring's end: at ring offset 192 of 256, reserved 128.
        let mut ring = vec![0u8; 192];
        ring.extend(slot(0, 128));
        let (_, err) = consume_untrusted(&arena(2, 192 + 128, 192, &ring));
        assert!(err.unwrap().to_string().contains("past the ring's end"));
    }

    #[test]
    fn cursors_near_u64_max_are_corrupt_not_an_overflow() {
        // Found by cargo fuzz: head and tail at 2^64 - 1 overflowed the cursor arithmetic.
        let mut input = vec![0x0a, 0x0a];
        input.extend([0xff; 18]);
        input.push(0x0a);
        let (delivered, err) = consume_untrusted(&input);
        assert_eq!(delivered, 0);
        assert!(matches!(err, Some(Error::Corrupt(_))), "{err:?}");
        let (_, err) = consume_untrusted(&arena(2, u64::MAX - 63, u64::MAX - 127, &slot(0, 64)));
        assert!(err.unwrap().to_string().contains("beyond 2^62"));
    }

    #[test]
    fn a_well_formed_arena_is_delivered() {
        let mut ring = slot(3, 128);
        ring.resize(128, 0);
        ring.extend(slot(0, 64));
        assert!(matches!(
            consume_untrusted(&arena(2, 192, 0, &ring)),
            (2, None)
        ));
    }

    #[test]
    fn attach_checks_every_header_field() {
        let good = {
            let region = Region::heap(1024).unwrap();
            // SAFETY: reading the 768 header bytes of a region we own.
            unsafe {
                std::slice::from_raw_parts(region.ring().sub(ARENA_HEADER_LEN), ARENA_HEADER_LEN)
                    .to_vec()
            }
        };
        assert!(attach_untrusted(&good).is_ok());
        for (offset, field) in [
            (0, "magic"),
            (4, "version"),
            (8, "capacity"),
            (12, "msg_alignment"),
        ] {
            let mut bad = good.clone();
            bad[offset] ^= 0x40;
            let err = attach_untrusted(&bad).unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
        let cursors = |head: u64, tail: u64| {
            let mut bytes = good.clone();
            bytes[128..136].copy_from_slice(&head.to_le_bytes());
            bytes[256..264].copy_from_slice(&tail.to_le_bytes());
            attach_untrusted(&bytes)
        };
        assert!(cursors(1024, 64).is_ok());
        for (head, tail, problem) in [
            (64, 128, "tail is ahead of head"),
            (2048, 0, "more than a ring ahead"),
            (1 << 63, (1 << 63) - 64, "beyond 2^62"),
            (96, 0, "not 64-byte aligned"),
            (128, 32, "not 64-byte aligned"),
        ] {
            let err = cursors(head, tail).unwrap_err();
            assert!(err.to_string().contains(problem), "{head}/{tail}: {err}");
        }
        let mut fatal = good.clone();
        fatal[16] = 4;
        assert!(
            attach_untrusted(&fatal)
                .unwrap_err()
                .to_string()
                .contains("state 4")
        );
    }

    #[test]
    fn a_hostile_tail_is_caught_by_the_producer() {
        // Two sends of 0 bytes into a one-slot ring (the second finds it full), then the
        // "consumer" publishes a tail of 2^40 (odd step: tail = step >> 1), then more sends.
        let mut script = vec![0u8];
        script.extend(0u64.to_le_bytes());
        script.extend(0u64.to_le_bytes());
        script.extend(((1u64 << 41) | 1).to_le_bytes());
        for _ in 0..4 {
            script.extend(0u64.to_le_bytes());
        }
        let (committed, err) = produce_untrusted(&script);
        assert_eq!(
            committed, 1,
            "the 64-byte ring holds one slot; then the tail is bogus"
        );
        assert!(matches!(err, Some(Error::Corrupt(_))), "{err:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 8 } else { 2048 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Random arenas: never a panic, never an out-of-bounds read (Miri checks the latter).
        #[test]
        fn random_arenas_never_panic(
            shift in 0u8..11,
            head in prop_oneof![0u64..8192, any::<u64>()],
            tail in prop_oneof![0u64..8192, any::<u64>()],
            slots in prop::collection::vec((prop_oneof![0u32..300, Just(SKIP_MARKER), any::<u32>()],
                                            prop_oneof![(0u32..70).prop_map(|n| n * 64), any::<u32>()]), 0..40),
        ) {
            let ring: Vec<u8> = slots.iter().flat_map(|&(size, reserved)| slot(size, reserved)).collect();
            let _ = consume_untrusted(&arena(shift, head, tail, &ring));
        }

        #[test]
        fn random_producer_scripts_never_panic(
            shift in 0u8..11,
            steps in prop::collection::vec(prop_oneof![
                (0u64..20_000).prop_map(|len| len << 1),
                (0u64..70_000).prop_map(|tail| (tail << 1) | 1),
                any::<u64>(),
            ], 0..60),
        ) {
            let mut script = vec![shift];
            for step in steps {
                script.extend(step.to_le_bytes());
            }
            let _ = produce_untrusted(&script);
        }

        #[test]
        fn random_headers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..800)) {
            let _ = attach_untrusted(&bytes);
        }
    }
}
