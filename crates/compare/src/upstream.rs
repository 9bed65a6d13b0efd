//! tachyon-ipc 0.5.1 (crates.io, the C++ core through `tachyon-sys`) behind [`Ring`], used
//! the way its own examples use it: `acquire_tx` + `write` + `commit_unflushed` (+ `flush`),
//! `acquire_rx(spin_threshold)` + `data` + `commit`.

use std::path::Path;
use std::time::{Duration, Instant};

use tachyon_ipc::{Bus, TachyonError};

use crate::Result;
use crate::ring::{CONNECT_TIMEOUT, Ring, Rx, SPIN_THRESHOLD, Tx, Wait, full_backoff};

/// tachyon-ipc 0.5.1.
#[derive(Debug)]
pub struct Theirs;

/// Upstream's bus, producing.
pub struct TheirsTx(Bus);

/// Upstream's bus, consuming, with the spin threshold its blocking receive takes.
pub struct TheirsRx {
    bus: Bus,
    spin_threshold: u32,
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| format!("socket path {} is not UTF-8", path.display()).into())
}

/// Upstream's `connect` fails at once when nobody listens yet: retry, as its example does.
pub fn connect_retrying(path: &Path) -> Result<Bus> {
    let path = path_str(path)?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match Bus::connect(path) {
            Ok(bus) => return Ok(bus),
            Err(err) if Instant::now() >= deadline => {
                return Err(format!("upstream connect to {path}: {err}").into());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn consumer(bus: Bus, wait: Wait) -> TheirsRx {
    let spin_threshold = match wait {
        Wait::Hybrid => SPIN_THRESHOLD,
        Wait::PureSpin => {
            // Producers skip their fence and wake check; the receive never sleeps.
            bus.set_polling_mode(1);
            u32::MAX
        }
    };
    TheirsRx {
        bus,
        spin_threshold,
    }
}

impl Ring for Theirs {
    type Tx = TheirsTx;
    type Rx = TheirsRx;

    fn listen_tx(path: &Path, capacity: usize) -> Result<TheirsTx> {
        Ok(TheirsTx(Bus::listen(path_str(path)?, capacity)?))
    }

    fn listen_rx(path: &Path, capacity: usize, wait: Wait) -> Result<TheirsRx> {
        Ok(consumer(Bus::listen(path_str(path)?, capacity)?, wait))
    }

    fn connect_tx(path: &Path) -> Result<TheirsTx> {
        Ok(TheirsTx(connect_retrying(path)?))
    }

    fn connect_rx(path: &Path, wait: Wait) -> Result<TheirsRx> {
        Ok(consumer(connect_retrying(path)?, wait))
    }
}

impl Tx for TheirsTx {
    #[inline]
    fn send(&mut self, type_id: u32, payload: &[u8]) -> Result<()> {
        let mut spins = 0;
        loop {
            match self.0.acquire_tx(payload.len()) {
                Ok(guard) => {
                    guard.write(payload);
                    guard.commit_unflushed(payload.len(), type_id)?;
                    return Ok(());
                }
                Err(TachyonError::BufferFull) => {
                    // Upstream does not publish on "full" by itself: do it, as ours does, or
                    // up to 31 unpublished commits could wait behind a consumer that waits
                    // for them.
                    self.0.flush();
                    full_backoff(&mut spins);
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    #[inline]
    fn send_publishing(&mut self, type_id: u32, payload: &[u8]) -> Result<()> {
        let mut spins = 0;
        loop {
            // Upstream's `send`: acquire, write, commit and flush.
            match self.0.send(payload, type_id) {
                Ok(()) => return Ok(()),
                Err(TachyonError::BufferFull) => full_backoff(&mut spins),
                Err(other) => return Err(other.into()),
            }
        }
    }

    #[inline]
    fn flush(&mut self) {
        self.0.flush();
    }
}

impl Rx for TheirsRx {
    #[inline]
    fn recv<R>(&mut self, f: impl FnOnce(u32, &[u8]) -> R) -> Result<R> {
        let guard = self.bus.acquire_rx(self.spin_threshold)?;
        let result = f(guard.type_id, guard.data());
        guard.commit()?;
        Ok(result)
    }
}
