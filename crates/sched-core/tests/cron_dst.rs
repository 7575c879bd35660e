//! DST behaviour of `cron` and `crontab`, zone by zone.
//!
//! Expectations come from the zones' rules (drawn above each test), not from running the
//! engine: a matching wall time that exists once fires at its instant; a repeated one at
//! both instants (or the first only with `dst_repeat: "first"`); a gap time fires shifted
//! forward by the gap for fixed-time triggers (one hour, one minute, one second) and is
//! skipped otherwise.

use chrono::{DateTime, Utc};
use sched_core::trigger::{AnyTrigger, Trigger};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

/// Runs the conformance iteration rule from `now` and compares instants.
fn check(spec: &str, now: &str, expected: &[&str]) {
    let trigger = AnyTrigger::from_json(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let mut got = Vec::new();
    let mut previous = None;
    let mut at = t(now);
    while got.len() < expected.len() {
        match trigger.next_fire_time(previous, at) {
            Some(x) => {
                got.push(x);
                previous = Some(x);
                at = x;
            }
            None => break,
        }
    }
    let want: Vec<DateTime<Utc>> = expected.iter().map(|s| t(s)).collect();
    let show = |v: &[DateTime<Utc>]| {
        v.iter()
            .map(|x| trigger.zone().format(*x))
            .collect::<Vec<_>>()
    };
    assert_eq!(show(&got), show(&want), "{spec} from {now}");
}

fn both(fields: &str, expr: &str, zone: &str, now: &str, expected: &[&str]) {
    check(
        &format!(r#"{{"type":"cron",{fields},"timezone":"{zone}"}}"#),
        now,
        expected,
    );
    check(
        &format!(r#"{{"type":"crontab","expr":"{expr}","timezone":"{zone}"}}"#),
        now,
        expected,
    );
}

// ---------------------------------------------------------------- America/New_York
// 2025-03-09 07:00Z: 02:00 EST (-05) -> 03:00 EDT (-04); 02:00-02:59 do not exist.
// 2025-11-02 06:00Z: 02:00 EDT -> 01:00 EST; 01:00-01:59 happen twice.

/// Daily 02:30 is fixed-time: on the 9th it fires at 02:30 + 1h = 03:30 EDT.
#[test]
fn new_york_gap_shifts_fixed_time() {
    both(
        r#""hour":2,"minute":30"#,
        "30 2 * * *",
        "America/New_York",
        "2025-03-08T12:00:00-05:00",
        &[
            "2025-03-09T03:30:00-04:00",
            "2025-03-10T02:30:00-04:00",
            "2025-03-11T02:30:00-04:00",
        ],
    );
}

/// Searching from 03:10 EDT, just after the gap: 02:30 shifted (03:30) is still ahead.
#[test]
fn new_york_gap_shift_found_from_after_the_gap() {
    both(
        r#""hour":2,"minute":30"#,
        "30 2 * * *",
        "America/New_York",
        "2025-03-09T03:10:00-04:00",
        &["2025-03-09T03:30:00-04:00", "2025-03-10T02:30:00-04:00"],
    );
}

/// 02:00 and 02:30 (two minutes: not fixed-time) do not exist on the 9th: skipped.
#[test]
fn new_york_gap_skips_non_fixed() {
    both(
        r#""hour":2,"minute":"0,30""#,
        "0,30 2 * * *",
        "America/New_York",
        "2025-03-08T12:00:00-05:00",
        &["2025-03-10T02:00:00-04:00", "2025-03-10T02:30:00-04:00"],
    );
}

/// 01:30 exists twice on Nov 2: 05:30Z (EDT) and 06:30Z (EST).
#[test]
fn new_york_repeat_fires_both() {
    both(
        r#""hour":1,"minute":30"#,
        "30 1 * * *",
        "America/New_York",
        "2025-11-01T12:00:00-04:00",
        &[
            "2025-11-02T01:30:00-04:00",
            "2025-11-02T01:30:00-05:00",
            "2025-11-03T01:30:00-05:00",
        ],
    );
}

/// `dst_repeat: first`: only 01:30 EDT on Nov 2.
#[test]
fn new_york_repeat_first_only() {
    check(
        r#"{"type":"cron","hour":1,"minute":30,"timezone":"America/New_York","dst_repeat":"first"}"#,
        "2025-11-01T12:00:00-04:00",
        &["2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"],
    );
    check(
        r#"{"type":"crontab","expr":"*/20 1 * * *","timezone":"America/New_York","dst_repeat":"first"}"#,
        "2025-11-02T01:30:00-04:00",
        &["2025-11-02T01:40:00-04:00", "2025-11-03T01:00:00-05:00"],
    );
}

/// Starting in the first pass at 01:30 EDT: 01:40 EDT, then the second pass from its
/// start (01:00 EST), although 01:00 is earlier on the wall clock than the start.
#[test]
fn new_york_first_pass_start_reaches_second_pass() {
    both(
        r#""minute":"*/20""#,
        "*/20 * * * *",
        "America/New_York",
        "2025-11-02T01:30:00-04:00",
        &[
            "2025-11-02T01:40:00-04:00",
            "2025-11-02T01:00:00-05:00",
            "2025-11-02T01:20:00-05:00",
            "2025-11-02T01:40:00-05:00",
            "2025-11-02T02:00:00-05:00",
        ],
    );
}

/// The APScheduler bug: from Feb 27, `day 1` fires Mar 1, Apr 1 and May 1 at 00:00 local.
#[test]
fn new_york_monthly_across_spring_forward() {
    both(
        r#""day":1"#,
        "0 0 1 * *",
        "America/New_York",
        "2025-02-27T10:00:00-05:00",
        &[
            "2025-03-01T00:00:00-05:00",
            "2025-04-01T00:00:00-04:00",
            "2025-05-01T00:00:00-04:00",
        ],
    );
}

// ---------------------------------------------------------------- Europe/Berlin
// 2026-03-29 01:00Z: 02:00 CET (+01) -> 03:00 CEST (+02).
// 2026-10-25 01:00Z: 03:00 CEST -> 02:00 CET; 02:00-02:59 twice.

/// 02:30 on Mar 29 shifts to 03:30 CEST (01:30Z); a quarter-hourly 02:xx job skips it.
#[test]
fn berlin_gap() {
    both(
        r#""hour":2,"minute":30"#,
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        &["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"],
    );
    both(
        r#""hour":2,"minute":"*/15""#,
        "*/15 2 * * *",
        "Europe/Berlin",
        "2026-03-28T02:50:00+01:00",
        &["2026-03-30T02:00:00+02:00", "2026-03-30T02:15:00+02:00"],
    );
}

/// 02:30 on Oct 25 fires at 00:30Z and 01:30Z; with `first` only at 00:30Z.
#[test]
fn berlin_repeat() {
    both(
        r#""hour":2,"minute":30"#,
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00+02:00",
        &[
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-26T02:30:00+01:00",
        ],
    );
    check(
        r#"{"type":"crontab","expr":"30 2 * * *","timezone":"Europe/Berlin","dst_repeat":"first"}"#,
        "2026-10-24T12:00:00+02:00",
        &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    );
}

// ---------------------------------------------------------------- Australia/Sydney
// 2025-04-05 16:00Z: 03:00 AEDT (+11) -> 02:00 AEST (+10); 02:00-02:59 twice on Apr 6.
// 2025-10-04 16:00Z: 02:00 AEST -> 03:00 AEDT; 02:00-02:59 missing on Oct 5.

/// 02:15:10 (with seconds: still one value each) shifts to 03:15:10 AEDT on Oct 5.
#[test]
fn sydney_gap_with_seconds() {
    both(
        r#""hour":2,"minute":15,"second":10"#,
        "10 15 2 * * *",
        "Australia/Sydney",
        "2025-10-04T00:00:00+10:00",
        &[
            "2025-10-04T02:15:10+10:00",
            "2025-10-05T03:15:10+11:00",
            "2025-10-06T02:15:10+11:00",
        ],
    );
}

/// 02:15:10 on Apr 6 fires at +11 and at +10.
#[test]
fn sydney_repeat() {
    both(
        r#""hour":2,"minute":15,"second":10"#,
        "10 15 2 * * *",
        "Australia/Sydney",
        "2025-04-05T12:00:00+11:00",
        &[
            "2025-04-06T02:15:10+11:00",
            "2025-04-06T02:15:10+10:00",
            "2025-04-07T02:15:10+10:00",
        ],
    );
}

// ---------------------------------------------------------------- America/Santiago
// 2024-09-08 04:00Z: 00:00 (-04) -> 01:00 (-03); midnight itself does not exist.
// 2024-04-07 03:00Z: 24:00 (-03) -> 23:00 (-04) on Apr 6; 23:00-23:59 twice.

/// A daily 00:00 job still fires on Sep 8, at 01:00 -03 (midnight + the 1-hour gap); so
/// does a monthly one on the 8th.
#[test]
fn santiago_midnight_gap_fixed() {
    both(
        r#""hour":0"#,
        "0 0 * * *",
        "America/Santiago",
        "2024-09-06T12:00:00-04:00",
        &[
            "2024-09-07T00:00:00-04:00",
            "2024-09-08T01:00:00-03:00",
            "2024-09-09T00:00:00-03:00",
        ],
    );
    both(
        r#""day":8"#,
        "0 0 8 * *",
        "America/Santiago",
        "2024-08-20T12:00:00-04:00",
        &["2024-09-08T01:00:00-03:00", "2024-10-08T00:00:00-03:00"],
    );
}

/// Half-hourly at midnight (not fixed-time): 00:00 and 00:30 on Sep 8 are skipped.
#[test]
fn santiago_midnight_gap_non_fixed() {
    both(
        r#""hour":0,"minute":"*/30""#,
        "*/30 0 * * *",
        "America/Santiago",
        "2024-09-06T12:00:00-04:00",
        &[
            "2024-09-07T00:00:00-04:00",
            "2024-09-07T00:30:00-04:00",
            "2024-09-09T00:00:00-03:00",
        ],
    );
}

/// 23:30 on Apr 6 happens at -03 (02:30Z) and at -04 (03:30Z).
#[test]
fn santiago_repeat() {
    both(
        r#""hour":23,"minute":30"#,
        "30 23 * * *",
        "America/Santiago",
        "2024-04-06T12:00:00-03:00",
        &[
            "2024-04-06T23:30:00-03:00",
            "2024-04-06T23:30:00-04:00",
            "2024-04-07T23:30:00-04:00",
        ],
    );
}

// ---------------------------------------------------------------- Australia/Lord_Howe
// 2023-09-30 15:30Z: 02:00 (+10:30) -> 02:30 (+11) on Oct 1; a 30-minute gap.
// 2023-04-01 15:00Z: 02:00 (+11) -> 01:30 (+10:30) on Apr 2; 01:30-01:59 twice.

/// 02:15 shifts by the 30-minute gap to 02:45 +11.
#[test]
fn lord_howe_half_hour_gap_fixed() {
    both(
        r#""hour":2,"minute":15"#,
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2023-09-30T12:00:00+10:30",
        &["2023-10-01T02:45:00+11:00", "2023-10-02T02:15:00+11:00"],
    );
}

/// Every 20 minutes: 01:40, then 02:00 and 02:20 do not exist, 02:40.
#[test]
fn lord_howe_half_hour_gap_skips() {
    both(
        r#""minute":"*/20""#,
        "*/20 * * * *",
        "Australia/Lord_Howe",
        "2023-10-01T01:30:00+10:30",
        &[
            "2023-10-01T01:40:00+10:30",
            "2023-10-01T02:40:00+11:00",
            "2023-10-01T03:00:00+11:00",
        ],
    );
}

/// 01:45 on Apr 2 happens at +11 (14:45Z) and +10:30 (15:15Z); `first` keeps 14:45Z.
#[test]
fn lord_howe_half_hour_repeat() {
    both(
        r#""hour":1,"minute":45"#,
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2023-04-01T12:00:00+11:00",
        &[
            "2023-04-02T01:45:00+11:00",
            "2023-04-02T01:45:00+10:30",
            "2023-04-03T01:45:00+10:30",
        ],
    );
    check(
        r#"{"type":"cron","hour":1,"minute":45,"timezone":"Australia/Lord_Howe","dst_repeat":"first"}"#,
        "2023-04-01T12:00:00+11:00",
        &["2023-04-02T01:45:00+11:00", "2023-04-03T01:45:00+10:30"],
    );
}

// ---------------------------------------------------------------- Pacific/Chatham
// 2025-09-27 14:00Z: 02:45 (+12:45) -> 03:45 (+13:45) on Sep 28.
// 2025-04-05 14:00Z: 03:45 (+13:45) -> 02:45 (+12:45) on Apr 6; 02:45-03:44 twice.

/// 03:00 on Sep 28 lies in the gap and shifts to 04:00 +13:45.
#[test]
fn chatham_gap_fixed() {
    both(
        r#""hour":3,"minute":0"#,
        "0 3 * * *",
        "Pacific/Chatham",
        "2025-09-27T12:00:00+12:45",
        &["2025-09-28T04:00:00+13:45", "2025-09-29T03:00:00+13:45"],
    );
}

/// Half-hourly: 02:00, 02:30, [03:00 and 03:30 missing], 04:00.
#[test]
fn chatham_gap_skips() {
    both(
        r#""minute":"*/30""#,
        "*/30 * * * *",
        "Pacific/Chatham",
        "2025-09-28T02:00:00+12:45",
        &[
            "2025-09-28T02:00:00+12:45",
            "2025-09-28T02:30:00+12:45",
            "2025-09-28T04:00:00+13:45",
        ],
    );
}

/// 03:00 on Apr 6 happens at +13:45 (13:15Z) and +12:45 (14:15Z).
#[test]
fn chatham_repeat() {
    both(
        r#""hour":3,"minute":0"#,
        "0 3 * * *",
        "Pacific/Chatham",
        "2025-04-05T12:00:00+13:45",
        &[
            "2025-04-06T03:00:00+13:45",
            "2025-04-06T03:00:00+12:45",
            "2025-04-07T03:00:00+12:45",
        ],
    );
}

// ---------------------------------------------------------------- America/Havana
// 2025-03-09 05:00Z: 00:00 (-05) -> 01:00 (-04); midnight missing.
// 2025-11-02 05:00Z: 01:00 (-04) -> 00:00 (-05); 00:00-00:59 twice, midnight included.

/// Daily midnight shifts to 01:00 on Mar 9; monthly on the 9th too.
#[test]
fn havana_midnight_gap() {
    both(
        r#""hour":0"#,
        "0 0 * * *",
        "America/Havana",
        "2025-03-07T12:00:00-05:00",
        &[
            "2025-03-08T00:00:00-05:00",
            "2025-03-09T01:00:00-04:00",
            "2025-03-10T00:00:00-04:00",
        ],
    );
    both(
        r#""day":9"#,
        "0 0 9 * *",
        "America/Havana",
        "2025-02-20T12:00:00-05:00",
        &["2025-03-09T01:00:00-04:00", "2025-04-09T00:00:00-04:00"],
    );
}

/// Midnight on Nov 2 exists twice: a monthly job on the 2nd fires at both.
#[test]
fn havana_midnight_repeat() {
    both(
        r#""day":2"#,
        "0 0 2 * *",
        "America/Havana",
        "2025-10-20T12:00:00-04:00",
        &[
            "2025-11-02T00:00:00-04:00",
            "2025-11-02T00:00:00-05:00",
            "2025-12-02T00:00:00-05:00",
        ],
    );
    check(
        r#"{"type":"cron","day":2,"timezone":"America/Havana","dst_repeat":"first"}"#,
        "2025-10-20T12:00:00-04:00",
        &["2025-11-02T00:00:00-04:00", "2025-12-02T00:00:00-05:00"],
    );
}

/// Like [`check`], but the trigger must then be exhausted.
fn check_exhausted(spec: &str, now: &str, expected: &[&str]) {
    check(spec, now, expected);
    let trigger = AnyTrigger::from_json(spec).expect("valid");
    let mut previous = None;
    let mut at = t(now);
    for _ in 0..expected.len() {
        let x = trigger.next_fire_time(previous, at).expect("counted above");
        previous = Some(x);
        at = x;
    }
    assert_eq!(trigger.next_fire_time(previous, at), None, "{spec} goes on");
}

// ---------------------------------------------------------------- second passes far from
// the next first-pass match
//
// Europe/Berlin, 2026-10-25: 02:00-02:59 twice (CEST 00:00-00:59Z, CET 01:00-01:59Z).
// 2027-03-28: 02:00-02:59 missing. 2027-10-31: 02:00-02:59 twice.

/// From 02:40 CEST on Oct 25 the next first-pass match is in March 2027 (a gap time,
/// shifted), but 02:30 CET, later that same night, comes first.
#[test]
fn berlin_second_pass_before_a_distant_match() {
    check(
        r#"{"type":"cron","month":"3,10","day":"last sun","hour":2,"minute":30,"timezone":"Europe/Berlin"}"#,
        "2026-10-25T02:40:00+02:00",
        &[
            "2026-10-25T02:30:00+01:00",
            "2027-03-28T03:30:00+02:00",
            "2027-10-31T02:30:00+02:00",
            "2027-10-31T02:30:00+01:00",
        ],
    );
}

/// America/New_York, 2025-11-02, 01:00-01:59 twice. From 01:55 EDT, with no match after
/// the repeated hour at all (the year field ends it), the second pass still fires.
#[test]
fn new_york_second_pass_when_nothing_follows() {
    check_exhausted(
        r#"{"type":"cron","year":2025,"month":11,"day":2,"hour":1,"minute":"0,50","timezone":"America/New_York"}"#,
        "2025-11-02T01:55:00-04:00",
        &["2025-11-02T01:00:00-05:00", "2025-11-02T01:50:00-05:00"],
    );
    // The same with an end_date inside the second pass (inclusive).
    check_exhausted(
        r#"{"type":"crontab","expr":"*/20 * * * *","end_date":"2025-11-02T01:20:00-05:00","timezone":"America/New_York"}"#,
        "2025-11-02T01:50:00-04:00",
        &["2025-11-02T01:00:00-05:00", "2025-11-02T01:20:00-05:00"],
    );
}
