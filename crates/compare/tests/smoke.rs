//! The harness runs end to end on our side (no upstream, no Python): tiny message counts, one
//! pair, every cross-process path (stream child, echo child, floor child, the lost wake-up's
//! raw producer and consumer child). It checks that the
//! suite completes and writes its outputs, never how fast anything was.

use std::process::Command;

#[test]
fn the_suite_runs_on_our_side_and_writes_table_json_and_plot() {
    let out = std::env::temp_dir().join(format!("tachyon-compare-smoke-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_tachyon-compare"))
        .args([
            "run",
            "--ours-only",
            "--keep-busy",
            "--pairs",
            "1",
            "--scale-down",
            "1000",
        ])
        .args([
            "--only",
            "in-process,stream,round-trip,lost-wake",
            "--out-dir",
        ])
        .arg(&out)
        .output()
        .expect("tachyon-compare runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for metric in [
        "in-process stream 64 KiB",
        "stream 32 B",
        "stream 64 KiB vs plain memcpy",
        "floor: atomic ping-pong RT p50",
        "round trip 32 B p99",
        "lost wake-up: delivery delay p50",
    ] {
        assert!(
            stdout.contains(&format!("| {metric} |")),
            "{metric} missing:\n{stdout}"
        );
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["streaming"]["sizes"].as_array().unwrap().len(), 6);
    let png = std::fs::read(out.join("streaming.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    std::fs::remove_dir_all(&out).unwrap();
}
