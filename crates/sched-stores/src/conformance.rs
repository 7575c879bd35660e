//! The store conformance suite: one set of checks every [`JobStore`] backend must pass.
//!
//! A backend's test calls [`run`] with a function that makes a fresh, empty store (a new
//! schema, database number or key prefix for a server backend) and a function that makes
//! the trigger to put in test jobs (a spec trigger for a persistent store). Each check gets
//! its own store. A failed check panics with a message naming the check. A persistent
//! store also runs [`run_undecodable`], which writes broken records behind the store's back
//! and checks that they are quarantined, never lost.
//!
//! [`run`] checks: add and lookup (every field back), id conflicts (the stored job left
//! unchanged), update and the index following it, advance (the index following the new run
//! time, `None` pausing, a quarantined job staying so, a missing id), batched schedule
//! changes (`advance_jobs`: advances, pauses and removals in one call, missing ids reported
//! and skipped, the order and next run time after it, a quarantined job staying so), remove
//! and remove all, due-job ordering by
//! `(next_run_time, id)` with paused jobs left out, the limit and the inclusive bound, the
//! next run time, the order of all jobs, ids compared byte-wise, batches (`add_jobs`: all or
//! nothing, a repeated id, more than one chunk), quarantine (left out of due jobs, next run
//! time and all jobs; listed; id still taken; released with its stored run time),
//! concurrent writers (several tasks adding and updating at once, one winner for one id), a
//! job with 1 MiB of arguments, and, for a persistent store, closure jobs refused naming the
//! job.
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use sched_core::job::JobTrigger;
//! use sched_core::{Trigger, Zone};
//! use sched_stores::{conformance, MemoryStore};
//!
//! #[derive(Debug)]
//! struct Never;
//! impl Trigger for Never {
//!     fn next_fire_time(&self, _: Option<DateTime<Utc>>, _: DateTime<Utc>) -> Option<DateTime<Utc>> {
//!         None
//!     }
//!     fn zone(&self) -> Zone {
//!         Zone::UTC
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! conformance::run(|| async { MemoryStore::new() }, || JobTrigger::dynamic(Never)).await;
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sched_core::job::{Coalesce, Job, JobId, JobTrigger, LocalTask, RetryPolicy, TaskRef};
use serde_json::json;

use crate::{JobStore, ScheduleChange, StoreErrorKind};

/// Runs every check against fresh stores from `new_store`; test jobs carry triggers from
/// `trigger`.
///
/// # Panics
/// When the store breaks the contract, with a message naming the check.
pub async fn run<S, F, Fut, T>(mut new_store: F, trigger: T)
where
    S: JobStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
    T: Fn() -> JobTrigger,
{
    add_and_lookup(&new_store().await, &trigger).await;
    add_conflict(&new_store().await, &trigger).await;
    update(&new_store().await, &trigger).await;
    advance(&new_store().await, &trigger).await;
    advance_batch(&new_store().await, &trigger).await;
    remove(&new_store().await, &trigger).await;
    remove_all(&new_store().await, &trigger).await;
    due_ordering(&new_store().await, &trigger).await;
    due_limit_and_bound(&new_store().await, &trigger).await;
    next_run_time(&new_store().await, &trigger).await;
    all_jobs_order(&new_store().await, &trigger).await;
    ids_compare_bytewise(&new_store().await, &trigger).await;
    add_jobs_batch(&new_store().await, &trigger).await;
    quarantine(&new_store().await, &trigger).await;
    concurrent_writers(Arc::new(new_store().await), &trigger).await;
    large_job(&new_store().await, &trigger).await;
    unpersistable(&new_store().await, &trigger).await;
}

