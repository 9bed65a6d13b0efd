//! The forced lost wake-up: a producer that publishes without waking, just after the consumer
//! has gone to sleep on the futex, and how long each consumer then takes to deliver.
//!
//! The format's producer checks the sleeping word after publishing and wakes a sleeper; a
//! producer that checks too early (upstream's has that window, see `docs/wire-format.md`)
//! leaves the consumer asleep with a message waiting. Only the consumer's own timeout bounds
//! that stall. Neither implementation's producer can be made to lose a wake on purpose, so
//! this module *is* the producer, at the raw wire level: it connects to the consumer's socket,
//! maps the ring it receives, and for each sample waits until the consumer sleeps (the word
//! says SLEEPING and the kernel says the process is blocked), writes one slot, stores the head
//! and makes no wake. The consumer (a `tachyon-compare child lost-wake-rx`, ours or theirs)
//! reports when it received the slot; the slot carries the publish time (`CLOCK_MONOTONIC`,
//! one clock for both processes).

use std::fs::File;
use std::io::{IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use memmap2::MmapMut;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use serde_json::json;
use tachyon_ring::layout::{
    ARENA_HEADER_LEN, ArenaHeader, Handshake, MAGIC, SLOT_HEADER_LEN, SlotHeader, VERSION,
    sleeping, state,
};

use crate::Result;
use crate::ring::{Impl, Ring, Rx, Wait};
use crate::with_ring;
use crate::work::{ChildGuard, DATA, END, socket_path};

/// Ring bytes: every sample's slot fits without wrapping (128 bytes each).
pub const CAPACITY: usize = 1 << 16;
/// Bytes of one sample's slot: the 64-byte header and an 8-byte payload, rounded up to 64.
const SLOT: usize = 128;
/// Longest wait for one delivery; a consumer that has not delivered by then is reported at
/// the cap (and woken properly, so the trial can end).
pub const CAP: Duration = Duration::from_secs(3);
/// Longest wait for the consumer to fall asleep again after a delivery (either side's default
/// spin lasts under half a millisecond; a loaded machine may deschedule it for a while).
const SLEEP_WAIT: Duration = Duration::from_secs(5);

pub use crate::work::monotonic_ns;

/// One trial's samples.
#[derive(Clone, Debug, Default)]
pub struct LostWake {
    /// Publish (without a wake) to delivery, per sample, ns; a sample that hit [`CAP`] is
    /// recorded as the cap.
    pub delays_ns: Vec<f64>,
    /// Samples that hit the cap (the trial stops at the first).
    pub capped: usize,
    /// Delivery of one sample to the consumer's next sleep, ns: how long it stays awake
    /// spinning (its spin threshold, in time) before it sleeps again.
    pub awake_ns: Vec<f64>,
}

/// One trial: `samples` lost wake-ups against the consumer `imp` names.
pub fn trial(imp: Impl, samples: usize) -> Result<LostWake> {
    assert!(
        (samples + 1) * SLOT <= CAPACITY,
        "the samples must fit without wrapping"
    );
    let path = socket_path("lostwake");
    let mut child = ChildGuard::spawn_self(&[
        "lost-wake-rx".into(),
        "--impl".into(),
        imp.name().into(),
        "--socket".into(),
        path.display().to_string(),
    ])?;
    let pid = child.pid().ok_or("lost-wake child has no pid")?;
    let lines = child.stdout_lines()?;
    let ring = RawRing::connect(&path, &mut child)?;
    let mut result = LostWake::default();
    for _ in 0..samples {
        ring.wait_until_asleep(pid)?;
        let published_at = monotonic_ns();
        ring.publish_without_wake(DATA, &published_at.to_ne_bytes());
        match lines.recv_timeout(CAP) {
            Ok(line) => {
                let line = line?;
                result
                    .delays_ns
                    .push(line["delay_ns"].as_f64().unwrap_or(f64::NAN));
                // The consumer spins after the delivery, then sleeps: time that phase.
                let delivered_at = line["received_at_ns"].as_u64().unwrap_or(0);
                ring.wait_until_asleep(pid)?;
                result
                    .awake_ns
                    .push(monotonic_ns().saturating_sub(delivered_at) as f64);
            }
            Err(_) => {
                result.delays_ns.push(CAP.as_nanos() as f64);
                result.capped += 1;
                // Rescue it with a proper wake, so it can take the sentinel and exit.
                ring.wake();
                let _ = lines.recv_timeout(CAP);
                break;
            }
        }
    }
    ring.publish_without_wake(END, &[]);
    ring.wake();
    let summary = lines
        .recv_timeout(CAP)
        .map_err(|_| "the lost-wake consumer did not take the sentinel")??;
    child.wait_success()?;
    let received = summary["received"].as_u64().unwrap_or(0) as usize;
    if received != result.delays_ns.len() {
        return Err(format!(
            "lost-wake consumer ({}) received {received} of {} samples",
            imp.name(),
            result.delays_ns.len()
        )
        .into());
    }
    Ok(result)
}

/// The child: listen on `socket` with `imp`'s consumer (default wait: 10,000 spins, then the
/// futex), and print one JSON line per message as it lands (delay from the publish stamp in
/// its payload, and the receive time), then `{"received": N}` at the sentinel.
pub fn child(imp: Impl, socket: &Path) -> Result<()> {
    let received = with_ring!(imp, R => {
        let mut rx = R::listen_rx(socket, CAPACITY, Wait::Hybrid)?;
        receive(&mut rx)
    })?;
    println!("{}", json!({ "received": received }));
    Ok(())
}

fn receive<X: Rx>(rx: &mut X) -> Result<u64> {
    let mut stdout = std::io::stdout().lock();
    let mut received = 0;
    loop {
        let (type_id, published_at) = rx.recv(|type_id, data| {
            let stamp = data.try_into().map_or(0, u64::from_ne_bytes);
            (type_id, stamp)
        })?;
        let received_at = monotonic_ns();
        if type_id == END {
            return Ok(received);
        }
        received += 1;
        writeln!(
            stdout,
            "{}",
            json!({
                "delay_ns": received_at.saturating_sub(published_at),
                "received_at_ns": received_at,
            })
        )?;
        stdout.flush()?;
    }
}

/// The consumer's ring, mapped by a producer that speaks the wire directly.
struct RawRing {
    map: MmapMut,
    /// Our write cursor (we publish every slot at once, so it is also the published head).
    head: std::cell::Cell<u64>,
}

impl RawRing {
    /// Connects to the consumer's socket (retrying while it starts), takes the handshake and
    /// the memfd, checks both against the format and maps the region.
    fn connect(path: &Path, child: &mut ChildGuard) -> Result<RawRing> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(err) if Instant::now() > deadline || child.has_exited() => {
                    return Err(format!("connect {}: {err}", path.display()).into());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        };
        let (handshake, fd) = receive_handshake(&stream)?;
        if handshake != Handshake::new(handshake.capacity_fwd as usize, None)
            || handshake.magic != MAGIC
            || handshake.version != VERSION
            || handshake.capacity_fwd as usize != CAPACITY
        {
            return Err(format!("unexpected handshake {handshake:?}").into());
        }
        let file = File::from(fd);
        if file.metadata()?.len() < (ARENA_HEADER_LEN + CAPACITY) as u64 {
            return Err("the received memfd is smaller than the ring".into());
        }
        // SAFETY: a memfd the consumer sealed against shrinking (checked large enough above);
        // we touch the header only through `ArenaHeader`'s atomics and write only slots past
        // the published head, which the consumer does not read until we publish them.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(ARENA_HEADER_LEN + CAPACITY)
                .map_mut(&file)?
        };
        let ring = RawRing {
            map,
            head: std::cell::Cell::new(0),
        };
        let header = ring.header();
        if header.state.load(Ordering::Acquire) != state::READY {
            return Err("the consumer's ring is not ready".into());
        }
        ring.head.set(header.head.load(Ordering::Acquire));
        Ok(ring)
    }

    fn header(&self) -> &ArenaHeader {
        // SAFETY: the mapping is page-aligned and at least ARENA_HEADER_LEN long; ArenaHeader
        // is repr(C), 768 bytes of atomics and padding, valid for any bytes.
        unsafe { &*(self.map.as_ptr() as *const ArenaHeader) }
    }

    /// Waits until the consumer is asleep on the futex: the word says SLEEPING and the kernel
    /// shows the process blocked (state `S`), the word still SLEEPING after that.
    fn wait_until_asleep(&self, pid: u32) -> Result<()> {
        let word = &self.header().consumer_sleeping;
        let deadline = Instant::now() + SLEEP_WAIT;
        loop {
            if word.load(Ordering::Acquire) == sleeping::SLEEPING
                && process_state(pid)? == 'S'
                && word.load(Ordering::Acquire) == sleeping::SLEEPING
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the consumer did not fall asleep within {SLEEP_WAIT:?} (word {})",
                    word.load(Ordering::Relaxed)
                )
                .into());
            }
            std::hint::spin_loop();
        }
    }

    /// Writes one slot (`payload` of at most 64 bytes) and publishes it: head stored, no
    /// fence, no look at the sleeping word, no wake.
    fn publish_without_wake(&self, type_id: u32, payload: &[u8]) {
        assert!(SLOT_HEADER_LEN + payload.len() <= SLOT);
        let head = self.head.get();
        let offset = ARENA_HEADER_LEN + (head as usize % CAPACITY);
        let header = SlotHeader {
            size: payload.len() as u32,
            type_id,
            reserved_size: SLOT as u32,
            padding: 0,
            correlation_id: 0,
        };
        // SAFETY: `offset + SLOT` lies inside the mapping (CAPACITY is a multiple of SLOT and
        // `trial` never sends more than fit), and the consumer reads these bytes only after
        // the release store of the head below.
        unsafe {
            let slot = (self.map.as_ptr() as *mut u8).add(offset);
            std::ptr::copy_nonoverlapping(
                bytemuck::bytes_of(&header).as_ptr(),
                slot,
                size_of::<SlotHeader>(),
            );
            std::ptr::copy_nonoverlapping(
                payload.as_ptr(),
                slot.add(SLOT_HEADER_LEN),
                payload.len(),
            );
        }
        self.head.set(head + SLOT as u64);
        self.header()
            .head
            .store(head + SLOT as u64, Ordering::Release);
    }

    /// What a correct producer does after publishing: wake a sleeping consumer (word swapped
    /// to AWAKE first, so the wake cannot be lost).
    fn wake(&self) {
        let word = &self.header().consumer_sleeping;
        fence(Ordering::SeqCst);
        if word
            .compare_exchange(
                sleeping::SLEEPING,
                sleeping::AWAKE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            // SAFETY: FUTEX_WAKE on a u32 in a live shared mapping; it only reads the address.
            unsafe {
                libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
            }
        }
    }
}

/// The 32-byte handshake and the one memfd that come with it.
fn receive_handshake(stream: &UnixStream) -> Result<(Handshake, OwnedFd)> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut bytes = [0u8; 32];
    let mut iov = [IoSliceMut::new(&mut bytes)];
    let mut cmsg_space = nix::cmsg_space!([std::os::fd::RawFd; 2]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let got = msg.bytes;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: the kernel installed these fds in our table for this message; we are
            // their only owner.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if got != 32 || fds.len() != 1 {
        return Err(format!("handshake of {got} bytes with {} fds", fds.len()).into());
    }
    Ok((bytemuck::pod_read_unaligned(&bytes), fds.remove(0)))
}

/// The scheduler state of process `pid` (`R` running, `S` sleeping, …), from /proc.
fn process_state(pid: u32) -> Result<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses; the state follows the
    // last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .ok_or_else(|| format!("unreadable /proc/{pid}/stat").into())
}
