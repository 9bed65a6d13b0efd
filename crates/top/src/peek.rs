//! `--peek`: walking the slot headers between the consumer's tail and the producer's head, to
//! count messages and their type ids instead of guessing them from byte counts.
//!
//! Only slots the consumer has not released are read: their bytes cannot change while the
//! tail is behind them. After a walk the tail is read again and every slot it has passed
//! meanwhile is discarded, since the producer may have rewritten it while we read.
//!
//! Cost: one read of one 64-byte slot header per message that is still pending when a sample
//! is taken, at most [`MAX_WALK`] per sample. The read shares the cache line with the
//! consumer (which reads it too), and costs the producer one extra invalidation when it next
//! writes that line, a lap of the ring later.

use std::collections::{BTreeMap, VecDeque};

use tachyon_ring::layout::{SKIP_MARKER, SLOT_HEADER_LEN, SlotHeader};

use crate::map::{HeaderWords, RingMap};
use crate::report::PeekReport;

/// The most slot headers one sample reads in one ring; the walk resumes there next time.
pub const MAX_WALK: usize = 1 << 16;

/// What the walks of one ring have found so far.
#[derive(Debug, Default)]
pub(crate) struct PeekState {
    /// Where the next walk starts (a slot boundary), once known.
    walked_to: Option<u64>,
    /// Positions of walked slots the tail has not passed yet.
    pending: VecDeque<u64>,
    /// Messages and ring bytes (slots and skips) walked in total.
    messages: u64,
    bytes: u64,
    type_counts: BTreeMap<u32, u64>,
    /// The largest slot walked.
    largest_slot: u32,
    /// Messages found by the last walk, and whether those were all the window's messages.
    window_messages: u64,
    window_exact: bool,
    error: Option<String>,
}

/// Why a slot header read between tail and head is impossible, or `None`.
pub(crate) fn slot_problem(header: &SlotHeader, capacity: u64) -> Option<&'static str> {
    let reserved = u64::from(header.reserved_size);
    if reserved < SLOT_HEADER_LEN as u64 {
        Some("reserved_size is below 64")
    } else if reserved > capacity {
        Some("reserved_size exceeds the capacity")
    } else if reserved % SLOT_HEADER_LEN as u64 != 0 {
        Some("reserved_size is not a multiple of 64")
    } else if u64::from(header.size) > reserved - SLOT_HEADER_LEN as u64 {
        Some("size exceeds reserved_size - 64")
    } else {
        None
    }
}

impl PeekState {
    /// Walks from where the last walk stopped (or the tail, if the consumer got past it) to
    /// `words.head`.
    pub(crate) fn walk(&mut self, map: &RingMap, words: &HeaderWords) {
        let capacity = map.capacity() as u64;
        let (head, tail) = (words.head, words.tail);
        let mut exact = true;
        let mut position = match self.walked_to {
            Some(walked) if walked >= tail && walked <= head => walked,
            // First walk, the consumer got past us, or the ring was rewritten: start at the
            // tail; whatever was published before is not counted.
            _ => {
                exact = self.walked_to.is_some_and(|walked| walked == tail);
                self.pending.clear();
                tail
            }
        };
        let mut found: Vec<(u64, SlotHeader)> = Vec::new();
        self.error = None;
        while position < head && found.len() < MAX_WALK {
            let Some(header) = map.slot_header(position) else {
                return;
            };
            if header.size == SKIP_MARKER {
                position += capacity - position % capacity;
                continue;
            }
            if let Some(problem) = slot_problem(&header, capacity) {
                self.error = Some(format!("slot at stream position {position}: {problem}"));
                break;
            }
            if position + u64::from(header.reserved_size) > head {
                self.error = Some(format!(
                    "slot at stream position {position} ({} bytes) runs past the head {head}",
                    header.reserved_size
                ));
                break;
            }
            found.push((position, header));
            position += u64::from(header.reserved_size);
        }
        let tail_after = map.tail();
        let before = found.len();
        found.retain(|(slot, _)| *slot >= tail_after);
        exact &= found.len() == before;
        self.walked_to = Some(position);
        self.window_messages = found.len() as u64;
        self.window_exact = exact;
        for (slot, header) in &found {
            self.messages += 1;
            self.bytes += u64::from(header.reserved_size);
            self.largest_slot = self.largest_slot.max(header.reserved_size);
            *self.type_counts.entry(header.type_id).or_default() += 1;
            self.pending.push_back(*slot);
        }
        while self.pending.front().is_some_and(|slot| *slot < tail_after) {
            self.pending.pop_front();
        }
    }

    /// The largest slot walked, once one was.
    pub(crate) fn largest_slot(&self) -> Option<u64> {
        (self.largest_slot > 0).then_some(u64::from(self.largest_slot))
    }

    /// Messages walked and still pending.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.len() as u64
    }

    /// The report, given the window's length and the bytes published in it.
    pub(crate) fn report(&self, window: Option<(f64, u64)>) -> PeekReport {
        let mean_slot = (self.messages > 0).then(|| self.bytes as f64 / self.messages as f64);
        let msgs_per_s = window.and_then(|(seconds, published)| {
            if seconds <= 0.0 {
                None
            } else if self.window_exact {
                Some(self.window_messages as f64 / seconds)
            } else {
                mean_slot.map(|mean| published as f64 / mean / seconds)
            }
        });
        PeekReport {
            msgs_per_s,
            exact: self.window_exact && window.is_some(),
            pending_messages: self.pending(),
            mean_slot_bytes: mean_slot,
            walked_messages: self.messages,
            type_counts: self.type_counts.clone(),
            error: self.error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(size: u32, reserved_size: u32) -> SlotHeader {
        SlotHeader {
            size,
            type_id: 1,
            reserved_size,
            padding: 0,
            correlation_id: 0,
        }
    }

    #[test]
    fn slot_rules_match_the_consumers() {
        assert_eq!(slot_problem(&header(32, 128), 1024), None);
        assert_eq!(slot_problem(&header(64, 128), 1024), None);
        assert!(slot_problem(&header(65, 128), 1024).is_some());
        assert!(slot_problem(&header(0, 0), 1024).is_some());
        assert!(slot_problem(&header(0, 100), 1024).is_some());
        assert!(slot_problem(&header(0, 2048), 1024).is_some());
    }
}