/// Checks that records a store cannot read back are quarantined, listed and kept, and that
/// the other jobs are unaffected. For persistent stores.
///
/// `write_raw(id, next_run_time, text)` must store `text` as the record of job `id`
/// scheduled at `next_run_time`, directly in the backend (an `INSERT`, an `HSET`),
/// bypassing the store's encoding. `store` must be empty; test jobs carry triggers from
/// `trigger`.
///
/// # Panics
/// When the store breaks the contract, with a message naming the check.
pub async fn run_undecodable<S, W, WFut, T>(store: &S, write_raw: W, trigger: T)
where
    S: JobStore,
    W: Fn(String, Option<DateTime<Utc>>, String) -> WFut,
    WFut: Future<Output = ()>,
    T: Fn() -> JobTrigger,
{
    let bad_trigger = json!({
        "format": 1, "id": "bad-trigger", "name": "n", "task": "task", "args": null,
        "trigger": {"type": "no-such-trigger"}, "executor": "default", "store": "default",
        "misfire_grace_time": 1, "coalesce": "latest", "max_instances": 1,
        "next_run_time": t(3),
    })
    .to_string();
    let bad_format = json!({"format": 999, "id": "bad-format", "from": "the future"}).to_string();
    let records = [
        ("bad-json", Some(t(1)), "{this is not json".to_owned()),
        ("bad-format", Some(t(1)), bad_format),
        ("bad-trigger", Some(t(3)), bad_trigger),
    ];
    store
        .add_job(job("good", Some(t(2)), &trigger))
        .await
        .expect("undecodable: add good");
    for (name, next, text) in &records {
        write_raw((*name).to_owned(), *next, text.clone()).await;
    }
    let due = store
        .due_jobs(t(59), 10)
        .await
        .expect("undecodable: due_jobs does not fail for the others");
    assert_eq!(
        ids(&due),
        ["good"],
        "undecodable: only the readable job is due"
    );
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(2)),
        "undecodable: quarantined records do not count for the next run time"
    );
    let all = store
        .all_jobs()
        .await
        .expect("undecodable: all_jobs does not fail");
    assert_eq!(
        ids(&all),
        ["good"],
        "undecodable: all_jobs lists the others"
    );
    let quarantined = store.quarantined_jobs().await.expect("quarantined_jobs");
    let listed: Vec<&str> = quarantined.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(
        listed,
        ["bad-format", "bad-json", "bad-trigger"],
        "undecodable: every broken record is listed, by id"
    );
    for q in &quarantined {
        let (_, _, text) = records
            .iter()
            .find(|(name, _, _)| *name == q.id.as_str())
            .expect("listed record was written");
        assert_eq!(&q.raw, text, "undecodable: raw text is kept as stored");
        assert!(!q.reason.is_empty(), "undecodable: a reason is given");
    }
    let format_reason = &quarantined[0].reason;
    assert!(
        format_reason.contains("999"),
        "undecodable: the reason names the format version ({format_reason})"
    );
    let err = store
        .add_job(job("bad-json", Some(t(1)), &trigger))
        .await
        .expect_err("undecodable: the id of a quarantined record stays taken");
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "undecodable: ({err})");
    let err = store
        .lookup_job(&id("bad-json"))
        .await
        .expect_err("undecodable: looking up a broken record fails");
    assert_eq!(
        err.kind(),
        StoreErrorKind::Serialization,
        "undecodable: ({err})"
    );
    let err = store
        .release_job(&id("bad-trigger"))
        .await
        .expect_err("undecodable: a record that still cannot be read is not released");
    assert_eq!(
        err.kind(),
        StoreErrorKind::Serialization,
        "undecodable: ({err})"
    );
    assert_eq!(
        store.quarantined_jobs().await.expect("quarantined").len(),
        3,
        "undecodable: still kept after a failed release"
    );
    store
        .remove_job(&id("bad-json"))
        .await
        .expect("undecodable: a quarantined record can be removed on purpose");
    let left: Vec<String> = store
        .quarantined_jobs()
        .await
        .expect("quarantined")
        .into_iter()
        .map(|q| q.id.to_string())
        .collect();
    assert_eq!(
        left,
        ["bad-format", "bad-trigger"],
        "undecodable: after remove"
    );
}

fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap()
}

fn id(s: &str) -> JobId {
    JobId::new(s).expect("non-empty id")
}

fn job(name: &str, next: Option<DateTime<Utc>>, trigger: &impl Fn() -> JobTrigger) -> Job {
    let mut j = Job::new(
        id(name),
        TaskRef::named("task", json!({ "job": name })),
        trigger(),
    );
    j.next_run_time = next;
    j
}

fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

async fn add_and_lookup(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    let mut j = job("a", Some(t(5)), trigger);
    j.name = "A job".into();
    j.executor = "pool".into();
    j.misfire_grace_time = None;
    j.coalesce = Coalesce::All;
    j.max_instances = 3;
    j.timeout = Some(Duration::from_millis(1500));
    j.jitter = Some(Duration::from_secs(2));
    j.retry = Some(RetryPolicy::new(3));
    store.add_job(j).await.expect("add_and_lookup: add");
    let got = store
        .lookup_job(&id("a"))
        .await
        .expect("add_and_lookup: lookup")
        .expect("add_and_lookup: the added job is found");
    assert_eq!(got.id, id("a"), "add_and_lookup: id");
    assert_eq!(&*got.name, "A job", "add_and_lookup: name");
    assert_eq!(&*got.executor, "pool", "add_and_lookup: executor");
    assert_eq!(
        got.misfire_grace_time, None,
        "add_and_lookup: misfire_grace_time"
    );
    assert_eq!(got.coalesce, Coalesce::All, "add_and_lookup: coalesce");
    assert_eq!(got.max_instances, 3, "add_and_lookup: max_instances");
    assert_eq!(
        got.timeout,
        Some(Duration::from_millis(1500)),
        "add_and_lookup: timeout"
    );
    assert_eq!(
        got.next_run_time,
        Some(t(5)),
        "add_and_lookup: next_run_time"
    );
    match &got.task {
        TaskRef::Named { name, args } => {
            assert_eq!(&**name, "task", "add_and_lookup: task name");
            assert_eq!(args, &json!({"job": "a"}), "add_and_lookup: args");
        }
        other => panic!("add_and_lookup: task came back as {other:?}"),
    }
    assert!(
        store.lookup_job(&id("zz")).await.expect("lookup").is_none(),
        "add_and_lookup: an unknown id is None"
    );
}

async fn add_conflict(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    store
        .add_job(job("a", Some(t(5)), trigger))
        .await
        .expect("add_conflict: first add");
    let err = store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect_err("add_conflict: a second add with the same id fails");
    assert_eq!(
        err.kind(),
        StoreErrorKind::Conflict,
        "add_conflict: kind ({err})"
    );
    let kept = store
        .lookup_job(&id("a"))
        .await
        .expect("lookup")
        .expect("kept");
    assert_eq!(
        kept.next_run_time,
        Some(t(5)),
        "add_conflict: the first job is unchanged"
    );
}

async fn update(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    let err = store
        .update_job(job("a", Some(t(1)), trigger))
        .await
        .expect_err("update: updating a missing job fails");
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "update: kind ({err})");
    store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect("update: add a");
    store
        .add_job(job("b", Some(t(2)), trigger))
        .await
        .expect("update: add b");
    let mut a = job("a", Some(t(3)), trigger);
    a.name = "renamed".into();
    store.update_job(a).await.expect("update: update a");
    let got = store
        .lookup_job(&id("a"))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(&*got.name, "renamed", "update: the new fields are stored");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(
        ids(&due),
        ["b", "a"],
        "update: the index follows the new next run time"
    );
    store
        .update_job(job("a", None, trigger))
        .await
        .expect("update: pause a");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(ids(&due), ["b"], "update: a paused job is no longer due");
}

