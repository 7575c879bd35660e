//! Execution semantics on tokio's paused clock. Each test draws its expected timeline:
//! `*` a scheduled time, `R` a run, `M` a missed event, `X` a max-instances refusal,
//! `|` a pause or a resume, `now` where the test looks.

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sched_core::event::{EventKind, FailureKind};
use sched_core::job::{Coalesce, JobChanges, JobSpec};
use sched_runtime::{JobContext, SchedulerError, SchedulerState, ShutdownMode, closure_task};
use sched_stores::JobStore;
use support::*;

const NO_BUSY: Duration = Duration::ZERO;

// 00:00 start; every minute from 00:01 through 01:00:
//
//   00:00  00:01  00:02  ...  00:59  01:00  01:00:30
//     |      R      R    ...    R      R     now  -> 60 runs, each at its minute
#[tokio::test(start_paused = true)]
async fn every_minute_for_an_hour_runs_sixty_times_on_time() {
    let real = std::time::Instant::now();
    let (s, clock, rec) = scheduler();
    let runs = every_minute(&s, &clock, NO_BUSY).await;
    s.start().await.unwrap();
    until(&clock, at(1, 0, 30)).await;

    let expected: Vec<_> = (1..=60).map(|m| at(0, m, 0)).collect();
    assert_eq!(runs.scheduled(), expected);
    assert_eq!(
        runs.started(),
        expected,
        "each run starts exactly at its time"
    );
    assert_eq!(rec.count(EventKind::JobExecuted), 60);
    assert_eq!(rec.count(EventKind::JobMissed), 0);
    s.shutdown(ShutdownMode::Wait).await;
    assert!(
        real.elapsed() < Duration::from_secs(2),
        "took {:?}",
        real.elapsed()
    );
}

// Scheduler paused before the first run; resumed at 00:05:30. Grace 1 s, Latest.
//
//   00:01  00:02  00:03  00:04  00:05  00:05:30  00:06
//     *      *      *      *      *   |  M(00:05)   R
#[tokio::test(start_paused = true)]
async fn late_beyond_grace_is_missed_not_run() {
    let (s, clock, rec) = scheduler();
    let runs = every_minute(&s, &clock, NO_BUSY).await;
    s.start_paused().await.unwrap();
    until(&clock, at(0, 5, 30)).await;
    s.resume().unwrap();
    until(&clock, at(0, 6, 10)).await;
    assert_eq!(rec.times(EventKind::JobMissed), [at(0, 5, 0)]);
    assert_eq!(runs.scheduled(), [at(0, 6, 0)]);
}

// The same with misfire_grace_time None: the late run still runs (once, coalesced).
//
//   00:01 ... 00:05  00:05:30  00:06
//     *   ...   *   |  R(00:05)   R
#[tokio::test(start_paused = true)]
async fn no_grace_runs_however_late() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    s.add_job(
        JobSpec::new(runs.task(&clock, NO_BUSY), Every::minute_from(at(0, 1, 0)))
            .misfire_grace_time(None),
    )
    .await
    .unwrap();
    s.start_paused().await.unwrap();
    until(&clock, at(0, 5, 30)).await;
    s.resume().unwrap();
    until(&clock, at(0, 6, 10)).await;
    assert_eq!(rec.count(EventKind::JobMissed), 0);
    assert_eq!(runs.scheduled(), [at(0, 5, 0), at(0, 6, 0)]);
    assert_eq!(runs.started()[0], at(0, 5, 30), "ran late, at resume");
}

/// Runs of an every-minute job stalled from 00:00 to 00:03:30, grace 90 s.
async fn after_stall(coalesce: Coalesce) -> (Vec<chrono::DateTime<chrono::Utc>>, Recorder) {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    s.add_job(
        JobSpec::new(runs.task(&clock, NO_BUSY), Every::minute_from(at(0, 1, 0)))
            .misfire_grace_time(Some(Duration::from_secs(90)))
            .coalesce(coalesce),
    )
    .await
    .unwrap();
    s.start_paused().await.unwrap();
    until(&clock, at(0, 3, 30)).await;
    s.resume().unwrap();
    until(&clock, at(0, 3, 40)).await;
    s.shutdown(ShutdownMode::Wait).await;
    (runs.scheduled(), rec)
}

//            00:01  00:02  00:03  00:03:30
//              *      *      *    | now
//  Latest:                   R
#[tokio::test(start_paused = true)]
async fn coalesce_latest_runs_the_most_recent_time_once() {
    let (runs, rec) = after_stall(Coalesce::Latest).await;
    assert_eq!(runs, [at(0, 3, 0)]);
    assert_eq!(rec.count(EventKind::JobMissed), 0);
}

//            00:01  00:02  00:03  00:03:30
//              *      *      *    | now
//  Earliest:          R                    (00:01 is 150 s late, beyond the 90 s grace)
#[tokio::test(start_paused = true)]
async fn coalesce_earliest_runs_the_earliest_time_within_grace_once() {
    let (runs, rec) = after_stall(Coalesce::Earliest).await;
    assert_eq!(runs, [at(0, 2, 0)]);
    assert_eq!(rec.count(EventKind::JobMissed), 0);
}

//            00:01  00:02  00:03  00:03:30
//              *      *      *    | now
//  All:        M      R      R
#[tokio::test(start_paused = true)]
async fn coalesce_all_runs_every_time_within_grace_and_reports_the_rest() {
    let (runs, rec) = after_stall(Coalesce::All).await;
    assert_eq!(runs, [at(0, 2, 0), at(0, 3, 0)]);
    assert_eq!(rec.times(EventKind::JobMissed), [at(0, 1, 0)]);
    // One submission, run one after the other under one max_instances permit.
    assert_eq!(
        rec.submissions(EventKind::JobSubmitted),
        [vec![at(0, 2, 0), at(0, 3, 0)]]
    );
}

