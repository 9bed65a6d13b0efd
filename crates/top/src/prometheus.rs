//! The Prometheus text exposition of a snapshot, encoded by `prometheus-client`: for the
//! node-exporter textfile collector (`--prometheus FILE`) and for `/metrics` (`--listen`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::report::{AlarmKind, Snapshot};

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric, as Prometheus text exposition (ends with `# EOF`).
pub fn exposition(snapshot: &Snapshot) -> String {
    let mut registry = Registry::with_prefix("tachyon");
    let gauge = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<Labels, FloatGauge>::default();
        registry.register(name, help, family.clone());
        family
    };
    let capacity = gauge(&mut registry, "ring_capacity_bytes", "Ring bytes");
    let fill = gauge(
        &mut registry,
        "ring_fill_bytes",
        "Bytes published and not yet released (head - tail)",
    );
    let fill_ratio = gauge(&mut registry, "ring_fill_ratio", "fill_bytes / capacity");
    let head = gauge(
        &mut registry,
        "ring_head_bytes",
        "Producer's published head: bytes since the ring was made",
    );
    let tail = gauge(
        &mut registry,
        "ring_tail_bytes",
        "Consumer's published tail: bytes since the ring was made",
    );
    let rate = gauge(
        &mut registry,
        "ring_published_bytes_per_second",
        "Ring bytes published per second over the last window",
    );
    let msgs = gauge(
        &mut registry,
        "ring_messages_per_second",
        "Messages published per second (--peek only)",
    );
    let state = gauge(
        &mut registry,
        "ring_state",
        "The state word: 2 ready, 3 disconnected, 4 fatal",
    );
    let sleeping = gauge(
        &mut registry,
        "ring_consumer_sleeping",
        "The consumer's futex word: 0 awake, 1 sleeping, 2 pure spin",
    );
    let full = gauge(
        &mut registry,
        "ring_full_seconds",
        "Seconds the ring was seen full since tachyon-top started",
    );
    let processes = gauge(
        &mut registry,
        "ring_processes",
        "Processes holding the ring",
    );
    let alarm = gauge(
        &mut registry,
        "ring_alarm",
        "1 while the alarm is raised on the ring",
    );
    let by_type = gauge(
        &mut registry,
        "ring_walked_messages",
        "Messages walked by --peek, per type id",
    );
    let errors = gauge(
        &mut registry,
        "ring_inspect_error",
        "1 when the ring could not be read",
    );
    let uninspectable = Gauge::<i64>::default();
    registry.register(
        "top_uninspectable_processes",
        "Processes whose fds or mappings tachyon-top may not read",
        uninspectable.clone(),
    );
    uninspectable.set(snapshot.uninspectable.len() as i64);

    for ring in &snapshot.rings {
        let labels: Labels = vec![
            ("ring", ring.id.clone()),
            ("label", ring.label.clone()),
            ("kind", ring.kind.name().to_string()),
        ];
        let set = |family: &Family<Labels, FloatGauge>, value: f64| {
            family.get_or_create(&labels).set(value);
        };
        set(&processes, ring.processes.len() as f64);
        set(&errors, if ring.error.is_some() { 1.0 } else { 0.0 });
        for kind in [AlarmKind::Fatal, AlarmKind::Stalled, AlarmKind::Orphaned] {
            let mut with_alarm = labels.clone();
            with_alarm.push(("alarm", kind.name().to_string()));
            let raised = ring.alarms.iter().any(|a| a.kind == kind);
            alarm
                .get_or_create(&with_alarm)
                .set(if raised { 1.0 } else { 0.0 });
        }
        let Some(state_now) = &ring.ring else {
            continue;
        };
        set(&capacity, state_now.capacity as f64);
        set(&fill, state_now.fill_bytes as f64);
        set(&fill_ratio, state_now.fill_ratio);
        set(&head, state_now.head as f64);
        set(&tail, state_now.tail as f64);
        set(&state, f64::from(state_now.state_code));
        set(&sleeping, f64::from(state_now.consumer.sleeping_word));
        set(&full, state_now.time_full_s);
        if let Some(bytes) = state_now.bytes_per_s {
            set(&rate, bytes);
        }
        if let Some(peek) = &state_now.peek {
            if let Some(per_s) = peek.msgs_per_s {
                set(&msgs, per_s);
            }
            for (type_id, count) in &peek.type_counts {
                let mut with_type = labels.clone();
                with_type.push(("type_id", type_id.to_string()));
                by_type.get_or_create(&with_type).set(*count as f64);
            }
        }
    }
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    text
}
