//! Edge cases of the date, interval, calendarinterval, and/or triggers and of jitter that the
//! conformance vectors leave out: sub-second and fractional periods, the ends of the time
//! range, leap days, short months, nesting, and ANDs that never agree.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use sched_core::jitter::{SplitMix64, jittered};
use sched_core::trigger::{
    AndTrigger, AnyTrigger, CalendarIntervalTrigger, DateTrigger, IntervalTrigger, OrTrigger,
    Trigger,
};
use sched_core::{TriggerError, Zone};
use serde_json::json;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

fn spec(v: serde_json::Value) -> AnyTrigger {
    AnyTrigger::from_value(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// Fire times by the scheduler's iteration rule, at most `n`.
fn run(
    t: &impl Trigger,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    n: usize,
) -> Vec<String> {
    let (mut previous, mut now) = (previous, now);
    let mut out = Vec::new();
    while out.len() < n {
        let Some(next) = t.next_fire_time(previous, now) else {
            break;
        };
        out.push(t.zone().format(next));
        previous = Some(next);
        now = next;
    }
    out
}

fn zone(name: &str) -> Zone {
    Zone::from_name(name, "timezone").expect("zone")
}

// ---------------------------------------------------------------------------------- interval

#[test]
fn sub_second_interval_is_exact() {
    let t = spec(json!({"type": "interval", "seconds": 0.0003,
        "start_date": "2026-01-01T00:00:00Z"}));
    let now = utc("2026-01-01T00:00:00.000001Z");
    assert_eq!(
        run(&t, None, now, 4),
        [
            "2026-01-01T00:00:00.000300+00:00",
            "2026-01-01T00:00:00.000600+00:00",
            "2026-01-01T00:00:00.000900+00:00",
            "2026-01-01T00:00:00.001200+00:00",
        ]
    );
}

#[test]
fn fractional_units_round_to_microseconds() {
    let half_hour = spec(json!({"type": "interval", "hours": 0.5,
        "start_date": "2026-01-01T00:00:00Z"}));
    let thirty_min = spec(json!({"type": "interval", "minutes": 30,
        "start_date": "2026-01-01T00:00:00Z"}));
    assert_eq!(half_hour, thirty_min);
    // 0.1 s + 0.2 s is exactly 300 ms, not 300.00000000000006 ms.
    let t = spec(json!({"type": "interval", "seconds": 0.3000000001,
        "start_date": "2026-01-01T00:00:00Z"}));
    assert_eq!(
        t.next_fire_time(
            Some(utc("2026-01-01T00:00:00Z")),
            utc("2026-01-01T00:00:00Z")
        ),
        Some(utc("2026-01-01T00:00:00.3Z"))
    );
    // Below half a microsecond rounds to zero: all zero means one second.
    let tiny = spec(json!({"type": "interval", "seconds": 0.0000001,
        "start_date": "2026-01-01T00:00:00Z"}));
    let p = utc("2026-01-01T00:00:00Z");
    assert_eq!(
        tiny.next_fire_time(Some(p), p),
        Some(utc("2026-01-01T00:00:01Z"))
    );
}

#[test]
fn interval_numbers_must_be_numbers() {
    for bad in [
        json!({"type": "interval", "hours": "2"}),
        json!({"type": "interval", "hours": -1}),
        json!({"type": "interval", "weeks": 1e300}),
        json!({"type": "interval", "seconds": 1e19}),
        json!({"type": "interval", "hours": true}),
        json!({"type": "interval", "hours": 1, "jitter": "5"}),
        json!({"type": "interval", "hours": 1, "jitter": 1e12}),
    ] {
        assert!(AnyTrigger::from_value(&bad).is_err(), "{bad} should fail");
    }
}

#[test]
fn interval_without_start_date_fires_one_period_after_now() {
    let t = spec(json!({"type": "interval", "minutes": 10}));
    assert_eq!(t.zone(), Zone::UTC);
    let now = utc("2026-03-01T12:03:04.5Z");
    assert_eq!(
        run(&t, None, now, 2),
        [
            "2026-03-01T12:13:04.500+00:00",
            "2026-03-01T12:23:04.500+00:00"
        ]
    );
    assert_eq!(t.to_value(), json!({"type": "interval", "minutes": 10}));
    let berlin = spec(json!({"type": "interval", "minutes": 10, "timezone": "Europe/Berlin"}));
    assert_eq!(
        run(&berlin, None, now, 1),
        ["2026-03-01T13:13:04.500+01:00"]
    );
    // The Rust API says the same.
    let built = IntervalTrigger::new(Duration::from_secs(600));
    assert_eq!(AnyTrigger::from(built), t);
}

#[test]
fn interval_end_date_is_inclusive() {
    let t = IntervalTrigger::new(Duration::from_secs(3600))
        .start_date(utc("2026-01-01T00:00:00Z"))
        .end_date(utc("2026-01-01T02:00:00Z"));
    assert_eq!(run(&t, None, utc("2025-01-01T00:00:00Z"), 9).len(), 3);
    // An end before the start: never fires.
    let t = t.end_date(utc("2025-12-31T00:00:00Z"));
    assert_eq!(t.next_fire_time(None, utc("2025-01-01T00:00:00Z")), None);
}

#[test]
fn interval_at_the_ends_of_time_does_not_panic() {
    let t = spec(json!({"type": "interval", "weeks": 52,
        "start_date": "9999-12-31T23:59:59.999999+00:00"}));
    let start = utc("9999-12-31T23:59:59.999999Z");
    assert_eq!(
        t.next_fire_time(None, utc("9999-01-01T00:00:00Z")),
        Some(start)
    );
    let _ = t.next_fire_time(Some(start), start);
    for edge in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
        let _ = t.next_fire_time(None, edge);
        assert_eq!(t.next_fire_time(Some(DateTime::<Utc>::MAX_UTC), edge), None);
    }
    let huge = IntervalTrigger::new(Duration::MAX);
    assert_eq!(huge.next_fire_time(None, utc("2026-01-01T00:00:00Z")), None);
    let _ = huge.next_fire_time(Some(DateTime::<Utc>::MIN_UTC), DateTime::<Utc>::MIN_UTC);
    let back = AnyTrigger::from_value(&AnyTrigger::from(huge.clone()).to_value()).expect("huge");
    assert_eq!(back, AnyTrigger::from(huge));
}

// -------------------------------------------------------------------------------------- date

#[test]
fn date_fires_once_even_in_the_past() {
    let at = utc("2020-01-01T00:00:00Z");
    let t = DateTrigger::new(at);
    assert_eq!(
        t.next_fire_time(None, utc("2026-01-01T00:00:00Z")),
        Some(at)
    );
    assert_eq!(t.next_fire_time(Some(at), at), None);
    let end = spec(json!({"type": "date", "run_date": "9999-12-31T23:59:59-05:00"}));
    assert_eq!(
        run(&end, None, DateTime::<Utc>::MAX_UTC, 3),
        ["9999-12-31T23:59:59-05:00"]
    );
}

// ---------------------------------------------------------------------------- calendarinterval

#[test]
fn yearly_from_feb_29_fires_in_leap_years_only() {
    let t = CalendarIntervalTrigger::builder()
        .years(1)
        .start_date(NaiveDate::from_ymd_opt(2096, 2, 29).unwrap())
        .build()
        .expect("valid");
    // 2100 is not a leap year.
    assert_eq!(
        run(&t, None, utc("2000-01-01T00:00:00Z"), 3),
        [
            "2096-02-29T00:00:00+00:00",
            "2104-02-29T00:00:00+00:00",
            "2108-02-29T00:00:00+00:00"
        ]
    );
}

#[test]
fn monthly_from_the_31st_skips_short_months() {
    let t = spec(json!({"type": "calendarinterval", "months": 1, "hour": 9,
        "start_date": "2026-01-31", "timezone": "UTC"}));
    let got: Vec<String> = run(&t, None, utc("2026-01-01T00:00:00Z"), 7)
        .iter()
        .map(|s| s[..10].to_owned())
        .collect();
    assert_eq!(
        got,
        [
            "2026-01-31",
            "2026-03-31",
            "2026-05-31",
            "2026-07-31",
            "2026-08-31",
            "2026-10-31",
            "2026-12-31"
        ]
    );
}

#[test]
fn calendar_interval_stops_at_year_9999() {
    let t = spec(json!({"type": "calendarinterval", "days": 1, "hour": 23,
        "start_date": "9999-12-30", "timezone": "Pacific/Kiritimati"}));
    assert_eq!(run(&t, None, utc("2026-01-01T00:00:00Z"), 5).len(), 2);
    let yearly = spec(json!({"type": "calendarinterval", "years": 1000000,
        "start_date": "9999-12-31", "timezone": "America/New_York"}));
    assert_eq!(run(&yearly, None, utc("2026-01-01T00:00:00Z"), 5).len(), 1);
    for edge in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
        assert_eq!(t.next_fire_time(Some(edge), edge), None);
        let open = spec(json!({"type": "calendarinterval", "weeks": 1, "timezone": "Asia/Tokyo"}));
        let _ = open.next_fire_time(None, edge);
        let _ = open.next_fire_time(Some(edge), edge);
    }
    // Dates beyond what the spec format can say are refused when building.
    let far = CalendarIntervalTrigger::builder()
        .days(1)
        .start_date(NaiveDate::MAX)
        .build();
    assert!(far.is_err());
}

