//! SIGINT and SIGTERM, turned into values at the program's edge: the first one cancels the
//! ring's [`CancelToken`] and flips a `watch` the async side selects on (stop intake, drain
//! what is in flight); a second one ends the process at once with the same exit code.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tachyon_ring::CancelToken;
use tokio::sync::watch;

/// The first SIGINT/SIGTERM caught, and what it cancelled.
#[derive(Clone, Debug)]
pub struct StopSignal {
    caught: Arc<AtomicI32>,
    token: CancelToken,
    stopped: watch::Receiver<bool>,
}

impl StopSignal {
    /// Installs the handlers (before anything blocks, so no signal falls into a gap) and the
    /// thread that acts on them.
    pub fn install() -> std::io::Result<StopSignal> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let (notify, stopped) = watch::channel(false);
        let stop = StopSignal {
            caught: Arc::new(AtomicI32::new(0)),
            token: CancelToken::new(),
            stopped,
        };
        let on_signal = stop.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut pending = signals.forever();
                if let Some(signal) = pending.next() {
                    // Recorded before the cancel, so whoever sees the cancel sees the signal.
                    on_signal.caught.store(signal, Ordering::SeqCst);
                    tracing::warn!(signal, "stopping: intake closed, draining what is in flight (a second signal exits at once)");
                    on_signal.token.cancel();
                    let _ = notify.send(true);
                }
                if let Some(signal) = pending.next() {
                    eprintln!("tachyon-bridge: second signal {signal}: exiting without draining");
                    std::process::exit(128 + signal);
                }
            })?;
        Ok(stop)
    }

    /// The token the ring's blocking calls watch.
    pub fn token(&self) -> CancelToken {
        self.token.clone()
    }

    /// Turns `true` on the first signal.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.stopped.clone()
    }

    /// The signal caught, if any.
    pub fn caught(&self) -> Option<i32> {
        match self.caught.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }
}
