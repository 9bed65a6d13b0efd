//! A consumer attached to a ring whose cursors and bytes a hostile peer chose.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tachyon_ring::fuzzing::consume_untrusted(data);
});
