//! `Zone` never panics, even at the limits of chrono's time range.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sched_core::{LocalTime, Zone};

#[test]
fn formatting_and_resolving_at_the_range_limits_does_not_panic() {
    let zones = [
        Zone::UTC,
        Zone::from_name("Pacific/Kiritimati", "timezone").unwrap(),
        Zone::from_name("America/New_York", "timezone").unwrap(),
        Zone::Fixed(chrono::FixedOffset::west_opt(12 * 3600).unwrap()),
    ];
    for zone in zones {
        for instant in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let text = zone.format(instant);
            assert!(!text.is_empty());
            let _ = zone.local(instant);
        }
        for local in [NaiveDateTime::MIN, NaiveDateTime::MAX] {
            let _ = zone.resolve(local);
        }
    }
}

#[test]
fn a_wall_time_in_a_gap_is_shifted_by_the_gap_length() {
    let ny = Zone::from_name("America/New_York", "timezone").unwrap();
    let local = NaiveDateTime::parse_from_str("2025-03-09 02:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let LocalTime::Missing { shifted } = ny.resolve(local) else {
        panic!("02:30 on 2025-03-09 is inside New York's gap");
    };
    assert_eq!(ny.format(shifted), "2025-03-09T03:30:00-04:00");

    // Lord Howe moves by 30 minutes: 02:10 does not exist and lands at 02:40 (+11:00).
    let lh = Zone::from_name("Australia/Lord_Howe", "timezone").unwrap();
    let local = NaiveDateTime::parse_from_str("2025-10-05 02:10:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let LocalTime::Missing { shifted } = lh.resolve(local) else {
        panic!("02:10 on 2025-10-05 is inside Lord Howe's gap");
    };
    assert_eq!(lh.format(shifted), "2025-10-05T02:40:00+11:00");
}

#[test]
fn a_repeated_wall_time_resolves_to_both_instants_in_order() {
    let berlin = Zone::from_name("Europe/Berlin", "timezone").unwrap();
    let local = NaiveDateTime::parse_from_str("2025-10-26 02:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
    assert_eq!(
        berlin.resolve(local),
        LocalTime::Repeated(
            Utc.with_ymd_and_hms(2025, 10, 26, 0, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(2025, 10, 26, 1, 30, 0).unwrap(),
        )
    );
}