async fn advance(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    let err = store
        .advance_job(&job("a", Some(t(1)), trigger), Some(t(2)))
        .await
        .expect_err("advance: advancing a missing job fails");
    assert_eq!(
        err.kind(),
        StoreErrorKind::NotFound,
        "advance: kind ({err})"
    );
    for (name, minute) in [("a", 1), ("b", 2), ("c", 3)] {
        store
            .add_job(job(name, Some(t(minute)), trigger))
            .await
            .expect("advance: add");
    }
    let a = store
        .due_jobs(t(1), 1)
        .await
        .expect("due")
        .pop()
        .expect("advance: a is due");
    store
        .advance_job(&a, Some(t(4)))
        .await
        .expect("advance: a to minute 4");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(
        ids(&due),
        ["b", "c", "a"],
        "advance: the index follows the new next run time"
    );
    assert_eq!(
        due[2].next_run_time,
        Some(t(4)),
        "advance: the new time is stored"
    );
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(2)),
        "advance: the next run time follows"
    );
    let c = due[1].clone();
    store
        .advance_job(&c, Some(t(1)))
        .await
        .expect("advance: c to minute 1");
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(1)),
        "advance: an earlier time is the next run time"
    );
    let b = due[0].clone();
    store.advance_job(&b, None).await.expect("advance: pause b");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(ids(&due), ["c", "a"], "advance: None pauses");
    let all = store.all_jobs().await.expect("all");
    assert_eq!(
        ids(&all),
        ["c", "a", "b"],
        "advance: a paused job is listed last"
    );
    let paused = store
        .lookup_job(&id("b"))
        .await
        .expect("lookup")
        .expect("advance: a paused job is kept");
    assert_eq!(paused.next_run_time, None, "advance: paused");
    store
        .advance_job(&paused, Some(t(2)))
        .await
        .expect("advance: resume b");
    store
        .quarantine_job(&id("c"), "test")
        .await
        .expect("advance: quarantine c");
    store
        .advance_job(&c, Some(t(0)))
        .await
        .expect("advance: a quarantined job can be advanced");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(
        ids(&due),
        ["b", "a"],
        "advance: a quarantined job stays quarantined"
    );
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(2)),
        "advance: a quarantined job does not count for the next run time"
    );
    let released = store.release_job(&id("c")).await.expect("advance: release");
    assert_eq!(
        released.next_run_time,
        Some(t(0)),
        "advance: released with the time it was advanced to"
    );
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(ids(&due), ["c", "b", "a"], "advance: released");
}

