//! A blocking front for programs without async code.

use std::fmt;

use sched_core::event::{Event, EventMask};
use sched_core::job::{Job, JobChanges, JobId, JobSpec};
use tokio::runtime::Runtime;

use crate::{ListenerId, Scheduler, SchedulerBuilder, SchedulerError, ShutdownMode};

/// A [`Scheduler`] with its own tokio runtime, driven from synchronous code
/// (APScheduler's `BackgroundScheduler`): each method blocks the calling thread until done,
/// while the dispatcher and the jobs run on the runtime's threads.
///
/// Do not call its methods from inside an async context (they would block a runtime
/// thread); use [`scheduler`](BlockingScheduler::scheduler) there.
///
/// ```
/// use sched_runtime::{BlockingScheduler, Scheduler, ShutdownMode};
///
/// let scheduler = BlockingScheduler::new(Scheduler::builder())?;
/// scheduler.start()?;
/// assert!(scheduler.get_jobs()?.is_empty());
/// scheduler.shutdown(ShutdownMode::Wait);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BlockingScheduler {
    scheduler: Scheduler,
    runtime: Runtime,
}

impl fmt::Debug for BlockingScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingScheduler")
            .field("scheduler", &self.scheduler)
            .finish_non_exhaustive()
    }
}

impl BlockingScheduler {
    /// Builds the scheduler and a multi-threaded runtime for it.
    ///
    /// # Errors
    /// When the runtime cannot be created (the operating system refused threads).
    pub fn new(builder: SchedulerBuilder) -> std::io::Result<BlockingScheduler> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("sched")
            .build()?;
        Ok(BlockingScheduler {
            scheduler: builder.build(),
            runtime,
        })
    }

    /// The async handle, for async code and for jobs.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// See [`Scheduler::start`].
    ///
    /// # Errors
    /// As [`Scheduler::start`].
    pub fn start(&self) -> Result<(), SchedulerError> {
        self.runtime.block_on(self.scheduler.start())
    }

    /// See [`Scheduler::add_job`].
    ///
    /// # Errors
    /// As [`Scheduler::add_job`].
    pub fn add_job(&self, spec: JobSpec) -> Result<JobId, SchedulerError> {
        self.runtime.block_on(self.scheduler.add_job(spec))
    }

    /// See [`Scheduler::add_jobs`].
    ///
    /// # Errors
    /// As [`Scheduler::add_jobs`].
    pub fn add_jobs(
        &self,
        specs: impl IntoIterator<Item = JobSpec>,
    ) -> Result<Vec<JobId>, SchedulerError> {
        self.runtime.block_on(self.scheduler.add_jobs(specs))
    }

    /// See [`Scheduler::modify_job`].
    ///
    /// # Errors
    /// As [`Scheduler::modify_job`].
    pub fn modify_job(&self, id: &JobId, changes: JobChanges) -> Result<Job, SchedulerError> {
        self.runtime
            .block_on(self.scheduler.modify_job(id, changes))
    }

    /// See [`Scheduler::pause_job`].
    ///
    /// # Errors
    /// As [`Scheduler::pause_job`].
    pub fn pause_job(&self, id: &JobId) -> Result<Job, SchedulerError> {
        self.runtime.block_on(self.scheduler.pause_job(id))
    }

    /// See [`Scheduler::resume_job`].
    ///
    /// # Errors
    /// As [`Scheduler::resume_job`].
    pub fn resume_job(&self, id: &JobId) -> Result<Option<Job>, SchedulerError> {
        self.runtime.block_on(self.scheduler.resume_job(id))
    }

    /// See [`Scheduler::remove_job`].
    ///
    /// # Errors
    /// As [`Scheduler::remove_job`].
    pub fn remove_job(&self, id: &JobId) -> Result<(), SchedulerError> {
        self.runtime.block_on(self.scheduler.remove_job(id))
    }

    /// See [`Scheduler::get_job`].
    ///
    /// # Errors
    /// As [`Scheduler::get_job`].
    pub fn get_job(&self, id: &JobId) -> Result<Option<Job>, SchedulerError> {
        self.runtime.block_on(self.scheduler.get_job(id))
    }

    /// See [`Scheduler::get_jobs`].
    ///
    /// # Errors
    /// As [`Scheduler::get_jobs`].
    pub fn get_jobs(&self) -> Result<Vec<Job>, SchedulerError> {
        self.runtime.block_on(self.scheduler.get_jobs())
    }

    /// See [`Scheduler::run_job_now`].
    ///
    /// # Errors
    /// As [`Scheduler::run_job_now`].
    pub fn run_job_now(&self, id: &JobId) -> Result<(), SchedulerError> {
        self.runtime.block_on(self.scheduler.run_job_now(id))
    }

    /// See [`Scheduler::add_listener`].
    pub fn add_listener(
        &self,
        mask: impl Into<EventMask>,
        listener: impl Fn(&Event) + Send + Sync + 'static,
    ) -> ListenerId {
        self.scheduler.add_listener(mask, listener)
    }

    /// See [`Scheduler::run`]: starts, then blocks until another thread shuts it down.
    ///
    /// # Errors
    /// As [`Scheduler::start`].
    pub fn run(&self) -> Result<(), SchedulerError> {
        self.runtime.block_on(self.scheduler.run())
    }

    /// See [`Scheduler::shutdown`].
    pub fn shutdown(&self, mode: ShutdownMode) {
        self.runtime.block_on(self.scheduler.shutdown(mode));
    }
}