#[test]
fn calendar_interval_without_start_date_starts_today() {
    let t = spec(json!({"type": "calendarinterval", "days": 2, "hour": 9,
        "timezone": "Europe/Berlin"}));
    // 08:00 Berlin: today's 09:00 is still ahead.
    assert_eq!(
        run(&t, None, utc("2026-06-10T06:00:00Z"), 2),
        ["2026-06-10T09:00:00+02:00", "2026-06-12T09:00:00+02:00"]
    );
    // 10:00 Berlin: today's has passed, the next date of the sequence is in two days.
    assert_eq!(
        run(&t, None, utc("2026-06-10T08:00:00Z"), 1),
        ["2026-06-12T09:00:00+02:00"]
    );
    assert_eq!(AnyTrigger::from_value(&t.to_value()).expect("reparse"), t);
}

#[test]
fn calendar_interval_errors() {
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let b = CalendarIntervalTrigger::builder().start_date(start);
    assert!(b.clone().build().is_err(), "all periods zero");
    assert!(b.clone().days(1).hour(24).build().is_err());
    assert!(b.clone().days(1).minute(60).build().is_err());
    assert!(b.clone().days(1).second(60).build().is_err());
    assert!(
        b.clone()
            .days(1)
            .end_date(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap())
            .build()
            .is_err()
    );
    let fixed = Zone::Fixed(chrono::FixedOffset::east_opt(3600).unwrap());
    assert!(b.clone().days(1).timezone(fixed).build().is_err());
    assert!(b.days(1).build().is_ok());
    for bad in [
        json!({"type": "calendarinterval", "days": 1}),
        json!({"type": "calendarinterval", "days": 1.5, "timezone": "UTC"}),
        json!({"type": "calendarinterval", "days": -1, "timezone": "UTC"}),
        json!({"type": "calendarinterval", "days": "1", "timezone": "UTC"}),
        json!({"type": "calendarinterval", "days": 1, "start_date": "2026-13-01", "timezone": "UTC"}),
    ] {
        assert!(AnyTrigger::from_value(&bad).is_err(), "{bad} should fail");
    }
}

