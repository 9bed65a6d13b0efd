//! MarketTick, the seed's 32-byte message: decoded with `bytemuck`, never pointer arithmetic.

use bytemuck::{Pod, Zeroable};

/// Message type of a bid.
pub const BID: u32 = 1;
/// Message type of an ask.
pub const ASK: u32 = 2;
/// Message type of the end-of-stream sentinel.
pub const SENTINEL: u32 = 0;

/// A tick as it lies in the ring: packed, little endian. `timestamp` sits at offset 20, so it
/// is unaligned; `Message::read_pod` (tachyon-consumer) and `decode` (the upstream-API consumer,
/// which shares this file) copy the 32 bytes out before any field is read.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MarketTick {
    /// Symbol, NUL-padded ASCII (`b"BTCUSDT\0"`).
    pub symbol: [u8; 8],
    price: [u8; 8],
    quantity: [u8; 4],
    timestamp: [u8; 8],
    _padding: [u8; 4],
}

const _: () = assert!(size_of::<MarketTick>() == 32);

impl MarketTick {
    /// Bytes of one tick on the wire.
    pub const SIZE: usize = size_of::<MarketTick>();

    /// Decodes a payload, or `None` when it is not exactly one tick long. (tachyon-consumer
    /// reads with `Message::read_pod`; the upstream-API consumer, sharing this file, uses this.)
    #[allow(dead_code)]
    pub fn decode(payload: &[u8]) -> Option<MarketTick> {
        (payload.len() == Self::SIZE).then(|| bytemuck::pod_read_unaligned(payload))
    }

    /// Price.
    pub fn price(&self) -> f64 {
        f64::from_le_bytes(self.price)
    }

    /// Quantity.
    pub fn quantity(&self) -> u32 {
        u32::from_le_bytes(self.quantity)
    }

    /// Producer's `CLOCK_REALTIME` at send, in ns since the Unix epoch; 0 when not stamped.
    pub fn timestamp_ns(&self) -> u64 {
        u64::from_le_bytes(self.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_python_layout() {
        // struct.pack("<8sdIQ4x", b"BTCUSDT\0", 65000.5, 7, 1_700_000_000_123_456_789)
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"BTCUSDT\0");
        bytes.extend_from_slice(&65000.5f64.to_le_bytes());
        bytes.extend_from_slice(&7u32.to_le_bytes());
        bytes.extend_from_slice(&1_700_000_000_123_456_789u64.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        let tick = MarketTick::decode(&bytes).unwrap();
        assert_eq!(&tick.symbol, b"BTCUSDT\0");
        assert_eq!(tick.price(), 65000.5);
        assert_eq!(tick.quantity(), 7);
        assert_eq!(tick.timestamp_ns(), 1_700_000_000_123_456_789);
        assert!(MarketTick::decode(&bytes[..31]).is_none());
    }
}
