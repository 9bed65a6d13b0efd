//! Entry points for fuzzing the parts a hostile peer controls: the bytes of a shared region,
//! as seen at attach and by a consumer, and the cursors it rewrites while we load them. Built for the crate's own tests and, with the
//! `fuzzing` feature, for the `cargo fuzz` targets in `crates/ring/fuzz/`. Not a stable API.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::Error;
use crate::ring::consumer::Consumer;
use crate::ring::shm::{CursorWrite, Region};
use crate::wire::layout::ARENA_HEADER_LEN;

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

    /// A count byte (mod 8), then that many words: cursor writes the peer makes, one before
    /// each cursor load of ours (bit 0 picks tail or head, the rest is the value).
    fn scripted_peer(&mut self, region: &Region) {
        let Some((&count, rest)) = self.0.split_first() else {
            return;
        };
        self.0 = rest;
        let mut script = region.scripted_peer.0.lock().expect("fresh region");
        for _ in 0..count % 8 {
            let word = self.u64();
            script.push_back(if word & 1 == 1 {
                CursorWrite::Tail(word >> 1)
            } else {
                CursorWrite::Head(word >> 1)
            });
        }
    }
}

/// A heap ring of 64 << (first byte mod 11) bytes (64 B to 64 KiB) whose cursors, the cursor
/// writes a peer makes between our loads (see `Input::scripted_peer`) and ring bytes the
/// rest of the input sets, consumed until it runs dry or reports corruption. With bit 7 of
/// the first byte the ring is an RPC reply ring whose caller waits for the id in the next
/// word (mod 2^16): no reply to an earlier id may be delivered. On an SPSC ring every
/// message's correlation id must read 0, whatever its header bytes hold.
/// Every payload is read in full. Returns the messages delivered and the error, if any.
///
/// Whatever the input, this must neither panic nor touch memory outside the region.
pub fn consume_untrusted(input: &[u8]) -> (u64, Option<Error>) {
    let Some((&shift, rest)) = input.split_first() else {
        return (0, None);
    };
    let capacity = 64usize << ((shift & 0x7F) % 11);
    let mut input = Input(rest);
    let rpc_waits_for = (shift & 0x80 != 0).then(|| input.u64() % (1 << 16));
    let (head, tail) = (input.u64(), input.u64());
    let region = Region::heap(capacity).expect("capacities 64 << 0..=10 are valid");
    input.scripted_peer(&region);
    let ring_bytes = &input.0[..input.0.len().min(capacity)];
    // SAFETY: the ring is `capacity` bytes and nobody else holds the fresh region.
    unsafe { std::ptr::copy_nonoverlapping(ring_bytes.as_ptr(), region.ring(), ring_bytes.len()) };
    region.header().head.store(head, Ordering::Release);
    region.header().tail.store(tail, Ordering::Release);
    let mut consumer = Consumer::new(Arc::new(region), 0, false, None);
    if let Some(id) = rpc_waits_for {
        consumer = consumer.reading_rpc();
        consumer.discard_correlation_ids_below(id);
    }
    let mut checksum = 0u64;
    let mut delivered = 0;
    // A hostile ring can hold at most capacity / 64 slots per lap; bound the walk anyway.
    for _ in 0..=capacity / 64 {
        let step = match consumer.try_recv() {
            Ok(Some(message)) => {
                let id = message.correlation_id();
                match rpc_waits_for {
                    None => assert_eq!(id, 0, "an SPSC message with a correlation id"),
                    Some(waited) => assert!(
                        id == 0 || id >= waited,
                        "a reply to abandoned call {id} delivered while waiting for {waited}"
                    ),
                }
                checksum = message
                    .data()
                    .iter()
                    .fold(checksum, |sum, &b| sum.wrapping_add(b.into()));
                delivered += 1;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(err) => Err(err),
        };
        match step {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => return (delivered, Some(err)),
        }
    }
    std::hint::black_box(checksum);
    (delivered, None)
}

/// A producer on a heap ring of 64 << (first byte mod 11) bytes whose consumer is hostile:
/// after the cursor writes it makes between our loads (see `Input::scripted_peer`, which
/// reach the producer's start too), the input is a script of steps, each either a send (of a size the step's bytes choose, up
/// to twice the ring) or a tail value the "consumer" publishes, however absurd. Returns the
/// messages committed and the first error that is not `Full`/`MessageTooLarge`/`CannotPlace`.
///
/// Whatever the script, this must neither panic nor write outside the region.
pub fn produce_untrusted(input: &[u8]) -> (u64, Option<Error>) {
    let Some((&shift, rest)) = input.split_first() else {
        return (0, None);
    };
    let capacity = 64usize << (shift % 11);
    let region = Region::heap(capacity).expect("capacities 64 << 0..=10 are valid");
    let mut input = Input(rest);
    input.scripted_peer(&region);
    let region = Arc::new(region);
    let mut producer = crate::ring::producer::Producer::new(Arc::clone(&region), None);
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

/// What a hostile listener hands a connector: a handshake (the input's first 32 bytes XORed
/// onto a valid SPSC handshake for 4 KiB, so the fuzzer explores from a valid one), then one
/// byte choosing each fd (bits 0–1 forward ring, 2–3 reverse ring): 0 a formatted memfd of the
/// announced capacity where one can be made (else a sealed, zeroed memfd of the announced
/// size), 1 an unsealed memfd, 2 a sealed memfd half the announced size, 3 a sealed hugetlb
/// memfd. Checked and mapped as a connector with `max_capacity` 1 MiB does; on success every
/// ring is within that limit.
///
/// Whatever the input, this must neither panic nor map more than the limit (nor SIGBUS).
pub fn handshake_untrusted(input: &[u8]) -> Result<(), Error> {
    const LIMIT: usize = 1 << 20;
    let mut words: [u8; 32] = bytemuck::cast(crate::wire::layout::Handshake::new(4096, None));
    for (word, flip) in words.iter_mut().zip(input) {
        *word ^= flip;
    }
    let handshake: crate::wire::layout::Handshake = bytemuck::cast(words);
    let kinds = input.get(32).copied().unwrap_or(0);
    let rpc = handshake.flags & crate::wire::layout::FLAG_RPC != 0;
    crate::handshake::validate(&handshake, rpc)?;
    let mut fds = vec![hostile_fd(
        kinds & 3,
        handshake.capacity_fwd,
        handshake.shm_size_fwd,
    )?];
    if rpc {
        fds.push(hostile_fd(
            (kinds >> 2) & 3,
            handshake.capacity_rev,
            handshake.shm_size_rev,
        )?);
    }
    let regions = crate::bus::BusOptions::default()
        .max_capacity(LIMIT)
        .attach_received(&handshake, &fds)?;
    for region in &regions {
        assert!(region.capacity() <= LIMIT, "mapped beyond max_capacity");
    }
    Ok(())
}

fn hostile_fd(kind: u8, capacity: u32, shm_size: u32) -> Result<std::os::fd::OwnedFd, Error> {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let capacity = capacity as usize;
    if kind == 0 && crate::wire::layout::capacity_problem(capacity).is_none() && capacity <= 1 << 20
    {
        return Region::create_memfd("fuzz", capacity).map(|(_, fd)| fd);
    }
    let mut flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let mut size = i64::from(shm_size);
    match kind {
        2 => size /= 2,
        3 => {
            flags |= MFdFlags::MFD_HUGETLB;
            size = (size as u64).next_multiple_of(2 << 20) as i64;
        }
        _ => {}
    }
    let fd = memfd_create("fuzz", flags)
        .or_else(|_| memfd_create("fuzz", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING))
        .map_err(|e| Error::os("memfd_create", e))?;
    nix::unistd::ftruncate(&fd, size).map_err(|e| Error::os("ftruncate", e))?;
    if kind != 1 {
        fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK))
            .map_err(|e| Error::os("fcntl(F_ADD_SEALS)", e))?;
    }
    Ok(fd)
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
    use crate::wire::layout::{SKIP_MARKER, SlotHeader};
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
        input.push(0); // no cursor writes between our loads
        input.extend_from_slice(ring);
        input
    }

    /// `arena`, with a peer that makes `writes` (head or tail) before our cursor loads.
    fn arena_with_peer(
        shift: u8,
        head: u64,
        tail: u64,
        writes: &[CursorWrite],
        ring: &[u8],
    ) -> Vec<u8> {
        let mut input = arena(shift, head, tail, &[]);
        input.pop();
        input.push(writes.len() as u8);
        for write in writes {
            input.extend(peer_word(*write).to_le_bytes());
        }
        input.extend_from_slice(ring);
        input
    }

    fn peer_word(write: CursorWrite) -> u64 {
        match write {
            CursorWrite::Head(head) => head << 1,
            CursorWrite::Tail(tail) => (tail << 1) | 1,
        }
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
        input.push(0x00);
        input.push(0x0a);
        let (delivered, err) = consume_untrusted(&input);
        assert_eq!(delivered, 0);
        assert!(matches!(err, Some(Error::Corrupt(_))), "{err:?}");
        let (_, err) = consume_untrusted(&arena(2, u64::MAX - 63, u64::MAX - 127, &slot(0, 64)));
        assert!(err.unwrap().to_string().contains("beyond 2^62"));
    }

    /// A cursor write a hostile peer makes between two of our loads: small values, aligned or
    /// a few bytes off, and anything.
    fn cursor_write() -> impl Strategy<Value = CursorWrite> {
        let value = prop_oneof![
            (0u64..128).prop_map(|n| n * 64),
            (0u64..8192),
            (0u64..(u64::MAX >> 1)),
        ];
        (any::<bool>(), value).prop_map(|(tail, value)| {
            if tail {
                CursorWrite::Tail(value)
            } else {
                CursorWrite::Head(value)
            }
        })
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
        let mut script = vec![0u8, 0];
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

    #[test]
    fn cursors_a_peer_changes_between_our_loads_are_checked_as_loaded() {
        use CursorWrite::{Head, Tail};
        // A valid pair (128, 0) in the header; the peer moves the tail to 4 just before our
        // tail load: the consumer must refuse (4, misaligned), not start reading there.
        let (delivered, err) = consume_untrusted(&arena_with_peer(
            2,
            128,
            0,
            &[Head(128), Tail(4)],
            &slot(0, 128),
        ));
        assert_eq!(delivered, 0);
        assert!(err.unwrap().to_string().contains("not 64-byte aligned"));
        // A tail above the head at the producer's start: corrupt, not an underflow.
        let mut script = vec![2u8, 2];
        script.extend(peer_word(Head(0)).to_le_bytes());
        script.extend(peer_word(Tail(64)).to_le_bytes());
        script.extend(0u64.to_le_bytes());
        let (committed, err) = produce_untrusted(&script);
        assert_eq!(committed, 0);
        assert!(err.unwrap().to_string().contains("tail is ahead of head"));
        // A misaligned head published later: corrupt at the consumer's next head load.
        let (delivered, err) = consume_untrusted(&arena_with_peer(
            2,
            0,
            0,
            &[Head(0), Tail(0), Head(68)],
            &slot(0, 64),
        ));
        assert_eq!(delivered, 0);
        assert!(err.unwrap().to_string().contains("not 64-byte aligned"));
    }

    /// The `handshake_untrusted` input that yields the handshake `words`.
    fn handshake_input(words: [u32; 8]) -> Vec<u8> {
        let valid: [u32; 8] = bytemuck::cast(crate::wire::layout::Handshake::new(4096, None));
        words
            .iter()
            .zip(valid)
            .flat_map(|(word, valid)| (word ^ valid).to_ne_bytes())
            .collect()
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "memfd_create and mmap are system calls Miri does not run"
    )]
    fn a_hostile_handshake_is_refused_before_mapping_whatever_the_fd() {
        let words = |capacity: u32, flags: u32| {
            let mut hs = crate::wire::layout::Handshake::new(capacity as usize, None);
            if flags & 1 != 0 {
                hs =
                    crate::wire::layout::Handshake::new(capacity as usize, Some(capacity as usize));
            }
            handshake_input(bytemuck::cast(hs))
        };
        let with_kinds = |mut bytes: Vec<u8>, kinds: u8| {
            bytes.push(kinds);
            bytes
        };
        assert!(handshake_untrusted(&with_kinds(words(4096, 0), 0)).is_ok());
        assert!(handshake_untrusted(&with_kinds(words(4096, 1), 0)).is_ok());
        let refused = |input: Vec<u8>, why: &str| {
            let err = handshake_untrusted(&input).unwrap_err();
            assert!(err.to_string().contains(why), "{why}: {err}");
        };
        refused(with_kinds(words(1 << 31, 0), 0), "max_capacity of 1048576");
        refused(with_kinds(words(4096, 1), 0b1100), "not on tmpfs"); // hugetlb reverse ring
        refused(with_kinds(words(4096, 0), 1), "not sealed");
        refused(with_kinds(words(4096, 0), 2), "holds 2432 bytes");
        refused(with_kinds(words(4096, 0), 3), "not on tmpfs");
    }

    #[test]
    fn spsc_ids_read_0_and_abandoned_replies_are_never_delivered() {
        let with_id = |id: u64| {
            let mut bytes = slot(1, 128);
            bytes[16..24].copy_from_slice(&id.to_le_bytes());
            bytes.resize(128, 0);
            bytes
        };
        let ring: Vec<u8> = [3, 4, 5].into_iter().flat_map(with_id).collect();
        // SPSC (512-byte ring): three messages, each reading id 0 (asserted inside).
        assert!(matches!(
            consume_untrusted(&arena(3, 384, 0, &ring)),
            (3, None)
        ));
        // RPC, waiting for 5: the replies to 3 and 4 are discarded, 5 is delivered.
        let mut input = vec![3 | 0x80];
        input.extend(5u64.to_le_bytes());
        input.extend(&arena(3, 384, 0, &ring)[1..]);
        assert!(matches!(consume_untrusted(&input), (1, None)));
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
            writes in prop::collection::vec(cursor_write(), 0..8),
        ) {
            let ring: Vec<u8> = slots.iter().flat_map(|&(size, reserved)| slot(size, reserved)).collect();
            let _ = consume_untrusted(&arena_with_peer(shift, head, tail, &writes, &ring));
        }

        #[test]
        fn random_producer_scripts_never_panic(
            shift in 0u8..11,
            steps in prop::collection::vec(prop_oneof![
                (0u64..20_000).prop_map(|len| len << 1),
                (0u64..70_000).prop_map(|tail| (tail << 1) | 1),
                any::<u64>(),
            ], 0..60),
            writes in prop::collection::vec(cursor_write(), 0..8),
        ) {
            let mut script = vec![shift, writes.len() as u8];
            script.extend(writes.iter().flat_map(|&write| peer_word(write).to_le_bytes()));
            for step in steps {
                script.extend(step.to_le_bytes());
            }
            let _ = produce_untrusted(&script);
        }

        #[test]
        #[cfg_attr(miri, ignore = "memfd_create and mmap are system calls Miri does not run")]
        fn random_handshakes_never_panic(
            capacity in prop_oneof![(6u32..22).prop_map(|s| 1 << s), any::<u32>()],
            capacity_rev in prop_oneof![(6u32..22).prop_map(|s| 1 << s), any::<u32>()],
            size_delta in prop_oneof![Just(0i64), -1000i64..1000],
            flags in 0u32..4,
            kinds in any::<u8>(),
        ) {
            let shm = |c: u32| (768 + i64::from(c) + size_delta).clamp(0, u32::MAX.into()) as u32;
            let words = [0x5441_4348u32, 4, capacity, shm(capacity), capacity_rev, shm(capacity_rev), 64, flags];
            let mut input = handshake_input(words);
            input.push(kinds);
            let _ = handshake_untrusted(&input);
        }

        #[test]
        fn random_headers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..800)) {
            let _ = attach_untrusted(&bytes);
        }
    }
}