// ------------------------------------------------------------------------------------ and/or

fn every(hours: u64, start: &str) -> AnyTrigger {
    IntervalTrigger::new(Duration::from_secs(hours * 3600))
        .start_date(utc(start))
        .into()
}

#[test]
fn and_keeps_agreeing_after_its_first_fire() {
    let and = AndTrigger::new(vec![
        every(2, "2026-01-01T00:00:00Z"),
        every(3, "2026-01-01T00:00:00Z"),
    ])
    .expect("and");
    // APScheduler 3 hangs on the second call; the bounded search goes on.
    assert_eq!(
        run(&and, None, utc("2026-01-01T00:30:00Z"), 3),
        [
            "2026-01-01T06:00:00+00:00",
            "2026-01-01T12:00:00+00:00",
            "2026-01-01T18:00:00+00:00"
        ]
    );
}

#[test]
fn and_like_the_vectors_with_an_hourly_interval_for_minute_zero() {
    // and-0001 with `cron minute 0` written as an hourly interval on the hour.
    let and = spec(json!({"type": "and", "triggers": [
        {"type": "interval", "hours": 1, "start_date": "2022-12-13T00:00:00+05:30", "timezone": "Asia/Kolkata"},
        {"type": "interval", "hours": 2, "start_date": "2022-12-13T16:00:00+05:30", "timezone": "Asia/Kolkata"}]}));
    assert_eq!(
        run(&and, None, utc("2022-12-13T16:34:00+05:30"), 1),
        ["2022-12-13T18:00:00+05:30"]
    );
}

