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
    /// that failed and were retried, and consumer restarts after a lost delivery.
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
        let rows = [
            ("messages", self.messages.to_string()),
            ("bytes", self.bytes.to_string()),
            ("retries", self.retries.to_string()),
            ("duplicates", self.duplicates.to_string()),
            ("in-flight high-water", self.inflight_high_water.to_string()),
            ("oversize skipped", self.oversize_skipped.to_string()),
            (
                "elapsed",
                format!("{:.3} s ({rate:.0} msg/s)", self.elapsed_s),
            ),
        ];
        let mut table = format!("tachyon-bridge {}: {}\n", self.direction, self.ended_by);
        for (label, value) in rows {
            table.push_str(&format!("  {label:<22}{value}\n"));
        }
        table
    }

    /// The final report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain counters serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_every_counter() {
        let stats = Stats {
            direction: "out",
            messages: 3,
            bytes: 10,
            retries: 1,
            duplicates: 1,
            inflight_high_water: 2,
            oversize_skipped: 0,
            elapsed_s: 0.5,
            ended_by: "signal 15".into(),
        };
        let json: serde_json::Value = serde_json::from_str(&stats.to_json()).unwrap();
        for key in [
            "messages",
            "bytes",
            "retries",
            "duplicates",
            "inflight_high_water",
            "oversize_skipped",
            "elapsed_s",
            "ended_by",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        let table = stats.to_table();
        assert!(
            table.starts_with("tachyon-bridge out: signal 15\n"),
            "{table}"
        );
        assert!(table.contains("  in-flight high-water  2\n"), "{table}");
        assert!(table.contains("(6 msg/s)"), "{table}");
    }
}
