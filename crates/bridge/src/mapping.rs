//! How a bus message becomes a JetStream message and back: the subject, the type-id header,
//! the message id that de-duplicates retried publishes, and the size the server will see.
//!
//! Pure functions only (no I/O), so every rule here is unit- and property-tested.
//!
//! | bus | JetStream |
//! |---|---|
//! | `type_id` bits 31..16 (route id) | subject token 2: `X.{route_id}.{msg_type}` |
//! | `type_id` bits 15..0 (message type) | subject token 3 |
//! | the whole `type_id` | header `Tachyon-Type-Id` (decimal), the authority on the way back |
//! | payload bytes | payload bytes, unchanged (0 bytes allowed) |
//! | bus id, run epoch, sequence in the run | header `Nats-Msg-Id` = `{bus_id}~{epoch}~{seq}` |

use std::fmt;

use tachyon_ring::type_id;

/// The header carrying the full 32-bit type id, in decimal.
pub const TYPE_ID_HEADER: &str = "Tachyon-Type-Id";
/// JetStream's de-duplication header.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// JetStream's optimistic-concurrency header: the stream's last sequence must equal this.
pub const EXPECTED_LAST_SEQUENCE_HEADER: &str = "Nats-Expected-Last-Sequence";

/// The separator inside a message id. Not allowed in a bus id, so an id splits back
/// unambiguously.
pub const MSG_ID_SEPARATOR: char = '~';

/// The subject a message of `type_id` is published on under `prefix`:
/// `{prefix}.{route_id}.{msg_type}`, both in decimal.
pub fn subject_for(prefix: &str, type_id: u32) -> String {
    format!(
        "{prefix}.{}.{}",
        type_id::route_id(type_id),
        type_id::msg_type(type_id)
    )
}

/// Why a subject or header could not be turned back into a type id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingError {
    /// The subject does not start with the prefix, or has not exactly two tokens after it.
    SubjectShape(String),
    /// A route or message-type token is not a decimal number below 65,536.
    Token(String),
    /// The `Tachyon-Type-Id` header is not a decimal u32.
    Header(String),
    /// The header and the subject name different type ids.
    Mismatch {
        /// From the header.
        header: u32,
        /// From the subject.
        subject: u32,
    },
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingError::SubjectShape(subject) => {
                write!(f, "subject {subject:?} is not PREFIX.ROUTE.TYPE")
            }
            MappingError::Token(token) => {
                write!(f, "subject token {token:?} is not a number 0..=65535")
            }
            MappingError::Header(value) => {
                write!(f, "header {TYPE_ID_HEADER}: {value:?} is not a u32")
            }
            MappingError::Mismatch { header, subject } => write!(
                f,
                "header {TYPE_ID_HEADER} says {header:#010x}, the subject says {subject:#010x}"
            ),
        }
    }
}

impl std::error::Error for MappingError {}

/// The type id a subject names: the last two tokens, route then message type. The prefix is
/// not checked (a filter may have matched any prefix); the shape is.
pub fn type_id_from_subject(subject: &str) -> Result<u32, MappingError> {
    let mut tokens = subject.rsplitn(3, '.');
    let (Some(msg_type), Some(route), Some(prefix)) = (tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(MappingError::SubjectShape(subject.to_owned()));
    };
    if prefix.is_empty() {
        return Err(MappingError::SubjectShape(subject.to_owned()));
    }
    Ok(type_id::compose(token_u16(route)?, token_u16(msg_type)?))
}

fn token_u16(token: &str) -> Result<u16, MappingError> {
    // Canonical decimal only ("007" or "+7" would map two subjects onto one id).
    let canonical = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    canonical
        .then(|| token.parse::<u16>().ok())
        .flatten()
        .ok_or_else(|| MappingError::Token(token.to_owned()))
}

/// The type id of a received message: the header when present (checked against the subject),
/// else the subject alone.
pub fn type_id_of(subject: &str, header: Option<&str>) -> Result<u32, MappingError> {
    let from_subject = type_id_from_subject(subject)?;
    let Some(value) = header else {
        return Ok(from_subject);
    };
    let from_header = value
        .parse::<u32>()
        .map_err(|_| MappingError::Header(value.to_owned()))?;
    if from_header != from_subject {
        return Err(MappingError::Mismatch {
            header: from_header,
            subject: from_subject,
        });
    }
    Ok(from_header)
}

