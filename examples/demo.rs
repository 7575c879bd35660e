//! sched in ten seconds: a real scheduler runs an interval job (every 2 s), a cron job
//! (every 5 s), a date job (once, 3 s after start) and a closure job, while a listener
//! prints every event under its APScheduler name; then it shuts down cleanly, waiting for
//! the run still going. About 11 seconds in all.
//!
//! ```sh
//! cargo run --example demo
//! ```

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, TimeDelta, Utc};
use sched::stores::MemoryStore;
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

    // Where jobs are kept. The memory store forgets them when the program ends; for jobs
    // that survive a restart, put the SQLite store (the embedded persistent default) here:
    let store = MemoryStore::new();
    let scheduler = Scheduler::builder().store("default", store).build();

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
            .name("one-off report"),
        )
        .await?;
    // A closure job (memory stores only): every 3 s, busy for 1.5 s.
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
            .name("slow closure, every 3 s"),
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
        _ => String::new(),
    }
}
