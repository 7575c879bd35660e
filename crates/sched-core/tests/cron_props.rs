//! Property tests for `cron` and `crontab`: no input panics; fire times strictly increase,
//! match every field in local time (or are a documented gap shift) and stay within
//! start/end; crontab in UTC agrees with croner.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Timelike, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use proptest::prelude::*;
use sched_core::trigger::{AnyTrigger, CronTrigger, Trigger};
use sched_core::{LocalTime, Zone};

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Havana",
    "Asia/Kolkata",
];

/// Noise built from the characters expressions are made of, plus anything at all.
fn noise() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-zA-Z*/,\\- #?]{0,16}",
        "(\\*|[0-9]{1,3}|L|W|last|mon|fri|jan|3rd|\\*/[0-9]{1,2}|[0-9]{1,2}-[0-9]{1,2}(/[0-9]{1,2})?)( |,|-|/|#)?([0-9]{0,2}|fri|L)",
        any::<String>(),
    ]
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 1969-12-31 .. 2100
    (-86_400i64..4_102_444_800i64, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap_or_default())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn cron_fields_never_panic(field in 0..CronTrigger::FIELDS.len(), text in noise(), now in instant()) {
        let spec = serde_json::json!({"type": "cron", CronTrigger::FIELDS[field]: text, "timezone": "Europe/Berlin"});
        if let Ok(t) = AnyTrigger::from_value(&spec) {
            let _ = t.next_fire_time(None, now);
            let _ = t.next_fire_time(Some(now), now);
        }
    }

    #[test]
    fn crontab_exprs_never_panic(parts in prop::collection::vec(noise(), 0..8), zone in 0..ZONES.len(), now in instant()) {
        let expr = parts.join(" ");
        let spec = serde_json::json!({"type": "crontab", "expr": expr, "timezone": ZONES[zone]});
        if let Ok(t) = AnyTrigger::from_value(&spec) {
            let _ = t.next_fire_time(None, now);
        }
    }

    #[test]
    fn extreme_instants_never_panic(secs in any::<i64>(), zone in 0..ZONES.len()) {
        let spec = serde_json::json!({"type": "crontab", "expr": "*/7 */3 L * *", "timezone": ZONES[zone]});
        let t = AnyTrigger::from_value(&spec).expect("valid");
        let now = DateTime::from_timestamp(secs / 4, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let _ = t.next_fire_time(None, now);
        let _ = t.next_fire_time(Some(now), now);
        let _ = t.next_fire_time(None, DateTime::<Utc>::MIN_UTC);
        let _ = t.next_fire_time(Some(DateTime::<Utc>::MAX_UTC), DateTime::<Utc>::MAX_UTC);
    }
}

/// A generated field: its text and the values it accepts.
#[derive(Clone, Debug)]
struct Gen {
    text: String,
    values: BTreeSet<u32>,
}

fn gen_field(min: u32, max: u32) -> impl Strategy<Value = Gen> {
    let all = move || (min..=max).collect::<BTreeSet<u32>>();
    prop_oneof![
        Just(Gen {
            text: "*".into(),
            values: all()
        }),
        (1..=(max - min).max(1)).prop_map(move |s| Gen {
            text: format!("*/{s}"),
            values: (min..=max).step_by(s as usize).collect(),
        }),
        (min..=max).prop_map(|a| Gen {
            text: a.to_string(),
            values: [a].into()
        }),
        (min..=max, min..=max, 1u32..6).prop_map(|(a, b, s)| {
            let (a, b) = (a.min(b), a.max(b));
            if s <= b - a {
                Gen {
                    text: format!("{a}-{b}/{s}"),
                    values: (a..=b).step_by(s as usize).collect(),
                }
            } else {
                Gen {
                    text: format!("{a}-{b}"),
                    values: (a..=b).collect(),
                }
            }
        }),
        prop::collection::btree_set(min..=max, 1..4).prop_map(|v| Gen {
            text: v.iter().map(u32::to_string).collect::<Vec<_>>().join(" , "),
            values: v,
        }),
    ]
}