// Every second, coalesce All, no grace, stalled for an hour, backlog cap 5:
//
//   00:00:01 ... 00:00:05  00:00:06 ... 01:00:00  01:00:00.5  01:00:01
//      R     ...    R         (skipped)            | resume       R
#[tokio::test(start_paused = true)]
async fn backlog_is_capped_and_the_rest_skipped() {
    let (s, clock, _rec) = scheduler_with(|b| b.max_backlog(5));
    let runs = Runs::default();
    s.add_job(
        JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::seconds_from(at(0, 0, 1), 1),
        )
        .coalesce(Coalesce::All)
        .misfire_grace_time(None)
        .max_instances(10),
    )
    .await
    .unwrap();
    s.start_paused().await.unwrap();
    until(&clock, at(1, 0, 0) + TimeDelta::milliseconds(500)).await;
    s.resume().unwrap();
    until(&clock, at(1, 0, 1) + TimeDelta::milliseconds(100)).await;
    let expected: Vec<_> = (1..=5).map(|k| at(0, 0, k)).chain([at(1, 0, 1)]).collect();
    assert_eq!(runs.scheduled(), expected);
}

// Every minute, each run busy 150 s, max_instances 1:
//
//   00:01  00:02  00:03  00:03:30  00:04  00:05
//     R------------------- done      R      X
//            X      X
#[tokio::test(start_paused = true)]
async fn max_instances_refuses_and_the_schedule_advances() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    let job = s
        .add_job(JobSpec::new(
            runs.task(&clock, Duration::from_secs(150)),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 5, 10)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 4, 0)]);
    assert_eq!(
        rec.submissions(EventKind::JobMaxInstances),
        [vec![at(0, 2, 0)], vec![at(0, 3, 0)], vec![at(0, 5, 0)]]
    );
    let stored = s.get_job(&job).await.unwrap().unwrap();
    assert_eq!(stored.next_run_time, Some(at(0, 6, 0)));
    // The permit of the finished run was released: the 00:01 run ended with an event.
    assert_eq!(rec.times(EventKind::JobExecuted), [at(0, 1, 0)]);
}

// pause_job at 00:01:30, resume_job at 00:04:30:
//
//   00:01  00:02  00:03  00:04  00:05
//     R   |                   |   R
#[tokio::test(start_paused = true)]
async fn pause_and_resume_a_job() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    let job = s
        .add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 1, 30)).await;
    let paused = s.pause_job(&job).await.unwrap();
    assert!(paused.is_paused());
    until(&clock, at(0, 4, 30)).await;
    let resumed = s.resume_job(&job).await.unwrap().unwrap();
    assert_eq!(resumed.next_run_time, Some(at(0, 5, 0)));
    until(&clock, at(0, 5, 10)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 5, 0)]);
    assert_eq!(rec.count(EventKind::JobModified), 2);
    assert_eq!(rec.count(EventKind::JobMissed), 0);
}

// pause() at 00:00:30, resume() at 00:02:30 (grace 1 s: the 00:02 run is missed):
//
//   00:01  00:02  00:03
//   |  *      *  |   R
//         M(00:02)
#[tokio::test(start_paused = true)]
async fn pause_and_resume_the_scheduler() {
    let (s, clock, rec) = scheduler();
    let runs = every_minute(&s, &clock, NO_BUSY).await;
    s.start().await.unwrap();
    until(&clock, at(0, 0, 30)).await;
    s.pause().unwrap();
    assert_eq!(s.state(), SchedulerState::Paused);
    assert!(matches!(s.pause(), Err(SchedulerError::NotRunning)));
    until(&clock, at(0, 2, 30)).await;
    s.resume().unwrap();
    until(&clock, at(0, 3, 10)).await;
    assert_eq!(runs.scheduled(), [at(0, 3, 0)]);
    assert_eq!(rec.times(EventKind::JobMissed), [at(0, 2, 0)]);
    assert_eq!(rec.count(EventKind::SchedulerPaused), 1);
    assert_eq!(rec.count(EventKind::SchedulerResumed), 1);
}

// Removed at 00:00:59.999, while the dispatcher sleeps until 00:01:
//
//   00:00:59.999  00:01  00:02
//        remove     -      -
#[tokio::test(start_paused = true)]
async fn removed_while_due_does_not_run() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    let job = s
        .add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 1, 0) - TimeDelta::milliseconds(1)).await;
    s.remove_job(&job).await.unwrap();
    until(&clock, at(0, 2, 10)).await;
    assert_eq!(runs.len(), 0);
    assert_eq!(rec.count(EventKind::JobRemoved), 1);
    assert!(s.get_job(&job).await.unwrap().is_none());
    assert!(matches!(
        s.remove_job(&job).await,
        Err(SchedulerError::JobNotFound { .. })
    ));
}

// Added at 00:00 before start (pending, no next run time); started at 00:10:
//
//   00:00   00:10   00:11
//   add    start      R     (the first run time is computed at start)
#[tokio::test(start_paused = true)]
async fn jobs_added_before_start_wait_as_pending() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    let job = s
        .add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    let pending = s.get_job(&job).await.unwrap().unwrap();
    assert!(pending.next_run_time.is_none());
    assert!(
        s.job_table()
            .await
            .unwrap()
            .contains("Pending jobs:\n    record")
    );
    assert_eq!(rec.count(EventKind::JobAdded), 0);
    until(&clock, at(0, 10, 0)).await;
    s.start().await.unwrap();
    assert_eq!(rec.count(EventKind::JobAdded), 1);
    let stored = s.get_job(&job).await.unwrap().unwrap();
    assert_eq!(stored.next_run_time, Some(at(0, 10, 0)));
    until(&clock, at(0, 11, 10)).await;
    assert_eq!(runs.scheduled(), [at(0, 10, 0), at(0, 11, 0)]);
    assert_eq!(rec.count(EventKind::JobMissed), 0);
}

