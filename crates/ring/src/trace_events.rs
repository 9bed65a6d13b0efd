//! The lifecycle events a service sees with the `tracing` feature, recorded from a real bus
//! and a corrupted ring. Top floor: it builds a whole `Bus`, which `trace` (base) cannot.

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records each event as "LEVEL message field=value …", with the thread that emitted it.
/// Installed once as the global subscriber: a thread-scoped one races tracing's per-callsite
/// interest cache with the other tests' threads (an event could be dropped as "never
/// interesting"), which made this test fail now and then.
#[derive(Default)]
struct Recorder(Mutex<Vec<(ThreadId, String)>>);

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!(" {value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for &'static Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = event.metadata().level().to_string();
        event.record(&mut Line(&mut line));
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        lines.push((std::thread::current().id(), line));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<&'static Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder: &'static Recorder = Box::leak(Box::default());
        // Only this module installs one; a failure would mean another test did, and the
        // assertions below would then fail loudly.
        let _ = tracing::subscriber::set_global_default(recorder);
        recorder
    })
}

/// The events this thread emitted while `run` ran.
fn recorded(run: impl FnOnce()) -> Vec<String> {
    let recorder = recorder();
    let me = std::thread::current().id();
    run();
    let mut lines = recorder.0.lock().unwrap_or_else(|p| p.into_inner());
    let (mine, others): (Vec<_>, Vec<_>) = lines.drain(..).partition(|(id, _)| *id == me);
    lines.extend(others);
    mine.into_iter().map(|(_, line)| line).collect()
}

#[test]
fn a_bus_reports_listening_and_the_peer_with_its_pid_and_uid() {
    let path = std::env::temp_dir().join(format!("tachyon-trace-{}.sock", std::process::id()));
    let lines = recorded(|| {
        let connector = {
            let path = path.clone();
            std::thread::spawn(move || {
                crate::bus::Bus::options()
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .connect(&path)
                    .unwrap()
            })
        };
        let _listener = crate::bus::Bus::listen(&path, 4096).unwrap();
        connector.join().unwrap();
    });
    let text = lines.join("\n");
    assert!(text.contains("INFO listening path="), "{text}");
    assert!(text.contains("INFO peer connected"), "{text}");
    assert!(
        text.contains(&format!("pid={}", std::process::id())),
        "{text}"
    );
    assert!(text.contains("uid="), "{text}");
}

#[test]
fn corruption_is_reported_with_its_cause() {
    use std::sync::atomic::Ordering;
    let lines = recorded(|| {
        let region = Arc::new(crate::ring::shm::Region::heap(4096).unwrap());
        let mut consumer =
            crate::ring::consumer::Consumer::new(Arc::clone(&region), 10, false, None);
        // A head that is not a multiple of 64 slots' worth: outside what a producer writes.
        region.header().head.store(1 << 40, Ordering::Release);
        assert!(consumer.try_recv().is_err());
    });
    let text = lines.join("\n");
    assert!(
        text.contains("ERROR ring corrupt end=\"consumer\""),
        "{text}"
    );
    assert!(text.contains("producer published head"), "{text}");
}