#[derive(Clone, Debug)]
struct CronCase {
    month: Option<Gen>,
    day: Option<Gen>,
    week: Option<Gen>,
    dow: Option<Gen>,
    hour: Option<Gen>,
    minute: Option<Gen>,
    second: Option<Gen>,
}

fn cron_case() -> impl Strategy<Value = CronCase> {
    (
        prop::option::weighted(0.3, gen_field(1, 12)),
        prop::option::weighted(0.3, gen_field(1, 31)),
        prop::option::weighted(0.1, gen_field(1, 53)),
        prop::option::weighted(0.3, gen_field(0, 6)),
        prop::option::weighted(0.6, gen_field(0, 23)),
        prop::option::weighted(0.6, gen_field(0, 59)),
        prop::option::weighted(0.4, gen_field(0, 59)),
    )
        .prop_map(|(month, day, week, dow, hour, minute, second)| CronCase {
            month,
            day,
            week,
            dow,
            hour,
            minute,
            second,
        })
}

impl CronCase {
    fn slots(&self) -> [(&'static str, &Option<Gen>, u32, u32, u32); 7] {
        // (name, field, min, max, default when unset after the last given field)
        [
            ("month", &self.month, 1, 12, 1),
            ("day", &self.day, 1, 31, 1),
            ("week", &self.week, 1, 53, u32::MAX),
            ("day_of_week", &self.dow, 0, 6, u32::MAX),
            ("hour", &self.hour, 0, 23, 0),
            ("minute", &self.minute, 0, 59, 0),
            ("second", &self.second, 0, 59, 0),
        ]
    }

    /// The accepted values of each field, with APScheduler's defaults for unset ones.
    fn sets(&self) -> Vec<BTreeSet<u32>> {
        let slots = self.slots();
        let last = slots.iter().rposition(|s| s.1.is_some());
        slots
            .iter()
            .enumerate()
            .map(|(i, (_, f, min, max, def))| match (f, last) {
                (Some(g), _) => g.values.clone(),
                (None, Some(l)) if i > l && *def != u32::MAX => [*def].into(),
                _ => (*min..=*max).collect(),
            })
            .collect()
    }

    fn spec(
        &self,
        zone: &str,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (name, f, ..) in self.slots() {
            if let Some(g) = f {
                m.insert(name.into(), g.text.clone().into());
            }
        }
        m.insert("type".into(), "cron".into());
        m.insert("timezone".into(), zone.into());
        if let Some(s) = start {
            m.insert("start_date".into(), s.to_rfc3339().into());
        }
        if let Some(e) = end {
            m.insert("end_date".into(), e.to_rfc3339().into());
        }
        serde_json::Value::Object(m)
    }
}

fn matches(sets: &[BTreeSet<u32>], l: NaiveDateTime) -> bool {
    let d = l.date();
    sets[0].contains(&d.month())
        && sets[1].contains(&d.day())
        && sets[2].contains(&d.iso_week().week())
        && sets[3].contains(&d.weekday().num_days_from_monday())
        && sets[4].contains(&l.hour())
        && sets[5].contains(&l.minute())
        && sets[6].contains(&l.second())
}

/// `t` is the shifted instant of a fixed-time wall time that falls in a gap.
fn is_gap_shift(sets: &[BTreeSet<u32>], zone: Zone, t: DateTime<Utc>) -> bool {
    let fixed = sets[4].len() == 1 && sets[5].len() == 1 && sets[6].len() == 1;
    if !fixed {
        return false;
    }
    let l = zone.local(t);
    [l.date(), l.date() - chrono::Days::new(1)]
        .into_iter()
        .any(|day| {
            let (h, m, s) = (
                *sets[4].first().unwrap_or(&0),
                *sets[5].first().unwrap_or(&0),
                *sets[6].first().unwrap_or(&0),
            );
            let Some(w) = day.and_hms_opt(h, m, s) else {
                return false;
            };
            matches(sets, w) && zone.resolve(w) == LocalTime::Missing { shifted: t }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn cron_times_increase_match_and_respect_bounds(
        case in cron_case(),
        zone in 0..ZONES.len(),
        now in instant(),
        start_off in prop::option::of(0i64..5_000_000),
        end_off in prop::option::of(0i64..50_000_000),
    ) {
        let start = start_off.map(|o| now + chrono::Duration::seconds(o));
        let end = end_off.map(|o| now + chrono::Duration::seconds(o));
        let spec = case.spec(ZONES[zone], start, end);
        let trigger = AnyTrigger::from_value(&spec).expect("generated specs are valid");
        let tz = trigger.zone();
        let sets = case.sets();
        let mut previous: Option<DateTime<Utc>> = None;
        let mut at = now;
        for _ in 0..12 {
            let Some(t) = trigger.next_fire_time(previous, at) else { break };
            match previous {
                Some(p) => prop_assert!(t > p, "{spec}: {t} not after {p}"),
                None => {
                    prop_assert!(t >= now, "{spec}: {t} before now {now}");
                    if let Some(s) = start {
                        prop_assert!(t >= s, "{spec}: {t} before start");
                    }
                }
            }
            if let Some(e) = end {
                prop_assert!(t <= e, "{spec}: {t} after end");
            }
            prop_assert_eq!(t.timestamp_subsec_nanos(), 0);
            let l = tz.local(t);
            prop_assert!(
                matches(&sets, l) || is_gap_shift(&sets, tz, t),
                "{} fired at {} (local {}) which does not match", spec, tz.format(t), l
            );
            previous = Some(t);
            at = t;
        }
    }
}

/// A crontab field as croner and we both read it: `*`, a value, a range, a step, a list.
fn tab_field(min: u32, max: u32, star_only_or_restricted: bool) -> impl Strategy<Value = String> {
    gen_field(min, max).prop_filter_map("restricted or *", move |g| {
        let full = g.values.len() as u32 == max - min + 1;
        if star_only_or_restricted && full && g.text != "*" {
            None
        } else {
            Some(g.text.replace(' ', ""))
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn crontab_in_utc_agrees_with_croner(
        minute in tab_field(0, 59, false),
        hour in tab_field(0, 23, false),
        dom in tab_field(1, 31, true),
        month in tab_field(1, 12, false),
        dow in tab_field(0, 6, true),
        secs in 0i64..4_000_000_000,
    ) {
        let expr = format!("{minute} {hour} {dom} {month} {dow}");
        let ours = AnyTrigger::from_value(&serde_json::json!({"type": "crontab", "expr": expr, "timezone": "UTC"}))
            .expect("valid expression");
        let theirs: Cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(&expr)
            .or_else(|_| Cron::from_str(&expr))
            .expect("croner parses it");
        let start = Utc.timestamp_opt(secs, 0).single().expect("in range");
        let mut previous = None;
        let mut at = start;
        let mut croner_at = start;
        let mut inclusive = true;
        for _ in 0..8 {
            let a = ours.next_fire_time(previous, at);
            let b = theirs.find_next_occurrence(&croner_at, inclusive).ok();
            prop_assert_eq!(a, b, "{} from {}", expr, start);
            let Some(t) = a else { break };
            previous = Some(t);
            at = t;
            croner_at = t;
            inclusive = false;
        }
    }
}

/// DST changes to search around (UTC instants of the change).
const CHANGES: &[(&str, &str)] = &[
    ("America/New_York", "2025-03-09T07:00:00Z"),
    ("America/New_York", "2025-11-02T06:00:00Z"),
    ("Europe/Berlin", "2026-03-29T01:00:00Z"),
    ("Europe/Berlin", "2026-10-25T01:00:00Z"),
    ("Australia/Sydney", "2025-04-05T16:00:00Z"),
    ("Australia/Sydney", "2025-10-04T16:00:00Z"),
    ("America/Santiago", "2024-04-07T03:00:00Z"),
    ("America/Santiago", "2024-09-08T04:00:00Z"),
    ("Australia/Lord_Howe", "2023-04-01T15:00:00Z"),
    ("Australia/Lord_Howe", "2023-09-30T15:30:00Z"),
    ("Pacific/Chatham", "2025-04-05T14:00:00Z"),
    ("Pacific/Chatham", "2025-09-27T14:00:00Z"),
    ("America/Havana", "2025-03-09T05:00:00Z"),
    ("America/Havana", "2025-11-02T05:00:00Z"),
];

/// The DST rules written as a brute force over every minute: the smallest instant >= `s`
/// that is (a) a minute whose wall time matches (only the first instant of a repeated wall
/// time with `first_only`), or (b) for a fixed-time schedule, a matching wall time in a gap
/// shifted forward by the gap. `None` when nothing lies within two days.
fn reference(
    sets: &[BTreeSet<u32>],
    zone: Zone,
    s: DateTime<Utc>,
    first_only: bool,
) -> Option<DateTime<Utc>> {
    let fixed = sets[4].len() == 1 && sets[5].len() == 1 && sets[6].len() == 1;
    let horizon = s + chrono::Duration::days(2);
    let mut best: Option<DateTime<Utc>> = None;
    // (a) real instants, minute by minute (every zone here has whole-minute offsets).
    let mut u = s;
    while u <= horizon && best.is_none() {
        let w = zone.local(u);
        if matches(sets, w) {
            let first = match zone.resolve(w) {
                LocalTime::Repeated(a, _) => a == u,
                _ => true,
            };
            if !first_only || first {
                best = Some(u);
            }
        }
        u += chrono::Duration::minutes(1);
    }
    // (b) gap shifts: walk wall minutes around the start.
    if fixed {
        let mut w = zone.local(s) - chrono::Duration::hours(3);
        let end = zone.local(horizon);
        while w <= end {
            if matches(sets, w)
                && let LocalTime::Missing { shifted } = zone.resolve(w)
                && shifted >= s
                && best.is_none_or(|b| shifted < b)
            {
                best = Some(shifted);
            }
            w += chrono::Duration::minutes(1);
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn dst_rules_match_a_brute_force_model(
        change in 0..CHANGES.len(),
        offset_min in prop_oneof![-240i64..240, -70i64..70],
        hour_pick in prop::option::weighted(0.3, gen_field(0, 23)),
        hour_near in 0u32..3,
        minute in prop_oneof![gen_field(0, 59), (0u32..60).prop_map(|m| Gen { text: m.to_string(), values: [m].into() })],
        first_only in any::<bool>(),
        crontab in any::<bool>(),
    ) {
        let (zone_name, at) = CHANGES[change];
        let zone = Zone::from_name(zone_name, "timezone").expect("zone");
        let s = DateTime::parse_from_rfc3339(at).expect("change").to_utc()
            + chrono::Duration::minutes(offset_min);
        // Mostly one hour next to the change's wall hour, so gap and repeat cases are common.
        let change_hour = zone.local(DateTime::parse_from_rfc3339(at).expect("change").to_utc() - chrono::Duration::seconds(1)).hour();
        let hour = hour_pick.unwrap_or_else(|| {
            let h = (change_hour + 23 + hour_near) % 24;
            Gen { text: h.to_string(), values: [h].into() }
        });
        let repeat = if first_only { r#","dst_repeat":"first""# } else { "" };
        let spec = if crontab {
            format!(
                r#"{{"type":"crontab","expr":"{} {} * * *","timezone":"{zone_name}"{repeat}}}"#,
                minute.text.replace(' ', ""), hour.text.replace(' ', "")
            )
        } else {
            format!(
                r#"{{"type":"cron","hour":"{}","minute":"{}","timezone":"{zone_name}"{repeat}}}"#,
                hour.text, minute.text
            )
        };
        let trigger = AnyTrigger::from_json(&spec).expect("valid spec");
        let all = |a: u32, b: u32| (a..=b).collect::<BTreeSet<u32>>();
        let sets = vec![all(1, 12), all(1, 31), all(1, 53), all(0, 6), hour.values.clone(), minute.values.clone(), [0].into()];
        let want = reference(&sets, zone, s, first_only);
        let got = trigger.next_fire_time(None, s);
        prop_assert_eq!(
            got.map(|t| zone.format(t)),
            want.map(|t| zone.format(t)),
            "{} from {}", spec, zone.format(s)
        );
    }
}