/// One published message's identity: which bus, which run of the bridge, which message of
/// that run. JetStream refuses a second message with the same id inside the stream's
/// duplicate window, so a publish retried after a lost ack is stored once. The epoch makes
/// ids of a restarted bridge (whose sequence starts again at 0) new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId {
    /// Names the bus (default: host name and socket path).
    pub bus_id: String,
    /// The run: microseconds since the Unix epoch when the bridge started.
    pub epoch: u64,
    /// The message's position in the run, from 0.
    pub seq: u64,
}

impl MessageId {
    /// Parses `{bus_id}~{epoch}~{seq}`; `None` for anything else (another writer's id).
    pub fn parse(id: &str) -> Option<MessageId> {
        let mut parts = id.rsplitn(3, MSG_ID_SEPARATOR);
        let seq = parts.next()?.parse().ok()?;
        let epoch = parts.next()?.parse().ok()?;
        let bus_id = parts.next()?;
        valid_bus_id(bus_id).ok()?;
        Some(MessageId {
            bus_id: bus_id.to_owned(),
            epoch,
            seq,
        })
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = MSG_ID_SEPARATOR;
        write!(f, "{}{sep}{}{sep}{}", self.bus_id, self.epoch, self.seq)
    }
}

/// A bus id goes into a header value: printable ASCII, no spaces, no `~`, 1..=128 bytes.
pub fn valid_bus_id(bus_id: &str) -> Result<(), String> {
    if bus_id.is_empty() || bus_id.len() > 128 {
        return Err(format!("bus id {bus_id:?} must be 1 to 128 bytes"));
    }
    if let Some(bad) = bus_id
        .chars()
        .find(|&c| !c.is_ascii_graphic() || c == MSG_ID_SEPARATOR)
    {
        return Err(format!(
            "bus id {bus_id:?} holds {bad:?}: only printable ASCII without spaces and '~'"
        ));
    }
    Ok(())
}

/// The bytes the server counts against its `max_payload` for one message: the header block
/// (`NATS/1.0\r\n`, one `Name: value\r\n` per header, a closing `\r\n`) plus the payload.
pub fn wire_size(headers: &[(&str, &str)], payload_len: usize) -> usize {
    let header_block = "NATS/1.0\r\n".len()
        + headers
            .iter()
            .map(|(name, value)| name.len() + 2 + value.len() + 2)
            .sum::<usize>()
        + 2;
    header_block + payload_len
}

/// The largest header block the bridge ever sends for a message of this bus: the type id, the
/// message id and the expected last sequence at their longest.
pub fn max_header_overhead(bus_id: &str) -> usize {
    let longest_id = MessageId {
        bus_id: bus_id.to_owned(),
        epoch: u64::MAX,
        seq: u64::MAX,
    }
    .to_string();
    let longest_u32 = u32::MAX.to_string();
    let longest_u64 = u64::MAX.to_string();
    wire_size(
        &[
            (TYPE_ID_HEADER, &longest_u32),
            (MSG_ID_HEADER, &longest_id),
            (EXPECTED_LAST_SEQUENCE_HEADER, &longest_u64),
        ],
        0,
    )
}

/// A message too large for the server, with both sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversize {
    /// Payload plus headers, as the server would count them.
    pub message: usize,
    /// The server's `max_payload`.
    pub max_payload: usize,
}

impl fmt::Display for Oversize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a message of {} bytes (payload and headers) exceeds the server's max_payload of {} bytes",
            self.message, self.max_payload
        )
    }
}

