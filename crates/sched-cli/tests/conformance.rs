//! Runs every trigger conformance vector through the `sched next` binary.
//!
//! The vectors live in `crates/sched-core/tests/data/triggers.json` (see the README there).
//! A valid case becomes `sched next --trigger SPEC --now NOW [--previous PREV] --count N`; its
//! stdout must be exactly the expected times, compared as instants, with exit status 0 and
//! nothing on stderr. Every line must also carry the offset the vector writes, except for
//! `and`/`or`, whose times may be written in any child's zone. An invalid spec must exit
//! with status 2, an error on stderr and nothing on stdout.
//!
//! Each `crontab` spec with only `expr` and `timezone`, and each `cron` spec with only fields
//! and `timezone`, runs a second time through the `--crontab` or `--cron` shorthand, which
//! must give the same result.
//!
//! The ~800 processes run on a few threads. `SCHED_CONFORMANCE_FILTER=cron-00` runs only
//! the cases whose id contains the text.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, FixedOffset};
use sched::trigger::CronTrigger;
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sched-core/tests/data/triggers.json");
    let text = std::fs::read_to_string(&path).expect("read the conformance vectors");
    let doc: Value = serde_json::from_str(&text).expect("vectors parse");
    assert_eq!(doc["format"], "trigger-conformance-v1");
    doc["cases"].as_array().expect("cases").clone()
}

fn sched(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sched"))
        .args(args)
        .output()
        .expect("run the sched binary")
}

fn rfc3339(text: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(text).map_err(|e| format!("{text:?} is not RFC 3339: {e}"))
}

/// The `--crontab`/`--cron` shorthand arguments that stand for `spec`, when there are some:
/// a `crontab` spec with only `expr` and `timezone`, or a `cron` spec with only fields and
/// `timezone`.
fn shorthand(spec: &Value) -> Option<Vec<String>> {
    let map = spec.as_object()?;
    let tz = map.get("timezone")?.as_str()?.to_owned();
    match map.get("type")?.as_str()? {
        "crontab" if map.len() == 3 => {
            let expr = map.get("expr")?.as_str()?.to_owned();
            Some(vec!["--crontab".into(), expr, "--tz".into(), tz])
        }
        "cron" => {
            let mut pairs = Vec::new();
            for (key, value) in map {
                if key == "type" || key == "timezone" {
                    continue;
                }
                if !CronTrigger::FIELDS.contains(&key.as_str()) {
                    return None;
                }
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                if value.contains('=') || value.trim().is_empty() {
                    return None;
                }
                pairs.push(format!("{key}={value}"));
            }
            if pairs.is_empty() {
                return None;
            }
            Some(vec!["--cron".into(), pairs.join(","), "--tz".into(), tz])
        }
        _ => None,
    }
}

/// Runs one case, and again through its shorthand when it has one; `Err` says what went
/// wrong.
fn check(case: &Value) -> Result<(), String> {
    let spec = case["trigger"].to_string();
    check_with(case, vec!["--trigger".into(), spec])?;
    if let Some(args) = shorthand(&case["trigger"]) {
        check_with(case, args.clone()).map_err(|e| format!("through {args:?}: {e}"))?;
    }
    Ok(())
}

/// Runs one case with `source` as the arguments that give the trigger.
fn check_with(case: &Value, source: Vec<String>) -> Result<(), String> {
    if case.get("expect_error").and_then(Value::as_bool) == Some(true) {
        let mut args = vec!["next".to_owned(), "--count".into(), "1".into()];
        args.extend(source);
        let out = sched(&args);
        if out.status.code() != Some(2) {
            return Err(format!(
                "expected exit status 2, got {:?}",
                out.status.code()
            ));
        }
        if !out.stdout.is_empty() {
            return Err(format!(
                "expected no output, got {:?}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        if String::from_utf8_lossy(&out.stderr).trim().is_empty() {
            return Err("expected an error message on stderr".into());
        }
        return Ok(());
    }

    let mut args = vec![
        "next".to_owned(),
        "--now".into(),
        case["now"].as_str().expect("now").to_owned(),
        "--count".into(),
        case["count"].as_u64().expect("count").to_string(),
    ];
    if let Some(previous) = case["previous"].as_str() {
        args.extend(["--previous".to_owned(), previous.to_owned()]);
    }
    args.extend(source);
    let out = sched(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(0) {
        return Err(format!(
            "exit status {:?}: {}",
            out.status.code(),
            stderr.trim()
        ));
    }
    if !stderr.is_empty() {
        return Err(format!("unexpected stderr: {}", stderr.trim()));
    }
    let expected: Vec<&str> = case["expected"]
        .as_array()
        .expect("expected")
        .iter()
        .map(|v| v.as_str().expect("expected time"))
        .collect();
    let got: Vec<&str> = stdout.lines().collect();
    let mismatch = || {
        format!(
            "expected [{}]\n      got [{}]",
            expected.join(", "),
            got.join(", ")
        )
    };
    if got.len() != expected.len() {
        return Err(mismatch());
    }
    let kind = case["trigger"]["type"].as_str().unwrap_or("");
    let check_offsets = kind != "and" && kind != "or";
    for (g, e) in got.iter().zip(&expected) {
        let (g, e) = (rfc3339(g)?, rfc3339(e)?);
        if g != e || (check_offsets && g.offset() != e.offset()) {
            return Err(mismatch());
        }
    }
    Ok(())
}

#[test]
fn every_vector_through_the_binary() {
    let filter = std::env::var("SCHED_CONFORMANCE_FILTER").unwrap_or_default();
    let cases: Vec<Value> = vectors()
        .into_iter()
        .filter(|c| c["id"].as_str().is_some_and(|id| id.contains(&filter)))
        .collect();
    assert!(!cases.is_empty(), "no case matches the filter {filter:?}");
    if filter.is_empty() {
        assert_eq!(cases.len(), 502, "the vector file should hold 502 cases");
    }

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    if let Err(why) = check(case) {
                        let id = case["id"].as_str().unwrap_or("?");
                        let line = format!("{id}: {why}\n      spec {}", case["trigger"]);
                        failures.lock().expect("failure list").push(line);
                    }
                }
            });
        }
    });

    let mut failures = failures.into_inner().expect("failure list");
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed through `sched next`:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("{} vectors passed through `sched next`", cases.len());
}
