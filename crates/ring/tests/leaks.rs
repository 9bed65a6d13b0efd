//! Opening and closing a thousand buses leaves no file descriptor and no mapping behind.
//! Alone in its test binary, so no other test opens files meanwhile.

use std::time::Duration;

use tachyon_ring::Bus;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn a_thousand_buses_leak_nothing() {
    let path = std::env::temp_dir().join(format!("tachyon-leaks-{}.sock", std::process::id()));
    // One round first, so lazily created runtime state (thread stacks, caches) is counted in
    // the baseline, not as a leak.
    let round = || {
        let listener = {
            let path = path.clone();
            std::thread::spawn(move || Bus::listen(&path, 4096).unwrap().into_consumer())
        };
        let producer = Bus::options()
            .connect_timeout(Duration::from_secs(5))
            .connect(&path)
            .unwrap()
            .into_producer();
        let consumer = listener.join().unwrap();
        drop((producer, consumer));
    };
    round();
    let (fds_before, maps_before) = (open_fds(), mappings());
    for _ in 0..1000 {
        round();
    }
    assert_eq!(open_fds(), fds_before, "file descriptors leaked");
    assert_eq!(mappings(), maps_before, "mappings leaked");
    assert!(!path.exists(), "the socket file was left behind");
}
