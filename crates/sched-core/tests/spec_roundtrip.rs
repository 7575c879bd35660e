//! The JSON spec round-trips: for every valid spec in the conformance vectors,
//! parse → `to_value` → parse gives an equal trigger with the same fire times; unknown keys
//! are rejected for every kind (nested ones too); errors name the path of the bad key.
//!
//! One test per kind, so `cargo test -p sched-core --test spec_roundtrip -- interval` runs
//! one kind.

use chrono::{DateTime, Utc};
use sched_core::TriggerError;
use sched_core::trigger::{AnyTrigger, Trigger};
use serde_json::{Value, json};

fn ts(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The valid cases whose id starts with `kind-`.
fn valid_cases(kind: &str) -> Vec<Value> {
    let doc: Value =
        serde_json::from_str(include_str!("data/triggers.json")).expect("vectors parse");
    let prefix = format!("{kind}-");
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(|id| id.starts_with(&prefix)))
        .filter(|c| c.get("expect_error").is_none())
        .cloned()
        .collect()
}

/// Up to five fire times following the vectors' iteration rule.
fn fire_times(t: &AnyTrigger, case: &Value) -> Vec<DateTime<Utc>> {
    let mut previous = ts(&case["previous"]);
    let mut now = ts(&case["now"]).expect("now");
    let mut out = Vec::new();
    while out.len() < 5 {
        match t.next_fire_time(previous, now) {
            Some(next) => {
                out.push(next);
                previous = Some(next);
                now = next;
            }
            None => break,
        }
    }
    out
}

/// Adds `key` to the innermost first child of `spec` (or to `spec` itself); returns the
/// path the error must name.
fn add_unknown_key(spec: &mut Value, key: &str) -> String {
    let mut path = String::new();
    let mut at = spec;
    while at["triggers"].is_array() {
        path.push_str("triggers[0].");
        at = &mut at["triggers"][0];
    }
    at[key] = json!(1);
    path.push_str(key);
    path
}

