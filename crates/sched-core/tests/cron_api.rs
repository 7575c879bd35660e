//! The public API of `cron` and `crontab`: builders, error messages, spec round trips.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use sched_core::trigger::{AnyTrigger, CronTrigger, CrontabTrigger, Trigger};
use sched_core::zone::DstRepeat;
use sched_core::{TriggerError, Zone};

fn cron_err(field: &str, text: &str) -> String {
    let spec = serde_json::json!({"type": "cron", field: text, "timezone": "UTC"});
    AnyTrigger::from_value(&spec)
        .expect_err("should fail")
        .to_string()
}

fn tab_err(expr: &str) -> String {
    let spec = serde_json::json!({"type": "crontab", "expr": expr, "timezone": "UTC"});
    AnyTrigger::from_value(&spec)
        .expect_err("should fail")
        .to_string()
}

#[test]
fn cron_errors_name_field_text_and_column() {
    assert_eq!(
        cron_err("day_of_week", "fri-mon"),
        r#"invalid day_of_week "fri-mon": range start after end (at column 1)"#
    );
    assert_eq!(
        cron_err("day_of_week", "mon-fri/0"),
        r#"invalid day_of_week "mon-fri/0": step must be at least 1 (at column 8)"#
    );
    assert_eq!(
        cron_err("minute", "*/60"),
        r#"invalid minute "*/60": step 60 is larger than the span 59 (at column 2)"#
    );
    assert_eq!(
        cron_err("hour", "1, 24"),
        r#"invalid hour "1, 24": value 24 is out of range 0-23 (at column 4)"#
    );
    assert_eq!(
        cron_err("minute", "1,"),
        r#"invalid minute "1,": empty list element (at column 3)"#
    );
    assert_eq!(
        cron_err("minute", "1.5"),
        r#"invalid minute "1.5": unexpected character '.' (at column 2)"#
    );
    assert_eq!(
        cron_err("month", "jan-foo"),
        r#"invalid month "jan-foo": unknown name "foo" (at column 5)"#
    );
    assert_eq!(
        cron_err("day", "last frid"),
        r#"invalid day "last frid": unknown weekday "frid" (at column 6)"#
    );
    assert!(cron_err("hour", "last").contains("only allowed in the day field"));
    assert!(cron_err("day_of_week", "last fri").contains("only allowed in the day field"));
    assert!(cron_err("day", "6th mon").contains("(at column 1)"));
}

#[test]
fn crontab_errors_point_into_the_expression() {
    assert_eq!(
        tab_err("0 24 * * *"),
        r#"invalid expr "0 24 * * *": hour field: value 24 is out of range 0-23 (at column 3)"#
    );
    assert_eq!(
        tab_err("*/5 * * * fri-mon"),
        r#"invalid expr "*/5 * * * fri-mon": day of week field: range start after end (at column 11)"#
    );
    assert!(tab_err("0 12 * *").contains("found 4"));
    assert!(tab_err("0 0 12 * * * * *").contains("found 8"));
    assert!(tab_err("*/0 * * * *").contains("step must be at least 1 (at column 2)"));
    assert!(tab_err("0 0 * * funday").contains("unknown name \"funday\""));
}

