//! One message per millisecond between two processes: the latency of each and what the
//! receiver's waiting costs in CPU (issue 23's frugal point, against iceoryx2's event-driven
//! subscriber).
//!
//! This process sends: 32 bytes every `gap` (an absolute schedule, so a late send does not
//! shift the rest), the send time (`CLOCK_MONOTONIC`, shared by all processes) in the first 8.
//! The child receives, records one-way latency and, over the measured messages only, its own
//! CPU time (`getrusage`) against the wall time. The two are pinned to different CPUs.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tachyon_ring::{Bus, SpinPolicy};

use crate::Result;
use crate::work::{ChildGuard, DATA, END, Latency, histogram, monotonic_ns, socket_path};

/// Who receives, and how it waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SparseEnd {
    /// Our consumer with [`SpinPolicy::Fixed`]: the whole spin window, then sleep.
    OursFixed,
    /// Our consumer with [`SpinPolicy::Adaptive`] (its default).
    OursAdaptive,
    /// Our consumer with [`SpinPolicy::Frugal`].
    OursFrugal,
    /// iceoryx2: a subscriber asleep on an event listener, the sender notifying after each
    /// sample.
    #[cfg(feature = "compare-iceoryx2")]
    Iceoryx2,
}

impl SparseEnd {
    /// Its name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SparseEnd::OursFixed => "ours-fixed",
            SparseEnd::OursAdaptive => "ours-adaptive",
            SparseEnd::OursFrugal => "ours-frugal",
            #[cfg(feature = "compare-iceoryx2")]
            SparseEnd::Iceoryx2 => "iceoryx2",
        }
    }
}

/// One trial's result.
#[derive(Clone, Copy, Debug, Default)]
pub struct SparseResult {
    /// One-way latency, ns.
    pub latency: Latency,
    /// The receiver's CPU time over the measured messages, as a share of one core.
    pub cpu: f64,
    /// Futex sleeps per message (ours only; 0 for iceoryx2).
    pub sleeps_per_message: f64,
}

/// Sends one message (type id, payload).
type Send = Box<dyn FnMut(u32, &[u8]) -> Result<()>>;

/// Messages sent before the measured ones (the adaptive policy's history fills).
const WARM_UP: u64 = 100;
/// Ring bytes of our end.
const CAPACITY: usize = 1 << 16;

/// This process pinned to one CPU until dropped, then back on the CPUs it had (later trials'
/// children inherit the parent's affinity at spawn).
struct Pinned(Option<nix::sched::CpuSet>);

impl Pinned {
    /// Pins to `cpu` (nothing where that CPU does not exist or the call is refused).
    fn to(cpu: usize) -> Pinned {
        let this = nix::unistd::Pid::from_raw(0);
        let Ok(before) = nix::sched::sched_getaffinity(this) else {
            return Pinned(None);
        };
        let mut only = nix::sched::CpuSet::new();
        let pinned = only.set(cpu).is_ok() && nix::sched::sched_setaffinity(this, &only).is_ok();
        Pinned(pinned.then_some(before))
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(before) = &self.0 {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), before);
        }
    }
}

/// Sends `WARM_UP + messages` messages `gap` apart to a child receiving with `end`.
pub fn trial(end: SparseEnd, messages: u64, gap: Duration) -> Result<SparseResult> {
    let socket = socket_path(&format!("sparse-{}", end.name()));
    let child = ChildGuard::spawn_self(&[
        "sparse-rx".into(),
        "--end".into(),
        end.name().into(),
        "--socket".into(),
        socket.display().to_string(),
    ])?;
    let _pinned = Pinned::to(0);
    let mut send: Send = match end {
        SparseEnd::OursFixed | SparseEnd::OursAdaptive | SparseEnd::OursFrugal => {
            let mut producer = Bus::options().listen(&socket, CAPACITY)?.into_producer();
            Box::new(move |type_id, payload| Ok(producer.send(type_id, payload)?))
        }
        #[cfg(feature = "compare-iceoryx2")]
        SparseEnd::Iceoryx2 => iceoryx2_end::sender(&socket)?,
    };
    let mut payload = [0u8; 32];
    let start = Instant::now();
    for i in 0..WARM_UP + messages {
        let due = start + gap * (i as u32 + 1);
        if let Some(left) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
        payload[..8].copy_from_slice(&monotonic_ns().to_le_bytes());
        send(DATA, &payload)?;
    }
    send(END, &[])?;
    let out = child.finish_json()?;
    let field = |key: &str| out[key].as_f64().unwrap_or(f64::NAN);
    Ok(SparseResult {
        latency: Latency {
            p50: field("p50"),
            p90: field("p90"),
            p99: field("p99"),
            p999: field("p999"),
            max: field("max"),
        },
        cpu: field("cpu"),
        sleeps_per_message: field("sleeps_per_message"),
    })
}

