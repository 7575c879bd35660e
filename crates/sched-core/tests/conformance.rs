//! Runs every trigger conformance vector in `tests/data/triggers.json`.
//!
//! The vectors were computed by the reference implementations (APScheduler 3.11.3 for
//! `cron`, `interval`, `date`, `calendarinterval`, `and`, `or`; croniter 7.0.0 for
//! `crontab`; IANA tzdata 2026.6) and cross-checked by independent ones; see
//! `tests/data/README.md`. Each valid case follows the iteration rule: the first call gets the
//! case's `previous` and `now`, every later call gets the time just returned as both.
//! Results are compared as instants. Each invalid spec must fail to build.
//!
//! `SCHED_CONFORMANCE_FILTER=cron-00` runs only the cases whose id contains the text.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sched_core::trigger::{AnyTrigger, Trigger};
use serde_json::Value;

fn ts(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| {
        DateTime::parse_from_rfc3339(s)
            .expect("vector timestamp")
            .with_timezone(&Utc)
    })
}

fn run_case(case: &Value) -> Result<(), String> {
    let spec = &case["trigger"];
    let built = AnyTrigger::from_value(spec);
    if case.get("expect_error").and_then(Value::as_bool) == Some(true) {
        return match built {
            Ok(t) => Err(format!("expected an error, built {t:?}")),
            Err(_) => Ok(()),
        };
    }
    let trigger = built.map_err(|e| format!("failed to build: {e}"))?;
    let now = ts(&case["now"]).expect("now");
    let mut previous = ts(&case["previous"]);
    let count = case["count"].as_u64().expect("count") as usize;
    let expected: Vec<DateTime<Utc>> = case["expected"]
        .as_array()
        .expect("expected")
        .iter()
        .filter_map(ts)
        .collect();
    let mut got = Vec::new();
    let mut at = now;
    while got.len() < count {
        match trigger.next_fire_time(previous, at) {
            Some(t) => {
                got.push(t);
                previous = Some(t);
                at = t;
            }
            None => break,
        }
    }
    if got == expected {
        Ok(())
    } else {
        let zone = trigger.zone();
        let show = |v: &[DateTime<Utc>]| {
            v.iter()
                .map(|t| zone.format(*t))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(format!(
            "expected [{}]\n      got [{}]",
            show(&expected),
            show(&got)
        ))
    }
}

#[test]
fn every_conformance_vector_passes() {
    let text = include_str!("data/triggers.json");
    let doc: Value = serde_json::from_str(text).expect("vectors parse");
    assert_eq!(doc["format"], "trigger-conformance-v1");
    let filter = std::env::var("SCHED_CONFORMANCE_FILTER").unwrap_or_default();
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in doc["cases"].as_array().expect("cases") {
        let id = case["id"].as_str().expect("id");
        if !id.contains(&filter) {
            continue;
        }
        let kind = id.rsplit_once('-').map_or(id, |(k, _)| k).to_owned();
        let entry = counts.entry(kind).or_default();
        entry.1 += 1;
        match run_case(case) {
            Ok(()) => entry.0 += 1,
            Err(why) => failures.push(format!("{id}: {}\n      spec {}", why, case["trigger"])),
        }
    }
    for (kind, (ok, all)) in &counts {
        println!("{kind:>18}: {ok}/{all} passed");
    }
    let total: usize = counts.values().map(|c| c.1).sum();
    assert!(filter.is_empty() || total > 0, "the filter matched no case");
    assert!(
        failures.is_empty(),
        "{} of {total} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if filter.is_empty() {
        assert_eq!(total, 502, "the vector file should hold 502 cases");
    }
}