async fn advance_batch(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    let write = store.advance_jobs(&[]).await;
    assert!(
        write.found.is_empty() && write.error.is_none(),
        "advance batch: an empty batch writes nothing ({write:?})"
    );
    for (name, minute) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)] {
        store
            .add_job(job(name, Some(t(minute)), trigger))
            .await
            .expect("advance batch: add");
    }
    let due = store.due_jobs(t(4), 10).await.expect("due");
    assert_eq!(ids(&due), ["a", "b", "c", "d"], "advance batch: due");
    let gone = job("gone", Some(t(1)), trigger);
    let nobody = id("nobody");
    let changes = [
        ScheduleChange::Advance {
            job: &due[0],
            next_run_time: Some(t(10)),
        },
        ScheduleChange::Remove(&due[1].id),
        ScheduleChange::Advance {
            job: &gone,
            next_run_time: Some(t(6)),
        },
        ScheduleChange::Advance {
            job: &due[2],
            next_run_time: None,
        },
        ScheduleChange::Remove(&nobody),
        ScheduleChange::Advance {
            job: &due[3],
            next_run_time: Some(t(0)),
        },
    ];
    let write = store.advance_jobs(&changes).await;
    assert!(
        write.error.is_none(),
        "advance batch: missing ids are no error ({:?})",
        write.error
    );
    assert_eq!(
        write.found,
        [true, true, false, true, false, true],
        "advance batch: which jobs were there"
    );
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(
        ids(&due),
        ["d", "e", "a"],
        "advance batch: the index follows the new times, without the removed and paused jobs"
    );
    assert_eq!(
        due.iter().map(|j| j.next_run_time).collect::<Vec<_>>(),
        [Some(t(0)), Some(t(5)), Some(t(10))],
        "advance batch: the new times are stored"
    );
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(0)),
        "advance batch: the next run time follows"
    );
    assert_eq!(
        ids(&store.all_jobs().await.expect("all")),
        ["d", "e", "a", "c"],
        "advance batch: all jobs, the paused one last"
    );
    let a = store
        .lookup_job(&id("a"))
        .await
        .expect("lookup")
        .expect("advance batch: a is kept");
    assert_eq!(a.next_run_time, Some(t(10)), "advance batch: lookup of a");
    assert!(
        matches!(&a.task, TaskRef::Named { args, .. } if *args == json!({ "job": "a" })),
        "advance batch: the other fields of a stay"
    );
    let c = store
        .lookup_job(&id("c"))
        .await
        .expect("lookup")
        .expect("advance batch: a paused job is kept");
    assert_eq!(c.next_run_time, None, "advance batch: c is paused");
    for missing in ["b", "gone", "nobody"] {
        assert!(
            store
                .lookup_job(&id(missing))
                .await
                .expect("lookup")
                .is_none(),
            "advance batch: no job {missing} after the batch"
        );
    }
    store
        .quarantine_job(&id("e"), "test")
        .await
        .expect("advance batch: quarantine e");
    let e = job("e", Some(t(5)), trigger);
    let write = store
        .advance_jobs(&[
            ScheduleChange::Advance {
                job: &e,
                next_run_time: Some(t(1)),
            },
            ScheduleChange::Remove(&id("d")),
        ])
        .await;
    assert!(write.error.is_none(), "advance batch: {:?}", write.error);
    assert_eq!(
        write.found,
        [true, true],
        "advance batch: e and d were there"
    );
    assert_eq!(
        ids(&store.due_jobs(t(59), 10).await.expect("due")),
        ["a"],
        "advance batch: a quarantined job stays quarantined"
    );
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(10)),
        "advance batch: a quarantined job does not count for the next run time"
    );
    let released = store
        .release_job(&id("e"))
        .await
        .expect("advance batch: release e");
    assert_eq!(
        released.next_run_time,
        Some(t(1)),
        "advance batch: released with the time it was advanced to"
    );
    let write = store
        .advance_jobs(&[
            ScheduleChange::Advance {
                job: &released,
                next_run_time: Some(t(7)),
            },
            ScheduleChange::Remove(&released.id),
            ScheduleChange::Advance {
                job: &released,
                next_run_time: Some(t(8)),
            },
        ])
        .await;
    assert!(write.error.is_none(), "advance batch: {:?}", write.error);
    assert_eq!(
        write.found,
        [true, true, false],
        "advance batch: changes naming one id apply in order"
    );
    assert!(
        store.lookup_job(&id("e")).await.expect("lookup").is_none(),
        "advance batch: e removed by the second change"
    );
    let a = store
        .lookup_job(&id("a"))
        .await
        .expect("lookup")
        .expect("advance batch: a is kept");
    let only_advances = [ScheduleChange::Advance {
        job: &a,
        next_run_time: Some(t(9)),
    }];
    let write = store.advance_jobs(&only_advances).await;
    assert_eq!(write.found, [true], "advance batch: one advance");
    let only_removals = [ScheduleChange::Remove(&nobody)];
    let write = store.advance_jobs(&only_removals).await;
    assert_eq!(write.found, [false], "advance batch: one missing removal");
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(9)),
        "advance batch: a at minute 9"
    );
}

async fn remove(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    let err = store
        .remove_job(&id("a"))
        .await
        .expect_err("remove: a missing job");
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "remove: kind ({err})");
    store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect("remove: add");
    store
        .add_job(job("p", None, trigger))
        .await
        .expect("remove: add paused");
    store.remove_job(&id("a")).await.expect("remove: remove a");
    store
        .remove_job(&id("p"))
        .await
        .expect("remove: remove paused");
    assert!(
        store.lookup_job(&id("a")).await.expect("lookup").is_none(),
        "remove: gone"
    );
    assert!(
        store.due_jobs(t(59), 10).await.expect("due").is_empty(),
        "remove: not due"
    );
    assert_eq!(
        store.next_run_time().await.expect("next"),
        None,
        "remove: no next run"
    );
}

async fn remove_all(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect("remove_all: add");
    store
        .add_job(job("b", None, trigger))
        .await
        .expect("remove_all: add");
    store.remove_all_jobs().await.expect("remove_all");
    assert!(
        store.all_jobs().await.expect("all").is_empty(),
        "remove_all: empty"
    );
    assert_eq!(
        store.next_run_time().await.expect("next"),
        None,
        "remove_all: no next"
    );
    store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect("remove_all: id reusable");
}

