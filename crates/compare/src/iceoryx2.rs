//! iceoryx2 0.10 (crates.io `iceoryx2`, the other pure-Rust shared-memory IPC) behind the
//! same [`Ring`] trait as ours and tachyon-ipc's, for the second anchor of the benchmarks
//! (issue 23; feature `compare-iceoryx2`).
//!
//! What it is measured with, as its authors recommend for each case:
//! - round trip and streaming: publish-subscribe of byte slices with the type id in the user
//!   header, the subscriber busy-polling `receive` (iceoryx2's pub-sub has no blocking receive;
//!   both [`Wait`] modes poll), the publisher retrying until delivered when the subscriber's
//!   buffer is full (its backpressure, so a stream loses nothing, as ours does not);
//! - sparse traffic ([`crate::sparse`]): the same service plus an event service, the sender
//!   notifying after each sample and the receiver asleep on its listener.
//!
//! iceoryx2 has no listen/connect: both ends open or create a service named after the socket
//! path's file name. "Listening" and "connecting" here only order the start: a publisher
//! waits until a subscriber exists (a sample sent to no subscriber is gone).

use std::path::Path;
use std::time::{Duration, Instant};

use iceoryx2::port::backpressure_strategy::BackpressureStrategy;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::PortFactory as _;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory;

use crate::Result;
use crate::ring::{Ring, Rx, Tx, Wait};

/// Samples a subscriber buffers before the publisher's backpressure holds it.
const BUFFER: usize = 4096;
/// How long an end waits for its peer to appear.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// iceoryx2's publish-subscribe.
#[derive(Debug)]
pub struct Iceoryx2;

/// One process's iceoryx2 node and a service of byte slices with a `u32` type id.
pub struct Endpoint {
    node: Node<ipc::Service>,
    service: PortFactory<ipc::Service, [u8], u32>,
}