#[test]
fn and_searches_months_ahead_by_jumping() {
    // and-0013 with calendar intervals: Mondays at 15:00 and the 2nd of each month at 15:00.
    let and = spec(json!({"type": "and", "triggers": [
        {"type": "calendarinterval", "weeks": 1, "hour": 15, "start_date": "2026-08-03", "timezone": "Asia/Kolkata"},
        {"type": "calendarinterval", "months": 1, "hour": 15, "start_date": "2026-08-02", "timezone": "Asia/Kolkata"}]}));
    assert_eq!(
        run(&and, None, utc("2026-08-02T15:54:00+05:30"), 2),
        ["2026-11-02T15:00:00+05:30", "2027-08-02T15:00:00+05:30"]
    );
    // A daily sequence meeting a date 400 days ahead.
    let and = spec(json!({"type": "and", "triggers": [
        {"type": "calendarinterval", "days": 1, "hour": 6, "start_date": "2026-01-01", "timezone": "UTC"},
        {"type": "date", "run_date": "2027-02-05T06:00:00Z"}]}));
    assert_eq!(
        run(&and, None, utc("2026-01-01T00:00:00Z"), 3),
        ["2027-02-05T06:00:00+00:00"]
    );
}

#[test]
fn and_that_never_agrees_returns_none_quickly() {
    let never = AndTrigger::new(vec![
        every(2, "2026-01-01T00:00:00Z"),
        every(2, "2026-01-01T01:00:00Z"),
    ])
    .expect("and");
    let started = Instant::now();
    let now = utc("2026-01-01T00:30:00Z");
    assert_eq!(never.next_fire_time(None, now), None);
    // With a previous fire time interval children restart from it (and would agree), so
    // use daily wall-clock times that never meet.
    let daily = spec(json!({"type": "and", "triggers": [
        {"type": "calendarinterval", "days": 1, "hour": 9, "timezone": "UTC"},
        {"type": "calendarinterval", "days": 1, "hour": 10, "timezone": "UTC"}]}));
    assert_eq!(daily.next_fire_time(None, now), None);
    assert_eq!(daily.next_fire_time(Some(now), now), None);
    // Nested never-agreeing ANDs share one step budget: no exponential blow-up.
    let mut nested: AnyTrigger = never.clone().into();
    for _ in 0..40 {
        nested = AndTrigger::new(vec![nested, every(1, "2026-01-01T00:00:00Z")])
            .expect("and")
            .into();
    }
    assert_eq!(nested.next_fire_time(None, now), None);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn and_with_a_finished_child_is_finished() {
    let and = AndTrigger::new(vec![
        DateTrigger::new(utc("2026-01-01T01:30:00Z")).into(),
        every(1, "2026-01-01T00:00:00Z"),
    ])
    .expect("and");
    assert_eq!(and.next_fire_time(None, utc("2026-01-01T00:00:00Z")), None);
    let and = AndTrigger::new(vec![
        DateTrigger::new(utc("2026-01-01T03:00:00Z")).into(),
        every(1, "2026-01-01T00:00:00Z"),
    ])
    .expect("and");
    assert_eq!(
        run(&and, None, utc("2026-01-01T00:00:00Z"), 3),
        ["2026-01-01T03:00:00+00:00"]
    );
}

#[test]
fn or_and_and_nest() {
    // (every 2 h AND every 3 h) OR a date.
    let inner = AndTrigger::new(vec![
        every(2, "2026-01-01T00:00:00Z"),
        every(3, "2026-01-01T00:00:00Z"),
    ])
    .expect("and");
    let or = OrTrigger::new(vec![
        inner.into(),
        DateTrigger::new(utc("2026-01-01T08:00:00Z")).into(),
    ])
    .expect("or");
    assert_eq!(
        run(&or, None, utc("2026-01-01T00:30:00Z"), 3),
        [
            "2026-01-01T06:00:00+00:00",
            "2026-01-01T12:00:00+00:00",
            "2026-01-01T18:00:00+00:00"
        ]
    );
    // An OR inside an AND: the union of two grids meeting a third.
    let and = spec(json!({"type": "and", "triggers": [
        {"type": "or", "triggers": [
            {"type": "interval", "hours": 5, "start_date": "2026-01-01T00:00:00Z"},
            {"type": "interval", "hours": 7, "start_date": "2026-01-01T00:00:00Z"}]},
        {"type": "interval", "hours": 4, "start_date": "2026-01-01T00:00:00Z"}]}));
    assert_eq!(
        run(&and, None, utc("2026-01-01T00:00:01Z"), 1),
        ["2026-01-01T20:00:00+00:00"]
    );
    assert_eq!(
        AnyTrigger::from_value(&and.to_value()).expect("reparse"),
        and
    );
    assert!(matches!(
        AndTrigger::new(vec![]),
        Err(TriggerError::InvalidValue { .. })
    ));
    assert!(OrTrigger::new(vec![]).is_err());
}

#[test]
fn or_keeps_the_producing_childs_zone_for_display() {
    let or = spec(json!({"type": "or", "triggers": [
        {"type": "date", "run_date": "2026-01-01T09:00:00+09:00", "timezone": "Asia/Tokyo"},
        {"type": "date", "run_date": "2026-01-01T09:00:00+01:00", "timezone": "Europe/Berlin"}]}));
    assert_eq!(or.zone(), zone("Asia/Tokyo"));
}

// ------------------------------------------------------------------------------------ jitter

#[test]
fn jitter_is_carried_but_never_moves_fire_times() {
    let plain =
        spec(json!({"type": "interval", "minutes": 5, "start_date": "2026-01-01T00:00:00Z"}));
    let jittery = spec(
        json!({"type": "interval", "minutes": 5, "start_date": "2026-01-01T00:00:00Z",
        "jitter": 30}),
    );
    assert_eq!(jittery.jitter(), Some(Duration::from_secs(30)));
    assert_eq!(plain.jitter(), None);
    let now = utc("2026-01-01T00:00:00Z");
    assert_eq!(run(&plain, None, now, 20), run(&jittery, None, now, 20));
    let zero = spec(
        json!({"type": "interval", "minutes": 5, "start_date": "2026-01-01T00:00:00Z",
        "jitter": 0}),
    );
    assert_eq!(zero, plain, "zero jitter is no jitter");
}

#[test]
fn jitter_never_accumulates() {
    // The scheduler's loop: the next unjittered time comes from the previous unjittered one.
    let trigger = spec(json!({"type": "interval", "seconds": 10,
        "start_date": "2026-01-01T00:00:00Z", "jitter": 9.5}));
    let jitter = trigger.jitter().expect("jitter");
    let mut rng = SplitMix64::new(2026);
    let start = utc("2026-01-01T00:00:00Z");
    let mut fire = trigger.next_fire_time(None, start).expect("first");
    let mut total_delay = TimeDelta::zero();
    for k in 0..10_000i64 {
        let next = trigger.next_fire_time(Some(fire), fire).expect("next");
        let run_at = jittered(fire, jitter, Some(next), &mut rng);
        assert_eq!(
            fire,
            start + TimeDelta::seconds(10 * k),
            "the grid does not drift"
        );
        assert!(run_at >= fire && run_at - fire <= TimeDelta::milliseconds(9500));
        assert!(run_at < next);
        total_delay += run_at - fire;
        fire = next;
    }
    // Delays are spread over the whole range (mean near 4.75 s).
    let mean = total_delay.num_milliseconds() / 10_000;
    assert!((4000..5500).contains(&mean), "mean delay {mean} ms");
}

#[test]
fn calendar_interval_roundtrips_through_the_builder() {
    let built = CalendarIntervalTrigger::builder()
        .months(1)
        .hour(9)
        .timezone(zone("Europe/Berlin"))
        .jitter(Duration::from_millis(1500))
        .build()
        .expect("valid");
    let any = AnyTrigger::from(built);
    assert_eq!(
        any.to_value(),
        json!({"type": "calendarinterval", "months": 1, "hour": 9,
            "timezone": "Europe/Berlin", "jitter": 1.5})
    );
    assert_eq!(
        AnyTrigger::from_value(&any.to_value()).expect("reparse"),
        any
    );
    let _ = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0);
}

