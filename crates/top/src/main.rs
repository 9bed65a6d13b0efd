//! `tachyon-top`: see every tachyon bus on the machine without touching it. See the README's
//! "tachyon-top" section, or `tachyon-top --help`.

mod cli;
mod headless;
mod serve;
mod signals;
mod tui;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let stop = match signals::Stop::install() {
        Ok(stop) => stop,
        Err(error) => {
            eprintln!("tachyon-top: installing signal handlers: {error}");
            return ExitCode::from(1);
        }
    };
    let outcome = if cli.interactive() {
        if !std::io::stdout().is_terminal() {
            eprintln!(
                "tachyon-top: stdout is not a terminal; use --json, --watch, --check, \
                 --prometheus FILE or --listen ADDR"
            );
            return ExitCode::from(2);
        }
        tui::run(&cli, &stop)
    } else {
        headless::run(&cli, &stop)
    };
    match outcome {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(error) => {
            eprintln!("tachyon-top: {error}");
            ExitCode::from(1)
        }
    }
}