/// Waits until `appeared` (polled every 200 µs), at most [`PEER_TIMEOUT`]: iceoryx2 has no
/// handshake, and a sample sent before its receiver exists is gone.
pub fn wait_for_peer(what: &str, appeared: impl Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + PEER_TIMEOUT;
    while !appeared() {
        if Instant::now() > deadline {
            return Err(format!("iceoryx2: no {what} appeared within {PEER_TIMEOUT:?}").into());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

/// The name of the service standing for the socket `path`.
fn service_name(path: &Path) -> Result<ServiceName> {
    let file = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| format!("no file name in {}", path.display()))?;
    Ok(format!("tachyon-compare/{file}").as_str().try_into()?)
}

impl Endpoint {
    /// Opens (or creates) the pub-sub service standing for `path`, with `capacity` bytes as the
    /// largest payload.
    pub fn open(path: &Path) -> Result<Endpoint> {
        // Its warning that no config file exists (the defaults are what is measured) would
        // interleave with the progress lines; IOX2_LOG_LEVEL still overrides.
        set_log_level_from_env_or(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>()?;
        let service = node
            .service_builder(&service_name(path)?)
            .publish_subscribe::<[u8]>()
            .user_header::<u32>()
            .enable_safe_overflow(false)
            .subscriber_max_buffer_size(BUFFER)
            .history_size(0)
            .max_publishers(1)
            .max_subscribers(1)
            .open_or_create()?;
        Ok(Endpoint { node, service })
    }

    /// A publisher of payloads up to `max_len` bytes, once a subscriber exists.
    pub fn publisher(&self, max_len: usize) -> Result<Publisher<ipc::Service, [u8], u32>> {
        let publisher = self
            .service
            .publisher_builder()
            .initial_max_slice_len(max_len.max(1))
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()?;
        wait_for_peer("subscriber", || {
            self.service.dynamic_config().number_of_subscribers() > 0
        })?;
        Ok(publisher)
    }

    /// A subscriber.
    pub fn subscriber(&self) -> Result<Subscriber<ipc::Service, [u8], u32>> {
        Ok(self.service.subscriber_builder().create()?)
    }

    /// Publishers and subscribers the service has now (what an error about a silent peer
    /// reports).
    pub fn ports(&self) -> (usize, usize) {
        let config = self.service.dynamic_config();
        (
            config.number_of_publishers(),
            config.number_of_subscribers(),
        )
    }

    /// The node, for services of other patterns (the sparse benchmark's event).
    pub fn node(&self) -> &Node<ipc::Service> {
        &self.node
    }
}

/// The sending end.
pub struct IceTx {
    publisher: Publisher<ipc::Service, [u8], u32>,
    endpoint: Endpoint,
}

/// The receiving end: polls.
pub struct IceRx {
    subscriber: Subscriber<ipc::Service, [u8], u32>,
    _endpoint: Endpoint,
}

impl IceTx {
    /// A publisher of payloads up to `max_len` bytes on the service standing for `path`, once
    /// a subscriber exists.
    pub fn open(path: &Path, max_len: usize) -> Result<IceTx> {
        let endpoint = Endpoint::open(path)?;
        Ok(IceTx {
            publisher: endpoint.publisher(max_len)?,
            endpoint,
        })
    }

    /// Its node's endpoint, for services beside it (the sparse benchmark's event).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl IceRx {
    fn open(path: &Path) -> Result<IceRx> {
        let endpoint = Endpoint::open(path)?;
        Ok(IceRx {
            subscriber: endpoint.subscriber()?,
            _endpoint: endpoint,
        })
    }
}

/// The largest payload a stream or round trip of the suite sends.
const MAX_PAYLOAD: usize = 64 * 1024;

impl Ring for Iceoryx2 {
    type Tx = IceTx;
    type Rx = IceRx;

    fn listen_tx(path: &Path, _capacity: usize) -> Result<IceTx> {
        IceTx::open(path, MAX_PAYLOAD)
    }

    fn listen_rx(path: &Path, _capacity: usize, _wait: Wait) -> Result<IceRx> {
        IceRx::open(path)
    }

    fn connect_tx(path: &Path) -> Result<IceTx> {
        IceTx::open(path, MAX_PAYLOAD)
    }

    fn connect_rx(path: &Path, _wait: Wait) -> Result<IceRx> {
        IceRx::open(path)
    }
}

impl IceTx {
    /// Sends one sample; fails when it reached no subscriber (iceoryx2 reports that as a
    /// success delivered to 0): the publisher waited for one before its first send, so none
    /// now means the connection is gone, and a receiver would wait for samples that never come.
    #[inline]
    pub fn send_counted(&mut self, type_id: u32, payload: &[u8]) -> Result<usize> {
        let mut sample = self.publisher.loan_slice_uninit(payload.len())?;
        *sample.user_header_mut() = type_id;
        match sample.write_from_slice(payload).send()? {
            0 => Err("iceoryx2: a sample reached no subscriber (the connection is gone)".into()),
            delivered => Ok(delivered),
        }
    }
}

impl Tx for IceTx {
    #[inline]
    fn send(&mut self, type_id: u32, payload: &[u8]) -> Result<()> {
        self.send_counted(type_id, payload).map(drop)
    }

    #[inline]
    fn send_publishing(&mut self, type_id: u32, payload: &[u8]) -> Result<()> {
        self.send(type_id, payload)
    }

    /// A sent sample is delivered at once: nothing to flush.
    #[inline]
    fn flush(&mut self) {}
}

/// How long a polling receive waits for a sample before it calls its peer lost (a dead
/// publisher is otherwise invisible to a poll).
const STALL: Duration = Duration::from_secs(30);

impl Rx for IceRx {
    #[inline]
    fn recv<R>(&mut self, f: impl FnOnce(u32, &[u8]) -> R) -> Result<R> {
        let mut polls = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            if let Some(sample) = self.subscriber.receive()? {
                return Ok(f(*sample.user_header(), sample.payload()));
            }
            polls = polls.wrapping_add(1);
            if polls % 65_536 == 0 && since.get_or_insert_with(Instant::now).elapsed() > STALL {
                return Err("iceoryx2: no sample for 30 s (is the publisher gone?)".into());
            }
            std::hint::spin_loop();
        }
    }
}
