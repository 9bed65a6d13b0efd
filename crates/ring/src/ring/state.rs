// Floor: ring; imports ring::shm and base only.
//! A ring's shared state word, readable from any thread while its ends are busy.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::ring::shm::Region;
use crate::wire::layout::state;

/// A handle on one ring's shared state word (arena header offset 16: 0 uninitialized,
/// 1 initializing, 2 ready, 3 disconnected, 4 fatal error, 5 unknown). It keeps the ring
/// mapped, is `Send + Sync` and `Clone`, and never touches either end, so another thread can
/// read it while the consumer waits (what upstream's `tachyon_get_state` does).
///
/// ```
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// let (producer, _consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
/// let state = producer.ring_state();
/// assert_eq!(state.load(), tachyon_ring::layout::state::READY);
/// assert!(!state.is_fatal());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RingState {
    region: Arc<Region>,
}

impl fmt::Debug for RingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingState")
            .field("state", &self.load())
            .finish()
    }
}

impl RingState {
    pub(crate) fn new(region: &Arc<Region>) -> RingState {
        RingState {
            region: Arc::clone(region),
        }
    }

    /// The state word now (acquire).
    pub fn load(&self) -> u32 {
        self.region.header().state.load(Ordering::Acquire)
    }

    /// True once either side marked the ring fatal (state 4).
    pub fn is_fatal(&self) -> bool {
        self.load() == state::FATAL_ERROR
    }

    /// Marks the ring fatal (state 4) for both sides: what upstream's core does on a protocol
    /// error it finds itself (for instance its C ABI's rollback of an RPC call that was never
    /// acquired). Both ends of this crate stop at their next look.
    pub fn mark_fatal(&self) {
        self.region.mark_fatal();
    }
}
