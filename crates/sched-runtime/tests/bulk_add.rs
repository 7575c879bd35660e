//! `Scheduler::add_jobs` and the pending jobs written at start, on tokio's paused clock:
//! the jobs of a call are written together or not at all, and a start that cannot write
//! its pending jobs keeps them pending. Timelines as in `semantics.rs`.

mod support;

use std::time::Duration;

use sched_core::event::EventKind;
use sched_core::job::{Job, JobId, JobSpec};
use sched_runtime::{Scheduler, SchedulerError, ShutdownMode};
use sched_stores::{JobStore, MemoryStore};
use support::*;

const NO_BUSY: std::time::Duration = std::time::Duration::ZERO;

/// The ids of every job, as `get_jobs` lists them (pending first).
async fn job_ids(s: &Scheduler) -> Vec<JobId> {
    s.get_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect()
}

fn spec(runs: &Runs, clock: &sched_runtime::TestClock, job: &str, first: i64) -> JobSpec {
    JobSpec::new(runs.task(clock, NO_BUSY), once(at(0, first, 0)))
        .id(job)
        .unwrap()
}

// Three one-shots added in one call at 00:00, due 00:01, 00:02, 00:03.
//
//   00:01  00:02  00:03
//     R      R      R
#[tokio::test(start_paused = true)]
async fn a_batch_is_written_and_every_job_runs_on_time() {
    let (s, clock, rec) = scheduler();
    s.start().await.unwrap();
    let runs = Runs::default();
    let ids = s
        .add_jobs([
            spec(&runs, &clock, "c", 3),
            spec(&runs, &clock, "a", 1),
            spec(&runs, &clock, "b", 2),
        ])
        .await
        .unwrap();
    assert_eq!(
        ids,
        [id("c"), id("a"), id("b")],
        "ids in the order of the specs"
    );
    assert_eq!(rec.count(EventKind::JobAdded), 3);
    until(&clock, at(0, 3, 30)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 2, 0), at(0, 3, 0)]);
    assert_eq!(
        runs.started(),
        runs.scheduled(),
        "each run starts at its time"
    );
    s.shutdown(ShutdownMode::Wait).await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_with_a_taken_id_adds_nothing_in_any_store() {
    let (s, clock, rec) = scheduler_with(|b| b.store("other", MemoryStore::new()));
    s.start().await.unwrap();
    let runs = Runs::default();
    s.add_job(spec(&runs, &clock, "taken", 5)).await.unwrap();
    let elsewhere = spec(&runs, &clock, "elsewhere", 1).store("other");
    let err = s
        .add_jobs([
            elsewhere,
            spec(&runs, &clock, "fresh", 1),
            spec(&runs, &clock, "taken", 2),
        ])
        .await
        .unwrap_err();
    match &err {
        SchedulerError::JobExists { id: taken, store } => {
            assert_eq!(*taken, id("taken"));
            assert_eq!(store, "default");
        }
        other => panic!("expected JobExists, got {other}"),
    }
    let ids = job_ids(&s).await;
    assert_eq!(ids, [id("taken")], "the other store's job was taken back");
    assert_eq!(rec.count(EventKind::JobAdded), 1);
    until(&clock, at(0, 2, 30)).await;
    assert!(
        runs.scheduled().is_empty(),
        "nothing of the refused batch ran"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_spec_or_an_id_given_twice_adds_nothing() {
    let (s, clock, _rec) = scheduler();
    s.start().await.unwrap();
    let runs = Runs::default();
    let err = s
        .add_jobs([
            spec(&runs, &clock, "a", 1),
            spec(&runs, &clock, "b", 1).executor("nowhere"),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SchedulerError::UnknownExecutor(e) if e == "nowhere"),
        "{err}"
    );
    let err = s
        .add_jobs([
            spec(&runs, &clock, "a", 1),
            spec(&runs, &clock, "a", 2).replace_existing(true),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SchedulerError::JobExists { id: j, .. } if *j == id("a")),
        "{err}"
    );
    assert!(s.get_jobs().await.unwrap().is_empty());
}

// "keep" is stored with a 00:05 run; a batch replaces it (replace_existing) with a 00:02
// one-shot and adds "new" for 00:01.
//
//   00:01     00:02      00:05
//   R(new)   R(keep)   (nothing)
#[tokio::test(start_paused = true)]
async fn replace_existing_in_a_batch_replaces() {
    let (s, clock, _rec) = scheduler();
    s.start().await.unwrap();
    let runs = Runs::default();
    s.add_job(spec(&runs, &clock, "keep", 5)).await.unwrap();
    s.add_jobs([
        spec(&runs, &clock, "keep", 2).replace_existing(true),
        spec(&runs, &clock, "new", 1),
    ])
    .await
    .unwrap();
    assert_eq!(s.get_jobs().await.unwrap().len(), 2);
    until(&clock, at(0, 6, 0)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 2, 0)]);
}

// Added before start: pending; a taken pending id is refused unless replace_existing; the
// start at 00:00:30 writes them.
//
//   00:00:30  00:01  00:02
//    start      R      R
#[tokio::test(start_paused = true)]
async fn a_batch_before_start_waits_as_pending() {
    let (s, clock, rec) = scheduler();
    let runs = Runs::default();
    s.add_jobs([spec(&runs, &clock, "a", 1), spec(&runs, &clock, "b", 3)])
        .await
        .unwrap();
    let err = s
        .add_jobs([spec(&runs, &clock, "c", 1), spec(&runs, &clock, "a", 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, SchedulerError::JobExists { .. }), "{err}");
    s.add_jobs([spec(&runs, &clock, "b", 2).replace_existing(true)])
        .await
        .unwrap();
    let pending = job_ids(&s).await;
    assert_eq!(
        pending,
        [id("a"), id("b")],
        "c was not added, b was replaced"
    );
    assert_eq!(rec.count(EventKind::JobAdded), 0);
    until(&clock, at(0, 0, 30)).await;
    s.start().await.unwrap();
    assert_eq!(rec.count(EventKind::JobAdded), 2);
    until(&clock, at(0, 3, 30)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 2, 0)]);
}

#[tokio::test(start_paused = true)]
async fn a_start_that_cannot_write_its_pending_jobs_keeps_them_pending() {
    // The store holds "x" already (as a persistent store would after a restart).
    let store = MemoryStore::new();
    let runs = Runs::default();
    let clock = sched_runtime::TestClock::new(at(0, 0, 0));
    let mut held = Job::new(id("x"), runs.task(&clock, NO_BUSY), once(at(0, 9, 0)));
    held.next_run_time = Some(at(0, 9, 0));
    store.add_job(held).await.unwrap();
    let s = Scheduler::builder()
        .clock(clock.clone())
        .store("default", store)
        .build();
    s.add_job(spec(&runs, &clock, "y", 1)).await.unwrap();
    s.add_job(spec(&runs, &clock, "x", 1)).await.unwrap();
    let err = s.start().await.unwrap_err();
    assert!(
        matches!(&err, SchedulerError::JobExists { id: j, .. } if *j == id("x")),
        "{err}"
    );
    let table = s.job_table().await.unwrap();
    assert!(table.contains("Pending jobs:"), "{table}");
    let pending = job_ids(&s).await;
    assert_eq!(
        pending,
        [id("y"), id("x"), id("x")],
        "y was not written either: both stay pending, then the stored x"
    );
    // Pending jobs can still be changed, and a start writes them.
    s.remove_job(&id("x")).await.unwrap();
    s.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0)]);
    let ids = job_ids(&s).await;
    assert_eq!(ids, [id("x")], "the stored x keeps its 00:09 run");
}
