//! The runtime's erasure of [`LeaseStore`]: one boxed future per call, and a [`JobStore`]
//! view of the same store for the scheduler's store list. (To be replaced by the stores'
//! own erasure once they have one.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};
use sched_stores::{Claim, Commit, FireId, JobStore, LeaseStore, QuarantinedJob, StoreError};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe mirror of the [`LeaseStore`] methods the runtime calls.
pub(crate) trait DynLease: Send + Sync + 'static {
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
        fire: &'a FireId,
        outcome: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn release<'a>(
        &'a self,
        node: &'a str,
        id: &'a JobId,
        epoch: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn release_all<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
}

impl<S: LeaseStore> DynLease for S {
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
        fire: &'a FireId,
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
}

/// A store shared between the scheduler's store list (as a [`JobStore`]) and the cluster
/// dispatcher (as a [`DynLease`]).
pub(crate) struct SharedStore<S>(pub(crate) Arc<S>);

impl<S: JobStore> JobStore for SharedStore<S> {
    fn add_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.add_job(job)
    }
    fn update_job(&self, job: Job) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.update_job(job)
    }
    fn remove_job(&self, id: &JobId) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.remove_job(id)
    }
    fn remove_all_jobs(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.remove_all_jobs()
    }
    fn lookup_job(
        &self,
        id: &JobId,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send {
        self.0.lookup_job(id)
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
    fn quarantine_job(
        &self,
        id: &JobId,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.quarantine_job(id, reason)
    }
    fn quarantined_jobs(
        &self,
    ) -> impl Future<Output = Result<Vec<QuarantinedJob>, StoreError>> + Send {
        self.0.quarantined_jobs()
    }
    fn release_job(&self, id: &JobId) -> impl Future<Output = Result<Job, StoreError>> + Send {
        self.0.release_job(id)
    }
}
