//! Type erasure for [`JobStore`]: the one place where the `impl Future` methods become boxed
//! futures, so a scheduler can hold stores of different types by name.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};

use crate::{JobStore, QuarantinedJob, ScheduleChange, ScheduleWrite, StoreError};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe mirror of [`JobStore`], implemented for every store.
trait DynJobStore: Send + Sync + 'static {
    fn add_job(&self, job: Job) -> BoxFuture<'_, Result<(), StoreError>>;
    fn update_job(&self, job: Job) -> BoxFuture<'_, Result<(), StoreError>>;
    fn advance_job<'a>(
        &'a self,
        job: &'a Job,
        next_run_time: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn remove_job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), StoreError>>;
    fn advance_jobs<'a>(
        &'a self,
        changes: &'a [ScheduleChange<'a>],
    ) -> BoxFuture<'a, ScheduleWrite>;
    fn remove_all_jobs(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    fn lookup_job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<Job>, StoreError>>;
    fn due_jobs(
        &self,
        up_to: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Job>, StoreError>>;
    fn next_run_time(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>>;
    fn all_jobs(&self) -> BoxFuture<'_, Result<Vec<Job>, StoreError>>;
    fn is_persistent(&self) -> bool;
    fn type_name(&self) -> &'static str;
    fn add_jobs(&self, jobs: Vec<Job>) -> BoxFuture<'_, Result<(), StoreError>>;
    fn quarantine_job<'a>(
        &'a self,
        id: &'a JobId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn quarantined_jobs(&self) -> BoxFuture<'_, Result<Vec<QuarantinedJob>, StoreError>>;
    fn release_job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Job, StoreError>>;
}

impl<S: JobStore> DynJobStore for S {
    fn add_job(&self, job: Job) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(JobStore::add_job(self, job))
    }
    fn update_job(&self, job: Job) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(JobStore::update_job(self, job))
    }
    fn advance_job<'a>(
        &'a self,
        job: &'a Job,
        next_run_time: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(JobStore::advance_job(self, job, next_run_time))
    }
    fn remove_job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(JobStore::remove_job(self, id))
    }
    fn advance_jobs<'a>(
        &'a self,
        changes: &'a [ScheduleChange<'a>],
    ) -> BoxFuture<'a, ScheduleWrite> {
        Box::pin(JobStore::advance_jobs(self, changes))
    }
    fn remove_all_jobs(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(JobStore::remove_all_jobs(self))
    }
    fn lookup_job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Option<Job>, StoreError>> {
        Box::pin(JobStore::lookup_job(self, id))
    }
    fn due_jobs(
        &self,
        up_to: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(JobStore::due_jobs(self, up_to, limit))
    }
    fn next_run_time(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>> {
        Box::pin(JobStore::next_run_time(self))
    }
    fn all_jobs(&self) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(JobStore::all_jobs(self))
    }
    fn is_persistent(&self) -> bool {
        JobStore::is_persistent(self)
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<S>()
    }
    fn add_jobs(&self, jobs: Vec<Job>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(JobStore::add_jobs(self, jobs))
    }
    fn quarantine_job<'a>(
        &'a self,
        id: &'a JobId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(JobStore::quarantine_job(self, id, reason))
    }
    fn quarantined_jobs(&self) -> BoxFuture<'_, Result<Vec<QuarantinedJob>, StoreError>> {
        Box::pin(JobStore::quarantined_jobs(self))
    }
    fn release_job<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Job, StoreError>> {
        Box::pin(JobStore::release_job(self, id))
    }
}

/// Any [`JobStore`], behind a shared pointer: what a scheduler holds for each named store.
///
/// Cloning shares the same store. Each call allocates one boxed future.
///
/// ```
/// use sched_stores::{BoxJobStore, JobStore, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = BoxJobStore::new(MemoryStore::new());
/// assert_eq!(store.next_run_time().await?, None);
/// # Ok::<(), sched_stores::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct BoxJobStore(Arc<dyn DynJobStore>);

impl BoxJobStore {
    /// Erases the type of `store`.
    pub fn new<S: JobStore>(store: S) -> BoxJobStore {
        BoxJobStore(Arc::new(store))
    }

    /// Erases the type of a shared store (the same store as every other holder of `store`).
    pub(crate) fn from_arc<S: JobStore>(store: Arc<S>) -> BoxJobStore {
        BoxJobStore(store)
    }
}

impl fmt::Debug for BoxJobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BoxJobStore")
            .field(&self.0.type_name())
            .finish()
    }
}

impl JobStore for BoxJobStore {
    fn add_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.add_job(job)
    }
    fn update_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.update_job(job)
    }
    async fn advance_job(
        &self,
        job: &Job,
        next_run_time: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.0.advance_job(job, next_run_time).await
    }
    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        self.0.remove_job(id).await
    }
    async fn advance_jobs(&self, changes: &[ScheduleChange<'_>]) -> ScheduleWrite {
        self.0.advance_jobs(changes).await
    }
    fn remove_all_jobs(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.remove_all_jobs()
    }
    async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        self.0.lookup_job(id).await
    }
    fn due_jobs(
        &self,
        up_to: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send {
        self.0.due_jobs(up_to, limit)
    }
    fn next_run_time(
        &self,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send {
        self.0.next_run_time()
    }
    fn all_jobs(&self) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send {
        self.0.all_jobs()
    }
    fn is_persistent(&self) -> bool {
        self.0.is_persistent()
    }
    fn add_jobs(&self, jobs: Vec<Job>) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.add_jobs(jobs)
    }
    async fn quarantine_job(&self, id: &JobId, reason: &str) -> Result<(), StoreError> {
        self.0.quarantine_job(id, reason).await
    }
    fn quarantined_jobs(
        &self,
    ) -> impl Future<Output = Result<Vec<QuarantinedJob>, StoreError>> + Send {
        self.0.quarantined_jobs()
    }
    async fn release_job(&self, id: &JobId) -> Result<Job, StoreError> {
        self.0.release_job(id).await
    }
}
