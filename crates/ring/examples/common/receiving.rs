//! What the `consumer` and `async_consumer` examples share: their command line, the check of
//! each test-pattern message, and the summary line.

use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Receive and verify test-pattern messages from a tachyon bus")]
pub struct Args {
    #[command(flatten)]
    pub endpoint: super::Endpoint,
    /// Spins on an empty ring before sleeping on the futex.
    #[arg(long, default_value_t = tachyon_ring::BusOptions::DEFAULT_SPIN_THRESHOLD)]
    pub spin: u32,
    /// Never sleep.
    #[arg(long)]
    pub pure_spin: bool,
    /// Give up when no message arrives for this long ("60s", "500ms").
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub idle_timeout: Duration,
    /// After this many messages, kill this process with SIGKILL (tests a producer waiting for
    /// space on a dead consumer).
    #[arg(long)]
    pub die_after: Option<u64>,
    /// Print each bad message's index and reason on stderr.
    #[arg(long)]
    pub verbose: bool,
}

/// What the last line reports.
#[derive(Debug, Default)]
pub struct Summary {
    pub received: u64,
    pub bytes: u64,
    pub bad: u64,
    pub sleeps: u64,
    pub wakeups: u64,
    pub missed_wakes: u64,
    /// The index of the message found after each nap that ran out with it waiting
    /// (`missed_wakes` rising across its receive), so a test can ask whether that message's
    /// publish was held up on the producer's side.
    pub missed_at: Vec<u64>,
    /// Connectors a listener turned away, or lost before the handshake (listening side only).
    pub refused: Option<u32>,
    pub vanished: Option<u32>,
}

impl Summary {
    /// Checks one message against the pattern; true at the sentinel (type id 0).
    pub fn take(&mut self, args: &Args, type_id: u32, payload: &[u8]) -> bool {
        if type_id == 0 {
            if !payload.is_empty() {
                self.bad += 1;
            }
            return true;
        }
        let received = self.received;
        let type_ok = type_id == super::pattern_type_id(received);
        let data_ok = super::follows_pattern(received, payload);
        if !(type_ok && data_ok) {
            self.bad += 1;
            if args.verbose {
                eprintln!(
                    "message {received}: type_id {type_id} (want {}), {} bytes, payload {}",
                    super::pattern_type_id(received),
                    payload.len(),
                    if data_ok { "ok" } else { "wrong" }
                );
            }
        }
        self.received += 1;
        self.bytes += payload.len() as u64;
        if args.die_after == Some(self.received) {
            super::die();
        }
        false
    }

    /// The JSON summary line.
    pub fn print(&self) {
        println!(
            "{}",
            serde_json::json!({
                "received": self.received, "bytes": self.bytes, "bad": self.bad,
                "sleeps": self.sleeps, "wakeups": self.wakeups, "missed_wakes": self.missed_wakes,
                "missed_at": self.missed_at,
                "refused": self.refused, "vanished": self.vanished,
            })
        );
    }
}
