//! The terminal's state while the view runs: raw mode, the alternate screen and a hidden
//! cursor, all undone when [`Screen`] drops (normal exit, error, signal) and by a panic hook
//! (a panic prints its message on the restored screen).

use std::io::{Stdout, stdout};

use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// The view's terminal; leaving it restores the user's.
pub(crate) struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Enters raw mode and the alternate screen, hides the cursor, and installs the panic
    /// hook that undoes it.
    pub(crate) fn enter() -> std::io::Result<Screen> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        terminal::enable_raw_mode()?;
        // From here on, Drop restores whatever of this succeeded.
        let mut screen_out = stdout();
        let entered = execute!(screen_out, terminal::EnterAlternateScreen, cursor::Hide);
        let terminal = Terminal::new(CrosstermBackend::new(stdout()));
        match (entered, terminal) {
            (Ok(()), Ok(terminal)) => Ok(Screen { terminal }),
            (Err(error), _) | (_, Err(error)) => {
                restore();
                Err(error)
            }
        }
    }

    /// Draws one frame.
    pub(crate) fn draw(
        &mut self,
        render: impl FnOnce(&mut ratatui::Frame<'_>),
    ) -> std::io::Result<()> {
        self.terminal.draw(render).map(|_| ())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen, shows the cursor and leaves raw mode; harmless when done
/// twice.
fn restore() {
    let _ = execute!(stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}
