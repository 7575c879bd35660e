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

/// Runs W2 at a tiny size with sched on `store` (and the floor), and checks that both
/// delivered every fire and that the lines and the summary name the store.
fn w2_on(store: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_sched-bench"))
        .args(["--store", store, "-w", "w2", "--repetitions", "1"])
        // The lead counts from before the store is opened (a SQLite file, a server
        // schema), which takes a while when the store tests run beside this one: a run
        // whose setup overran t0 would skip its first slots.
        .args(["--j", "20", "--i", "0.2", "--d", "0.4", "--lead", "3"])
        .output()
        .expect("sched-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {}; stderr:\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("cleanup failed"), "stderr:\n{stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "one line per implementation");
    for line in &lines {
        assert_eq!(line["store"], store, "{line}");
        assert_eq!(line["expected"], 40, "{line}");
        assert_eq!(line["fires"], 40, "every fire delivered: {line}");
        assert!(line["fires_per_s"].is_number(), "{line}");
    }
    assert!(
        stderr.contains(&format!("sched on the {store} store")),
        "stderr:\n{stderr}"
    );
}

#[test]
fn w2_runs_on_sqlite() {
    w2_on("sqlite");
}

/// The server-backed stores run when their URL is set, as in sched-stores' tests.
fn w2_on_server(store: &str, var: &str) {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => w2_on(store),
        _ => eprintln!("skipped: {var} is not set"),
    }
}

#[test]
fn w2_runs_on_postgres_when_its_url_is_set() {
    w2_on_server("postgres", "SCHED_TEST_POSTGRES_URL");
}

#[test]
fn w2_runs_on_mysql_when_its_url_is_set() {
    w2_on_server("mysql", "SCHED_TEST_MYSQL_URL");
}

#[test]
fn w2_runs_on_redis_when_its_url_is_set() {
    w2_on_server("redis", "SCHED_TEST_REDIS_URL");
}
