//! Jobs that cannot run are quarantined, never deleted, and come back when they can.
//!
//! # Ground rules
//!
//! - **Checked before the schedule moves.** The dispatcher asks [`unrunnable`] about each
//!   due job whose task is named: a task that is not registered, or arguments that do not
//!   deserialize into the registered task's argument type, make the job unrunnable. Such a
//!   job is quarantined with [`JobStore::quarantine_job`] *instead of* being advanced, so it
//!   keeps the next run time it had: nothing about its schedule is lost.
//! - **Reported once.** Quarantining emits one
//!   [`JobQuarantined`](sched_core::EventKind::JobQuarantined) event with the reason; the
//!   job is then out of the due jobs, so it is not reported at every fire.
//! - **A store without quarantine keeps the old way.** A store that answers
//!   [`StoreError::Unsupported`] keeps the job due, and each fire ends in a `JobError`
//!   event of kind `Setup`, as before quarantine existed.
//! - **Released by registering.** [`Scheduler::register_task`](crate::Scheduler::register_task)
//!   (and `start`) raise `Shared::release_check`; the dispatcher's next pass then looks at
//!   every quarantined job of every store and releases ([`JobStore::release_job`]) those
//!   whose task is registered and whose arguments deserialize. A released job is due from
//!   its stored next run time, so the misfire grace time and coalescing decide what runs
//!   of what it missed, as after any downtime. A job a store quarantined because it could
//!   not read it back stays quarantined (its lookup fails): only the store's own release
//!   can help it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sched_core::event::{Event, JobQuarantinedEvent};
use sched_core::job::{Job, TaskRef};
use sched_stores::{BoxJobStore, JobStore, QuarantinedJob, StoreError};

use crate::scheduler::Shared;
use crate::task::TaskFn;
use crate::{Scheduler, SchedulerError};

impl Scheduler {
    /// The quarantined jobs of every store, each with its store's name: jobs that could
    /// not run (their task is not registered, their arguments no longer deserialize, or the
    /// store cannot read them back), kept with the reason. See
    /// [`register_task`](Scheduler::register_task) for how they come back.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sched_runtime::SchedulerError> {
    /// let scheduler = sched_runtime::Scheduler::builder().build();
    /// for (store, job) in scheduler.quarantined_jobs().await? {
    ///     println!("{store}: {} ({})", job.id, job.reason);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Store`](SchedulerError::Store) when a store cannot be read.
    pub async fn quarantined_jobs(&self) -> Result<Vec<(String, QuarantinedJob)>, SchedulerError> {
        let mut out = Vec::new();
        for (name, store) in self.shared.stores().iter() {
            let jobs = store
                .quarantined_jobs()
                .await
                .map_err(|e| SchedulerError::store(name, e))?;
            out.extend(jobs.into_iter().map(|j| (name.clone(), j)));
        }
        Ok(out)
    }
}

/// Why `job` can never run as it is, if so: only named tasks are checked (a closure job
/// lives in memory with its closure).
pub(crate) fn unrunnable(sh: &Shared, job: &Job) -> Option<String> {
    unrunnable_as(job, &sh.resolve_task(&job.task))
}

/// [`unrunnable`] with the job's task resolved already.
fn unrunnable_as(job: &Job, task: &Result<TaskFn, String>) -> Option<String> {
    let TaskRef::Named { name, args } = &job.task else {
        return None;
    };
    match task {
        Err(message) => Some(message.clone()),
        Ok(task) => task
            .check_args(args)
            .err()
            .map(|e| format!("arguments of task {name:?} do not deserialize: {e}")),
    }
}

/// Quarantines `job` in `store` when it cannot run (`task`: its task, resolved). `Ok(true)`
/// when the job was set aside (or is gone) and must not fire; `Ok(false)` to fire it as
/// usual (it can run, or the store cannot quarantine).
pub(crate) async fn quarantine_if_unrunnable(
    sh: &Shared,
    store_name: &str,
    store: &BoxJobStore,
    job: &Job,
    task: &Result<TaskFn, String>,
) -> Result<bool, StoreError> {
    let Some(reason) = unrunnable_as(job, task) else {
        return Ok(false);
    };
    match store.quarantine_job(&job.id, &reason).await {
        Ok(()) => {}
        Err(StoreError::Unsupported { .. }) => return Ok(false),
        Err(e) if e.is_not_found() => return Ok(true),
        Err(e) => return Err(e),
    }
    tracing::warn!(job_id = %job.id, store = store_name, reason = %reason, "job quarantined");
    sh.emit(Event::Quarantined(JobQuarantinedEvent::new(
        job.id.clone(),
        store_name,
        reason,
    )));
    Ok(true)
}

/// When a task was registered since the last look: releases every quarantined job that can
/// run now, in every store (ops lock held per store). Returns the stores that failed; the
/// look is then done again at the next pass.
pub(crate) async fn release_runnable(sh: &Arc<Shared>) -> Vec<(String, StoreError)> {
    if !sh.release_check.swap(false, Ordering::SeqCst) {
        return Vec::new();
    }
    let mut errors = Vec::new();
    for (name, store) in sh.stores().iter() {
        let _ops = sh.ops.lock().await;
        if let Err(e) = release_in(sh, name, store).await {
            errors.push((name.clone(), e));
        }
    }
    if !errors.is_empty() {
        sh.release_check.store(true, Ordering::SeqCst);
    }
    errors
}

async fn release_in(sh: &Shared, name: &str, store: &BoxJobStore) -> Result<(), StoreError> {
    for q in store.quarantined_jobs().await? {
        // A record the store itself cannot read back fails here; it stays aside.
        let Ok(Some(job)) = store.lookup_job(&q.id).await else {
            continue;
        };
        if !matches!(job.task, TaskRef::Named { .. }) || unrunnable(sh, &job).is_some() {
            continue;
        }
        match store.release_job(&q.id).await {
            Ok(job) => {
                tracing::info!(job_id = %job.id, store = name, next_run_time = ?job.next_run_time, "job released from quarantine");
            }
            Err(StoreError::Unsupported { .. }) => return Ok(()),
            Err(e) if e.is_not_found() || matches!(e, StoreError::Serialization { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