async fn due_ordering(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    for (name, minute) in [
        ("c", Some(3)),
        ("b", Some(1)),
        ("a", Some(3)),
        ("p", None),
        ("d", Some(2)),
    ] {
        store
            .add_job(job(name, minute.map(t), trigger))
            .await
            .expect("due_ordering: add");
    }
    let due = store.due_jobs(t(59), 100).await.expect("due");
    assert_eq!(
        ids(&due),
        ["b", "d", "a", "c"],
        "due_ordering: by (next_run_time, id), paused excluded"
    );
}

async fn due_limit_and_bound(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    for (name, minute) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        store
            .add_job(job(name, Some(t(minute)), trigger))
            .await
            .expect("add");
    }
    let due = store.due_jobs(t(3), 100).await.expect("due");
    assert_eq!(
        ids(&due),
        ["a", "b", "c"],
        "due_limit_and_bound: up_to is inclusive"
    );
    let due = store.due_jobs(t(3), 2).await.expect("due");
    assert_eq!(
        ids(&due),
        ["a", "b"],
        "due_limit_and_bound: limit keeps the earliest"
    );
    let due = store.due_jobs(t(0), 100).await.expect("due");
    assert!(
        due.is_empty(),
        "due_limit_and_bound: nothing before the first"
    );
}

async fn next_run_time(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    assert_eq!(
        store.next_run_time().await.expect("next"),
        None,
        "next_run_time: empty"
    );
    store.add_job(job("p", None, trigger)).await.expect("add");
    assert_eq!(
        store.next_run_time().await.expect("next"),
        None,
        "next_run_time: paused only"
    );
    store
        .add_job(job("a", Some(t(7)), trigger))
        .await
        .expect("add");
    store
        .add_job(job("b", Some(t(4)), trigger))
        .await
        .expect("add");
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(4)),
        "next_run_time: earliest"
    );
    store.remove_job(&id("b")).await.expect("remove");
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(7)),
        "next_run_time: after remove"
    );
}

async fn all_jobs_order(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    for (name, minute) in [("z", None), ("b", Some(2)), ("y", None), ("a", Some(9))] {
        store
            .add_job(job(name, minute.map(t), trigger))
            .await
            .expect("add");
    }
    let all = store.all_jobs().await.expect("all");
    assert_eq!(
        ids(&all),
        ["b", "a", "y", "z"],
        "all_jobs: scheduled by time, then paused by id"
    );
}

async fn ids_compare_bytewise(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    for name in ["é", "a", "B", "A", "z", "a b"] {
        store
            .add_job(job(name, Some(t(1)), trigger))
            .await
            .expect("ids_compare_bytewise: ids differing in case or accents are different jobs");
    }
    let due = store.due_jobs(t(1), 10).await.expect("due");
    assert_eq!(
        ids(&due),
        ["A", "B", "a", "a b", "z", "é"],
        "ids_compare_bytewise: equal times order by the id's bytes"
    );
}

async fn add_jobs_batch(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    store
        .add_jobs(vec![
            job("a", Some(t(3)), trigger),
            job("b", Some(t(1)), trigger),
            job("c", None, trigger),
        ])
        .await
        .expect("add_jobs: a batch");
    let all = store.all_jobs().await.expect("all");
    assert_eq!(ids(&all), ["b", "a", "c"], "add_jobs: every job is added");
    let err = store
        .add_jobs(vec![
            job("d", Some(t(2)), trigger),
            job("a", Some(t(9)), trigger),
        ])
        .await
        .expect_err("add_jobs: a batch with a stored id fails");
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "add_jobs: ({err})");
    assert!(
        err.to_string().contains("job a "),
        "add_jobs: the conflict names the id ({err})"
    );
    assert!(
        store.lookup_job(&id("d")).await.expect("lookup").is_none(),
        "add_jobs: all or nothing"
    );
    let err = store
        .add_jobs(vec![
            job("e", Some(t(2)), trigger),
            job("e", Some(t(4)), trigger),
        ])
        .await
        .expect_err("add_jobs: an id twice in one batch fails");
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "add_jobs: ({err})");
    assert!(
        store.lookup_job(&id("e")).await.expect("lookup").is_none(),
        "add_jobs: nothing of the batch with a repeated id"
    );
    store.add_jobs(Vec::new()).await.expect("add_jobs: empty");
    let many: Vec<Job> = (0..1500)
        .map(|i| job(&format!("m{i:05}"), Some(t(10 + i % 40)), trigger))
        .collect();
    store
        .add_jobs(many)
        .await
        .expect("add_jobs: a batch larger than one chunk");
    assert_eq!(
        store.all_jobs().await.expect("all").len(),
        1503,
        "add_jobs: the large batch is stored whole"
    );
    let due = store.due_jobs(t(10), 5000).await.expect("due");
    assert_eq!(due.len(), 2 + 38, "add_jobs: due after a large batch");
}