/// Records every message after the warm-up; CPU and wall time from the first measured one.
struct Recorder {
    seen: u64,
    hist: hdrhistogram::Histogram<u64>,
    started: Option<(Instant, f64)>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            seen: 0,
            hist: histogram(),
            started: None,
        }
    }

    /// Takes one message; false at the end marker.
    fn take(&mut self, type_id: u32, payload: &[u8]) -> Result<bool> {
        let now = monotonic_ns();
        if type_id == END {
            return Ok(false);
        }
        let sent = u64::from_le_bytes(payload.get(..8).ok_or("short message")?.try_into()?);
        self.seen += 1;
        if self.seen == WARM_UP {
            self.started = Some((Instant::now(), crate::cpu::usage().0));
        } else if self.seen > WARM_UP {
            self.hist.saturating_record(now.saturating_sub(sent).max(1));
        }
        Ok(true)
    }

    /// The child's JSON line.
    fn report(&self, sleeps: u64) -> Result<()> {
        let (since, cpu_then) = self.started.ok_or("fewer messages than the warm-up")?;
        let cpu = (crate::cpu::usage().0 - cpu_then) / since.elapsed().as_secs_f64();
        let latency = Latency::of(&self.hist);
        let measured = self.hist.len().max(1) as f64;
        println!(
            "{}",
            json!({
                "messages": self.hist.len(),
                "p50": latency.p50, "p90": latency.p90, "p99": latency.p99,
                "p999": latency.p999, "max": latency.max,
                "cpu": cpu,
                "sleeps_per_message": sleeps as f64 / measured,
            })
        );
        Ok(())
    }
}

/// The child side of [`trial`]: receives until the end marker, prints one JSON line.
pub fn child(end: SparseEnd, socket: &Path) -> Result<()> {
    let _pinned = Pinned::to(1);
    let mut recorder = Recorder::new();
    match end {
        SparseEnd::OursFixed | SparseEnd::OursAdaptive | SparseEnd::OursFrugal => {
            let policy = match end {
                SparseEnd::OursAdaptive => SpinPolicy::Adaptive,
                SparseEnd::OursFrugal => SpinPolicy::Frugal,
                _ => SpinPolicy::Fixed,
            };
            let mut consumer = Bus::options()
                .spin_policy(policy)
                .connect_timeout(Duration::from_secs(10))
                .connect(socket)?
                .into_consumer();
            let mut sleeps_then = 0;
            loop {
                let message = consumer.recv()?;
                let more = recorder.take(message.type_id(), message.data())?;
                drop(message);
                if recorder.seen == WARM_UP {
                    sleeps_then = consumer.stats().sleeps;
                }
                if !more {
                    break;
                }
            }
            recorder.report(consumer.stats().sleeps - sleeps_then)
        }
        #[cfg(feature = "compare-iceoryx2")]
        SparseEnd::Iceoryx2 => {
            iceoryx2_end::receive(socket, &mut |type_id, payload| {
                recorder.take(type_id, payload)
            })?;
            recorder.report(0)
        }
    }
}

#[cfg(feature = "compare-iceoryx2")]
mod iceoryx2_end {
    //! iceoryx2's sparse pair: its pub-sub service for the samples, an event service beside it
    //! for the wake.
    use std::path::Path;
    use std::time::{Duration, Instant};

    use iceoryx2::prelude::*;

    use super::Send;
    use crate::Result;
    use crate::iceoryx2::{Endpoint, IceTx, wait_for_peer};
    use crate::ring::Tx;

    /// The event service beside the pub-sub one standing for `socket`.
    fn event(
        endpoint: &Endpoint,
        socket: &Path,
    ) -> Result<iceoryx2::service::port_factory::event::PortFactory<ipc::Service>> {
        let name = format!(
            "tachyon-compare/{}-event",
            socket
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("sparse")
        );
        Ok(endpoint
            .node()
            .service_builder(&name.as_str().try_into()?)
            .event()
            .open_or_create()?)
    }

    /// The probe's type id: no data message uses it ([`crate::work::DATA`], [`crate::work::END`]).
    const PROBE: u32 = u32::MAX;
    /// How long a probe waits for its answer before the sender builds its ports again.
    const PROBE_WAIT: Duration = Duration::from_millis(500);
    /// Probes, each from new ports, before the trial fails.
    const PROBE_TRIES: u32 = 5;

    /// A notification that reached no listener is an error: the receiver would sleep through
    /// it (as a sample that reached no subscriber is, in [`IceTx::send_counted`]).
    fn notified(listeners: usize) -> Result<()> {
        if listeners == 0 {
            return Err(
                "iceoryx2: a notification reached no listener (the connection is gone)".into(),
            );
        }
        Ok(())
    }