#[test]
fn jitter_setters_and_getters() {
    let t = IntervalTrigger::new(Duration::from_secs(60)).with_jitter(Duration::from_secs(3));
    assert_eq!(Trigger::jitter(&t), Some(Duration::from_secs(3)));
    let any = AnyTrigger::from(t);
    assert_eq!(any.to_value()["jitter"], json!(3));
    let or = OrTrigger::new(vec![any.clone()])
        .expect("or")
        .with_jitter(Duration::from_micros(1));
    assert_eq!(or.jitter(), Some(Duration::from_micros(1)));
    let and = AndTrigger::new(vec![any])
        .expect("and")
        .with_jitter(Duration::ZERO);
    assert_eq!(and.jitter(), None);
}

#[test]
fn nesting_is_limited() {
    let leaf = json!({"type": "interval", "hours": 1});
    let nest = |levels: usize| {
        let mut v = leaf.clone();
        for i in 0..levels {
            v = json!({"type": if i % 2 == 0 { "and" } else { "or" }, "triggers": [v]});
        }
        v
    };
    assert!(AnyTrigger::from_value(&nest(32)).is_ok());
    assert!(AnyTrigger::from_value(&nest(33)).is_err());
    assert!(AnyTrigger::from_json(&nest(200).to_string()).is_err());
}

