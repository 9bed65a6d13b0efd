//! What waiting costs: the CPU a consumer process burns while its rings are connected but idle.
//!
//! A child process (`child idle`) takes one message from each of 8 rings (so each consumer has
//! been through its spin and is in its ordinary sleep), then a measuring thread reads the
//! process's CPU time (`getrusage(RUSAGE_SELF)`: every thread, the reactor's included) and its
//! context switches, sleeps for the window, and reads them again. The producers (another
//! child) stay connected and send nothing more.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tachyon_ring::{AsyncConsumer, Bus, Selected, Selector};

use crate::Result;
use crate::cpu::usage;
use crate::fan_in::{self, CAPACITY};
use crate::ring::{CONNECT_TIMEOUT, Impl, Ring, Rx, SPIN_THRESHOLD, Wait};
use crate::work::{self, ChildGuard};

/// How the idle consumer process waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Waiter {
    /// Ours: one thread in `Selector::select` over every ring.
    Selector,
    /// Ours: a tokio current-thread runtime, one task per ring in `AsyncConsumer::recv`, and
    /// the crate's reactor thread.
    Async,
    /// Theirs: one thread per ring in upstream's blocking receive (`acquire_rx(10_000)`).
    Threads,
}

impl Waiter {
    /// How the table names it.
    pub fn label(self) -> &'static str {
        match self {
            Waiter::Selector => "ours: 1 thread in Selector::select",
            Waiter::Async => "ours: tokio current-thread, 8 tasks in AsyncConsumer::recv",
            Waiter::Threads => "theirs: 8 threads in acquire_rx",
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Waiter::Selector => "selector",
            Waiter::Async => "async",
            Waiter::Threads => "threads",
        }
    }
}

/// Rings in the idle measurement.
pub const IDLE_RINGS: usize = 8;
/// The target: a fraction of one core.
pub const TARGET_CORES: f64 = 0.01;

/// One idle measurement.
#[derive(Clone, Copy, Debug)]
pub struct IdleCpu {
    /// CPU seconds per wall second of the whole consumer process (1.0 = one core).
    pub cores: f64,
    /// Context switches (voluntary and not) per second: roughly the wake-ups.
    pub switches_per_s: f64,
}

/// Measures `waiter` over `rings` idle rings for `window`.
pub fn measure(waiter: Waiter, rings: usize, window: Duration) -> Result<IdleCpu> {
    let paths: Vec<PathBuf> = match waiter {
        Waiter::Selector => vec![work::socket_path("idle"); rings],
        Waiter::Async | Waiter::Threads => (0..rings).map(|_| work::socket_path("idle")).collect(),
    };
    let producers = fan_in::spawn_producers(&paths, 1, Duration::ZERO, true)?;
    let mut args = vec!["idle".to_string(), "--waiter".into(), waiter.name().into()];
    for path in &paths {
        args.push("--socket".into());
        args.push(path.display().to_string());
    }
    args.extend(["--window-ms".into(), window.as_millis().to_string()]);
    let result = ChildGuard::spawn_self(&args)?.finish_json()?;
    drop(producers);
    Ok(IdleCpu {
        cores: result["cores"]
            .as_f64()
            .ok_or("idle child printed no cores")?,
        switches_per_s: result["switches_per_s"].as_f64().unwrap_or(f64::NAN),
    })
}

/// Waits for `ready` (every ring has delivered its one message), measures the process over
/// `window`, then prints the JSON line and ends the process (the waiters never return).
fn measure_then_exit(
    ready: mpsc::Receiver<()>,
    rings: usize,
    window: Duration,
    note: fn() -> Value,
) {
    for _ in 0..rings {
        if ready.recv().is_err() {
            return;
        }
    }
    let (cpu0, switches0, at0) = (usage(), note(), Instant::now());
    std::thread::sleep(window);
    let (cpu1, at1) = (usage(), Instant::now());
    let wall = at1.duration_since(at0).as_secs_f64();
    println!(
        "{}",
        json!({
            "cores": (cpu1.0 - cpu0.0) / wall,
            "switches_per_s": (cpu1.1 - cpu0.1.min(cpu1.1)) as f64 / wall,
            "wall_s": wall,
            "before": switches0,
            "after": note(),
        })
    );
    std::process::exit(0);
}

/// The child side of [`measure`].
pub fn child_idle(waiter: Waiter, paths: &[PathBuf], window: Duration) -> Result<()> {
    let rings = paths.len();
    let (ready, ready_rx) = mpsc::channel::<()>();
    let note: fn() -> Value = match waiter {
        Waiter::Async => || json!({ "reactor_sleeps": tachyon_ring::reactor_sleeps() }),
        _ => || Value::Null,
    };
    std::thread::spawn(move || measure_then_exit(ready_rx, rings, window, note));
    match waiter {
        Waiter::Selector => idle_selector(&paths[0], rings, ready),
        Waiter::Async => idle_async(paths, ready),
        Waiter::Threads => {
            crate::with_ring!(Impl::Theirs, R => idle_threads::<R>(paths, ready))
        }
    }
}

fn idle_selector(path: &Path, rings: usize, ready: mpsc::Sender<()>) -> Result<()> {
    let options = Bus::options()
        .spin_threshold(SPIN_THRESHOLD)
        .listen_timeout(CONNECT_TIMEOUT);
    let mut listener = options.clone().listen_many(path, CAPACITY)?;
    let mut selector: Selector<usize> = Selector::with_options(&options);
    for key in 0..rings {
        selector.add(key, listener.accept()?.into_consumer());
    }
    drop(listener);
    loop {
        match selector.select()? {
            Selected::Message { .. } => {
                let _ = ready.send(());
            }
            Selected::Ended { key, error } => {
                return Err(format!("idle ring {key} ended: {error}").into());
            }
        }
    }
}

fn idle_async(paths: &[PathBuf], ready: mpsc::Sender<()>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let consumers = paths
        .iter()
        .map(|path| {
            Ok(AsyncConsumer::new(
                Bus::options()
                    .listen_timeout(CONNECT_TIMEOUT)
                    .listen(path, CAPACITY)?
                    .into_consumer(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    runtime.block_on(async move {
        let tasks: Vec<_> = consumers
            .into_iter()
            .map(|consumer| tokio::spawn(receive_forever(consumer, ready.clone())))
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok(())
    })
}

async fn receive_forever(
    mut consumer: AsyncConsumer,
    ready: mpsc::Sender<()>,
) -> tachyon_ring::Result<()> {
    loop {
        consumer.recv().await?;
        let _ = ready.send(());
    }
}

fn idle_threads<R: Ring + 'static>(paths: &[PathBuf], ready: mpsc::Sender<()>) -> Result<()> {
    let threads: Vec<_> = paths
        .iter()
        .cloned()
        .map(|path| {
            let ready = ready.clone();
            std::thread::spawn(move || -> Result<()> {
                let mut rx = R::listen_rx(&path, CAPACITY, Wait::Hybrid)?;
                loop {
                    rx.recv(|_, _| ())?;
                    let _ = ready.send(());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "idle thread panicked")??;
    }
    Ok(())
}
