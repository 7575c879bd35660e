//! The facade exposes the trigger API under `sched::…`, so users never name a sub-crate.

use chrono::{DateTime, TimeZone, Utc};
use sched::prelude::*;
use sched::trigger::{
    AndTrigger, AnyTrigger, CalendarIntervalTrigger, CronTrigger, CrontabTrigger, DateTrigger,
    IntervalTrigger, OrTrigger,
};
use sched::{LocalTime, TriggerError, Zone};

/// Every kind implements `Trigger` and converts into `AnyTrigger`.
fn is_a_trigger_kind<T: Trigger + Into<AnyTrigger>>() {}

#[test]
fn every_kind_is_reachable() {
    is_a_trigger_kind::<DateTrigger>();
    is_a_trigger_kind::<IntervalTrigger>();
    is_a_trigger_kind::<CronTrigger>();
    is_a_trigger_kind::<CrontabTrigger>();
    is_a_trigger_kind::<CalendarIntervalTrigger>();
    is_a_trigger_kind::<AndTrigger>();
    is_a_trigger_kind::<OrTrigger>();
}

#[test]
fn zones_resolve_wall_times() {
    let ny = Zone::from_name("America/New_York", "timezone").expect("a known zone");
    let gap = chrono::NaiveDate::from_ymd_opt(2025, 3, 9)
        .and_then(|d| d.and_hms_opt(2, 30, 0))
        .expect("a valid date");
    let LocalTime::Missing { shifted } = ny.resolve(gap) else {
        panic!("02:30 on 2025-03-09 is in New York's spring-forward gap");
    };
    assert_eq!(ny.format(shifted), "2025-03-09T03:30:00-04:00");
    let noon: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
    assert_eq!(Zone::UTC.format(noon), "2026-07-01T12:00:00+00:00");
}

#[test]
fn errors_come_through_the_facade() {
    let err: TriggerError = "{not json".parse::<AnyTrigger>().unwrap_err();
    assert!(err.is_permanent());
    assert!(matches!(err, TriggerError::Malformed { .. }), "{err:?}");

    let err = Zone::from_name("Mars/Olympus_Mons", "timezone").unwrap_err();
    assert!(err.to_string().contains("Mars/Olympus_Mons"), "{err}");

    let err = r#"{"type": "sometimes"}"#.parse::<AnyTrigger>().unwrap_err();
    assert!(matches!(err, TriggerError::UnknownType { .. }), "{err:?}");
}

#[test]
fn dst_repeat_and_the_builders_are_reachable_from_the_facade()
-> Result<(), Box<dyn std::error::Error>> {
    use sched::trigger::{CronTrigger, CronTriggerBuilder, DstRepeat, Trigger};
    let ny = sched::Zone::from_name("America/New_York", "timezone")?;
    let builder: CronTriggerBuilder = CronTrigger::builder().hour(1).minute(30).timezone(ny);
    let once = builder.dst_repeat(DstRepeat::First).build()?;
    // 01:30 happens twice on 2025-11-02 in New York; with `First` only the EDT one fires.
    let now: chrono::DateTime<chrono::Utc> = "2025-11-02T04:00:00Z".parse()?;
    let first = once.next_fire_time(None, now).ok_or("no fire")?;
    assert_eq!(ny.format(first), "2025-11-02T01:30:00-04:00");
    let second = once.next_fire_time(Some(first), first).ok_or("no fire")?;
    assert_eq!(ny.format(second), "2025-11-03T01:30:00-05:00");
    let _: Option<sched::trigger::CalendarIntervalBuilder> = None;
    Ok(())
}
