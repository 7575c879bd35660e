//! The scheduler through the facade: everything a user needs is named `sched::…`, with no
//! sub-crate in sight. Runs on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sched::config::{ExecutorConfig, StoreConfig, StoreTypes};
use sched::event::JobExecutionEvent;
use sched::prelude::*;
use sched::stores::{BoxJobStore, MemoryStore, StoreError};
use sched::trigger::AnyTrigger;
use sched::{
    Coalesce, Config, Event, EventKind, EventMask, Executor, JobContext, JobId, JobSpec, Scheduler,
    SchedulerError, SchedulerState, ShutdownMode, TaskRef, TestClock, closure_task,
};
use serde_json::json;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn executed(events: &Arc<Mutex<Vec<Event>>>) -> Vec<JobExecutionEvent> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Execution(x) if x.kind == EventKind::JobExecuted => Some(x.clone()),
            _ => None,
        })
        .collect()
}

// A registered task on a cron spec (every 5 s), a closure on an interval (every 2 s), for
// 10.5 s of virtual time from 00:00:00 (a fire time equal to now is due now):
//
//   00:00  :02  :04  :05  :06  :08  :10
//    R C    C    C    R    C    C   C R     R = "tick" (cron), C = closure (interval)
#[tokio::test(start_paused = true)]
async fn a_scheduler_runs_spec_triggers_through_the_facade()
-> Result<(), Box<dyn std::error::Error>> {
    let clock = TestClock::new(start());
    let scheduler = Scheduler::builder().clock(clock.clone()).build();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    scheduler.add_listener(EventMask::ALL, move |e: &Event| {
        sink.lock().unwrap().push(e.clone())
    });
    scheduler.register_task("tick", |ctx: JobContext, n: u32| async move {
        Ok::<_, std::convert::Infallible>(json!({"n": n, "at": ctx.scheduled_run_time()}))
    });

    let cron: AnyTrigger = r#"{"type": "cron", "second": "*/5", "timezone": "UTC"}"#.parse()?;
    let interval: AnyTrigger =
        r#"{"type": "interval", "seconds": 2, "start_date": "2026-01-01T00:00:00Z"}"#.parse()?;
    scheduler
        .add_job(JobSpec::new(TaskRef::named("tick", json!(7)), cron).id("cron")?)
        .await?;
    scheduler
        .add_job(
            JobSpec::new(
                closure_task("closure", |_ctx| async { Ok::<_, String>("done") }),
                interval,
            )
            .id("interval")?
            .coalesce(Coalesce::All),
        )
        .await?;
    scheduler.start().await?;
    assert_eq!(scheduler.state(), SchedulerState::Running);
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    scheduler.shutdown(ShutdownMode::Wait).await;

    let runs = executed(&events);
    let cron_times: Vec<_> = runs
        .iter()
        .filter(|e| e.job_id.as_str() == "cron")
        .map(|e| e.scheduled_run_time)
        .collect();
    let secs = |n| start() + chrono::TimeDelta::seconds(n);
    assert_eq!(cron_times, [secs(0), secs(5), secs(10)]);
    let first = runs.iter().find(|e| e.job_id.as_str() == "cron").unwrap();
    assert_eq!(first.return_value.as_ref().unwrap()["n"], 7);
    assert_eq!(
        runs.iter()
            .filter(|e| e.job_id.as_str() == "interval")
            .count(),
        6
    );
    let kinds: Vec<EventKind> = events.lock().unwrap().iter().map(Event::kind).collect();
    assert_eq!(kinds.first(), Some(&EventKind::JobAdded));
    assert_eq!(kinds.last(), Some(&EventKind::SchedulerShutdown));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn configuration_and_stores_through_the_facade() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_toml(
        r#"
        timezone = "Europe/Berlin"
        [executors.pool]
        type = "blocking"
        max_workers = 2
        [job_defaults]
        coalesce = false
        "#,
    )?;
    assert_eq!(
        config.executors["pool"],
        ExecutorConfig::Blocking { max_workers: 2 }
    );
    assert_eq!(config.job_defaults.coalesce, Coalesce::All);
    let scheduler = Scheduler::builder()
        .store_type("scratch", |options| {
            options.allow_only(&[])?;
            Ok(BoxJobStore::new(MemoryStore::new()))
        })
        .configure(
            &config
                .clone()
                .with_store("tmp", StoreConfig::new("scratch")),
        )?
        .build();
    assert_eq!(scheduler.zone().name(), "Europe/Berlin");
    scheduler.add_store("more", MemoryStore::new()).await?;
    scheduler.add_executor("async", Executor::tokio())?;
    let err = scheduler
        .add_store("tmp", MemoryStore::new())
        .await
        .unwrap_err();
    assert!(matches!(err, SchedulerError::StoreExists(_)), "{err}");

    // The flat form and its error.
    let err = Config::from_flat([("sched.job_defaults.max_instances", "zero")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid sched.job_defaults.max_instances "zero": expected a whole number ≥ 1"#
    );
    assert!(StoreTypes::new().contains("memory"));

    // The store contract through the prelude.
    let store = MemoryStore::new();
    assert_eq!(store.next_run_time().await?, None);
    let missing = store.remove_job(&JobId::new("nope")?).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }));
    // The clock trait through the prelude.
    let clock = TestClock::new(start());
    assert_eq!(clock.now(), start());
    Ok(())
}

#[test]
fn metric_names_are_public() {
    assert_eq!(sched::metrics::FIRES, "sched_job_fires_total");
    assert_eq!(sched::metrics::LATENESS, "sched_job_lateness_seconds");
    assert_eq!(EventKind::JobMaxInstances.name(), "EVENT_JOB_MAX_INSTANCES");
    assert_eq!(sched::job::DEFAULT, "default");
}