#[tokio::test(start_paused = true)]
async fn replace_existing_replaces_and_a_taken_id_is_refused() {
    let (s, clock, _rec) = scheduler();
    s.start().await.unwrap();
    let runs = Runs::default();
    let spec = JobSpec::new(runs.task(&clock, NO_BUSY), Every::minute_from(at(0, 1, 0)))
        .id("same")
        .unwrap();
    s.add_job(spec.clone().name("first")).await.unwrap();
    let err = s.add_job(spec.clone().name("second")).await.unwrap_err();
    assert!(matches!(err, SchedulerError::JobExists { .. }), "{err}");
    s.add_job(spec.name("third").replace_existing(true))
        .await
        .unwrap();
    let job = s.get_job(&id("same")).await.unwrap().unwrap();
    assert_eq!(&*job.name, "third");
    assert_eq!(s.get_jobs().await.unwrap().len(), 1);
}

// run_job_now at 00:00:20: one extra run, the 00:01 schedule unchanged.
//
//   00:00:20  00:01
//      R        R
#[tokio::test(start_paused = true)]
async fn run_job_now_leaves_the_schedule_unchanged() {
    let (s, clock, _rec) = scheduler();
    let runs = Runs::default();
    let job = s
        .add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    assert!(matches!(
        s.run_job_now(&job).await,
        Err(SchedulerError::NotRunning)
    ));
    s.start().await.unwrap();
    until(&clock, at(0, 0, 20)).await;
    s.run_job_now(&job).await.unwrap();
    let stored = s.get_job(&job).await.unwrap().unwrap();
    assert_eq!(stored.next_run_time, Some(at(0, 1, 0)));
    until(&clock, at(0, 1, 10)).await;
    assert_eq!(runs.scheduled(), [at(0, 0, 20), at(0, 1, 0)]);
}

// A job that fails on odd minutes and panics on even ones; both reported, the schedule
// and another job go on.
//
//   00:01  00:02  00:03  00:04
//    err   panic   err   panic     (job "bad")
//     R      R      R      R       (job "good")
#[tokio::test(start_paused = true)]
async fn failing_and_panicking_jobs_are_reported_and_the_scheduler_goes_on() {
    let (s, clock, rec) = scheduler();
    let bad = closure_task("bad", |ctx: JobContext| async move {
        use chrono::Timelike;
        if ctx.scheduled_run_time().minute().is_multiple_of(2) {
            panic!("boom at {}", ctx.scheduled_run_time());
        }
        Err::<(), _>("it failed")
    });
    s.add_job(
        JobSpec::new(bad, Every::minute_from(at(0, 1, 0)))
            .id("bad")
            .unwrap(),
    )
    .await
    .unwrap();
    let runs = every_minute(&s, &clock, NO_BUSY).await;
    s.start().await.unwrap();
    until(&clock, at(0, 4, 10)).await;
    let errors = rec.executions(EventKind::JobError);
    assert_eq!(errors.len(), 4);
    let kinds: Vec<_> = errors
        .iter()
        .map(|e| e.failure.clone().unwrap().kind)
        .collect();
    assert_eq!(
        kinds,
        [
            FailureKind::Error,
            FailureKind::Panic,
            FailureKind::Error,
            FailureKind::Panic
        ]
    );
    assert_eq!(errors[0].failure.as_ref().unwrap().message, "it failed");
    assert!(
        errors[1]
            .failure
            .as_ref()
            .unwrap()
            .message
            .contains("boom at"),
        "{:?}",
        errors[1]
    );
    assert_eq!(runs.len(), 4);
    assert_eq!(s.state(), SchedulerState::Running);
}

// The store fails its next 5 calls from 00:00:30 on; the dispatcher reports each, backs
// off (100 ms, 200 ms, ... 3.1 s in all) and runs the 00:01 job once the store answers
// again (grace 30 s, so the late run is not missed).
//
//   00:00:30   00:01        00:01:03.1   00:02
//   outage    (failing)    recovered: R    R
#[tokio::test(start_paused = true)]
async fn a_failing_store_is_retried_and_the_loop_survives() {
    use std::sync::atomic::Ordering::SeqCst;
    let store = FlakyStore::default();
    let handle = store.clone();
    let (s, clock, rec) = scheduler_with(move |b| b.store("default", store));
    let runs = Runs::default();
    let job = s
        .add_job(
            JobSpec::new(runs.task(&clock, NO_BUSY), Every::minute_from(at(0, 1, 0)))
                .misfire_grace_time(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 0, 30)).await;
    handle.failures.store(5, SeqCst);
    until(&clock, at(0, 2, 10)).await;
    assert_eq!(handle.calls_failed.load(SeqCst), 5);
    assert_eq!(rec.count(EventKind::StoreError), 5);
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 2, 0)]);
    let late = runs.started()[0] - at(0, 1, 0);
    assert_eq!(late, TimeDelta::milliseconds(3100), "retried with backoff");
    assert_eq!(
        s.get_job(&job).await.unwrap().unwrap().next_run_time,
        Some(at(0, 3, 0))
    );
}

// Wall clock jumps forward one hour at 00:00:30 (tokio time does not move). The dispatcher
// notices at its next wake-up (it never sleeps past a minute); the jumped-over runs are
// coalesced (Latest) into the one due at 01:01.
//
//   wall: 00:00:30 ==jump==> 01:00:30   01:01   01:02
//                                         R       R
#[tokio::test(start_paused = true)]
async fn wall_clock_jump_forward_applies_the_misfire_policy() {
    let (s, clock, rec) = scheduler();
    let runs = every_minute(&s, &clock, NO_BUSY).await;
    s.start().await.unwrap();
    until(&clock, at(0, 0, 30)).await;
    clock.jump(TimeDelta::hours(1));
    until(&clock, at(1, 2, 10)).await;
    assert_eq!(runs.scheduled(), [at(1, 1, 0), at(1, 2, 0)]);
    assert_eq!(rec.count(EventKind::JobMissed), 0);
}

// Wall clock jumps back one hour after the 00:01 run. The stored next run time (00:02)
// stays, so the 00:01 run is not repeated when the wall clock passes 00:01 again.
//
//   wall: 00:01 R  00:01:30 ==back==> 23:01:30 ... 00:01 (again)  00:02
//                                                    -              R
#[tokio::test(start_paused = true)]
async fn wall_clock_jump_back_does_not_run_twice() {
    let (s, clock, _rec) = scheduler();
    let runs = every_minute(&s, &clock, NO_BUSY).await;
    s.start().await.unwrap();
    until(&clock, at(0, 1, 30)).await;
    clock.jump(TimeDelta::hours(-1));
    until(&clock, at(0, 1, 50)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0)]);
    until(&clock, at(0, 2, 10)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 2, 0)]);
}

