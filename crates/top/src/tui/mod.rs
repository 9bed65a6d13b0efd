//! The interactive view (ratatui on crossterm): a table of rings in the style of htop and
//! bpftop, sortable and filterable, with a detail pane.
//!
//! - `app`: what is shown and what each key does (no terminal involved);
//! - `draw`: the frame;
//! - `terminal`: entering and, on every exit path, leaving the alternate screen.

mod app;
mod draw;
mod terminal;

use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyEventKind};
use tachyon_top::Monitor;

use crate::cli::Cli;
use crate::signals::Stop;
use app::{App, Step};

/// Runs the view until `q`, a signal, or an error; returns the exit status.
pub(crate) fn run(cli: &Cli, stop: &Stop) -> Result<i32, String> {
    let mut monitor = Monitor::new(cli.options());
    let mut app = App::new(cli.interval);
    app.update(monitor.sample().map_err(|e| e.to_string())?);
    let mut terminal = terminal::Screen::enter().map_err(|e| format!("terminal: {e}"))?;
    let mut next_sample = Instant::now() + app.interval();
    loop {
        if let Some(code) = stop.exit_code() {
            return Ok(code);
        }
        terminal
            .draw(|frame| draw::frame(frame, &mut app))
            .map_err(|e| format!("terminal: {e}"))?;
        let wait = next_sample
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        if event::poll(wait).map_err(|e| format!("terminal: {e}"))? {
            if let Event::Key(key) = event::read().map_err(|e| format!("terminal: {e}"))?
                && key.kind != KeyEventKind::Release
                && app.key(key) == Step::Quit
            {
                return Ok(0);
            }
            continue;
        }
        if Instant::now() >= next_sample {
            app.update(monitor.sample().map_err(|e| e.to_string())?);
            next_sample = Instant::now() + app.interval();
        }
    }
}