    /// The file the receiver creates once a probe reached it with its notification.
    fn probe_answer_file(socket: &Path) -> std::path::PathBuf {
        socket.with_extension("probed")
    }

    /// The file the receiver creates once its subscriber and listener are built.
    ///
    /// Why not the service's count of listeners: a listener is counted before its event channel
    /// is ready, and a notifier that looks in between connects to nothing and does not look
    /// again (iceoryx2 0.10's `Notifier` retries only when the listener list changes). Two
    /// anchor runs lost a trial that way (no event and no sample for 30 s, every port present).
    /// So the sender builds its ports only once the receiver's are complete.
    fn ready_file(socket: &Path) -> std::path::PathBuf {
        socket.with_extension("ready")
    }

    /// Publishes a sample (as the round trip and stream do), then notifies the listener.
    ///
    /// The ports are checked before the measured traffic: a probe sample and its notification
    /// must reach the receiver, which answers through a file. A probe unanswered within
    /// [`PROBE_WAIT`] has both ports built again, up to [`PROBE_TRIES`] times. A `./just
    /// bench` on the Intel host lost a trial with all four ports listed in the services and
    /// nothing delivered for 30 s. Why is not proven: iceoryx2 0.10's ports connect when they
    /// see their counterparts' list change, and a connection missed then is not retried until
    /// it changes again; new ports change it.
    pub fn sender(socket: &Path) -> Result<Send> {
        let ready = ready_file(socket);
        wait_for_peer("receiver ready", || ready.exists())?;
        let _ = std::fs::remove_file(&ready);
        let answered = probe_answer_file(socket);
        for attempt in 1..=PROBE_TRIES {
            let mut tx = IceTx::open(socket, 64)?;
            let event = event(tx.endpoint(), socket)?;
            let notifier = event.notifier_builder().create()?;
            tx.send(PROBE, &[])?;
            notified(notifier.notify()?)?;
            let deadline = Instant::now() + PROBE_WAIT;
            while !answered.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
            if answered.exists() {
                let _ = std::fs::remove_file(&answered);
                return Ok(Box::new(move |type_id, payload| {
                    let _keep = &event;
                    tx.send(type_id, payload)?;
                    notified(notifier.notify()?)
                }));
            }
            eprintln!(
                "tachyon-compare: iceoryx2: probe {attempt} of {PROBE_TRIES} unanswered within \
                 {PROBE_WAIT:?}; building the publisher and notifier again"
            );
        }
        Err(format!(
            "iceoryx2: {PROBE_TRIES} probes, each from new ports, went unanswered: the receiver \
             got no sample with its notification"
        )
        .into())
    }

    /// Sleeps on the listener, then takes every sample there, until `take` says stop.
    pub fn receive(socket: &Path, take: &mut dyn FnMut(u32, &[u8]) -> Result<bool>) -> Result<()> {
        let endpoint = Endpoint::open(socket)?;
        let subscriber = endpoint.subscriber()?;
        let event = event(&endpoint, socket)?;
        let listener = event.listener_builder().create()?;
        std::fs::write(ready_file(socket), b"")?;
        // Answer a probe only when its notification woke us and its sample is here: both ports
        // work (see `sender`).
        let deadline = Instant::now() + Duration::from_secs(10) + PROBE_WAIT * PROBE_TRIES;
        loop {
            if Instant::now() > deadline {
                return Err("iceoryx2: no probe with its notification arrived".into());
            }
            let woken = listener.timed_wait(|_| {}, PROBE_WAIT / 4)?;
            let mut probed = false;
            while let Some(sample) = subscriber.receive()? {
                if *sample.user_header() != PROBE {
                    return Err("iceoryx2: a data sample before the probe was answered".into());
                }
                probed = true;
            }
            if woken > 0 && probed {
                std::fs::write(probe_answer_file(socket), b"")?;
                break;
            }
        }
        loop {
            let woken = listener.timed_wait(|_| {}, Duration::from_secs(30))?;
            let mut taken = 0;
            while let Some(sample) = subscriber.receive()? {
                taken += 1;
                if *sample.user_header() == PROBE {
                    // A probe the sender gave up on before ours answered it.
                    continue;
                }
                if !take(*sample.user_header(), sample.payload())? {
                    return Ok(());
                }
            }
            if woken == 0 && taken == 0 {
                let (publishers, subscribers) = endpoint.ports();
                let events = event.dynamic_config();
                return Err(format!(
                    "iceoryx2: no event and no sample for 30 s (is the sender gone?): the \
                     service has {publishers} publisher(s), {subscribers} subscriber(s), {} \
                     notifier(s), {} listener(s)",
                    events.number_of_notifiers(),
                    events.number_of_listeners()
                )
                .into());
            }
        }
    }
}