// A run busy for 10 s from 00:01; shutdown(Wait) at 00:01:02 returns at 00:01:10 after it.
#[tokio::test(start_paused = true)]
async fn shutdown_wait_waits_for_running_jobs() {
    let (s, clock, rec) = scheduler();
    every_minute(&s, &clock, Duration::from_secs(10)).await;
    s.start().await.unwrap();
    until(&clock, at(0, 1, 2)).await;
    assert_eq!(s.running_jobs(), 1);
    s.shutdown(ShutdownMode::Wait).await;
    use sched_runtime::Clock;
    assert_eq!(clock.now(), at(0, 1, 10));
    assert_eq!(rec.times(EventKind::JobExecuted), [at(0, 1, 0)]);
    assert_eq!(rec.kinds().last(), Some(&EventKind::SchedulerShutdown));
    assert!(matches!(s.start().await, Err(SchedulerError::ShutDown)));
}

// The same run, shutdown(Cancel) at 00:01:02: the run is cancelled there and reported.
#[tokio::test(start_paused = true)]
async fn shutdown_cancel_cancels_running_jobs() {
    let (s, clock, rec) = scheduler();
    every_minute(&s, &clock, Duration::from_secs(10)).await;
    s.start().await.unwrap();
    until(&clock, at(0, 1, 2)).await;
    s.shutdown(ShutdownMode::Cancel).await;
    use sched_runtime::Clock;
    assert_eq!(clock.now(), at(0, 1, 2));
    let errors = rec.executions(EventKind::JobError);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].failure.as_ref().unwrap().kind,
        FailureKind::Cancelled
    );
    assert_eq!(s.running_jobs(), 0);
}

// A run with a 5 s timeout that would take 10 s: cancelled at 00:01:05, its token fired.
#[tokio::test(start_paused = true)]
async fn a_run_past_its_timeout_is_cancelled_and_reported() {
    let (s, _clock, rec) = scheduler();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen2 = seen.clone();
    let task = closure_task("slow", move |ctx: JobContext| {
        *seen2.lock().unwrap() = Some(ctx.cancellation_token().clone());
        async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, String>(())
        }
    });
    s.add_job(JobSpec::new(task, once(at(0, 1, 0))).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    s.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(90)).await;
    let errors = rec.executions(EventKind::JobError);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].failure.as_ref().unwrap().kind,
        FailureKind::Timeout
    );
    assert_eq!(errors[0].duration, Some(Duration::from_secs(5)));
    assert!(seen.lock().unwrap().as_ref().unwrap().is_cancelled());
    // A finished one-shot trigger removes the job.
    assert_eq!(rec.count(EventKind::JobRemoved), 1);
    assert!(s.get_jobs().await.unwrap().is_empty());
}

// A registered task gets its JSON arguments; its return value is in the executed event;
// a job whose arguments do not deserialize is quarantined (kept, reported once, not run).
#[tokio::test(start_paused = true)]
async fn registered_tasks_get_arguments_and_report_return_values() {
    #[derive(serde::Deserialize)]
    struct Add {
        a: i64,
        b: i64,
    }
    let (s, _clock, rec) = scheduler();
    s.register_task("add", |_ctx: JobContext, args: Add| async move {
        Ok::<_, String>(args.a + args.b)
    });
    let task = |args| sched_core::TaskRef::named("add", args);
    let missing = s
        .add_job(JobSpec::new(task(serde_json::json!(null)), once(at(0, 1, 0))).store("nope"))
        .await;
    assert!(matches!(missing, Err(SchedulerError::UnknownStore(_))));
    let unknown = s
        .add_job(JobSpec::new(
            sched_core::TaskRef::named("nope", serde_json::Value::Null),
            once(at(0, 1, 0)),
        ))
        .await;
    assert!(matches!(unknown, Err(SchedulerError::UnknownTask(_))));
    s.add_job(JobSpec::new(
        task(serde_json::json!({"a": 2, "b": 3})),
        once(at(0, 1, 0)),
    ))
    .await
    .unwrap();
    s.add_job(JobSpec::new(
        task(serde_json::json!({"a": "x"})),
        once(at(0, 1, 0)),
    ))
    .await
    .unwrap();
    s.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(70)).await;
    let done = rec.executions(EventKind::JobExecuted);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].return_value, Some(serde_json::json!(5)));
    assert_eq!(rec.count(EventKind::JobError), 0);
    assert_eq!(rec.count(EventKind::JobQuarantined), 1);
    assert_eq!(
        s.get_jobs().await.unwrap().len(),
        0,
        "quarantined jobs are not listed"
    );
}

