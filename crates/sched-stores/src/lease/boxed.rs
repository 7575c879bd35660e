//! Type erasure for [`LeaseStore`]: the runtime holds one [`BoxLeaseStore`] for a cluster
//! store, and a [`BoxJobStore`] view of the same store for everything single-node.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};

use super::{
    Adopted, ChangeFeed, Claim, Commit, CommitRequest, Finished, Heartbeat, LeaseStore, NodeInfo,
    NodeRecord, RunningFire,
};
use crate::{BoxJobStore, JobStore, QuarantinedJob, ScheduleChange, ScheduleWrite, StoreError};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe mirror of the [`LeaseStore`] methods, implemented for every lease store.
trait DynLeaseStore: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;
    fn store_time(&self) -> BoxFuture<'_, Result<DateTime<Utc>, StoreError>>;
    fn claim_due<'a>(
        &'a self,
        node: &'a str,
        up_to: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Claim>, StoreError>>;
    fn renew<'a>(
        &'a self,
        node: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
    fn commit_fires<'a>(
        &'a self,
        node: &'a str,
        epoch: i64,
        slots: &'a [DateTime<Utc>],
        job: &'a Job,
    ) -> BoxFuture<'a, Result<Commit, StoreError>>;
    fn finish_fire<'a>(
        &'a self,
        node: &'a str,
        epoch: i64,
        fire: &'a super::FireId,
        outcome: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn release<'a>(
        &'a self,
        node: &'a str,
        id: &'a JobId,
        epoch: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn release_all<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
    fn heartbeat<'a>(
        &'a self,
        node: &'a NodeInfo,
        node_now: DateTime<Utc>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Heartbeat, StoreError>>;
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeRecord>, StoreError>>;
    fn unregister_node<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn running_fires(&self) -> BoxFuture<'_, Result<Vec<RunningFire>, StoreError>>;
    fn adopt_fires<'a>(
        &'a self,
        node: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Adopted>, StoreError>>;
    fn commit_many<'a>(
        &'a self,
        node: &'a str,
        batch: &'a [CommitRequest<'a>],
    ) -> BoxFuture<'a, Result<Vec<Commit>, StoreError>>;
    fn finish_fires<'a>(
        &'a self,
        node: &'a str,
        done: &'a [Finished],
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
    fn prune(
        &self,
        finished_before: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;
    fn notify_changed(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    fn changes(&self) -> BoxFuture<'_, Result<Option<ChangeFeed>, StoreError>>;
}

impl<S: LeaseStore> DynLeaseStore for S {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<S>()
    }
    fn store_time(&self) -> BoxFuture<'_, Result<DateTime<Utc>, StoreError>> {
        Box::pin(LeaseStore::store_time(self))
    }
    fn claim_due<'a>(
        &'a self,
        node: &'a str,
        up_to: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Claim>, StoreError>> {
        Box::pin(LeaseStore::claim_due(self, node, up_to, lease, limit))
    }
    fn renew<'a>(
        &'a self,
        node: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(LeaseStore::renew(self, node, lease))
    }
    fn commit_fires<'a>(
        &'a self,
        node: &'a str,
        epoch: i64,
        slots: &'a [DateTime<Utc>],
        job: &'a Job,
    ) -> BoxFuture<'a, Result<Commit, StoreError>> {
        Box::pin(LeaseStore::commit_fires(self, node, epoch, slots, job))
    }
    fn finish_fire<'a>(
        &'a self,
        node: &'a str,
        epoch: i64,
        fire: &'a super::FireId,
        outcome: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(LeaseStore::finish_fire(self, node, epoch, fire, outcome))
    }
    fn release<'a>(
        &'a self,
        node: &'a str,
        id: &'a JobId,
        epoch: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(LeaseStore::release(self, node, id, epoch))
    }
    fn release_all<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(LeaseStore::release_all(self, node))
    }
    fn heartbeat<'a>(
        &'a self,
        node: &'a NodeInfo,
        node_now: DateTime<Utc>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Heartbeat, StoreError>> {
        Box::pin(LeaseStore::heartbeat(self, node, node_now, ttl))
    }
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeRecord>, StoreError>> {
        Box::pin(LeaseStore::nodes(self))
    }
    fn unregister_node<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(LeaseStore::unregister_node(self, node))
    }
    fn running_fires(&self) -> BoxFuture<'_, Result<Vec<RunningFire>, StoreError>> {
        Box::pin(LeaseStore::running_fires(self))
    }
    fn adopt_fires<'a>(
        &'a self,
        node: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Adopted>, StoreError>> {
        Box::pin(LeaseStore::adopt_fires(self, node, limit))
    }
    fn commit_many<'a>(
        &'a self,
        node: &'a str,
        batch: &'a [CommitRequest<'a>],
    ) -> BoxFuture<'a, Result<Vec<Commit>, StoreError>> {
        Box::pin(LeaseStore::commit_many(self, node, batch))
    }
    fn finish_fires<'a>(
        &'a self,
        node: &'a str,
        done: &'a [Finished],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(LeaseStore::finish_fires(self, node, done))
    }
    fn prune(
        &self,
        finished_before: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(LeaseStore::prune(self, finished_before, limit))
    }
    fn notify_changed(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(LeaseStore::notify_changed(self))
    }
    fn changes(&self) -> BoxFuture<'_, Result<Option<ChangeFeed>, StoreError>> {
        Box::pin(LeaseStore::changes(self))
    }
}

