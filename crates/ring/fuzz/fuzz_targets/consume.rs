//! A consumer attached to a ring whose cursors (also between our loads of them) and bytes a
//! hostile peer chose, SPSC or RPC.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tachyon_ring::fuzzing::consume_untrusted(data);
});