// modify_job changes the options the next runs use; reschedule_job moves the schedule.
//
//   00:01  00:02 (reschedule: every 5 min from 00:05)  00:05  00:10
//     R                                                 R      R
#[tokio::test(start_paused = true)]
async fn modify_and_reschedule() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    let job = s
        .add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 1, 30)).await;
    let modified = s
        .modify_job(&job, JobChanges::new().name("renamed").max_instances(3))
        .await
        .unwrap();
    assert_eq!((&*modified.name, modified.max_instances), ("renamed", 3));
    let moved = s
        .reschedule_job(&job, Every::seconds_from(at(0, 5, 0), 300))
        .await
        .unwrap();
    assert_eq!(moved.next_run_time, Some(at(0, 5, 0)));
    until(&clock, at(0, 10, 10)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 5, 0), at(0, 10, 0)]);
    assert_eq!(rec.count(EventKind::JobModified), 2);
    assert!(matches!(
        s.modify_job(&id("nope"), JobChanges::new()).await,
        Err(SchedulerError::JobNotFound { .. })
    ));
    assert!(matches!(
        s.modify_job(&job, JobChanges::new().executor("nope")).await,
        Err(SchedulerError::UnknownExecutor(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn remove_all_jobs_and_the_event_stream() {
    let (s, clock, _rec) = scheduler();
    let mut stream = s.subscribe(EventKind::JobAdded | EventKind::AllJobsRemoved);
    s.start().await.unwrap();
    let runs = Runs::default();
    for _ in 0..3 {
        s.add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    }
    s.remove_all_jobs(None).await.unwrap();
    assert!(s.get_jobs().await.unwrap().is_empty());
    let mut kinds = Vec::new();
    for _ in 0..4 {
        kinds.push(stream.next().await.unwrap().unwrap().kind());
    }
    assert_eq!(
        kinds,
        [
            EventKind::JobAdded,
            EventKind::JobAdded,
            EventKind::JobAdded,
            EventKind::AllJobsRemoved
        ]
    );
    until(&clock, at(0, 2, 0)).await;
    assert_eq!(runs.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_lagging_subscriber_is_told_how_many_events_it_lost() {
    let (s, clock, _rec) = scheduler_with(|b| b.event_capacity(2));
    let mut stream = s.subscribe(sched_core::EventMask::ALL);
    s.start().await.unwrap();
    let runs = Runs::default();
    for _ in 0..5 {
        s.add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    }
    // store added + executor added + started + 5 jobs added = 8 events into a buffer of 2:
    // the first 6 are lost.
    assert_eq!(stream.next().await.unwrap(), Err(sched_runtime::Lagged(6)));
    assert_eq!(
        stream.next().await.unwrap().unwrap().kind(),
        EventKind::JobAdded
    );
}

// A task failing its first two attempts, retried after 1 s then 2 s, succeeds on the third:
//
//   00:01  00:01:01  00:01:03
//   fail    fail       ok       (attempts 1, 2, 3 of the 00:01 run)
#[tokio::test(start_paused = true)]
async fn a_failed_run_is_retried_with_backoff() {
    let (s, clock, rec) = scheduler();
    let attempts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = attempts.clone();
    let clock2 = clock.clone();
    let task = closure_task("flaky", move |ctx: JobContext| {
        use sched_runtime::Clock;
        seen.lock().unwrap().push((ctx.attempt(), clock2.now()));
        async move {
            if ctx.attempt() < 3 {
                Err(format!("attempt {} failed", ctx.attempt()))
            } else {
                Ok(ctx.attempt())
            }
        }
    });
    s.add_job(JobSpec::new(task, once(at(0, 1, 0))).retry(sched_core::RetryPolicy::new(5)))
        .await
        .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 2, 0)).await;
    assert_eq!(
        *attempts.lock().unwrap(),
        [(1, at(0, 1, 0)), (2, at(0, 1, 1)), (3, at(0, 1, 3))]
    );
    let errors = rec.executions(EventKind::JobError);
    assert_eq!(errors.iter().map(|e| e.attempt).collect::<Vec<_>>(), [1, 2]);
    let done = rec.executions(EventKind::JobExecuted);
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].attempt, done[0].scheduled_run_time),
        (3, at(0, 1, 0))
    );
    assert_eq!(done[0].return_value, Some(serde_json::json!(3)));
}

// Jitter 10 s: each run of an every-minute job starts within [minute, minute + 10 s), and
// the schedule itself does not drift.
#[tokio::test(start_paused = true)]
async fn jitter_delays_starts_within_bounds_without_drift() {
    let (s, clock, _rec) = scheduler();
    let runs = Runs::default();
    s.add_job(
        JobSpec::new(runs.task(&clock, NO_BUSY), Every::minute_from(at(0, 1, 0)))
            .jitter(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 30, 30)).await;
    let expected: Vec<_> = (1..=30).map(|m| at(0, m, 0)).collect();
    assert_eq!(runs.scheduled(), expected);
    for (scheduled, started) in runs.0.lock().unwrap().iter() {
        let delay = *started - *scheduled;
        assert!(
            delay >= TimeDelta::zero() && delay < TimeDelta::seconds(10),
            "{scheduled}: started {delay} late"
        );
    }
    let delays: std::collections::HashSet<_> = runs
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(a, b)| *b - *a)
        .collect();
    assert!(delays.len() > 1, "the delays are random");
}

// Options changed on a pending job are kept; pausing a pending job keeps it paused at start.
#[tokio::test(start_paused = true)]
async fn pending_jobs_can_be_modified_and_paused_before_start() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    let a = s
        .add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    let b = s
        .add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    s.modify_job(&a, JobChanges::new().name("a")).await.unwrap();
    s.pause_job(&b).await.unwrap();
    s.start().await.unwrap();
    assert_eq!(
        s.get_job(&a).await.unwrap().unwrap().next_run_time,
        Some(at(0, 1, 0))
    );
    assert!(s.get_job(&b).await.unwrap().unwrap().is_paused());
    assert_eq!(rec.count(EventKind::JobstoreAdded), 1);
    assert_eq!(rec.count(EventKind::ExecutorAdded), 1);
    let table = s.job_table().await.unwrap();
    assert!(
        table.contains("Jobstore default:\n    a (trigger: "),
        "{table}"
    );
    assert!(
        table.contains("next run at: 2026-01-01T00:01:00+00:00)"),
        "{table}"
    );
    assert!(table.contains(", paused)"), "{table}");
}

// run() returns once another task has shut the scheduler down (and its runs finished).
#[tokio::test(start_paused = true)]
async fn run_returns_after_shutdown_from_another_handle() {
    let (s, clock, rec) = scheduler();
    every_minute(&s, &clock, Duration::from_secs(5)).await;
    let handle = s.clone();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(62)).await;
        handle.shutdown(ShutdownMode::Wait).await;
    });
    s.run().await.unwrap();
    use sched_runtime::Clock;
    assert_eq!(
        clock.now(),
        at(0, 1, 5),
        "returned when the running job had finished"
    );
    assert_eq!(rec.times(EventKind::JobExecuted), [at(0, 1, 0)]);
    stopper.await.unwrap();
}

/// A trigger that panics after its first fire time.
#[derive(Debug)]
struct PanicsLater;

