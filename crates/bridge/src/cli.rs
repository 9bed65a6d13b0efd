//! Command line: `tachyon-bridge out …` (bus → JetStream) and `tachyon-bridge in …`
//! (JetStream → bus).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

/// Bridges a tachyon bus to NATS JetStream (`out`) and back (`in`), in order and exactly once.
#[derive(Debug, Parser)]
#[command(name = "tachyon-bridge", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consumes a bus and publishes every message to a JetStream stream.
    Out(OutArgs),
    /// Pulls a JetStream stream through a durable consumer and produces onto a bus.
    In(InArgs),
}

/// The bus end of either direction.
#[derive(Debug, ClapArgs)]
pub struct BusArgs {
    /// The bus's Unix socket path.
    #[arg(long)]
    pub socket: PathBuf,
    /// Create the ring and wait for the peer at --socket.
    #[arg(long, conflicts_with = "connect", required_unless_present = "connect")]
    pub listen: bool,
    /// Connect to a peer listening at --socket.
    #[arg(long)]
    pub connect: bool,
    /// Ring bytes when listening (a power of two, at least 64).
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub capacity: usize,
    /// How long --connect retries while nobody listens.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,
}

/// The NATS end of either direction.
#[derive(Debug, ClapArgs)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated (nats://127.0.0.1:4222).
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// The JetStream stream.
    #[arg(long, value_name = "NAME")]
    pub stream: String,
    /// The stream's de-duplication window when this side creates it (see docs/bridge.md: a
    /// publish retried after a longer outage is refused by sequence instead).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub duplicate_window: Duration,
    /// Replicas of the stream when this side creates it (1, or 3 on a cluster).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Print the final statistics as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What to do with a message larger than the server's max_payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Oversize {
    /// Stop with an error naming both sizes.
    Error,
    /// Skip it and count it (`oversize_skipped`).
    Skip,
}

#[derive(Debug, ClapArgs)]
pub struct OutArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Subjects are PREFIX.ROUTE.TYPE; the stream covers PREFIX.>.
    #[arg(long, value_name = "PREFIX")]
    pub subject_prefix: String,
    /// Names this bus in message ids (default: host name and socket path).
    #[arg(long, value_name = "ID")]
    pub bus_id: Option<String>,
    /// Messages published but not yet acknowledged, at most.
    #[arg(long, default_value_t = 256)]
    pub max_inflight: u32,
    /// Payload bytes published but not yet acknowledged, at most (64MiB, 512KiB, 4096).
    #[arg(long, default_value = "64MiB", value_parser = parse_bytes, value_name = "BYTES")]
    pub max_inflight_bytes: u32,
    /// How long a publish waits for its acknowledgement before it is retried.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ack_timeout: Duration,
    /// A message larger than the server's max_payload: stop (error) or skip and count it.
    #[arg(long, value_enum, default_value_t = Oversize::Error)]
    pub oversize: Oversize,
}

#[derive(Debug, ClapArgs)]
pub struct InArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The durable pull consumer's name.
    #[arg(long, value_name = "NAME")]
    pub durable: String,
    /// Only subjects matching this filter (X.>); also the stream's subjects if `in` creates it.
    #[arg(long, value_name = "SUBJECT")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub bus: BusArgs,
    /// Messages fetched per pull request.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Messages delivered but not yet acknowledged, at most (the consumer's max_ack_pending).
    #[arg(long, default_value_t = 1024)]
    pub max_ack_pending: i64,
    /// How long the server waits for an acknowledgement before redelivering.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ack_wait: Duration,
}

/// `64MiB`, `512KiB`, `1GiB`, `4096`.
fn parse_bytes(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (B, KiB, MiB, GiB)")),
    };
    number
        .checked_mul(scale)
        .and_then(|bytes| u32::try_from(bytes).ok())
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| format!("{text:?} must be 1 byte to 4 GiB - 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("4GiB").is_err());
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1TB").is_err());
    }

    #[test]
    fn the_command_line_parses() {
        let args = Args::try_parse_from([
            "tachyon-bridge",
            "out",
            "--socket",
            "/tmp/a.sock",
            "--listen",
            "--nats",
            "nats://127.0.0.1:4222",
            "--stream",
            "S",
            "--subject-prefix",
            "md",
        ])
        .unwrap();
        let Command::Out(out) = args.command else {
            panic!("not out")
        };
        assert_eq!(out.max_inflight, 256);
        assert_eq!(out.max_inflight_bytes, 64 << 20);
        assert_eq!(out.ack_timeout, Duration::from_secs(5));
        assert!(
            Args::try_parse_from(["tachyon-bridge", "out", "--socket", "/x", "--nats", "n"])
                .is_err()
        );
    }
}
