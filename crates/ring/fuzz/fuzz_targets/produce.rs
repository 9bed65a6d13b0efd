//! A producer whose consumer publishes whatever cursors it likes, at its start and between
//! sends of any size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tachyon_ring::fuzzing::produce_untrusted(data);
});