impl sched_core::Trigger for PanicsLater {
    fn next_fire_time(
        &self,
        previous: Option<chrono::DateTime<chrono::Utc>>,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        match previous {
            None => Some(at(0, 1, 0)),
            Some(_) => panic!("trigger bug"),
        }
    }
    fn zone(&self) -> sched_core::Zone {
        sched_core::Zone::UTC
    }
}

// A trigger that panics pauses its job and is reported; other jobs go on.
//
//   00:01                       00:02
//   trigger panics: job paused    R (other job)
#[tokio::test(start_paused = true)]
async fn a_panicking_trigger_pauses_its_job_and_the_loop_goes_on() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    let bad = s
        .add_job(JobSpec::new(
            runs.task(&clock, NO_BUSY),
            sched_core::JobTrigger::dynamic(PanicsLater),
        ))
        .await
        .unwrap();
    let other = Runs::default();
    s.add_job(JobSpec::new(
        other.task(&clock, NO_BUSY),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 2, 10)).await;
    assert_eq!(runs.len(), 0);
    assert!(s.get_job(&bad).await.unwrap().unwrap().is_paused());
    let errors = rec.executions(EventKind::JobError);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].job_id, bad);
    assert!(
        errors[0]
            .failure
            .as_ref()
            .unwrap()
            .message
            .contains("trigger bug")
    );
    assert_eq!(other.scheduled(), [at(0, 1, 0), at(0, 2, 0)]);
}

// shutdown(NoWait) at 00:01:02 returns at once; the 10 s run goes on and finishes at
// 00:01:10 by itself.
#[tokio::test(start_paused = true)]
async fn shutdown_no_wait_returns_at_once_and_runs_finish_by_themselves() {
    let (s, clock, rec) = scheduler();
    let runs = every_minute(&s, &clock, Duration::from_secs(10)).await;
    s.start().await.unwrap();
    until(&clock, at(0, 1, 2)).await;
    s.shutdown(ShutdownMode::NoWait).await;
    use sched_runtime::Clock;
    assert_eq!(clock.now(), at(0, 1, 2));
    assert_eq!(s.state(), SchedulerState::ShutDown);
    assert_eq!(rec.count(EventKind::JobExecuted), 0);
    until(&clock, at(0, 3, 0)).await;
    assert_eq!(rec.times(EventKind::JobExecuted), [at(0, 1, 0)]);
    assert_eq!(runs.len(), 1, "nothing new was started after shutdown");
}

// The dispatcher sleeps towards 00:01 (a job there); a job added at 00:00:01 for 00:00:05
// wakes it, and runs on time.
//
//   00:00:01      00:00:05   00:01
//   add (05)         R         R
#[tokio::test(start_paused = true)]
async fn an_earlier_job_added_while_the_dispatcher_sleeps_runs_on_time() {
    let (s, clock, _rec) = scheduler();
    let runs = Runs::default();
    s.add_job(JobSpec::new(runs.task(&clock, NO_BUSY), once(at(0, 1, 0))))
        .await
        .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 0, 1)).await;
    s.add_job(JobSpec::new(runs.task(&clock, NO_BUSY), once(at(0, 0, 5))))
        .await
        .unwrap();
    until(&clock, at(0, 1, 10)).await;
    assert_eq!(runs.started(), [at(0, 0, 5), at(0, 1, 0)]);
}

/// Daily at a local wall time in a zone (a stand-in for the cron trigger, DST-aware through
/// `Zone::resolve`).
#[derive(Debug)]
struct DailyAt {
    zone: sched_core::Zone,
    hour: u32,
}

impl sched_core::Trigger for DailyAt {
    fn next_fire_time(
        &self,
        previous: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let after = previous.map_or(now, |p| p + TimeDelta::nanoseconds(1));
        let mut day = self.zone.local(after).date();
        loop {
            let local = day.and_hms_opt(self.hour, 0, 0)?;
            let t = match self.zone.resolve(local) {
                sched_core::LocalTime::Single(t) | sched_core::LocalTime::Repeated(t, _) => t,
                sched_core::LocalTime::Missing { shifted } => shifted,
            };
            if t >= after {
                return Some(t);
            }
            day = day.succ_opt()?;
        }
    }
    fn zone(&self) -> sched_core::Zone {
        self.zone
    }
}

// Daily at 09:00 Europe/Berlin across the spring-forward change of 2026-03-29: the local
// time stays 09:00, the UTC time moves from 08:00 to 07:00.
//
//   03-27 08:00Z  03-28 08:00Z  | DST |  03-29 07:00Z  03-30 07:00Z
//        R              R                      R              R
#[tokio::test(start_paused = true)]
async fn a_daily_job_keeps_its_wall_time_across_a_dst_change() {
    use chrono::TimeZone;
    let start = chrono::Utc.with_ymd_and_hms(2026, 3, 27, 0, 0, 0).unwrap();
    let clock = sched_runtime::TestClock::new(start);
    let s = sched_runtime::Scheduler::builder()
        .clock(clock.clone())
        .build();
    let runs = Runs::default();
    let berlin = sched_core::Zone::from_name("Europe/Berlin", "zone").unwrap();
    s.add_job(JobSpec::new(
        runs.task(&clock, NO_BUSY),
        sched_core::JobTrigger::dynamic(DailyAt {
            zone: berlin,
            hour: 9,
        }),
    ))
    .await
    .unwrap();
    s.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4 * 86_400)).await;
    let utc = |d, h| chrono::Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap();
    assert_eq!(
        runs.started(),
        [utc(27, 8), utc(28, 8), utc(29, 7), utc(30, 7)]
    );
    let local: Vec<String> = runs.started().iter().map(|t| berlin.format(*t)).collect();
    assert_eq!(local[2], "2026-03-29T09:00:00+02:00");
}

