//! In-process streaming throughput by payload size: a producer thread sends a batch of
//! messages through a 1 MiB heap ring, the measuring thread receives them. Measures the ring's
//! own cost (copy in, publish, copy out) without the handshake or a second process.
//!
//! The comparison against the C++ core (issue: benchmarks side by side) is not here yet;
//! these numbers alone make no claim against upstream.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tachyon_ring::Bus;

const MESSAGES: u64 = 10_000;

fn stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_in_process");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for size in [0usize, 32, 256, 1024, 4096, 65536] {
        group.throughput(Throughput::Elements(MESSAGES));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_custom(|iterations| {
                let (mut producer, mut consumer) = Bus::in_memory(1 << 20).unwrap().split();
                let total = iterations * MESSAGES;
                let sender = std::thread::spawn(move || {
                    let payload = vec![7u8; size];
                    for _ in 0..total {
                        producer
                            .send_timeout_unflushed(1, &payload, Duration::from_secs(10))
                            .unwrap();
                    }
                    producer.flush();
                });
                let start = std::time::Instant::now();
                let mut received = 0;
                while received < total {
                    let message = consumer.recv().unwrap();
                    std::hint::black_box(message.data());
                    received += 1;
                }
                let elapsed = start.elapsed();
                sender.join().unwrap();
                elapsed
            });
        });
    }
    group.finish();
}

criterion_group!(benches, stream);
criterion_main!(benches);
