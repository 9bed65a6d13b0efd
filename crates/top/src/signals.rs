//! SIGINT and SIGTERM turned into a flag the loops look at (and the exit status they give).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The first SIGINT/SIGTERM caught.
#[derive(Clone, Debug)]
pub(crate) struct Stop(Arc<AtomicI32>);

impl Stop {
    /// Installs the handlers and the thread that records the first signal.
    pub(crate) fn install() -> std::io::Result<Stop> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let stop = Stop(Arc::new(AtomicI32::new(0)));
        let caught = Arc::clone(&stop.0);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    caught.store(signal, Ordering::SeqCst);
                }
            })?;
        Ok(stop)
    }

    /// The signal caught, if any.
    pub(crate) fn caught(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// Sleeps `duration`, or less when a signal arrives; true when one did.
    pub(crate) fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.caught().is_some() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    /// The shell's exit status for the signal caught: 128 + its number.
    pub(crate) fn exit_code(&self) -> Option<i32> {
        self.caught().map(|signal| 128 + signal)
    }
}