#[test]
fn missing_zone_and_unknown_keys_are_errors() {
    let e = AnyTrigger::from_json(r#"{"type":"cron","hour":1}"#).expect_err("no zone");
    assert!(matches!(e, TriggerError::MissingField { .. }), "{e}");
    let e = AnyTrigger::from_json(r#"{"type":"crontab","expr":"* * * * *"}"#).expect_err("no zone");
    assert!(matches!(e, TriggerError::MissingField { .. }), "{e}");
    let e = AnyTrigger::from_json(r#"{"type":"cron","hours":1,"timezone":"UTC"}"#)
        .expect_err("unknown key");
    assert!(matches!(e, TriggerError::UnknownField { .. }), "{e}");
    let e =
        AnyTrigger::from_json(r#"{"type":"cron","hour":1,"timezone":"UTC","dst_repeat":"last"}"#)
            .expect_err("bad dst_repeat");
    assert!(matches!(e, TriggerError::InvalidValue { .. }), "{e}");
    let e = AnyTrigger::from_json(
        r#"{"type":"crontab","expr":"* * * * *","timezone":"UTC","jitter":-1}"#,
    )
    .expect_err("negative jitter");
    assert!(matches!(e, TriggerError::InvalidValue { .. }), "{e}");
}

#[test]
fn specs_round_trip() {
    for spec in [
        r#"{"type":"cron","year":"2024-2030/2","month":"jan-mar","day":"last fri","week":"1-40","day_of_week":"mon-fri","hour":9,"minute":"*/15","second":"0,30","start_date":"2026-01-01T00:00:00+01:00","end_date":"2027-01-01T00:00:00+01:00","timezone":"Europe/Berlin","jitter":2.5,"dst_repeat":"first"}"#,
        r#"{"type":"cron","hour":12,"timezone":"UTC"}"#,
        r#"{"type":"crontab","expr":"0 9 * * mon-fri","timezone":"America/New_York","end_date":"2030-01-01T00:00:00Z","jitter":10}"#,
        r#"{"type":"crontab","expr":"0 0 L * *","timezone":"UTC","start_date":"2026-01-01T00:00:00Z","dst_repeat":"first"}"#,
    ] {
        let a = AnyTrigger::from_json(spec).expect(spec);
        let b = AnyTrigger::from_json(&a.to_json()).expect("written spec parses");
        assert_eq!(a, b, "{spec}");
        assert!(
            !a.to_json().contains("\"both\""),
            "default dst_repeat omitted"
        );
    }
    // `12` and `"12"` are the same field.
    let a = AnyTrigger::from_json(r#"{"type":"cron","hour":12,"timezone":"UTC"}"#).expect("int");
    let b = AnyTrigger::from_json(r#"{"type":"cron","hour":"12","timezone":"UTC"}"#).expect("str");
    assert_eq!(a, b);
}

#[test]
fn builders_and_jitter() -> Result<(), TriggerError> {
    let berlin = Zone::from_name("Europe/Berlin", "timezone")?;
    let cron = CronTrigger::builder()
        .day_of_week("mon-fri")
        .hour("9")
        .timezone(berlin)
        .jitter(Duration::from_secs(30))
        .dst_repeat(DstRepeat::First)
        .build()?;
    assert_eq!(cron.jitter(), Some(Duration::from_secs(30)));
    assert_eq!(cron.dst_repeat(), DstRepeat::First);
    assert_eq!(cron.field("hour"), Some("9"));
    let now = Utc.with_ymd_and_hms(2026, 3, 28, 0, 0, 0).unwrap();
    let first = cron.next_fire_time(None, now).expect("fires");
    assert_eq!(berlin.format(first), "2026-03-30T09:00:00+02:00");
    // Jitter never changes the fire time.
    let plain = CronTrigger::builder()
        .day_of_week("mon-fri")
        .hour(9)
        .timezone(berlin)
        .build()?;
    assert_eq!(plain.next_fire_time(None, now), Some(first));

    let end = Utc.with_ymd_and_hms(2026, 3, 27, 11, 10, 0).unwrap();
    let tab = CrontabTrigger::new("*/5 * * * *", berlin)?
        .end_date(end)
        .with_jitter(Duration::from_millis(1500));
    let start = Utc.with_ymd_and_hms(2026, 3, 27, 11, 2, 0).unwrap();
    let a = tab.next_fire_time(None, start).expect("11:05Z");
    let b = tab
        .next_fire_time(Some(a), a)
        .expect("11:10Z, end inclusive");
    assert_eq!(b, end);
    assert_eq!(tab.next_fire_time(Some(b), b), None);
    assert_eq!(tab.expr(), "*/5 * * * *");

    let e = CronTrigger::builder().hour(1).build().expect_err("no zone");
    assert!(matches!(e, TriggerError::MissingField { .. }));
    Ok(())
}

#[test]
fn crontab_extensions() -> Result<(), TriggerError> {
    let z = Zone::UTC;
    let at = |y, m, d, h, mi| Utc.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap();
    let next =
        |expr: &str, from| CrontabTrigger::new(expr, z).map(|t| t.next_fire_time(None, from));
    // Last day of February 2028 (leap year).
    assert_eq!(
        next("0 0 L 2 *", at(2028, 1, 1, 0, 0))?,
        Some(at(2028, 2, 29, 0, 0))
    );
    // Three days before the last day of April 2026: the 27th.
    assert_eq!(
        next("0 0 L-3 4 *", at(2026, 1, 1, 0, 0))?,
        Some(at(2026, 4, 27, 0, 0))
    );
    // 2026-08-15 is a Saturday: 15W is Friday the 14th.
    assert_eq!(
        next("0 0 15W 8 *", at(2026, 1, 1, 0, 0))?,
        Some(at(2026, 8, 14, 0, 0))
    );
    // 2026-02-01 is a Sunday: 1W is Monday the 2nd.
    assert_eq!(
        next("0 0 1W 2 *", at(2026, 1, 1, 0, 0))?,
        Some(at(2026, 2, 2, 0, 0))
    );
    // The last Friday of May 2026 is the 29th; `friL` and `5L` agree.
    assert_eq!(
        next("0 0 * 5 5L", at(2026, 1, 1, 0, 0))?,
        Some(at(2026, 5, 29, 0, 0))
    );
    assert_eq!(
        next("0 0 * 5 friL", at(2026, 1, 1, 0, 0))?,
        Some(at(2026, 5, 29, 0, 0))
    );
    // The second Tuesday of March 2026 is the 10th.
    assert_eq!(
        next("0 0 * 3 2#2", at(2026, 1, 1, 0, 0))?,
        Some(at(2026, 3, 10, 0, 0))
    );
    assert_eq!(
        next("0 0 * 3 tue#2", at(2026, 1, 1, 0, 0))?,
        Some(at(2026, 3, 10, 0, 0))
    );
    // The last weekday of January 2026: Saturday the 31st -> Friday the 30th.
    assert_eq!(
        next("0 0 LW 1 *", at(2026, 1, 1, 0, 0))?,
        Some(at(2026, 1, 30, 0, 0))
    );
    // Six fields: seconds first; seven: a trailing year.
    let t = CrontabTrigger::new("30 0 12 * * *", z)?;
    assert_eq!(
        t.next_fire_time(None, at(2026, 1, 1, 0, 0)),
        Some(Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 30).unwrap())
    );
    assert_eq!(
        next("0 0 0 1 1 * 2030", at(2026, 1, 1, 0, 1)).map(|_| ())?,
        ()
    );
    let t = CrontabTrigger::new("0 0 0 1 1 * 2030", z)?;
    assert_eq!(
        t.next_fire_time(None, at(2026, 1, 1, 0, 1)),
        Some(at(2030, 1, 1, 0, 0))
    );
    // Nicknames.
    assert_eq!(
        next("@monthly", at(2026, 1, 1, 0, 1))?,
        Some(at(2026, 2, 1, 0, 0))
    );
    Ok(())
}
