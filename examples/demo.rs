//! sched in ten seconds: a real scheduler keeps its jobs in a SQLite file (the embedded
//! persistent default) and runs an interval job (every 2 s), a cron job (every 5 s) and a
//! date job (once, 3 s after start) from it, plus a closure job from a memory store next
//! to it, while a listener prints every event under its APScheduler name; then it shuts
//! down cleanly, waiting for the run still going. About 11 seconds in all.
//!
//! The file (`sched-demo.db` in the temporary directory) is kept: run the demo again and
//! the stored jobs are found there; they are added again with `replace_existing`, which
//! keeps their stored schedule, so the runs missed since the last run are reported as
//! `EVENT_JOB_MISSED` (later than the 1 s misfire grace time), as after any downtime.
//!
//! ```sh
//! cargo run --example demo
//! ```

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, TimeDelta, Utc};
use sched::stores::sqlite::SqliteStore;
use sched::stores::{JobStore, MemoryStore};
use sched::trigger::AnyTrigger;
use sched::{
    Event, EventMask, JobContext, JobSpec, Scheduler, ShutdownMode, TaskRef, closure_task,
};
use serde::Deserialize;
use serde_json::json;

/// The arguments of the registered task: JSON in the job, so the job can be persisted.
#[derive(Deserialize)]
struct Report {
    what: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();

    // Where jobs are kept: a SQLite file that outlives the program, and a memory store for
    // the closure job (a closure cannot be persisted).
    let path = std::env::temp_dir().join("sched-demo.db");
    let store = SqliteStore::open(&path).await?;
    let found = store.all_jobs().await?.len();
    println!("{} job(s) found in {}", found, path.display());
    let scheduler = Scheduler::builder()
        .store("default", store)
        .store("memory", MemoryStore::new())
        .build();

    scheduler.add_listener(EventMask::ALL, move |event: &Event| {
        println!(
            "{:6.2}s  {:<26} {}",
            t0.elapsed().as_secs_f64(),
            event.kind().name(),
            describe(event)
        );
    });

    // A registered task: jobs name it and carry JSON arguments (persistable).
    scheduler.register_task("report", |ctx: JobContext, args: Report| async move {
        Ok::<_, std::convert::Infallible>(format!(
            "{} report for {}",
            args.what,
            ctx.scheduled_run_time().format("%H:%M:%S")
        ))
    });

    let spec = |v: serde_json::Value| AnyTrigger::from_value(&v);
    let in_3s = (Utc::now() + TimeDelta::seconds(3)).to_rfc3339_opts(SecondsFormat::Millis, true);

    scheduler
        .add_job(
            JobSpec::new(
                TaskRef::named("report", json!({"what": "interval"})),
                spec(json!({"type": "interval", "seconds": 2}))?,
            )
            .id("every-2s")?
            .replace_existing(true)
            .name("interval report, every 2 s"),
        )
        .await?;
    scheduler
        .add_job(
            JobSpec::new(
                TaskRef::named("report", json!({"what": "cron"})),
                spec(json!({"type": "cron", "second": "*/5", "timezone": "UTC"}))?,
            )
            .id("cron-5s")?
            .replace_existing(true)
            .name("cron report, every 5 s"),
        )
        .await?;
    scheduler
        .add_job(
            JobSpec::new(
                TaskRef::named("report", json!({"what": "one-off"})),
                spec(json!({"type": "date", "run_date": in_3s}))?,
            )
            .id("once-in-3s")?
            .replace_existing(true)
            .name("one-off report"),
        )
        .await?;
    // A closure job, in the memory store: every 3 s, busy for 1.5 s.
    scheduler
        .add_job(
            JobSpec::new(
                closure_task("slow", |ctx: JobContext| async move {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    Ok::<_, String>(format!("slow work of {} done", ctx.job_id()))
                }),
                spec(json!({"type": "interval", "seconds": 3}))?,
            )
            .id("closure-3s")?
            .name("slow closure, every 3 s")
            .store("memory"),
        )
        .await?;

    scheduler.start().await?;
    println!("\n{}", scheduler.job_table().await?);

    tokio::time::sleep(Duration::from_secs(10)).await;

    println!(
        "\nshutting down, waiting for {} running job(s)",
        scheduler.running_jobs()
    );
    scheduler.shutdown(ShutdownMode::Wait).await;
    println!("done in {:.1}s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// One line about an event.
fn describe(event: &Event) -> String {
    match event {
        Event::Scheduler(e) => e.alias.clone().unwrap_or_default(),
        Event::Job(e) => format!("job {} (store {})", e.job_id, e.store),
        Event::Submission(e) => format!("job {} ({} run)", e.job_id, e.scheduled_run_times.len()),
        Event::Execution(e) => {
            let outcome = match (&e.return_value, &e.failure) {
                (_, Some(f)) => format!("failed: {f}"),
                (Some(v), None) => format!("returned {v}"),
                (None, None) => String::new(),
            };
            format!(
                "job {} scheduled {} {outcome}",
                e.job_id,
                e.scheduled_run_time.format("%H:%M:%S%.3f")
            )
        }
        Event::Store(e) => format!("store {}: {} (retry in {:?})", e.store, e.error, e.retry_in),
        Event::Quarantined(e) => format!("job {} (store {}): {}", e.job_id, e.store, e.reason),
        _ => String::new(),
    }
}