// Two named stores: each job lives in the one it names, events name it, and removing all
// jobs of one store leaves the other's.
#[tokio::test(start_paused = true)]
async fn named_stores_hold_their_jobs_and_events_name_them() {
    let (s, clock, rec) = scheduler_with(|b| b.store("other", sched_stores::MemoryStore::new()));
    let runs = Runs::default();
    s.start().await.unwrap();
    let a = s
        .add_job(JobSpec::new(runs.task(&clock, NO_BUSY), once(at(0, 1, 0))))
        .await
        .unwrap();
    let b = s
        .add_job(JobSpec::new(runs.task(&clock, NO_BUSY), once(at(0, 1, 0))).store("other"))
        .await
        .unwrap();
    assert_eq!(&*s.get_job(&b).await.unwrap().unwrap().store, "other");
    until(&clock, at(0, 1, 10)).await;
    let stores: Vec<(sched_core::JobId, String)> = rec
        .executions(EventKind::JobExecuted)
        .into_iter()
        .map(|e| (e.job_id, e.store))
        .collect();
    assert!(stores.contains(&(a.clone(), "default".to_owned())));
    assert!(stores.contains(&(b.clone(), "other".to_owned())));

    let c = s
        .add_job(JobSpec::new(runs.task(&clock, NO_BUSY), once(at(0, 5, 0))))
        .await
        .unwrap();
    let d = s
        .add_job(JobSpec::new(runs.task(&clock, NO_BUSY), once(at(0, 5, 0))).store("other"))
        .await
        .unwrap();
    s.remove_all_jobs(Some("other")).await.unwrap();
    assert!(s.get_job(&c).await.unwrap().is_some());
    assert!(s.get_job(&d).await.unwrap().is_none());
    assert!(matches!(
        s.remove_all_jobs(Some("nope")).await,
        Err(SchedulerError::UnknownStore(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn listeners_follow_their_mask_and_can_be_removed() {
    let (s, _clock, _rec) = scheduler();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let id = s.add_listener(
        EventKind::SchedulerPaused | EventKind::SchedulerResumed,
        move |e: &sched_core::Event| sink.lock().unwrap().push(e.kind()),
    );
    s.start().await.unwrap();
    s.pause().unwrap();
    s.resume().unwrap();
    assert!(s.remove_listener(id));
    assert!(!s.remove_listener(id));
    s.pause().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [EventKind::SchedulerPaused, EventKind::SchedulerResumed]
    );
}

/// An [`Every`] whose trigger carries a jitter.
#[derive(Debug)]
struct JitteredEvery(Every, Duration);

impl sched_core::Trigger for JitteredEvery {
    fn next_fire_time(
        &self,
        previous: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.next_fire_time(previous, now)
    }

    fn zone(&self) -> sched_core::Zone {
        sched_core::Zone::UTC
    }

    fn jitter(&self) -> Option<Duration> {
        Some(self.1)
    }
}

fn jittered_every(
    first: chrono::DateTime<chrono::Utc>,
    secs: i64,
    jitter: u64,
) -> sched_core::JobTrigger {
    sched_core::JobTrigger::dynamic(JitteredEvery(
        Every {
            first,
            period: TimeDelta::seconds(secs),
        },
        Duration::from_secs(jitter),
    ))
}

/// (scheduled, started) of every run of one job whose trigger fires every `secs` seconds
/// from 00:00:10 with `trigger_jitter`, the job's own `job_jitter` if given, over 10 virtual
/// minutes, with the random source seeded `seed`.
async fn jittered_runs(
    seed: u64,
    secs: i64,
    trigger_jitter: u64,
    job_jitter: Option<Duration>,
) -> Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let (s, clock, _rec) =
        scheduler_with(|b| b.random_source(sched_core::jitter::SplitMix64::new(seed)));
    let runs = Runs::default();
    let mut spec = JobSpec::new(
        runs.task(&clock, NO_BUSY),
        jittered_every(at(0, 0, 10), secs, trigger_jitter),
    );
    if let Some(j) = job_jitter {
        spec = spec.jitter(j);
    }
    s.add_job(spec).await.unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 10, 10)).await;
    s.shutdown(ShutdownMode::Wait).await;
    runs.0.lock().unwrap().clone()
}

// The trigger's jitter (3 s) on a job every 10 s, no jitter of the job's own; seed fixed.
//   scheduled   00:00:10   00:00:20   ...   00:10:00
//   started     in [:10, :13]  in [:20, :23]  ...      each drawn afresh, so no drift
// The same seed gives the same start times.
#[tokio::test(start_paused = true)]
async fn trigger_jitter_is_used_deterministic_and_does_not_accumulate() {
    let a = jittered_runs(11, 10, 3, None).await;
    let expected: Vec<_> = (0..60)
        .map(|k| at(0, 0, 10) + TimeDelta::seconds(10 * k))
        .collect();
    assert_eq!(a.iter().map(|r| r.0).collect::<Vec<_>>(), expected);
    for (scheduled, started) in &a {
        let delay = *started - *scheduled;
        assert!(
            delay >= TimeDelta::zero() && delay <= TimeDelta::seconds(3),
            "{scheduled}: started {delay} late"
        );
    }
    let distinct: std::collections::HashSet<_> = a.iter().map(|(s, t)| *t - *s).collect();
    assert!(distinct.len() > 1, "the delays are random");
    assert_eq!(
        jittered_runs(11, 10, 3, None).await,
        a,
        "same seed, same starts"
    );
}

// Jitter longer than the period: job jitter 60 s (overriding the trigger's 1 s) on a job every
// 10 s. Each start stays in [fire, next fire), so runs are neither merged nor reordered.
//   scheduled   :10        :20        :30
//   started       [:10, :20) [:20, :30) ...
#[tokio::test(start_paused = true)]
async fn jitter_never_reaches_the_next_fire_and_the_job_jitter_wins() {
    let runs = jittered_runs(5, 10, 1, Some(Duration::from_secs(60))).await;
    assert_eq!(runs.len(), 60);
    for (scheduled, started) in &runs {
        let delay = *started - *scheduled;
        assert!(
            delay >= TimeDelta::zero() && delay < TimeDelta::seconds(10),
            "{scheduled}: started {delay} late"
        );
    }
    assert!(
        runs.iter().any(|(s, t)| *t - *s > TimeDelta::seconds(1)),
        "the job's 60 s jitter is used, not the trigger's 1 s"
    );
    let starts: Vec<_> = runs.iter().map(|r| r.1).collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "starts in order");
}

