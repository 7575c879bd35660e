//! Several nodes on one store: claims with fenced leases, and fires created once.
//!
//! [`LeaseStore`] is a capability trait beside [`JobStore`]: a store that several scheduler
//! processes can share implements it (PostgreSQL, MySQL/MariaDB, Redis); the single-node
//! path never calls it and a store that does not implement it is unchanged.
//!
//! # Ground rules
//! - **A claim** is a lease on one job for one node, until a deadline measured on the
//!   **store's clock** (PostgreSQL `now()`/`clock_timestamp()`, MySQL `NOW(6)`, Redis
//!   `TIME`), so the nodes' clocks never decide who owns a job. Only a job that is due (its
//!   next run time at or before the caller's `up_to`), not quarantined, and not leased to
//!   anyone until later than the store's now can be claimed.
//! - **The epoch** is a per-job claim counter, incremented by every claim and never reset
//!   (releasing keeps it). Every later write for the claim — [`commit_fires`]
//!   (create the fires, advance the next run time), [`renew`], [`release`] — names the epoch
//!   and the node, and checks that the lease is still theirs and unexpired on the store's
//!   clock. A write that matches nothing means the claim was lost; it changes nothing.
//! - **A fire** is identified by `(job id, scheduled time)`. Creating it is idempotent (a
//!   unique key in SQL, `HSETNX` in Redis): whatever the leases say, one `(job, slot)` is
//!   created at most once across every node, and only the node whose
//!   [`commit_fires`] created it may run it. The fire's identity, as
//!   [`FireId::idempotency_key`], is what a job uses to make its side effects idempotent.
//! - The fires, the advanced job and the lease release are written in one transaction (one
//!   script on Redis): either all of them or, when the claim was lost, none.
//!
//! # The guarantee, in plain words
//! Each `(job, scheduled time)` fire is *created* at most once in the whole cluster, and a
//! node runs only the fires it created. A node that crashes after creating a fire and before
//! its body finished leaves that fire created and not finished: it is not run again, so its
//! side effects happened at most once — or not at all, or partly. A job that must not lose
//! such a fire records its progress under the idempotency key. A crashed node's claims are
//! taken over when their lease ends (at most one lease after its last renewal); the node
//! that takes a job over gets it as stored, so the missed slots are computed (with the
//! job's misfire and coalescing policy) from the *stored* next run time. A claim is held
//! only from [`claim_due`](LeaseStore::claim_due) to [`commit_fires`]; the run itself is
//! tracked by its fire record.
//!
//! What is **not** yet enforced here: max_instances across nodes (fires record their start
//! and finish, but nothing counts running fires before creating a new one), pruning of old
//! fire records and of the lease records of removed jobs, a registry of nodes, and change
//! notifications. The scheduler runtime does not use this trait yet; see `docs/cluster.md`.
//!
//! [`commit_fires`]: LeaseStore::commit_fires
//! [`renew`]: LeaseStore::renew
//! [`release`]: LeaseStore::release

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};

use crate::{JobStore, StoreError};

#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod sql;

#[cfg(feature = "redis")]
mod redis;

/// A job claimed by a node: the job as stored when it was claimed, the claim's epoch and
/// when its lease ends on the store's clock.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The job, as stored when it was claimed (its `next_run_time` is the stored one).
    pub job: Job,
    /// The claim counter of the job after this claim: every later write must name it.
    pub epoch: i64,
    /// When the lease ends, on the store's clock.
    pub expires_at: DateTime<Utc>,
}

/// The identity of one fire: a job and the time it was scheduled for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FireId {
    /// The job.
    pub job: JobId,
    /// The scheduled time (whole microseconds, as stored).
    pub scheduled: DateTime<Utc>,
}

impl FireId {
    /// A fire of `job` scheduled at `scheduled` (truncated to whole microseconds, as stored).
    pub fn new(job: JobId, scheduled: DateTime<Utc>) -> FireId {
        let scheduled = from_micros(scheduled.timestamp_micros());
        FireId { job, scheduled }
    }

    /// `"<job id>@<scheduled time in µs since the epoch>"`: the same text on every node,
    /// for a job to make its side effects idempotent.
    pub fn idempotency_key(&self) -> String {
        format!("{}@{}", self.job, self.scheduled.timestamp_micros())
    }
}

impl fmt::Display for FireId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.idempotency_key())
    }
}

/// What [`LeaseStore::commit_fires`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commit {
    /// The claim held: these fires were created by this call (slots created before, by any
    /// node, are left out and must not run), the job was written and the lease released.
    Committed {
        /// The fires this call created, in the order given.
        created: Vec<FireId>,
    },
    /// The lease was not this node's epoch any more, or had expired: nothing was written.
    Lost,
}

/// A store that several scheduler nodes can share: claims with fenced leases on the store's
/// clock, and fires created once. See the [module docs](self) for the rules and guarantee.
///
/// `node` is a node's id: any text, unique per running process.
///
/// # Cancel safety
/// Every write is one transaction or one script: dropping a future applies all of it or
/// none of it, as for [`JobStore`].
pub trait LeaseStore: JobStore {
    /// The store's clock, now.
    fn store_time(&self) -> impl Future<Output = Result<DateTime<Utc>, StoreError>> + Send;

    /// Claims at most `limit` jobs due at or before `up_to` (by `(next_run_time, id)`) that
    /// are not quarantined and not leased (or whose lease has ended on the store's clock),
    /// for `node`, until the store's now plus `lease`. Jobs locked by a concurrent claim are
    /// skipped, not waited for. A job whose stored text cannot be read is left claimed and
    /// is not returned (its lease expires; the single-node readers quarantine it).
    fn claim_due(
        &self,
        node: &str,
        up_to: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Claim>, StoreError>> + Send;

    /// Extends every unexpired lease of `node` to the store's now plus `lease`; the number
    /// of claims extended. An expired lease is not revived: its claim is lost.
    fn renew(
        &self,
        node: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// With the claim `(node, job.id, epoch)` still held: creates the fires of `slots`
    /// (idempotently: a slot created before is left out of the answer), writes `job` (its
    /// advanced next run time) and releases the lease, all at once. When the claim is lost,
    /// writes nothing and answers [`Commit::Lost`].
    fn commit_fires(
        &self,
        node: &str,
        epoch: i64,
        slots: &[DateTime<Utc>],
        job: &Job,
    ) -> impl Future<Output = Result<Commit, StoreError>> + Send;

    /// Records the outcome of a fire that `node` created under `epoch`; `false` when no
    /// such fire exists (it was created by another claim).
    fn finish_fire(
        &self,
        node: &str,
        epoch: i64,
        fire: &FireId,
        outcome: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Releases the claim `(node, id, epoch)` without writing the job; `false` when it was
    /// not held any more.
    fn release(
        &self,
        node: &str,
        id: &JobId,
        epoch: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Releases every claim of `node` (a graceful shutdown); how many were released.
    fn release_all(&self, node: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A time from whole microseconds since the epoch (saturating far outside the range).
pub(crate) fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(if micros < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// A lease length in whole microseconds, at least one.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
pub(crate) fn lease_micros(lease: Duration) -> i64 {
    i64::try_from(lease.as_micros()).unwrap_or(i64::MAX).max(1)
}