#[test]
fn and_does_not_run_past_a_calendar_end_date() {
    let and = spec(json!({"type": "and", "triggers": [
        {"type": "calendarinterval", "days": 1, "start_date": "2026-01-01", "end_date": "2026-01-10",
         "timezone": "UTC"},
        {"type": "date", "run_date": "2026-06-01T00:00:00Z"}]}));
    assert_eq!(and.next_fire_time(None, utc("2025-12-01T00:00:00Z")), None);
}

#[test]
fn fire_times_stay_within_what_rfc3339_can_write() {
    let max = DateTime::<Utc>::MAX_UTC;
    assert_eq!(DateTrigger::new(max).next_fire_time(None, max), None);
    let near_end = max - TimeDelta::hours(1);
    let t = IntervalTrigger::new(Duration::from_secs(60));
    assert_eq!(t.next_fire_time(Some(near_end), near_end), None);
    assert_eq!(t.next_fire_time(None, DateTime::<Utc>::MIN_UTC), None);
    let last = utc("9999-12-31T23:59:59-23:59");
    assert_eq!(
        t.next_fire_time(None, last - TimeDelta::seconds(60)),
        Some(last)
    );
    assert_eq!(t.next_fire_time(Some(last), last), None);
    let or = OrTrigger::new(vec![DateTrigger::new(max).into(), t.into()]).expect("or");
    assert_eq!(or.next_fire_time(None, near_end), None);
}

#[test]
fn writing_out_of_range_instants_does_not_panic() {
    let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    let date = AnyTrigger::from(DateTrigger::new(max).timezone(zone("Pacific/Kiritimati")));
    assert!(AnyTrigger::from_value(&date.to_value()).is_err());
    let interval = AnyTrigger::from(
        IntervalTrigger::new(Duration::from_secs(1))
            .start_date(min)
            .end_date(max)
            .timezone(zone("Etc/GMT+12")),
    );
    assert!(AnyTrigger::from_value(&interval.to_value()).is_err());
}