// Every minute, each run busy 150 s, max_instances 1, raised to 2 at 00:01:30. The limit a
// run was accepted under holds while any run of it is going; the new one applies from the
// first submission that finds none running:
//
//   00:01  00:01:30  00:02  00:03  00:03:30  00:04  00:05  00:06
//     R------ max 2 ---X------X------ done      R------R------X
#[tokio::test(start_paused = true)]
async fn a_changed_max_instances_applies_once_no_run_of_the_old_limit_is_going() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    let job = s
        .add_job(JobSpec::new(
            runs.task(&clock, Duration::from_secs(150)),
            Every::minute_from(at(0, 1, 0)),
        ))
        .await
        .unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 1, 30)).await;
    s.modify_job(&job, JobChanges::new().max_instances(2))
        .await
        .unwrap();
    until(&clock, at(0, 6, 10)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 4, 0), at(0, 5, 0)]);
    assert_eq!(
        rec.submissions(EventKind::JobMaxInstances),
        [vec![at(0, 2, 0)], vec![at(0, 3, 0)], vec![at(0, 6, 0)]]
    );
    // Every count was given back: the runs end, and a run now is accepted.
    until(&clock, at(0, 9, 0)).await;
    s.pause_job(&job).await.unwrap();
    until(&clock, at(0, 12, 0)).await;
    assert_eq!(s.running_jobs(), 0);
    s.run_job_now(&job).await.unwrap();
}

// Tasks that keep their context and ask for its token only later (a run's token is made at
// the first request): the token of a run cut by its timeout is cancelled when first asked
// for after it, and so is that of a run cut by shutdown(Cancel); a task that cancels its
// own token cancels no other run.
//
//   00:01  00:01:05  00:02  00:03  00:03:02
//     R---timeout      R      RR  shutdown(Cancel)
//                   (cancels its own token)
#[tokio::test(start_paused = true)]
async fn a_token_asked_for_late_sees_the_timeout_and_the_shutdown() {
    use std::sync::{Arc, Mutex};
    let (s, clock, rec) = scheduler();
    let kept: Arc<Mutex<Vec<JobContext>>> = Arc::default();
    let kept2 = kept.clone();
    let task = closure_task("keep", move |ctx: JobContext| {
        kept2.lock().unwrap().push(ctx);
        async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, String>(())
        }
    });
    let own = closure_task("own", |ctx: JobContext| {
        ctx.cancellation_token().cancel();
        async { Ok::<_, String>(()) }
    });
    s.add_job(JobSpec::new(task.clone(), once(at(0, 1, 0))).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    s.add_job(JobSpec::new(own, once(at(0, 2, 0))))
        .await
        .unwrap();
    for _ in 0..2 {
        s.add_job(JobSpec::new(task.clone(), once(at(0, 3, 0))))
            .await
            .unwrap();
    }
    s.start().await.unwrap();
    until(&clock, at(0, 3, 2)).await;
    let kept = kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 3);
    assert!(kept[0].cancellation_token().is_cancelled());
    assert!(!kept[1].cancellation_token().is_cancelled());
    assert_eq!(rec.times(EventKind::JobExecuted), [at(0, 2, 0)]);
    s.shutdown(ShutdownMode::Cancel).await;
    assert!(kept[1].cancellation_token().is_cancelled());
    assert!(kept[2].cancellation_token().is_cancelled());
    let kinds: Vec<_> = rec
        .executions(EventKind::JobError)
        .into_iter()
        .map(|e| e.failure.unwrap().kind)
        .collect();
    assert_eq!(
        kinds,
        [
            FailureKind::Timeout,
            FailureKind::Cancelled,
            FailureKind::Cancelled
        ]
    );
}

// Three jobs every minute from 00:01; at 00:01 "b" is removed behind the scheduler's
// back once the dispatcher has read the batch (a, b, c) and before it writes it:
//
//   00:00   00:01          00:02        00:02:30
//     |     a R  b -  c R  a R  c R     now   -> b never runs, nothing is reported
#[tokio::test(start_paused = true)]
async fn a_job_removed_behind_the_schedulers_back_is_skipped_and_the_others_fire() {
    let store = FlakyStore::default();
    let (s, clock, rec) = scheduler_with(|b| b.store("default", store.clone()));
    let runs = Runs::default();
    for name in ["a", "b", "c"] {
        s.add_job(
            JobSpec::new(runs.task(&clock, NO_BUSY), Every::minute_from(at(0, 1, 0)))
                .id(name)
                .unwrap(),
        )
        .await
        .unwrap();
    }
    *store.vanish.lock().unwrap() = Some(id("b"));
    s.start().await.unwrap();
    until(&clock, at(0, 2, 30)).await;

    let mut executed: Vec<(String, DateTime<Utc>)> = rec
        .executions(EventKind::JobExecuted)
        .into_iter()
        .map(|e| (e.job_id.to_string(), e.scheduled_run_time))
        .collect();
    executed.sort_by_key(|(job, time)| (*time, job.clone()));
    assert_eq!(
        executed,
        [
            ("a".to_owned(), at(0, 1, 0)),
            ("c".to_owned(), at(0, 1, 0)),
            ("a".to_owned(), at(0, 2, 0)),
            ("c".to_owned(), at(0, 2, 0)),
        ],
        "b is skipped, a and c fire at each minute"
    );
    assert!(store.vanish.lock().unwrap().is_none(), "b was removed");
    assert!(store.inner.lookup_job(&id("b")).await.unwrap().is_none());
    for kind in [
        EventKind::JobError,
        EventKind::JobMissed,
        EventKind::JobRemoved,
    ] {
        assert_eq!(rec.count(kind), 0, "{kind:?}");
    }
    assert!(
        !rec.kinds().contains(&EventKind::StoreError),
        "a missing job is no store error"
    );
    assert_eq!(
        store.inner.next_run_time().await.unwrap(),
        Some(at(0, 3, 0)),
        "a and c advanced"
    );
    s.shutdown(ShutdownMode::Wait).await;
}
