//! The [`JobStore`] contract.

use std::future::Future;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};

use crate::{QuarantinedJob, StoreError};

/// Where a scheduler keeps its jobs.
///
/// Implementors write plain `async fn`s; the methods are declared as returning
/// `impl Future + Send` so the scheduler can call them from any task. The store is the
/// source of truth for every job and its next run time: the dispatcher reads due jobs from
/// it and writes each job's advanced next run time back **before** running it, a batch of
/// due jobs at a time ([`advance_jobs`](JobStore::advance_jobs)).
///
/// # Ordering
/// "Ordered by next run time" means by `(next_run_time, id)` ascending, so jobs due at the
/// same instant come out in a stable order. Paused jobs (`next_run_time == None`) are never
/// due and never count for [`next_run_time`](JobStore::next_run_time).
///
/// # Cancel safety
/// Dropping a returned future before it completes may or may not have applied a write, and
/// never applies half of one: a job is either written whole or not at all. Readers are
/// cancel safe (a reader that meets an unreadable record may have quarantined it, which
/// the next reader would do anyway). The scheduler drops store futures only when it shuts down.
///
/// # Quarantine
/// A quarantined job (see [`quarantine_job`](JobStore::quarantine_job)) keeps its id (adding
/// another job with it is a conflict), can be looked up, updated (it stays quarantined) and
/// removed, and is left out of [`due_jobs`](JobStore::due_jobs),
/// [`next_run_time`](JobStore::next_run_time) and [`all_jobs`](JobStore::all_jobs).
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
    ///
    /// # Cancel safety
    /// A write: if dropped before completion, the job is either fully written or untouched.
    fn add_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the stored job that has `job.id` with `job` (next run time included).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no job has that id; [`StoreError::Serialization`] as for
    /// [`add_job`](JobStore::add_job).
    ///
    /// # Cancel safety
    /// A write: if dropped before completion, the job is either fully written or untouched.
    fn update_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets the next run time of a job, as [`update_job`](JobStore::update_job) with
    /// `job` changed in that one field would: the job moves in the order of
    /// [`due_jobs`](JobStore::due_jobs) and [`next_run_time`](JobStore::next_run_time),
    /// `None` pauses it, and a quarantined job stays quarantined.
    ///
    /// Use it where a job read from the store (by [`due_jobs`](JobStore::due_jobs) or
    /// [`lookup_job`](JobStore::lookup_job)) only needs a new run time, as the dispatcher's
    /// fires do (through [`advance_jobs`](JobStore::advance_jobs), whose default calls
    /// this): a store may then change the time alone, in place, instead of
    /// writing the whole job again. `job` should be the job as stored: a store may write
    /// its other fields again (the default does) or keep the stored ones (the memory store
    /// does), so use [`update_job`](JobStore::update_job) to change anything else.
    ///
    /// The default clones `job`, sets the time and calls
    /// [`update_job`](JobStore::update_job).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no job has that id; otherwise as
    /// [`update_job`](JobStore::update_job).
    ///
    /// # Cancel safety
    /// A write: if dropped before completion, the job is either fully written or untouched.
    fn advance_job(
        &self,
        job: &Job,
        next_run_time: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let mut job = job.clone();
        job.next_run_time = next_run_time;
        self.update_job(job)
    }

    /// Removes a job.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no job has that id.
    ///
    /// # Cancel safety
    /// A write: if dropped before completion, the job is either removed or left as it was.
    fn remove_job(&self, id: &JobId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes the schedule changes of a batch of due jobs: for each change in order, what
    /// [`advance_job`](JobStore::advance_job) ([`ScheduleChange::Advance`]) or
    /// [`remove_job`](JobStore::remove_job) ([`ScheduleChange::Remove`]) would do. The
    /// dispatcher makes one call per batch of due jobs, before it starts any of their runs.
    ///
    /// A change whose job is gone (another process removed it) is reported as not found
    /// in [`ScheduleWrite::found`] and does not stop the others. Any other error stops the
    /// batch: it is returned in [`ScheduleWrite::error`], and the changes from
    /// `found.len()` on must be taken as not written (a store that writes the batch in one
    /// transaction reports none written when it fails, even if the failure came late).
    ///
    /// The default makes the single calls one after the other, stopping at the first error
    /// other than [`StoreError::NotFound`]; backends override it with one transaction or
    /// one script call per batch.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use sched_core::job::{Job, JobId, JobTrigger, TaskRef};
    /// use sched_core::{Trigger, Zone};
    /// use sched_stores::{JobStore, MemoryStore, ScheduleChange};
    /// # #[derive(Debug)] struct Never;
    /// # impl Trigger for Never {
    /// #     fn next_fire_time(&self, _: Option<chrono::DateTime<Utc>>, _: chrono::DateTime<Utc>) -> Option<chrono::DateTime<Utc>> { None }
    /// #     fn zone(&self) -> Zone { Zone::UTC }
    /// # }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let store = MemoryStore::new();
    /// let noon = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
    /// for id in ["a", "b"] {
    ///     let mut job = Job::new(JobId::new(id)?, TaskRef::named("t", ().into()), JobTrigger::dynamic(Never));
    ///     job.next_run_time = Some(noon);
    ///     store.add_job(job).await?;
    /// }
    /// let due = store.due_jobs(noon, 10).await?;
    /// let gone = JobId::new("gone")?;
    /// let write = store
    ///     .advance_jobs(&[
    ///         ScheduleChange::Advance { job: &due[0], next_run_time: Some(noon + chrono::Duration::hours(1)) },
    ///         ScheduleChange::Remove(&due[1].id),
    ///         ScheduleChange::Remove(&gone),
    ///     ])
    ///     .await;
    /// assert!(write.error.is_none());
    /// assert_eq!(write.found, [true, true, false]);
    /// assert_eq!(store.next_run_time().await?, Some(noon + chrono::Duration::hours(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Cancel safety
    /// If dropped before completion, some changes may have been written and others not;
    /// each change is written whole or not at all.
    fn advance_jobs(
        &self,
        changes: &[ScheduleChange<'_>],
    ) -> impl Future<Output = ScheduleWrite> + Send {
        async move {
            let mut write = ScheduleWrite {
                found: Vec::with_capacity(changes.len()),
                error: None,
            };
            for change in changes {
                let result = match *change {
                    ScheduleChange::Advance { job, next_run_time } => {
                        self.advance_job(job, next_run_time).await
                    }
                    ScheduleChange::Remove(id) => self.remove_job(id).await,
                };
                match result {
                    Ok(()) => write.found.push(true),
                    Err(StoreError::NotFound { .. }) => write.found.push(false),
                    Err(e) => {
                        write.error = Some(e);
                        break;
                    }
                }
            }
            write
        }
    }

    /// Removes every job.
    ///
    /// # Errors
    /// Only [`StoreError::Unavailable`].
    ///
    /// # Cancel safety
    /// If dropped before completion, some jobs may be removed and others not.
    fn remove_all_jobs(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The job with this id, if any (a quarantined job included).
    ///
    /// # Errors
    /// [`StoreError::Serialization`] when the stored job cannot be read back (a persistent
    /// store also quarantines it).
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    fn lookup_job(
        &self,
        id: &JobId,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;

    /// At most `limit` jobs whose next run time is at or before `up_to`, ordered by
    /// `(next_run_time, id)`; paused jobs are excluded.
    ///
    /// The limit bounds what one call returns (the dispatcher takes due jobs in batches, a
    /// SQL backend adds `LIMIT`), so a backlog of a million due jobs never has to be held at
    /// once.
    ///
    /// A persistent store quarantines a stored job it cannot read back and leaves it out,
    /// so one broken record never stops the others from running.
    ///
    /// # Errors
    /// [`StoreError::Serialization`] when a stored job cannot be read back (stores that do
    /// not quarantine).
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    fn due_jobs(
        &self,
        up_to: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// The earliest next run time of any job, `None` when no job is scheduled.
    ///
    /// # Errors
    /// Only [`StoreError::Unavailable`].
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    fn next_run_time(
        &self,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// Every job: scheduled ones ordered by `(next_run_time, id)`, then paused ones by id.
    /// Quarantined jobs are listed by [`quarantined_jobs`](JobStore::quarantined_jobs)
    /// instead; a stored job that cannot be read back is quarantined, as in
    /// [`due_jobs`](JobStore::due_jobs).
    ///
    /// # Errors
    /// [`StoreError::Serialization`] when a stored job cannot be read back (stores that do
    /// not quarantine).
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    fn all_jobs(&self) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// Whether jobs outlive the process (and so must be persistable). Default `false`.
    fn is_persistent(&self) -> bool {
        false
    }

    /// Adds several jobs: all of them, or none when one fails.
    ///
    /// Backends override this with one round trip per chunk (multi-row inserts in one
    /// transaction, one script call); the default adds the jobs one at a time and, when one
    /// fails, removes those it had added before returning the error.
    ///
    /// # Errors
    /// As [`add_job`](JobStore::add_job) for the first job that fails, including
    /// [`StoreError::Conflict`] for an id that is stored already or appears twice in `jobs`.
    fn add_jobs(&self, jobs: Vec<Job>) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let mut added = Vec::with_capacity(jobs.len());
            for job in jobs {
                let id = job.id.clone();
                if let Err(e) = self.add_job(job).await {
                    for id in &added {
                        // Best effort: the error being returned is the one that matters.
                        let _ = self.remove_job(id).await;
                    }
                    return Err(e);
                }
                added.push(id);
            }
            Ok(())
        }
    }

    /// Sets a job aside with a reason: it keeps its id and everything stored, but is no
    /// longer due, no longer counts for the next run time and is no longer listed by
    /// [`all_jobs`](JobStore::all_jobs); [`quarantined_jobs`](JobStore::quarantined_jobs)
    /// lists it. The runtime calls this when a job's task is not registered or its
    /// arguments no longer deserialize; a persistent store also quarantines, by itself, a
    /// stored job it cannot read back. Quarantining a quarantined job replaces the reason.
    /// Nothing is ever deleted: [`release_job`](JobStore::release_job) brings the job back.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no job has that id; [`StoreError::Unsupported`] from
    /// the default implementation.
    fn quarantine_job(
        &self,
        id: &JobId,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (id, reason);
        async {
            Err(StoreError::Unsupported {
                operation: "quarantine_job",
            })
        }
    }

    /// The quarantined jobs, by id, each with its reason and the text stored for it.
    ///
    /// The default returns none (a store that never quarantines).
    fn quarantined_jobs(
        &self,
    ) -> impl Future<Output = Result<Vec<QuarantinedJob>, StoreError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Takes a job out of quarantine after reading it back again, and returns it: it is
    /// due again from its stored next run time (the runtime applies the misfire policy to
    /// what was missed). Releasing a job that is not quarantined returns it unchanged.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no job has that id; [`StoreError::Serialization`] when
    /// it still cannot be read back (it stays quarantined, with the new reason);
    /// [`StoreError::Unsupported`] from the default implementation.
    fn release_job(&self, id: &JobId) -> impl Future<Output = Result<Job, StoreError>> + Send {
        let _ = id;
        async {
            Err(StoreError::Unsupported {
                operation: "release_job",
            })
        }
    }
}

/// One change to a due job's schedule, as the dispatcher writes it with
/// [`JobStore::advance_jobs`].
#[derive(Clone, Copy, Debug)]
pub enum ScheduleChange<'a> {
    /// Sets the next run time of `job`, as [`JobStore::advance_job`] does.
    Advance {
        /// The job as the store returned it (from [`JobStore::due_jobs`] or
        /// [`JobStore::lookup_job`]).
        job: &'a Job,
        /// The new next run time; `None` pauses the job.
        next_run_time: Option<DateTime<Utc>>,
    },
    /// Removes the job with this id (a job with no run left), as
    /// [`JobStore::remove_job`] does.
    Remove(&'a JobId),
}

/// What [`JobStore::advance_jobs`] did with a batch of [`ScheduleChange`]s.
#[derive(Debug, Default)]
pub struct ScheduleWrite {
    /// One entry per change written or found missing, in the order of the changes: `true`
    /// when it was written, `false` when no job had its id. Shorter than the batch when
    /// [`error`](ScheduleWrite::error) stopped it: take the changes past its end as not
    /// written (whether a commit that failed landed may not be known).
    pub found: Vec<bool>,
    /// The error that stopped the batch ([`StoreError::Unavailable`], or
    /// [`StoreError::Serialization`] for a job the store cannot write), if one did.
    pub error: Option<StoreError>,
}
