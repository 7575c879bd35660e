//! Trigger benchmarks (workload W4 of `BENCH.md`, plus every other trigger kind).
//!
//! W4: the next fire time of five crontab expressions in Europe/Berlin, each computed
//! strictly after the previous result (`next_fire_time(Some(prev), prev)`), restarting from
//! 2026-03-27 00:00 Berlin every 1,000 steps (so the walk crosses the March DST change).
//! The same schedules run as `cron` field specs and through croner 4.0.3, in the same
//! invocation, so ratios come from one run.
//!
//! ```text
//! cargo bench -p sched-core --bench triggers -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use criterion::{Criterion, criterion_group, criterion_main};
use sched_core::trigger::{AnyTrigger, Trigger};

/// (crontab expression, the same schedule as cron fields)
const SCHEDULES: &[(&str, &str)] = &[
    ("*/5 * * * *", r#""minute":"*/5""#),
    (
        "0 9-17 * * mon-fri",
        r#""day_of_week":"mon-fri","hour":"9-17","minute":0"#,
    ),
    ("15 3 1,15 * *", r#""day":"1,15","hour":3,"minute":15"#),
    ("0 0 L * *", r#""day":"last","hour":0,"minute":0"#),
    ("*/7 */3 * * *", r#""hour":"*/3","minute":"*/7""#),
];

const RESTART_EVERY: u32 = 1_000;

fn start() -> DateTime<Utc> {
    Berlin
        .with_ymd_and_hms(2026, 3, 27, 0, 0, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Benchmarks one trigger walking forward from `start`, restarting every 1,000 steps.
fn walk(c: &mut Criterion, name: &str, trigger: &AnyTrigger) {
    let origin = start();
    c.bench_function(name, |b| {
        let mut prev = origin;
        let mut steps = 0;
        b.iter(|| {
            if steps == RESTART_EVERY {
                prev = origin;
                steps = 0;
            }
            prev = trigger
                .next_fire_time(Some(black_box(prev)), prev)
                .unwrap_or(origin);
            steps += 1;
            prev
        });
    });
}

fn w4(c: &mut Criterion) {
    for (expr, fields) in SCHEDULES {
        let tab = format!(r#"{{"type":"crontab","expr":"{expr}","timezone":"Europe/Berlin"}}"#);
        let cron = format!(r#"{{"type":"cron",{fields},"timezone":"Europe/Berlin"}}"#);
        match AnyTrigger::from_json(&tab) {
            Ok(t) => walk(c, &format!("w4/crontab/{expr}"), &t),
            Err(e) => eprintln!("skipping crontab {expr}: {e}"),
        }
        match AnyTrigger::from_json(&cron) {
            Ok(t) => walk(c, &format!("w4/cron/{expr}"), &t),
            Err(e) => eprintln!("skipping cron {expr}: {e}"),
        }
        let croner = match expr.parse::<croner::Cron>() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipping croner {expr}: {e}");
                continue;
            }
        };
        let origin = start().with_timezone(&Berlin);
        c.bench_function(&format!("w4/croner/{expr}"), |b| {
            let mut prev = origin;
            let mut steps = 0;
            b.iter(|| {
                if steps == RESTART_EVERY {
                    prev = origin;
                    steps = 0;
                }
                prev = croner
                    .find_next_occurrence(black_box(&prev), false)
                    .unwrap_or(origin);
                steps += 1;
                prev
            });
        });
    }
}

/// The other trigger kinds, built from JSON specs. A kind that does not build (not merged
/// yet) is skipped with a message.
fn other_kinds(c: &mut Criterion) {
    let specs = [
        (
            "interval",
            r#"{"type":"interval","minutes":5,"start_date":"2026-03-27T00:00:00+01:00","timezone":"Europe/Berlin"}"#,
        ),
        (
            "date",
            r#"{"type":"date","run_date":"2026-03-29T02:30:00+01:00","timezone":"Europe/Berlin"}"#,
        ),
        (
            "calendarinterval",
            r#"{"type":"calendarinterval","days":1,"hour":2,"minute":30,"start_date":"2026-03-27","timezone":"Europe/Berlin"}"#,
        ),
        (
            "and",
            r#"{"type":"and","triggers":[{"type":"crontab","expr":"*/5 * * * *","timezone":"Europe/Berlin"},{"type":"cron","hour":"9-17","minute":"*","timezone":"Europe/Berlin"}]}"#,
        ),
        (
            "or",
            r#"{"type":"or","triggers":[{"type":"crontab","expr":"*/5 * * * *","timezone":"Europe/Berlin"},{"type":"crontab","expr":"*/7 */3 * * *","timezone":"Europe/Berlin"}]}"#,
        ),
    ];
    for (name, spec) in specs {
        match AnyTrigger::from_json(spec) {
            Ok(t) => walk(c, &format!("kinds/{name}"), &t),
            Err(e) => eprintln!("skipping {name}: {e}"),
        }
    }
}

criterion_group!(benches, w4, other_kinds);
criterion_main!(benches);
