//! A connector checking an arena header a hostile listener wrote.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tachyon_ring::fuzzing::attach_untrusted(data);
});
