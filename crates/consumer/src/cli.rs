//! The command line of `tachyon-consumer`, shared with its upstream-based twin in
//! `crates/compare` so both take exactly the same arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Receive MarketTicks from a tachyon bus and report counts, rate and one-way latency.
///
/// The consumer stops at the sentinel (type id 0) and exits 0. Errors end with one line naming
/// the cause and exit 1; SIGINT and SIGTERM print the summary so far and exit 130 and 143.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
pub struct Args {
    /// Unix socket path of the bus handshake.
    #[arg(long, default_value = "/tmp/tachyon_market.sock")]
    pub socket: PathBuf,
    /// Create the ring and wait for the producer (the default; the seed's order: the consumer
    /// starts first and owns the socket).
    #[arg(long, conflicts_with = "connect")]
    pub listen: bool,
    /// Connect to a listening producer (upstream's example order).
    #[arg(long)]
    pub connect: bool,
    /// Ring bytes when listening: a power of two, at least 64.
    #[arg(long, default_value_t = 1 << 20)]
    pub capacity: usize,
    /// With --connect: how long to keep retrying while nobody listens: seconds ("30", "2.5"),
    /// as timeout(1) takes them, or a duration with its unit ("5s", "200ms", "1m").
    #[arg(long, value_parser = parse_timeout, default_value = "5s", value_name = "SECONDS|DURATION")]
    pub connect_timeout: Duration,
    /// Polls of an empty ring before sleeping on the futex.
    #[arg(long, conflicts_with = "pure_spin", default_value_t = tachyon_ring::BusOptions::DEFAULT_SPIN_THRESHOLD)]
    pub spin: u32,
    /// How the spin window is spent: `adaptive` (default) spins only where the next message
    /// is likely, from the gaps seen, and sleeps at once when messages are too far apart to
    /// catch; `fixed` spins all of it whenever the ring runs dry; `frugal` never spins (one
    /// sleep per message, the least CPU) (tachyon_ring::SpinPolicy).
    #[arg(long, value_enum, default_value_t = SpinPolicyArg::Adaptive, conflicts_with = "pure_spin")]
    pub spin_policy: SpinPolicyArg,
    /// Never sleep: spin on an empty ring (lowest latency, one busy core).
    #[arg(long)]
    pub pure_spin: bool,
    /// Print the final summary as one JSON object, the last line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Listen for this many producers on the one socket, each with its own ring, and merge
    /// them; stop when every one has sent its sentinel or died (a dead one makes the exit
    /// code 1). The summary adds per-producer figures.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..), conflicts_with_all = ["connect", "pure_spin"])]
    pub producers: u16,
}

/// A timeout on the command line: a bare number is seconds, whole or fractional (as
/// `timeout(1)` reads it); anything else is a duration with its unit, in humantime's forms.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bare_number = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.chars().any(|c| c.is_ascii_digit());
    if bare_number {
        let seconds: f64 = text
            .parse()
            .map_err(|_| format!("{text:?} is not a number of seconds"))?;
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text} seconds is too long a time"));
    }
    humantime::parse_duration(text).map_err(|err| {
        format!(
            "{err}: give seconds (\"30\", \"2.5\") or a duration with its unit (\"500ms\", \"5s\")"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_number_is_seconds_and_units_are_kept() {
        let cases = [
            ("30", Duration::from_secs(30)),
            ("0", Duration::ZERO),
            ("2.5", Duration::from_millis(2500)),
            (".5", Duration::from_millis(500)),
            ("7.", Duration::from_secs(7)),
            (" 30 ", Duration::from_secs(30)),
            ("500ms", Duration::from_millis(500)),
            ("5s", Duration::from_secs(5)),
            ("1m 30s", Duration::from_secs(90)),
            ("2h", Duration::from_secs(7200)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_timeout(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn what_is_neither_seconds_nor_a_duration_is_refused_naming_both_forms() {
        for text in [
            "",
            ".",
            "1.2.3",
            "-1",
            "inf",
            "nan",
            "5 parsecs",
            "1e3",
            "30x",
        ] {
            let err = parse_timeout(text).expect_err(text);
            assert!(!err.is_empty(), "{text:?}");
        }
        let err = parse_timeout("5 parsecs").unwrap_err();
        assert!(err.contains("\"30\"") && err.contains("\"500ms\""), "{err}");
        let err = parse_timeout("1.2.3").unwrap_err();
        assert!(err.contains("not a number of seconds"), "{err}");
        let err = parse_timeout("1000000000000000000000000").unwrap_err();
        assert!(err.contains("too long"), "{err}");
    }

    /// The default policy is `adaptive`, and the long help says so on its line only (it once
    /// called `fixed` the default, left from before the switch).
    #[test]
    fn the_default_spin_policy_is_adaptive_and_the_help_says_so() {
        let args = Args::try_parse_from(["tachyon-consumer"]).unwrap();
        assert_eq!(args.spin_policy, SpinPolicyArg::Adaptive);
        let help = <Args as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        let marked: Vec<&str> = help
            .lines()
            .filter(|line| line.contains("(the default)"))
            .collect();
        assert_eq!(marked.len(), 1, "{help}");
        assert!(marked[0].trim_start().starts_with("- adaptive:"), "{help}");
    }

    #[test]
    fn the_command_line_takes_connect_timeout_in_seconds() {
        let args =
            Args::try_parse_from(["tachyon-consumer", "--connect", "--connect-timeout", "30"])
                .unwrap();
        assert_eq!(args.connect_timeout, Duration::from_secs(30));
        let args =
            Args::try_parse_from(["tachyon-consumer", "--connect-timeout", "500ms"]).unwrap();
        assert_eq!(args.connect_timeout, Duration::from_millis(500));
        let args = Args::try_parse_from(["tachyon-consumer"]).unwrap();
        assert_eq!(args.connect_timeout, Duration::from_secs(5));
        assert!(Args::try_parse_from(["tachyon-consumer", "--connect-timeout", "soon"]).is_err());
    }
}

/// `--spin-policy`: the ring crate's [`tachyon_ring::SpinPolicy`], as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SpinPolicyArg {
    /// Spin the whole window, then sleep (upstream's way).
    Fixed,
    /// Spin only where the next message is likely, from the gaps seen (the default).
    Adaptive,
    /// Never spin: one sleep per message, the least CPU.
    Frugal,
}

impl From<SpinPolicyArg> for tachyon_ring::SpinPolicy {
    fn from(arg: SpinPolicyArg) -> Self {
        match arg {
            SpinPolicyArg::Fixed => tachyon_ring::SpinPolicy::Fixed,
            SpinPolicyArg::Adaptive => tachyon_ring::SpinPolicy::Adaptive,
            SpinPolicyArg::Frugal => tachyon_ring::SpinPolicy::Frugal,
        }
    }
}
