//! What sched's triggers do: the next fire times of five typical schedules.
//!
//! Each trigger is built from its JSON spec (the form stored with every job) and asked for
//! its next three fire times after the current time, by the same rule the scheduler uses:
//! the first from (no previous fire, now), each later one from the time just returned.
//! Times are printed in the trigger's own zone.
//!
//! ```sh
//! cargo run --example preview
//! ```
//!
//! `cargo run --example demo` runs a scheduler with jobs on such triggers.

use std::process::ExitCode;

use chrono::{Days, Utc};
use sched::prelude::*;
use sched::trigger::AnyTrigger;
use serde_json::json;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), sched::TriggerError> {
    let now = Utc::now();
    let today = now.date_naive();
    // A calendarinterval fires on its start date even when that is past, so start tomorrow.
    let tomorrow = today.checked_add_days(Days::new(1)).unwrap_or(today);
    let demos = [
        (
            "cron: weekdays at 09:00 in Berlin",
            json!({"type": "cron", "day_of_week": "mon-fri", "hour": 9,
                   "timezone": "Europe/Berlin"}),
        ),
        (
            "crontab: every 15 minutes, 09:00-17:45 on weekdays, Berlin",
            json!({"type": "crontab", "expr": "*/15 9-17 * * mon-fri",
                   "timezone": "Europe/Berlin"}),
        ),
        (
            "calendarinterval: monthly at 08:30 in New York, from tomorrow",
            json!({"type": "calendarinterval", "months": 1, "hour": 8, "minute": 30,
                   "start_date": tomorrow.to_string(), "timezone": "America/New_York"}),
        ),
        (
            "interval: every 90 minutes from midnight UTC",
            json!({"type": "interval", "minutes": 90,
                   "start_date": format!("{today}T00:00:00Z")}),
        ),
        (
            "or: 18:00 on Fridays in Tokyo, or noon on the last day of the month in London",
            json!({"type": "or", "triggers": [
                {"type": "cron", "day_of_week": "fri", "hour": 18, "timezone": "Asia/Tokyo"},
                {"type": "cron", "day": "last", "hour": 12, "timezone": "Europe/London"}
            ]}),
        ),
    ];

    println!("now: {}\n", now.to_rfc3339());
    for (label, spec) in demos {
        let trigger = AnyTrigger::from_value(&spec)?;
        println!("{label}\n  spec: {trigger}");
        let mut previous = None;
        let mut at = now;
        for _ in 0..3 {
            let Some(t) = trigger.next_fire_time(previous, at) else {
                println!("  (no more fire times)");
                break;
            };
            println!("  {}", trigger.zone().format(t));
            previous = Some(t);
            at = t;
        }
        println!();
    }
    Ok(())
}