fn check_kind(kind: &str) {
    let cases = valid_cases(kind);
    assert!(!cases.is_empty(), "no {kind} vectors");
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?");
        if let Err(why) = check_case(case) {
            failures.push(format!("{id}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {kind} specs failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn check_case(case: &Value) -> Result<(), String> {
    let spec = &case["trigger"];
    let first = AnyTrigger::from_value(spec).map_err(|e| format!("parse: {e}"))?;
    let written = first.to_value();
    let second =
        AnyTrigger::from_value(&written).map_err(|e| format!("reparse of {written}: {e}"))?;
    if first != second {
        return Err(format!(
            "not equal after round trip:\n  {first:?}\n  {second:?}"
        ));
    }
    if second.to_value() != written {
        return Err(format!(
            "writing is not stable: {written} vs {}",
            second.to_value()
        ));
    }
    // Through serde and the string forms too.
    let via_serde: AnyTrigger = serde_json::from_str(&serde_json::to_string(&first).unwrap())
        .map_err(|e| format!("serde: {e}"))?;
    let via_str: AnyTrigger = first.to_string().parse().map_err(|e| format!("str: {e}"))?;
    if via_serde != first || via_str != first {
        return Err("serde or Display/FromStr round trip differs".into());
    }
    let (a, b) = (fire_times(&first, case), fire_times(&second, case));
    if a != b {
        return Err(format!("fire times differ: {a:?} vs {b:?}"));
    }
    if first.zone() != second.zone() || first.jitter() != second.jitter() {
        return Err("zone or jitter differ".into());
    }
    // Unknown keys are rejected, with their path.
    let mut bad = spec.clone();
    let path = add_unknown_key(&mut bad, "no_such_key");
    match AnyTrigger::from_value(&bad) {
        Err(TriggerError::UnknownField { field, .. }) if field == path => {}
        other => return Err(format!("unknown key {path}: got {other:?}")),
    }
    // A jitter survives the round trip for every kind that carries one.
    if first.kind() != "date" {
        let mut jittered = spec.clone();
        jittered["jitter"] = json!(2.5);
        let t = AnyTrigger::from_value(&jittered).map_err(|e| format!("jitter: {e}"))?;
        let back = AnyTrigger::from_value(&t.to_value()).map_err(|e| format!("jitter: {e}"))?;
        if t != back || t.jitter() != Some(std::time::Duration::from_millis(2500)) {
            return Err(format!("jitter lost: {:?}", back.jitter()));
        }
    }
    Ok(())
}

#[test]
fn roundtrip_date() {
    check_kind("date");
}

#[test]
fn roundtrip_interval() {
    check_kind("interval");
}

#[test]
fn roundtrip_calendarinterval() {
    check_kind("calendarinterval");
}

#[test]
fn roundtrip_cron() {
    check_kind("cron");
}

#[test]
fn roundtrip_crontab() {
    check_kind("crontab");
}

#[test]
fn roundtrip_and() {
    check_kind("and");
}

#[test]
fn roundtrip_or() {
    check_kind("or");
}

#[test]
fn cron_fields_as_numbers_or_strings_are_equal() {
    let a = AnyTrigger::from_value(&json!({"type": "cron", "hour": 12, "timezone": "UTC"}));
    let b = AnyTrigger::from_value(&json!({"type": "cron", "hour": "12", "timezone": "UTC"}));
    assert_eq!(a.expect("int field"), b.expect("string field"));
}

#[test]
fn date_rejects_jitter() {
    let spec = json!({"type": "date", "run_date": "2026-01-01T00:00:00Z", "jitter": 1});
    assert!(matches!(
        AnyTrigger::from_value(&spec),
        Err(TriggerError::UnknownField { field, .. }) if field == "jitter"
    ));
}

/// The path an error names.
fn error_path(e: &TriggerError) -> String {
    match e {
        TriggerError::Malformed { path, .. } | TriggerError::UnknownType { path, .. } => {
            path.clone()
        }
        TriggerError::MissingField { field, .. }
        | TriggerError::UnknownField { field, .. }
        | TriggerError::InvalidValue { field, .. }
        | TriggerError::InvalidExpression { field, .. }
        | TriggerError::UnknownTimeZone { field, .. }
        | TriggerError::InvalidTimestamp { field, .. } => field.clone(),
        other => format!("{other}"),
    }
}

#[test]
fn errors_name_the_path() {
    let interval = json!({"type": "interval", "hours": 1, "start_date": "2026-01-01T00:00:00Z"});
    let cases = [
        (
            json!({"type": "and", "triggers": [interval.clone(),
                {"type": "calendarinterval", "days": 1, "hour": 24, "timezone": "UTC"}]}),
            "triggers[1].hour",
        ),
        (
            json!({"type": "or", "triggers": [interval.clone(),
                {"type": "and", "triggers": [interval.clone(),
                    {"type": "interval", "hours": "2", "start_date": "2026-01-01T00:00:00Z"}]}]}),
            "triggers[1].triggers[1].hours",
        ),
        (
            json!({"type": "or", "triggers": [{"type": "date", "run_date": "soon"}]}),
            "triggers[0].run_date",
        ),
        (
            json!({"type": "or", "triggers": [{"type": "date", "run_date": "2026-01-01T00:00:00Z",
                "timezone": "Mars/Olympus"}]}),
            "triggers[0].timezone",
        ),
        (
            json!({"type": "and", "triggers": [interval.clone(), {"type": "sometimes"}]}),
            "triggers[1].type",
        ),
        (
            json!({"type": "and", "triggers": [interval.clone(), 7]}),
            "triggers[1]",
        ),
        (
            json!({"type": "or", "triggers": [{"type": "calendarinterval", "days": 1}]}),
            "triggers[0].timezone",
        ),
        (json!({"type": "or", "triggers": []}), "triggers"),
        (json!({"type": "and"}), "triggers"),
        (json!({"type": "and", "triggers": {}}), "triggers"),
        (json!({"type": "interval", "minutes": -5}), "minutes"),
        (
            json!({"type": "interval", "seconds": 1, "jitter": -1}),
            "jitter",
        ),
        (
            json!({"type": "calendarinterval", "days": 1, "timezone": "UTC",
                "start_date": "2024-03-10", "end_date": "2024-03-01"}),
            "end_date",
        ),
    ];
    for (spec, path) in cases {
        let err = AnyTrigger::from_value(&spec).expect_err("invalid spec");
        assert_eq!(error_path(&err), path, "{spec}: {err}");
        assert!(err.to_string().contains(path), "message {err} lacks {path}");
    }
}

#[test]
fn jitter_has_one_rule_for_every_kind() {
    let specs = [
        r#"{"type":"cron","hour":9,"timezone":"UTC"}"#,
        r#"{"type":"crontab","expr":"0 9 * * *","timezone":"UTC"}"#,
        r#"{"type":"interval","hours":1,"start_date":"2026-01-01T00:00:00Z"}"#,
        r#"{"type":"calendarinterval","days":1,"start_date":"2026-01-01","timezone":"UTC"}"#,
        r#"{"type":"or","triggers":[{"type":"date","run_date":"2026-01-01T00:00:00Z"}]}"#,
        r#"{"type":"and","triggers":[{"type":"date","run_date":"2026-01-01T00:00:00Z"}]}"#,
    ];
    for spec in specs {
        let with = |jitter: &str| {
            let mut v: serde_json::Value = serde_json::from_str(spec).unwrap();
            v["jitter"] = serde_json::from_str(jitter).unwrap();
            AnyTrigger::from_value(&v)
        };
        // Zero means no jitter, and is not written back.
        let zero = with("0").unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(zero.jitter(), None, "{spec}");
        assert!(zero.to_value().get("jitter").is_none(), "{spec}");
        // Rounded to whole microseconds.
        let fine = with("1.0000004").unwrap();
        assert_eq!(
            fine.jitter(),
            Some(std::time::Duration::from_secs(1)),
            "{spec}"
        );
        // More than a year is an error naming the key.
        let err = with("1e9").unwrap_err().to_string();
        assert!(
            err.contains("jitter") && err.contains("one year"),
            "{spec}: {err}"
        );
        // Negative is an error.
        assert!(with("-1").is_err(), "{spec}");
    }
}
