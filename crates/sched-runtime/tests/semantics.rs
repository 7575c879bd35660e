//! Execution semantics on tokio's paused clock. Each test draws its expected timeline:
//! `*` a scheduled time, `R` a run, `M` a missed event, `X` a max-instances refusal,
//! `|` a pause or a resume, `now` where the test looks.

mod support;

use std::time::Duration;

use chrono::TimeDelta;
use sched_core::event::{EventKind, FailureKind};
use sched_core::job::{Coalesce, JobChanges, JobSpec};
use sched_runtime::{JobContext, SchedulerError, SchedulerState, ShutdownMode, closure_task};
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, NO_BUSY),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, NO_BUSY),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, NO_BUSY),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
    assert_eq!(job.name, "third");
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, NO_BUSY),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, NO_BUSY),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, NO_BUSY),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, Duration::from_secs(10)),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, Duration::from_secs(10)),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
// arguments that do not deserialize are a job error.
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
    let errors = rec.executions(EventKind::JobError);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].failure.as_ref().unwrap().kind, FailureKind::Setup);
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
    assert_eq!(
        (modified.name.as_str(), modified.max_instances),
        ("renamed", 3)
    );
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, Duration::from_secs(5)),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(&clock, Duration::from_secs(10)),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
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
