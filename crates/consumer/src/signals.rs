//! SIGINT and SIGTERM, turned into a cancel at the program's edge: the library never sees a
//! signal, only the [`CancelToken`] this module cancels.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tachyon_ring::CancelToken;

/// The first SIGINT/SIGTERM caught, and the token it cancelled.
#[derive(Clone, Debug)]
pub struct StopSignal {
    caught: Arc<AtomicI32>,
    token: CancelToken,
}

impl StopSignal {
    /// Installs the handlers (before anything blocks, so no signal can fall into a gap) and a
    /// thread that cancels the token on the first signal.
    pub fn install() -> std::io::Result<StopSignal> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let stop = StopSignal {
            caught: Arc::new(AtomicI32::new(0)),
            token: CancelToken::new(),
        };
        let on_signal = stop.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    // Recorded before the cancel, so whoever sees the cancel sees the signal.
                    on_signal.caught.store(signal, Ordering::SeqCst);
                    on_signal.token.cancel();
                }
            })?;
        Ok(stop)
    }

    /// The token every blocking call of the program watches.
    pub fn token(&self) -> CancelToken {
        self.token.clone()
    }

    /// The signal caught, if any.
    pub fn caught(&self) -> Option<i32> {
        match self.caught.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }
}
