//! Runs `sched-bench` end to end at a tiny size: every workload, both implementations, each
//! in its own child process. Checks that every run printed its JSON line with the report
//! fields of `BENCH.md`, that every expected fire was delivered, that nothing fired in the
//! add and idle workloads, and that the summary table came out on stderr.
//!
//! ```text
//! cargo test -p sched-bench --test smoke
//! ```

use std::process::Command;

use serde_json::Value;

const WORKLOADS: [&str; 6] = ["w1", "w2", "w3", "w5", "w6", "w6m"];

/// The fields each workload's lines must carry, as numbers.
fn fields(workload: &str) -> &'static [&'static str] {
    match workload {
        "w1" => &[
            "add_s",
            "jobs_per_s",
            "rss_bytes_per_job",
            "peak_rss_bytes_per_job",
        ],
        "w3" => &["cpu_s", "voluntary_switches", "wakeups", "wakeups_per_min"],
        "w5" => &[
            "first_start_ms",
            "last_start_ms",
            "fires_per_s",
            "fires",
            "expected",
        ],
        _ => &[
            "fires",
            "expected",
            "late_p50_ms",
            "late_p99_ms",
            "late_max_ms",
            "cpu_s",
        ],
    }
}

#[test]
fn every_workload_runs_on_both_implementations_and_delivers_every_fire() {
    let out = Command::new(env!("CARGO_BIN_EXE_sched-bench"))
        .args(["--repetitions", "1", "--n", "300", "--j", "40"])
        .args(["--i", "0.2", "--d", "0.4", "--lead", "0.25"])
        .output()
        .expect("sched-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {}; stderr:\n{stderr}",
        out.status
    );

    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), WORKLOADS.len() * 2, "one line per run");

    for w in WORKLOADS {
        for imp in ["bare", "sched"] {
            let line = lines
                .iter()
                .find(|l| l["workload"] == w && l["impl"] == imp)
                .unwrap_or_else(|| panic!("no line for {w} {imp}"));
            for f in fields(w) {
                assert!(
                    line[f].is_number(),
                    "{w} {imp}: field {f} missing in {line}"
                );
            }
            match w {
                "w1" | "w3" => assert_eq!(line["fires"], 0, "{w} {imp}: nothing should fire"),
                _ => {
                    let expected = line["expected"].as_u64().unwrap();
                    assert!(expected > 0, "{w} {imp}: {line}");
                    assert_eq!(
                        line["fires"].as_u64(),
                        Some(expected),
                        "{w} {imp}: every fire delivered: {line}"
                    );
                }
            }
        }
    }
    // 40 jobs every 0.2 s from t0, spread over the first interval, for 0.4 s: two each.
    let w2 = lines.iter().find(|l| l["workload"] == "w2").unwrap();
    assert_eq!(w2["expected"], 80);

    assert!(stderr.contains("sched-bench summary"), "stderr:\n{stderr}");
    for title in [
        "W1 add",
        "W2 lateness",
        "W3 idle",
        "W5 burst",
        "W6 scale",
        "W6 1M held",
    ] {
        assert!(
            stderr.contains(title),
            "{title} missing from the summary:\n{stderr}"
        );
    }
}