async fn quarantine(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    for (name, minute) in [("a", Some(1)), ("b", Some(2)), ("p", None)] {
        store
            .add_job(job(name, minute.map(t), trigger))
            .await
            .expect("quarantine: add");
    }
    store
        .quarantine_job(&id("a"), "task \"task\" is not registered")
        .await
        .expect("quarantine: quarantine a");
    let err = store
        .quarantine_job(&id("zz"), "why")
        .await
        .expect_err("quarantine: a missing job");
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "quarantine: ({err})");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(ids(&due), ["b"], "quarantine: a quarantined job is not due");
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(2)),
        "quarantine: nor counts for the next run time"
    );
    let all = store.all_jobs().await.expect("all");
    assert_eq!(
        ids(&all),
        ["b", "p"],
        "quarantine: nor is listed by all_jobs"
    );
    let q = store.quarantined_jobs().await.expect("quarantined");
    assert_eq!(q.len(), 1, "quarantine: listed");
    assert_eq!(q[0].id, id("a"), "quarantine: id");
    assert_eq!(
        q[0].reason, "task \"task\" is not registered",
        "quarantine: reason"
    );
    assert!(!q[0].raw.is_empty(), "quarantine: raw text");
    let err = store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect_err("quarantine: its id stays taken");
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "quarantine: ({err})");
    let found = store
        .lookup_job(&id("a"))
        .await
        .expect("lookup")
        .expect("quarantine: a quarantined job can be looked up");
    assert_eq!(found.next_run_time, Some(t(1)), "quarantine: lookup");
    store
        .update_job(job("a", Some(t(3)), trigger))
        .await
        .expect("quarantine: update a quarantined job");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(
        ids(&due),
        ["b"],
        "quarantine: it stays quarantined on update"
    );
    store
        .quarantine_job(&id("p"), "first")
        .await
        .expect("quarantine: a paused job");
    store
        .quarantine_job(&id("p"), "second")
        .await
        .expect("quarantine: again");
    let q = store.quarantined_jobs().await.expect("quarantined");
    let listed: Vec<(&str, &str)> = q
        .iter()
        .map(|q| (q.id.as_str(), q.reason.as_str()))
        .collect();
    assert_eq!(
        listed,
        [("a", "task \"task\" is not registered"), ("p", "second")],
        "quarantine: by id, the latest reason"
    );
    assert_eq!(
        ids(&store.all_jobs().await.expect("all")),
        ["b"],
        "quarantine: all_jobs"
    );
    let released = store
        .release_job(&id("a"))
        .await
        .expect("quarantine: release");
    assert_eq!(
        released.next_run_time,
        Some(t(3)),
        "quarantine: released with its stored next run time"
    );
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(ids(&due), ["b", "a"], "quarantine: due again once released");
    store
        .release_job(&id("a"))
        .await
        .expect("quarantine: releasing a job that is not quarantined");
    let err = store
        .release_job(&id("zz"))
        .await
        .expect_err("quarantine: releasing a missing job");
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "quarantine: ({err})");
    store
        .remove_job(&id("p"))
        .await
        .expect("quarantine: remove a quarantined job");
    assert!(
        store.quarantined_jobs().await.expect("q").is_empty(),
        "quarantine: removed"
    );
    store
        .quarantine_job(&id("b"), "x")
        .await
        .expect("quarantine b");
    store.remove_all_jobs().await.expect("remove_all");
    assert!(
        store.quarantined_jobs().await.expect("q").is_empty(),
        "quarantine: remove_all_jobs removes quarantined jobs too"
    );
}