/// `Err` when a payload of `payload_len` bytes cannot be published under `max_payload`.
pub fn check_size(payload_len: usize, bus_id: &str, max_payload: usize) -> Result<(), Oversize> {
    let message = payload_len + max_header_overhead(bus_id);
    if message > max_payload {
        return Err(Oversize {
            message,
            max_payload,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subject_splits_the_type_id_into_route_and_type() {
        assert_eq!(subject_for("md", 0x0001_0002), "md.1.2");
        assert_eq!(subject_for("md", 0), "md.0.0");
        assert_eq!(subject_for("a.b", 0xFFFF_0000), "a.b.65535.0");
        assert_eq!(subject_for("x", u32::MAX), "x.65535.65535");
    }

    #[test]
    fn route_ffff_and_type_zero_come_back_exactly() {
        for id in [0, 1, 0xFFFF_0000, 0xFFFF, u32::MAX, 0x0001_0000] {
            let subject = subject_for("p", id);
            assert_eq!(type_id_from_subject(&subject), Ok(id));
            assert_eq!(type_id_of(&subject, Some(&id.to_string())), Ok(id));
        }
    }

    #[test]
    fn malformed_subjects_are_refused() {
        for bad in [
            "",
            "p",
            "p.1",
            ".1.2",
            "p.1.",
            "p..2",
            "p.65536.0",
            "p.1.-1",
            "p.01.2",
            "p.+1.2",
            "p.1.2x",
        ] {
            assert!(type_id_from_subject(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn header_and_subject_must_agree() {
        assert_eq!(
            type_id_of("p.1.2", Some("3")),
            Err(MappingError::Mismatch {
                header: 3,
                subject: 0x0001_0002
            })
        );
        assert!(matches!(
            type_id_of("p.1.2", Some("x")),
            Err(MappingError::Header(_))
        ));
    }

    #[test]
    fn message_ids_parse_back_and_refuse_foreign_ids() {
        let id = MessageId {
            bus_id: "host:/tmp/a-b.sock".into(),
            epoch: 1_700_000_000_000_000,
            seq: 42,
        };
        assert_eq!(id.to_string(), "host:/tmp/a-b.sock~1700000000000000~42");
        assert_eq!(MessageId::parse(&id.to_string()), Some(id));
        for foreign in ["", "uuid-1234", "a~b~c", "~1~2", "a~1~", "a b~1~2"] {
            assert_eq!(MessageId::parse(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn bus_ids_must_be_header_safe() {
        assert!(valid_bus_id("host:/tmp/x.sock").is_ok());
        for bad in ["", "a b", "a~b", "a\r\nb", "é"] {
            assert!(valid_bus_id(bad).is_err(), "{bad:?}");
        }
        assert!(valid_bus_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn wire_size_counts_the_header_block_as_the_server_does() {
        // "NATS/1.0\r\n" (10) + "A: b\r\n" (6) + "\r\n" (2) + 5 payload bytes.
        assert_eq!(wire_size(&[("A", "b")], 5), 23);
    }

    #[test]
    fn oversize_names_both_sizes() {
        let overhead = max_header_overhead("bus");
        assert!(check_size(1000 - overhead, "bus", 1000).is_ok());
        let err = check_size(1001 - overhead, "bus", 1000).unwrap_err();
        assert_eq!(err.message, 1001);
        let text = err.to_string();
        assert!(text.contains("1001") && text.contains("1000"), "{text}");
    }

    proptest! {
        #[test]
        fn every_type_id_round_trips_through_its_subject(id in any::<u32>(), prefix in "[a-z]{1,8}(\\.[a-z0-9_-]{1,8}){0,3}") {
            let subject = subject_for(&prefix, id);
            let head = format!("{prefix}.");
            prop_assert!(subject.starts_with(&head));
            prop_assert_eq!(type_id_from_subject(&subject), Ok(id));
            prop_assert_eq!(type_id_of(&subject, Some(&id.to_string())), Ok(id));
        }

        #[test]
        fn distinct_type_ids_get_distinct_subjects(a in any::<u32>(), b in any::<u32>()) {
            prop_assume!(a != b);
            prop_assert_ne!(subject_for("p", a), subject_for("p", b));
        }

        #[test]
        fn every_message_id_round_trips(bus_id in "[!-}&&[^~]]{1,40}", epoch in any::<u64>(), seq in any::<u64>()) {
            let id = MessageId { bus_id, epoch, seq };
            prop_assert_eq!(MessageId::parse(&id.to_string()), Some(id));
        }

        #[test]
        fn ids_differ_whenever_any_part_differs(seq_a in any::<u64>(), seq_b in any::<u64>(), epoch_a in any::<u64>(), epoch_b in any::<u64>()) {
            prop_assume!((seq_a, epoch_a) != (seq_b, epoch_b));
            let a = MessageId { bus_id: "b".into(), epoch: epoch_a, seq: seq_a };
            let b = MessageId { bus_id: "b".into(), epoch: epoch_b, seq: seq_b };
            prop_assert_ne!(a.to_string(), b.to_string());
        }

        #[test]
        fn the_overhead_bounds_every_real_header_block(bus_id in "[!-}&&[^~]]{1,64}", epoch in any::<u64>(), seq in any::<u64>(), id in any::<u32>(), last in any::<u64>()) {
            let msg_id = MessageId { bus_id: bus_id.clone(), epoch, seq }.to_string();
            let real = wire_size(&[(TYPE_ID_HEADER, &id.to_string()), (MSG_ID_HEADER, &msg_id), (EXPECTED_LAST_SEQUENCE_HEADER, &last.to_string())], 0);
            prop_assert!(real <= max_header_overhead(&bus_id));
        }
    }
}
