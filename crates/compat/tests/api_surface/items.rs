//! tachyon-ipc 0.5.1's public API, item by item, as typed function pointers: this file
//! compiles only if every name exists under `tachyon_ipc` with upstream's exact signature
//! (receiver, argument and return types, lifetimes). Written from upstream's documented API,
//! not copied. It is compiled twice: here, against tachyon-compat, and in
//! `crates/compare/tests/upstream_api.rs` against the real crate (feature `compare-upstream`),
//! so the two cannot drift apart.

#![allow(clippy::type_complexity, clippy::extra_unused_lifetimes)]

use tachyon_ipc::{
    BatchIter, Bus, RpcBus, RpcRxGuard, RpcTxGuard, RxBatchGuard, RxGuard, RxMsgView, TachyonError,
    TxGuard, make_type_id, msg_type, route_id,
};

type R<T> = Result<T, TachyonError>;

#[test]
fn every_item_has_upstreams_signature() {
    let _: fn(&str, usize) -> R<Bus> = Bus::listen;
    let _: fn(&str) -> R<Bus> = Bus::connect;
    let _: fn(&Bus, i32) -> R<()> = Bus::set_numa_node;
    let _: fn(&Bus, i32) = Bus::set_polling_mode;
    let _: fn(&Bus, &[u8], u32) -> R<()> = Bus::send;
    let _: for<'a> fn(&'a Bus, usize) -> R<TxGuard<'a>> = Bus::acquire_tx;
    let _: for<'a> fn(&'a Bus, u32) -> R<RxGuard<'a>> = Bus::acquire_rx;
    let _: for<'a> fn(&'a Bus, usize, u32) -> R<RxBatchGuard<'a>> = Bus::drain_batch;
    let _: fn(&Bus) = Bus::flush;

    guards();

    let _: fn(&str, usize, usize) -> R<RpcBus> = RpcBus::listen;
    let _: fn(&str) -> R<RpcBus> = RpcBus::connect;
    let _: for<'a> fn(&'a RpcBus, usize) -> R<RpcTxGuard<'a>> = RpcBus::acquire_call;
    let _: fn(&RpcBus, &[u8], u32) -> R<u64> = RpcBus::call;
    let _: for<'a> fn(&'a RpcBus, u64, u32) -> R<RpcRxGuard<'a>> = RpcBus::wait;
    let _: for<'a> fn(&'a RpcBus, u32) -> R<RpcRxGuard<'a>> = RpcBus::serve;
    let _: for<'a> fn(&'a RpcBus, u64, usize) -> R<RpcTxGuard<'a>> = RpcBus::acquire_reply;
    let _: fn(&RpcBus, u64, &[u8], u32) -> R<()> = RpcBus::reply;
    let _: fn(&RpcBus, bool) = RpcBus::set_polling_mode;

    rpc_guards();

    let _: fn(u16, u16) -> u32 = make_type_id;
    let _: fn(u32) -> u16 = route_id;
    let _: fn(u32) -> u16 = msg_type;
}

/// Methods of the guards: their impls take the bus lifetime `'b` (early bound), as upstream's.
fn guards<'b>() {
    let _: fn(&TxGuard<'b>, &[u8]) = TxGuard::write;
    let _: for<'a> unsafe fn(&'a mut TxGuard<'b>) -> &'a mut [u8] = TxGuard::as_mut_slice;
    let _: fn(&TxGuard<'b>) -> usize = TxGuard::max_size;
    let _: fn(TxGuard<'b>, usize, u32) -> R<()> = TxGuard::commit;
    let _: fn(TxGuard<'b>, usize, u32) -> R<()> = TxGuard::commit_unflushed;

    let _: for<'a> fn(&'a RxGuard<'b>) -> &'a [u8] = RxGuard::data;
    let _: fn(RxGuard<'b>) -> R<()> = RxGuard::commit;
    let _: fn(&RxGuard<'b>) -> (usize, u32) = |guard| (guard.actual_size, guard.type_id);

    let _: for<'a> fn(&'a RxBatchGuard<'b>, usize) -> Option<RxMsgView<'a>> = RxBatchGuard::get;
    let _: fn(&RxBatchGuard<'b>) -> usize = RxBatchGuard::len;
    let _: fn(&RxBatchGuard<'b>) -> bool = RxBatchGuard::is_empty;
    let _: for<'a> fn(&'a RxBatchGuard<'b>) -> BatchIter<'a> = RxBatchGuard::iter;
    let _: fn(RxBatchGuard<'b>) -> R<()> = RxBatchGuard::commit;
    let _: fn(&RxBatchGuard<'b>) -> usize = |batch| batch.count;
    let _: fn(&'b RxBatchGuard<'b>) -> BatchIter<'b> = IntoIterator::into_iter;

    let _: fn(&RxMsgView<'b>) -> &'b [u8] = RxMsgView::data;
    let _: fn(&RxMsgView<'b>) -> usize = RxMsgView::actual_size;
    let _: fn(&RxMsgView<'b>) -> u32 = RxMsgView::type_id;
    let _: fn(&mut BatchIter<'b>) -> Option<RxMsgView<'b>> = Iterator::next;
    let _: fn(&BatchIter<'b>) -> usize = ExactSizeIterator::len;
}

fn rpc_guards<'b>() {
    let _: fn(&RpcTxGuard<'b>, &[u8]) = RpcTxGuard::write;
    let _: for<'a> fn(&'a mut RpcTxGuard<'b>) -> &'a mut [u8] = RpcTxGuard::as_mut_slice;
    let _: fn(RpcTxGuard<'b>, usize, u32) -> R<u64> = RpcTxGuard::commit;

    let _: for<'a> fn(&'a RpcRxGuard<'b>) -> &'a [u8] = RpcRxGuard::data;
    let _: fn(RpcRxGuard<'b>) -> R<()> = RpcRxGuard::commit;
    let _: fn(&RpcRxGuard<'b>) -> (usize, u32, u64) =
        |guard| (guard.actual_size, guard.type_id, guard.correlation_id);
}

#[test]
fn the_error_enum_has_upstreams_variants_and_traits() {
    fn traits<T: std::fmt::Debug + Clone + PartialEq + Eq + std::error::Error + Send + Sync>() {}
    traits::<TachyonError>();
    // An exhaustive match: a variant added or missing here fails to compile.
    let name = |error: &TachyonError| match error {
        TachyonError::NullPtr => "NullPtr",
        TachyonError::OutOfMemory => "OutOfMemory",
        TachyonError::OpenFailed => "OpenFailed",
        TachyonError::TruncateFailed => "TruncateFailed",
        TachyonError::ChmodFailed => "ChmodFailed",
        TachyonError::SealFailed => "SealFailed",
        TachyonError::MapFailed => "MapFailed",
        TachyonError::InvalidSize => "InvalidSize",
        TachyonError::BufferFull => "BufferFull",
        TachyonError::BufferEmpty => "BufferEmpty",
        TachyonError::NetworkError => "NetworkError",
        TachyonError::SystemError => "SystemError",
        TachyonError::Interrupted => "Interrupted",
        TachyonError::AbiMismatch => "AbiMismatch",
        TachyonError::PeerDead => "PeerDead",
        TachyonError::Unknown(_) => "Unknown",
    };
    assert_eq!(name(&TachyonError::Unknown(99)), "Unknown");
}

#[test]
fn send_and_sync_match_upstream() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<Bus>();
    send_sync::<RpcBus>();
}
