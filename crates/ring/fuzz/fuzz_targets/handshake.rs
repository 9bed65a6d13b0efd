//! A connector checking what a hostile listener hands it: handshake words and memfds of any
//! kind (unsealed, short, hugetlb), with a 1 MiB max_capacity.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tachyon_ring::fuzzing::handshake_untrusted(data);
});