async fn concurrent_writers<S: JobStore>(store: Arc<S>, trigger: &impl Fn() -> JobTrigger) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&store);
            let jobs: Vec<(Job, Job)> = (0..EACH)
                .map(|k| {
                    let name = format!("w{w}-{k:02}");
                    let minute = ((w * EACH + k) % 50) as u32;
                    (
                        job(&name, Some(t(minute)), trigger),
                        job(&name, Some(t(minute + 5)), trigger),
                    )
                })
                .collect();
            let shared = job("shared", Some(t(0)), trigger);
            async move {
                let mut conflicts = 0;
                for (first, second) in jobs {
                    store.add_job(first).await.expect("concurrent: add");
                    store.update_job(second).await.expect("concurrent: update");
                }
                match store.add_job(shared).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == StoreErrorKind::Conflict => conflicts += 1,
                    Err(e) => panic!("concurrent: add shared: {e}"),
                }
                conflicts
            }
        })
        .collect();
    let conflicts: usize = join_all(writers).await.into_iter().sum();
    assert_eq!(
        conflicts,
        WRITERS - 1,
        "concurrent: one add of the same id wins, the others conflict"
    );
    let all = store.all_jobs().await.expect("all");
    assert_eq!(
        all.len(),
        WRITERS * EACH + 1,
        "concurrent: every job is stored"
    );
    for j in &all {
        if j.id.as_str() == "shared" {
            continue;
        }
        let (w, k) = j.id.as_str()[1..]
            .split_once('-')
            .expect("concurrent: id layout");
        let (w, k): (usize, usize) = (w.parse().expect("w"), k.parse().expect("k"));
        let minute = ((w * EACH + k) % 50) as u32 + 5;
        assert_eq!(
            j.next_run_time,
            Some(t(minute)),
            "concurrent: the update of {} won",
            j.id
        );
    }
}

async fn large_job(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    let blob = "0123456789abcdef".repeat(65_536); // 1 MiB
    let mut big = job("big", Some(t(1)), trigger);
    big.task = TaskRef::named("task", json!({ "blob": blob }));
    store.add_job(big.clone()).await.expect("large_job: add");
    let got = store
        .lookup_job(&id("big"))
        .await
        .expect("lookup")
        .expect("large_job: found");
    match &got.task {
        TaskRef::Named { args, .. } => assert!(
            args["blob"].as_str() == Some(blob.as_str()),
            "large_job: arguments come back whole"
        ),
        other => panic!("large_job: task came back as {other:?}"),
    }
    big.next_run_time = Some(t(2));
    store.update_job(big).await.expect("large_job: update");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(ids(&due), ["big"], "large_job: due");
    assert_eq!(due[0].next_run_time, Some(t(2)), "large_job: updated");
}

async fn unpersistable(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    if !store.is_persistent() {
        return;
    }
    let mut closure = job("closure-job", Some(t(1)), trigger);
    closure.task = TaskRef::Local(LocalTask::new("tick", ()));
    let err = store
        .add_job(closure.clone())
        .await
        .expect_err("unpersistable: a closure job is refused");
    assert_eq!(
        err.kind(),
        StoreErrorKind::Serialization,
        "unpersistable: ({err})"
    );
    assert!(
        err.to_string().contains("closure-job"),
        "unpersistable: the error names the job ({err})"
    );
    let err = store
        .add_jobs(vec![job("fine", Some(t(1)), trigger), closure])
        .await
        .expect_err("unpersistable: a batch with a closure job is refused");
    assert_eq!(
        err.kind(),
        StoreErrorKind::Serialization,
        "unpersistable: ({err})"
    );
    assert!(
        store.all_jobs().await.expect("all").is_empty(),
        "unpersistable: nothing was stored"
    );
}

/// Polls every future until all are done, in one task (the suite does not depend on a
/// runtime to spawn on).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
