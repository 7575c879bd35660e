//! Property tests: no input makes spec parsing or evaluation panic; random valid `interval`,
//! `calendarinterval` and `date` triggers give strictly increasing fire times inside their
//! start and end; jitter stays in `[0, jitter]` and before the next fire.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc};
use proptest::prelude::*;
use sched_core::Zone;
use sched_core::jitter::{RandomSource, SplitMix64, jittered};
use sched_core::trigger::{AnyTrigger, Trigger};
use serde_json::{Map, Number, Value, json};

const KEYS: &[&str] = &[
    "type",
    "run_date",
    "timezone",
    "weeks",
    "days",
    "hours",
    "minutes",
    "seconds",
    "start_date",
    "end_date",
    "years",
    "months",
    "hour",
    "minute",
    "second",
    "jitter",
    "triggers",
    "expr",
    "year",
    "month",
    "day",
    "week",
    "day_of_week",
];

const TYPES: &[&str] = &[
    "date",
    "interval",
    "calendarinterval",
    "and",
    "or",
    "cron",
    "crontab",
    "never",
];

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Apia",
    "Pacific/Kiritimati",
];

const STRINGS: &[&str] = &[
    "2024-02-29",
    "2023-02-29",
    "0000-01-01",
    "9999-12-31",
    "2025-03-09T02:30:00-05:00",
    "9999-12-31T23:59:59.999999+14:00",
    "0000-01-01T00:00:00-12:00",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00",
    "UTC",
    "Europe/Berlin",
    "Nowhere/City",
    "*/5",
    "0 9 * * mon-fri",
    "",
    "1e3",
    "-1",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{0,10}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        (0u64..100).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(|x| Number::from_f64(x).map_or(Value::Null, Value::Number)),
        any::<f64>().prop_map(|x| Number::from_f64(x).map_or(Value::Null, Value::Number)),
        Just(json!(1e300)),
        Just(json!(0.0000001)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        proptest::sample::select(STRINGS).prop_map(|s| Value::String(s.to_owned())),
        proptest::sample::select(ZONES).prop_map(|s| Value::String(s.to_owned())),
        proptest::sample::select(TYPES).prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,16}".prop_map(Value::String),
    ]
}

/// Any JSON value, with object keys mostly from the real key set.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..7)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Objects shaped like specs: a real `type`, real keys with plausible values, children.
fn spec_like() -> impl Strategy<Value = Value> {
    let base = (
        proptest::sample::select(TYPES),
        proptest::collection::vec((proptest::sample::select(KEYS), leaf()), 0..6),
    )
        .prop_map(|(ty, kv)| {
            let mut map: Map<String, Value> =
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            map.insert("type".into(), Value::String(ty.to_owned()));
            Value::Object(map)
        });
    base.prop_recursive(4, 32, 4, |inner| {
        (
            proptest::sample::select(&["and", "or"][..]),
            proptest::collection::vec(inner, 0..4),
            proptest::option::of(number()),
        )
            .prop_map(|(ty, children, jitter)| {
                let mut v = json!({"type": ty, "triggers": children});
                if let Some(j) = jitter {
                    v["jitter"] = j;
                }
                v
            })
    })
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::<Utc>::MAX_UTC),
        (-2_208_988_800i64..4_102_444_800).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        (-62_135_596_800i64..253_402_300_799, 0u32..1_000_000)
            .prop_map(|(s, us)| DateTime::from_timestamp(s, us * 1000).unwrap()),
    ]
}