/// Any [`LeaseStore`], behind a shared pointer: what a cluster scheduler holds.
///
/// Cloning shares the same store. It is a [`JobStore`] too (every call delegates), and
/// [`as_job_store`](BoxLeaseStore::as_job_store) gives a [`BoxJobStore`] of the very same
/// store, so the scheduler keeps one store object for both roles. Each call allocates one
/// boxed future.
///
/// ```no_run
/// use sched_stores::{BoxLeaseStore, JobStore, LeaseStore};
/// use sched_stores::postgres::PostgresStore;
///
/// # async fn demo() -> Result<(), sched_stores::StoreError> {
/// let store = BoxLeaseStore::new(PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?);
/// let jobs = store.as_job_store(); // the same store, for the single-node paths
/// println!("store clock {}, next run {:?}", store.store_time().await?, jobs.next_run_time().await?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct BoxLeaseStore {
    lease: Arc<dyn DynLeaseStore>,
    jobs: BoxJobStore,
}

impl BoxLeaseStore {
    /// Erases the type of `store`.
    pub fn new<S: LeaseStore>(store: S) -> BoxLeaseStore {
        let store = Arc::new(store);
        BoxLeaseStore {
            jobs: BoxJobStore::from_arc(Arc::clone(&store)),
            lease: store,
        }
    }

    /// The same store as a [`BoxJobStore`] (a clone sharing it).
    pub fn as_job_store(&self) -> BoxJobStore {
        self.jobs.clone()
    }

    /// The same store as a [`BoxJobStore`].
    pub fn into_job_store(self) -> BoxJobStore {
        self.jobs
    }
}

impl fmt::Debug for BoxLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BoxLeaseStore")
            .field(&self.lease.type_name())
            .finish()
    }
}

impl JobStore for BoxLeaseStore {
    fn add_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.jobs.add_job(job)
    }
    fn update_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.jobs.update_job(job)
    }
    async fn advance_job(
        &self,
        job: &Job,
        next_run_time: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.jobs.advance_job(job, next_run_time).await
    }
    fn remove_job(&self, id: &JobId) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.jobs.remove_job(id)
    }
    async fn advance_jobs(&self, changes: &[ScheduleChange<'_>]) -> ScheduleWrite {
        self.jobs.advance_jobs(changes).await
    }
    fn remove_all_jobs(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.jobs.remove_all_jobs()
    }
    fn lookup_job(
        &self,
        id: &JobId,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send {
        self.jobs.lookup_job(id)
    }
    fn due_jobs(
        &self,
        up_to: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send {
        self.jobs.due_jobs(up_to, limit)
    }
    fn next_run_time(
        &self,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send {
        self.jobs.next_run_time()
    }
    fn all_jobs(&self) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send {
        self.jobs.all_jobs()
    }
    fn is_persistent(&self) -> bool {
        self.jobs.is_persistent()
    }
    fn add_jobs(&self, jobs: Vec<Job>) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.jobs.add_jobs(jobs)
    }
    fn quarantine_job(
        &self,
        id: &JobId,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.jobs.quarantine_job(id, reason)
    }
    fn quarantined_jobs(
        &self,
    ) -> impl Future<Output = Result<Vec<QuarantinedJob>, StoreError>> + Send {
        self.jobs.quarantined_jobs()
    }
    fn release_job(&self, id: &JobId) -> impl Future<Output = Result<Job, StoreError>> + Send {
        self.jobs.release_job(id)
    }
}

impl LeaseStore for BoxLeaseStore {
    async fn store_time(&self) -> Result<DateTime<Utc>, StoreError> {
        self.lease.store_time().await
    }
    async fn claim_due(
        &self,
        node: &str,
        up_to: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        self.lease.claim_due(node, up_to, lease, limit).await
    }
    async fn renew(&self, node: &str, lease: Duration) -> Result<u64, StoreError> {
        self.lease.renew(node, lease).await
    }
    async fn commit_fires(
        &self,
        node: &str,
        epoch: i64,
        slots: &[DateTime<Utc>],
        job: &Job,
    ) -> Result<Commit, StoreError> {
        self.lease.commit_fires(node, epoch, slots, job).await
    }
    async fn finish_fire(
        &self,
        node: &str,
        epoch: i64,
        fire: &super::FireId,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        self.lease.finish_fire(node, epoch, fire, outcome).await
    }
    async fn release(&self, node: &str, id: &JobId, epoch: i64) -> Result<bool, StoreError> {
        self.lease.release(node, id, epoch).await
    }
    async fn release_all(&self, node: &str) -> Result<u64, StoreError> {
        self.lease.release_all(node).await
    }
    async fn heartbeat(
        &self,
        node: &NodeInfo,
        node_now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Heartbeat, StoreError> {
        self.lease.heartbeat(node, node_now, ttl).await
    }
    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.lease.nodes().await
    }
    async fn unregister_node(&self, node: &str) -> Result<bool, StoreError> {
        self.lease.unregister_node(node).await
    }
    async fn running_fires(&self) -> Result<Vec<RunningFire>, StoreError> {
        self.lease.running_fires().await
    }
    async fn adopt_fires(&self, node: &str, limit: usize) -> Result<Vec<Adopted>, StoreError> {
        self.lease.adopt_fires(node, limit).await
    }
    async fn commit_many(
        &self,
        node: &str,
        batch: &[CommitRequest<'_>],
    ) -> Result<Vec<Commit>, StoreError> {
        self.lease.commit_many(node, batch).await
    }
    async fn finish_fires(&self, node: &str, done: &[Finished]) -> Result<u64, StoreError> {
        self.lease.finish_fires(node, done).await
    }
    async fn prune(&self, finished_before: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        self.lease.prune(finished_before, limit).await
    }
    async fn notify_changed(&self) -> Result<(), StoreError> {
        self.lease.notify_changed().await
    }
    async fn changes(&self) -> Result<Option<ChangeFeed>, StoreError> {
        self.lease.changes().await
    }
}
