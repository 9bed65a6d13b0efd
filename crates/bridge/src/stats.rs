//! The counters each direction reports on exit (a table, or one JSON object with `--json`).

use serde::Serialize;

/// What one run of the bridge did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// `out` or `in`.
    pub direction: &'static str,
    /// Messages delivered: acknowledged by the stream (`out`), committed into the ring (`in`).
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// `out`: publishes sent again after a failure or a lost acknowledgement. `in`: fetches
    /// that failed and were retried.
    pub retries: u64,
    /// `out`: publishes the server refused as duplicates (by `Nats-Msg-Id`): retries of a
    /// message it had already stored. `in`: redelivered messages this run had already
    /// committed, skipped.
    pub duplicates: u64,
    /// The most messages unacknowledged at once (`out`: published, `in`: delivered).
    pub inflight_high_water: u64,
    /// `out --oversize skip`: messages larger than the server's max_payload, not published.
    pub oversize_skipped: u64,
    /// Seconds from the first message to the end.
    pub elapsed_s: f64,
    /// Why the run ended: `signal N`, `peer gone`, `error`.
    pub ended_by: String,
}

impl Stats {
    /// One line for the log while running.
    pub fn progress_line(&self) -> String {
        format!(
            "{} messages, {} bytes, {} retries, {} duplicates, high-water {}",
            self.messages, self.bytes, self.retries, self.duplicates, self.inflight_high_water
        )
    }

    /// The final report.
    pub fn to_table(&self) -> String {
        let rate = if self.elapsed_s > 0.0 {
            self.messages as f64 / self.elapsed_s
        } else {
            0.0
        };
        format!(
            "tachyon-bridge {}: {}\n  messages            {}\n  bytes               {}\n  retries             {}\n  duplicates          {}\n  in-flight high-water {}\n  oversize skipped    {}\n  elapsed             {:.3} s ({:.0} msg/s)\n",
            self.direction,
            self.ended_by,
            self.messages,
            self.bytes,
            self.retries,
            self.duplicates,
            self.inflight_high_water,
            self.oversize_skipped,
            self.elapsed_s,
            rate
        )
    }

    /// The final report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain counters serialize")
    }
}