/// Evaluates a trigger a few times and round-trips its spec; none of it may panic.
fn exercise(t: &AnyTrigger, previous: Option<DateTime<Utc>>, now: DateTime<Utc>) {
    let (mut previous, mut now) = (previous, now);
    for _ in 0..4 {
        let Some(next) = t.next_fire_time(previous, now) else {
            break;
        };
        let _ = t.zone().format(next);
        for zone in ["Etc/GMT+12", "Pacific/Kiritimati"] {
            let _ = Zone::from_name(zone, "timezone").unwrap().format(next);
        }
        previous = Some(next);
        now = next;
    }
    let back = AnyTrigger::from_value(&t.to_value()).expect("a written spec parses");
    assert_eq!(&back, t);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_strings_never_panic(s in "\\PC{0,64}") {
        let _ = AnyTrigger::from_json(&s);
        let _ = AnyTrigger::from_json(&format!("{{\"type\": \"interval\", {s}}}"));
    }

    #[test]
    fn random_json_never_panics(v in json_value(), previous in proptest::option::of(instant()), now in instant()) {
        if let Ok(t) = AnyTrigger::from_value(&v) {
            exercise(&t, previous, now);
        }
    }

    #[test]
    fn spec_shaped_json_never_panics(v in spec_like(), previous in proptest::option::of(instant()), now in instant()) {
        if let Ok(t) = AnyTrigger::from_value(&v) {
            exercise(&t, previous, now);
        }
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn interval_times_increase_by_the_period_inside_start_and_end(
        units in proptest::collection::vec(0u32..5, 5),
        fraction in proptest::option::of(0u32..1_000_000),
        start in proptest::option::of(0i64..4_102_444_800),
        end_after in proptest::option::of(0i64..100_000_000),
        now in 0i64..4_102_444_800,
        zone in proptest::sample::select(ZONES),
    ) {
        let mut spec = json!({"type": "interval", "timezone": zone});
        for (key, n) in ["weeks", "days", "hours", "minutes", "seconds"].iter().zip(&units) {
            if *n > 0 {
                spec[*key] = json!(n);
            }
        }
        if let Some(f) = fraction {
            let whole = u64::from(units[4]);
            spec["seconds"] = json!(whole as f64 + f64::from(f) / 1e6);
        }
        let start = start.map(|s| DateTime::from_timestamp(s, 0).unwrap());
        let end = match (start, end_after) {
            (Some(s), Some(e)) => Some(s + TimeDelta::seconds(e)),
            _ => None,
        };
        if let Some(s) = start {
            spec["start_date"] = json!(s.to_rfc3339());
        }
        if let Some(e) = end {
            spec["end_date"] = json!(e.to_rfc3339());
        }
        let t = AnyTrigger::from_value(&spec).expect("valid interval");
        let AnyTrigger::Interval(i) = &t else { panic!("not an interval") };
        let period = i64::try_from(i.period().as_micros()).unwrap();
        prop_assert!(period > 0);
        let now = DateTime::from_timestamp(now, 0).unwrap();
        let mut previous: Option<DateTime<Utc>> = None;
        let mut at = now;
        for _ in 0..20 {
            let Some(next) = t.next_fire_time(previous, at) else { break };
            match previous {
                Some(p) => prop_assert_eq!(micros(next) - micros(p), period),
                None => prop_assert!(next >= now || start.is_some_and(|s| next == s)),
            }
            if let Some(s) = start {
                prop_assert!(next >= s);
                prop_assert_eq!((micros(next) - micros(s)) % period, 0);
            }
            if let Some(e) = end {
                prop_assert!(next <= e);
            }
            previous = Some(next);
            at = next;
        }
    }

    #[test]
    fn calendar_times_increase_on_the_wall_clock_inside_start_and_end(
        years in 0u32..3,
        months in 0u32..14,
        weeks in 0u32..3,
        days in 0u32..40,
        hms in (0u32..24, 0u32..60, 0u32..60),
        start in proptest::option::of(0i64..40_000),
        end_after in proptest::option::of(0i64..3_000),
        now in 0i64..4_102_444_800,
        zone in proptest::sample::select(ZONES),
    ) {
        prop_assume!(years + months + weeks + days > 0);
        let mut spec = json!({"type": "calendarinterval", "timezone": zone,
            "years": years, "months": months, "weeks": weeks, "days": days,
            "hour": hms.0, "minute": hms.1, "second": hms.2});
        let epoch = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap();
        let start = start.map(|d| epoch + TimeDelta::days(d));
        let end = match (start, end_after) {
            (Some(s), Some(e)) => Some(s + TimeDelta::days(e)),
            _ => None,
        };
        if let Some(s) = start {
            spec["start_date"] = json!(s.to_string());
        }
        if let Some(e) = end {
            spec["end_date"] = json!(e.to_string());
        }
        let t = AnyTrigger::from_value(&spec).expect("valid calendarinterval");
        let zone = Zone::from_name(zone, "timezone").unwrap();
        let time = NaiveTime::from_hms_opt(hms.0, hms.1, hms.2).unwrap();
        let now = DateTime::from_timestamp(now, 0).unwrap();
        let mut previous: Option<DateTime<Utc>> = None;
        let mut at = now;
        for _ in 0..12 {
            let Some(next) = t.next_fire_time(previous, at) else { break };
            if let Some(p) = previous {
                prop_assert!(next > p, "{} then {}", zone.format(p), zone.format(next));
            } else if start.is_none() {
                prop_assert!(next >= now);
            }
            let local = zone.local(next);
            prop_assert_eq!(local.time(), time);
            if let Some(s) = start {
                prop_assert!(local.date() >= s);
            }
            if let Some(e) = end {
                prop_assert!(local.date() <= e);
            }
            prop_assert!(local.date().year() <= 9999);
            previous = Some(next);
            at = next;
        }
    }

    #[test]
    fn date_fires_once(secs in -62_135_596_800i64..253_402_300_799, now in instant(), zone in proptest::sample::select(ZONES)) {
        let run_date = DateTime::from_timestamp(secs, 0).unwrap();
        let t = AnyTrigger::from_value(&json!({"type": "date",
            "run_date": run_date.to_rfc3339(), "timezone": zone})).expect("valid date");
        prop_assert_eq!(t.next_fire_time(None, now), Some(run_date));
        prop_assert_eq!(t.next_fire_time(Some(run_date), now), None);
    }

    #[test]
    fn jitter_stays_in_range_and_before_the_next_fire(
        fire in instant(),
        jitter_us in 0u64..10_000_000_000,
        gap_us in proptest::option::of(-1_000i64..20_000_000_000),
        seed in any::<u64>(),
    ) {
        let next = gap_us.and_then(|g| fire.checked_add_signed(TimeDelta::microseconds(g)));
        let mut rng = SplitMix64::new(seed);
        let _ = rng.next_u64();
        let run_at = jittered(fire, Duration::from_micros(jitter_us), next, &mut rng);
        prop_assert!(run_at >= fire);
        prop_assert!(micros(run_at) - micros(fire) <= i64::try_from(jitter_us).unwrap());
        if let Some(n) = next {
            prop_assert!(run_at < n || run_at == fire);
        }
    }
}
