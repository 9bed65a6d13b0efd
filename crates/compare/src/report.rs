//! Rows of the comparison table: per-trial values of both sides, the median of the per-pair
//! ratios ours / theirs, the target, and whether it is met.

use serde_json::{Value, json};

/// What a row's numbers are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Messages per second of `size`-byte payloads (bandwidth shown too from 1 KiB up).
    Rate {
        /// Payload bytes.
        size: usize,
    },
    /// Bytes per second.
    Bandwidth,
    /// Latency in ns; `floor_ns` (when measured) is what the hardware allows for the same
    /// path, and each value is also shown as a multiple of it.
    Latency {
        /// The floor's value, ns.
        floor_ns: Option<f64>,
    },
    /// CPU time per second of wall time (1.0 = one core busy throughout).
    Cores,
    /// A fraction, shown as a percentage.
    Share,
    /// A plain number (futex sleeps per message).
    Number,
}

/// A row's target on the median ratio ours / theirs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Ratio ≥ this.
    AtLeast(f64),
    /// Ratio ≤ this.
    AtMost(f64),
}

impl Target {
    /// Whether `ratio` meets it.
    pub fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtLeast(min) => ratio >= min,
            Target::AtMost(max) => ratio <= max,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtLeast(min) => format!("≥ {min:.2}"),
            Target::AtMost(max) => format!("≤ {max:.2}"),
        }
    }
}

/// One comparison.
#[derive(Clone, Debug)]
pub struct Row {
    /// What is measured.
    pub metric: String,
    /// Unit and presentation.
    pub kind: Kind,
    /// Our value in each trial.
    pub ours: Vec<f64>,
    /// Their value in each trial, paired with `ours` by index (empty without the upstream).
    pub theirs: Vec<f64>,
    /// Who "theirs" is when it is not upstream (e.g. "memcpy"), shown in the cell.
    pub theirs_label: Option<&'static str>,
    /// Target on the median ratio.
    pub target: Option<Target>,
}

/// Median (mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

impl Row {
    /// A row with no trials yet.
    pub fn new(metric: impl Into<String>, kind: Kind, target: Option<Target>) -> Row {
        Row {
            metric: metric.into(),
            kind,
            ours: Vec::new(),
            theirs: Vec::new(),
            theirs_label: None,
            target,
        }
    }

    /// Ours / theirs, pair by pair.
    pub fn ratios(&self) -> Vec<f64> {
        self.ours
            .iter()
            .zip(&self.theirs)
            .map(|(ours, theirs)| ours / theirs)
            .collect()
    }

    /// The median of the per-pair ratios; `None` without pairs.
    pub fn median_ratio(&self) -> Option<f64> {
        let ratio = median(&self.ratios());
        (!ratio.is_nan()).then_some(ratio)
    }

    /// Whether the target is met; `None` without a target or without pairs.
    pub fn met(&self) -> Option<bool> {
        Some(self.target?.met(self.median_ratio()?))
    }

    fn cell(&self, values: &[f64], label: Option<&str>) -> String {
        if values.is_empty() {
            return "—".into();
        }
        let value = median(values);
        let text = match self.kind {
            Kind::Rate { size } => rate_text(value, size),
            Kind::Bandwidth => bandwidth_text(value),
            Kind::Latency { floor_ns } => match floor_ns {
                Some(floor) if floor > 0.0 => {
                    format!("{} ({:.1}× floor)", latency_text(value), value / floor)
                }
                _ => latency_text(value),
            },
            Kind::Cores => format!("{value:.2} cores"),
            Kind::Share => format!("{:.1} %", value * 100.0),
            Kind::Number => format!("{value:.2}"),
        };
        match label {
            Some(label) => format!("{label} {text}"),
            None => text,
        }
    }

    /// The row as JSON: every trial's values and the summary.
    pub fn to_json(&self) -> Value {
        json!({
            "metric": self.metric,
            "kind": format!("{:?}", self.kind),
            "ours": self.ours,
            "theirs": self.theirs,
            "theirs_label": self.theirs_label,
            "ratios": self.ratios(),
            "median_ours": median(&self.ours),
            "median_theirs": median(&self.theirs),
            "median_ratio": self.median_ratio(),
            "target": self.target.map(Target::text),
            "met": self.met(),
        })
    }
}

fn latency_text(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn bandwidth_text(bytes_per_s: f64) -> String {
    format!("{:.2} GB/s", bytes_per_s / 1e9)
}

fn rate_text(msgs_per_s: f64, size: usize) -> String {
    let rate = if msgs_per_s >= 1e6 {
        format!("{:.2} M msg/s", msgs_per_s / 1e6)
    } else {
        format!("{:.0} k msg/s", msgs_per_s / 1e3)
    };
    if size >= 1024 {
        format!("{rate} ({})", bandwidth_text(msgs_per_s * size as f64))
    } else {
        rate
    }
}

/// The table: one row per comparison, as Markdown (readable in a terminal too).
pub fn table(rows: &[Row], pairs: usize) -> String {
    let mut out = format!(
        "| metric | ours | theirs | ours / theirs: median of {pairs} pairs (range) | target | met? |\n\
         |---|---|---|---|---|---|\n"
    );
    for row in rows {
        let ratios = row.ratios();
        let (low, high) = ratios
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                (lo.min(r), hi.max(r))
            });
        let ratio = row.median_ratio().map_or("—".into(), |ratio| {
            if ratios.len() > 1 && ratios.len() != pairs {
                format!("{ratio:.3} ({low:.2}–{high:.2}; {} pairs)", ratios.len())
            } else if ratios.len() > 1 {
                format!("{ratio:.3} ({low:.2}–{high:.2})")
            } else {
                format!("{ratio:.3}")
            }
        });
        let target = row.target.map_or("—".into(), Target::text);
        let met = match row.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        out += &format!(
            "| {} | {} | {} | {ratio} | {target} | {met} |\n",
            row.metric,
            row.cell(&row.ours, None),
            row.cell(&row.theirs, row.theirs_label),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ratio_is_the_median_of_pairwise_ratios() {
        let mut row = Row::new("x", Kind::Bandwidth, Some(Target::AtLeast(1.0)));
        row.ours = vec![10.0, 30.0, 20.0];
        row.theirs = vec![5.0, 30.0, 40.0];
        // Pairs: 2.0, 1.0, 0.5 -> median 1.0, not median(ours)/median(theirs) = 20/30.
        assert_eq!(row.median_ratio(), Some(1.0));
        assert_eq!(row.met(), Some(true));
        row.target = Some(Target::AtMost(0.9));
        assert_eq!(row.met(), Some(false));
    }

    #[test]
    fn a_row_without_their_side_has_no_verdict() {
        let mut row = Row::new(
            "rt",
            Kind::Latency {
                floor_ns: Some(500.0),
            },
            Some(Target::AtMost(0.9)),
        );
        row.ours = vec![1000.0];
        assert_eq!(row.median_ratio(), None);
        assert_eq!(row.met(), None);
        let table = table(&[row], 5);
        assert!(table.contains("1.00 µs (2.0× floor)"), "{table}");
        assert!(table.contains("| — | — | ≤ 0.90 | — |"), "{table}");
    }
}
