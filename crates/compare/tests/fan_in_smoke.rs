//! The fan-in and idle-CPU benchmarks run end to end on our side (no upstream): tiny counts,
//! one pair, both cross-process children (producers, idle consumer). Checks that they complete
//! and write their tables, never how fast or how idle anything was.

use std::process::Command;

#[test]
fn fan_in_and_idle_cpu_run_on_our_side_and_write_their_tables() {
    let out = std::env::temp_dir().join(format!("tachyon-fan-in-smoke-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_tachyon-compare-fan-in"))
        .args(["run", "--ours-only", "--pairs", "1", "--producers", "1,3"])
        .args([
            "--messages",
            "3000",
            "--paced-messages",
            "20",
            "--gap-us",
            "10",
        ])
        .args(["--idle-secs", "0.2", "--out-dir"])
        .arg(&out)
        .output()
        .expect("tachyon-compare-fan-in runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for metric in [
        "fan-in 3 → 1, 32 B, total rate",
        "fan-in 3 → 1, one-way p50 (flat out)",
        "fan-in 3 → 1, one-way p99 (paced)",
        "ours: 1 thread in Selector::select",
        "ours: tokio current-thread, 8 tasks in AsyncConsumer::recv",
    ] {
        assert!(
            stdout.contains(&format!("| {metric} |")),
            "{metric} missing:\n{stdout}"
        );
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fan_in.json")).unwrap()).unwrap();
    // Five rows per producer count: rate, per CPU-second, flat-out p50, paced p50 and p99.
    assert_eq!(results["fan_in"].as_array().unwrap().len(), 10);
    std::fs::remove_dir_all(&out).unwrap();
}
