//! The [`JobStore`] contract.

use std::future::Future;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};

use crate::StoreError;

/// Where a scheduler keeps its jobs.
///
/// Implementors write plain `async fn`s; the methods are declared as returning
/// `impl Future + Send` so the scheduler can call them from any task. The store is the
/// source of truth for every job and its next run time: the dispatcher reads due jobs from
/// it and writes each job's advanced next run time back **before** running it.
///
/// # Ordering
/// "Ordered by next run time" means by `(next_run_time, id)` ascending, so jobs due at the
/// same instant come out in a stable order. Paused jobs (`next_run_time == None`) are never
/// due and never count for [`next_run_time`](JobStore::next_run_time).
///
/// # Cancel safety
/// Dropping a returned future before it completes may or may not have applied a write, and
/// never applies half of one: a job is either written whole or not at all. Readers are
/// cancel safe. The scheduler drops store futures only when it shuts down.
///
/// # Errors
/// Every method may fail with [`StoreError::Unavailable`] (transient) when the backend
/// cannot be reached; the other errors are listed per method.
pub trait JobStore: Send + Sync + 'static {
    /// Adds a new job.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when a job with the same id exists (the stored job is left
    /// unchanged); [`StoreError::Serialization`] when this store persists jobs and the job
    /// is not persistable.
    fn add_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the stored job that has `job.id` with `job` (next run time included).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no job has that id; [`StoreError::Serialization`] as for
    /// [`add_job`](JobStore::add_job).
    fn update_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes a job.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no job has that id.
    fn remove_job(&self, id: &JobId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes every job.
    fn remove_all_jobs(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The job with this id, if any.
    ///
    /// # Errors
    /// [`StoreError::Serialization`] when the stored job cannot be read back.
    fn lookup_job(
        &self,
        id: &JobId,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;

    /// At most `limit` jobs whose next run time is at or before `up_to`, ordered by
    /// `(next_run_time, id)`; paused jobs are excluded.
    ///
    /// # Errors
    /// [`StoreError::Serialization`] when a stored job cannot be read back.
    fn due_jobs(
        &self,
        up_to: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// The earliest next run time of any job, `None` when no job is scheduled.
    fn next_run_time(
        &self,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// Every job: scheduled ones ordered by `(next_run_time, id)`, then paused ones by id.
    ///
    /// # Errors
    /// [`StoreError::Serialization`] when a stored job cannot be read back.
    fn all_jobs(&self) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// Whether jobs outlive the process (and so must be persistable). Default `false`.
    fn is_persistent(&self) -> bool {
        false
    }
}
