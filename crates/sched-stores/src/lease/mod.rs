//! Several nodes on one store: claims with fenced leases, fires created once, a registry
//! of nodes, adoption of a lapsed node's fires, and change notifications.
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
//! - **max_instances** holds across the cluster: a commit creates its slots' fires only
//!   while the job has fewer than `max_instances` unfinished fires on all nodes together
//!   (counted in the same transaction, under the job's lease); otherwise it answers
//!   [`Commit::Refused`], still writing the advanced job and releasing the lease.
//! - **Nodes** register and renew with [`heartbeat`](LeaseStore::heartbeat): a registration
//!   ends `ttl` after the last heartbeat on the store's clock. A node whose registration
//!   ended is *lapsed*: its unfinished fires may be adopted by live nodes, and its next
//!   heartbeat tells it so ([`Heartbeat::lapsed`]) and hands every unfinished fire it still
//!   holds over to adoption, so it must cancel the runs it still has.
//! - **Adoption** ([`adopt_fires`](LeaseStore::adopt_fires)) takes only fires that no live
//!   node runs: those of a node whose registration has ended on the store's clock, and
//!   those handed over by a lapsed heartbeat or an unregistration (their node is `""`).
//!   Fires of a node that never registered are never adopted (such a node is not in
//!   cluster mode), so a live node's fires cannot be taken. The adopter must be alive
//!   itself. Each adopted fire gets a new epoch, so the previous holder's finish is refused,
//!   and one script or one `FOR UPDATE SKIP LOCKED` statement reassigns it, so two
//!   adopters never get the same fire. A registration is pruned only once none of its
//!   fires is unfinished, so a crashed node's fires stay adoptable until they are taken.
//! - **Notifications** ([`notify_changed`](LeaseStore::notify_changed),
//!   [`changes`](LeaseStore::changes)) are wake-up hints only (PostgreSQL `LISTEN/NOTIFY`,
//!   Redis pub/sub; none on MySQL/MariaDB): polling stays the safety net.
//!
//! # The guarantee, in plain words
//! Each `(job, scheduled time)` fire is *created* at most once in the whole cluster, and a
//! node runs only the fires it created or adopted. A node that crashes (or stalls longer
//! than its registration) after creating a fire and before its body finished leaves that
//! fire created and not finished; once its registration has ended, another node adopts the
//! fire and runs it **again, under the same idempotency key**. So a fire's side effects
//! happen **at least once**: normally once, twice (or partly, then once) when its node died
//! or stalled mid-run. A job that must not repeat a side effect records its progress under
//! [`FireId::idempotency_key`]. A crashed node's claims are taken over when their lease
//! ends (at most one lease after its last renewal); the node that takes a job over gets it
//! as stored, so the missed slots are computed (with the job's misfire and coalescing
//! policy) from the *stored* next run time. A claim is held only from
//! [`claim_due`](LeaseStore::claim_due) to [`commit_fires`]; the run itself is tracked by
//! its fire record. Finished fires, ended leases of removed jobs and old registrations are
//! deleted by [`prune`](LeaseStore::prune).
//!
//! [`BoxLeaseStore`] erases the store's type for the runtime, and gives a
//! [`BoxJobStore`](crate::BoxJobStore) view of the same store. The backends' tables and keys
//! are described in `docs/cluster.md`.
//!
//! [`commit_fires`]: LeaseStore::commit_fires
//! [`renew`]: LeaseStore::renew
//! [`release`]: LeaseStore::release

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures_core::Stream;
use sched_core::job::{Job, JobId};

use crate::{JobStore, StoreError};

mod boxed;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod feed;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod sql;

pub use boxed::BoxLeaseStore;

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

/// What [`LeaseStore::commit_fires`] (or one item of [`LeaseStore::commit_many`]) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commit {
    /// The claim held: these fires were created by this call (slots created before, by any
    /// node, are left out and must not run), the job was written and the lease released.
    Committed {
        /// The fires this call created, in the order given.
        created: Vec<FireId>,
    },
    /// The claim held, but the job already had `max_instances` unfinished fires in the
    /// cluster (on any node): the job (its advanced schedule) was written and the lease
    /// released, and no fire was created. All slots of one commit count as one submission:
    /// they are all created or all refused. The runtime reports the max-instances event.
    Refused,
    /// The lease was not this node's epoch any more, or had expired: nothing was written.
    Lost,
}

/// Who a node is, as it registers with [`LeaseStore::heartbeat`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's id: unique per running process, never empty.
    pub id: String,
    /// The host it runs on (for operators).
    pub host: String,
    /// Its process id (for operators).
    pub pid: u32,
    /// When it started, on its own clock.
    pub started_at: DateTime<Utc>,
}

/// A node as the store lists it ([`LeaseStore::nodes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node's id.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started, on its own clock.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat, on the store's clock.
    pub heartbeat_at: DateTime<Utc>,
    /// When its registration ends unless renewed, on the store's clock.
    pub expires_at: DateTime<Utc>,
    /// The node's clock minus the store's clock at its last heartbeat (positive: the node
    /// is ahead). Includes the one-way latency of the heartbeat call.
    pub clock_skew: TimeDelta,
    /// Whether `expires_at` is after the store's now when listed.
    pub alive: bool,
}

/// What a heartbeat found ([`LeaseStore::heartbeat`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// The store's clock when the heartbeat was written.
    pub store_time: DateTime<Utc>,
    /// When the registration ends unless renewed, on the store's clock.
    pub expires_at: DateTime<Utc>,
    /// The node's previous registration had expired (or it had none): its unfinished fires
    /// may have been adopted by others, so it must cancel the runs it still has. The
    /// heartbeat hands every unfinished fire the node holds over to adoption (their `node`
    /// becomes `""`), so the node's own finishes of them are refused and another node runs
    /// them again.
    ///
    /// Which runs: every run whose commit returned before this heartbeat call was made
    /// (its fire was created before the heartbeat, so it is handed over). A run whose commit
    /// was in flight during the heartbeat may be either: keeping it is safe (at worst it
    /// runs twice, and its finish answers `false` if it was handed over); cancelling it and
    /// recording it finished could lose a fire created after the heartbeat.
    pub lapsed: bool,
}

/// A fire still running: created, not finished ([`LeaseStore::running_fires`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningFire {
    /// The fire.
    pub fire: FireId,
    /// The node that runs it; `""` while it waits for adoption (its node lapsed or left).
    pub node: String,
    /// The epoch its finish must name.
    pub epoch: i64,
    /// When it was created, on the store's clock.
    pub created_at: DateTime<Utc>,
}

/// An unfinished fire taken over from a node whose registration expired
/// ([`LeaseStore::adopt_fires`]).
#[derive(Clone, Debug)]
pub struct Adopted {
    /// The fire: run it (again) under its idempotency key.
    pub fire: FireId,
    /// The new epoch its finish must name (the previous holder's finish is refused).
    pub epoch: i64,
    /// The job as stored now; `None` when it was removed since (or its stored text cannot
    /// be read): record the fire finished without running it.
    pub job: Option<Job>,
}

/// One item of [`LeaseStore::commit_many`]: what [`LeaseStore::commit_fires`] takes.
#[derive(Clone, Copy, Debug)]
pub struct CommitRequest<'a> {
    /// The claim's epoch.
    pub epoch: i64,
    /// The slots whose fires to create.
    pub slots: &'a [DateTime<Utc>],
    /// The job with its advanced next run time.
    pub job: &'a Job,
}

/// One item of [`LeaseStore::finish_fires`]: what [`LeaseStore::finish_fire`] takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The epoch that created (or adopted) the fire.
    pub epoch: i64,
    /// The fire.
    pub fire: FireId,
    /// The outcome to record (free text, such as `"ok"` or an error message).
    pub outcome: String,
}

/// Notifications that the jobs changed ([`LeaseStore::changes`]): yields `()` for each
/// notification from any node (several close together may come out as one), and one `()`
/// after reconnecting, since notifications may have been missed meanwhile. It ends only
/// when the store is closed. It is a [`futures_core::Stream`], the trait `futures::Stream`
/// re-exports.
pub type ChangeFeed = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// A store that several scheduler nodes can share: claims with fenced leases on the store's
/// clock, fires created once, a registry of nodes, adoption of a lapsed node's fires, and
/// change notifications. See the [module docs](self) for the rules and guarantee.
///
/// `node` is a node's id: any non-empty text, unique per running process (an empty id is
/// refused with [`StoreError::InvalidArgument`]).
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
    /// (idempotently: a slot created before is left out of the answer) unless the job has
    /// `max_instances` unfinished fires in the cluster already ([`Commit::Refused`]), writes
    /// `job` (its advanced next run time) and releases the lease, all at once. When the
    /// claim is lost, writes nothing and answers [`Commit::Lost`]. One item of
    /// [`commit_many`](LeaseStore::commit_many).
    fn commit_fires(
        &self,
        node: &str,
        epoch: i64,
        slots: &[DateTime<Utc>],
        job: &Job,
    ) -> impl Future<Output = Result<Commit, StoreError>> + Send {
        async move {
            let batch = [CommitRequest { epoch, slots, job }];
            let mut answers = self.commit_many(node, &batch).await?;
            Ok(answers.pop().unwrap_or(Commit::Lost))
        }
    }

    /// Records the outcome of a fire that `node` holds under `epoch` (created, or adopted);
    /// `false` when it holds no such unfinished fire (another claim created it, another
    /// node adopted it, or it was finished already). One item of
    /// [`finish_fires`](LeaseStore::finish_fires).
    fn finish_fire(
        &self,
        node: &str,
        epoch: i64,
        fire: &FireId,
        outcome: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let done = [Finished {
                epoch,
                fire: fire.clone(),
                outcome: outcome.to_owned(),
            }];
            Ok(self.finish_fires(node, &done).await? > 0)
        }
    }

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

    /// Registers `node` or renews its registration: `heartbeat_at` = the store's now,
    /// `expires_at` = the store's now + `ttl`, `clock_skew` = `node_now` − the store's now.
    /// When the previous registration had expired (or there was none), answers
    /// [`Heartbeat::lapsed`] and hands the node's unfinished fires over to adoption.
    fn heartbeat(
        &self,
        node: &NodeInfo,
        node_now: DateTime<Utc>,
        ttl: Duration,
    ) -> impl Future<Output = Result<Heartbeat, StoreError>> + Send;

    /// Every registered node, alive or not (expired registrations stay listed until
    /// [`prune`](LeaseStore::prune) removes them), by id.
    fn nodes(&self) -> impl Future<Output = Result<Vec<NodeRecord>, StoreError>> + Send;

    /// Removes `node`'s registration (a graceful shutdown, after
    /// [`release_all`](LeaseStore::release_all) and after its runs finished): its unfinished
    /// fires, if any are left, are handed over to adoption at once. `false` when it was not
    /// registered.
    fn unregister_node(&self, node: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every fire created and not finished, on any node, by creation time.
    fn running_fires(&self) -> impl Future<Output = Result<Vec<RunningFire>, StoreError>> + Send;

    /// Takes over at most `limit` unfinished fires that no live node runs, for `node`, which
    /// must be registered and alive (otherwise nothing is adopted): fires whose node's
    /// registration has expired on the store's clock, and fires handed over to adoption by
    /// a lapsed heartbeat or an unregistration (node `""`). Fires of a node that never
    /// registered are never adopted, so a live node's fires are never taken. Each is
    /// reassigned atomically to `node` with its epoch incremented (the previous holder's
    /// finish is refused) and returned with the job as stored, oldest first; two concurrent
    /// adopters never get the same fire. The runtime runs each again under the same
    /// idempotency key (at least once).
    fn adopt_fires(
        &self,
        node: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Adopted>, StoreError>> + Send;

    /// [`commit_fires`](LeaseStore::commit_fires) for many claims in one transaction (one
    /// script on Redis): one answer per item, in order; an item that is lost or refused does
    /// not affect the others. A job named twice in one batch is committed by its first item;
    /// the later ones answer [`Commit::Lost`] (the first released the lease).
    ///
    /// # Errors
    /// [`StoreError::Serialization`] naming the job when one cannot be encoded (nothing is
    /// written then).
    fn commit_many(
        &self,
        node: &str,
        batch: &[CommitRequest<'_>],
    ) -> impl Future<Output = Result<Vec<Commit>, StoreError>> + Send;

    /// [`finish_fire`](LeaseStore::finish_fire) for many fires in one round trip; how many
    /// were recorded.
    fn finish_fires(
        &self,
        node: &str,
        done: &[Finished],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Housekeeping: deletes finished fires whose finish is before `finished_before` (on the
    /// store's clock: take [`store_time`](LeaseStore::store_time) minus the retention), the
    /// ended lease records of jobs that no longer exist, and the registrations of nodes that
    /// expired before `finished_before` and have no unfinished fire left (so a crashed
    /// node's fires stay adoptable); at most `limit` rows of each kind per call. Never
    /// deletes an unfinished fire. The number of records deleted.
    fn prune(
        &self,
        finished_before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Tells the other nodes that the jobs changed, as a wake-up hint: PostgreSQL
    /// `pg_notify` on a channel named after the schema and prefix, Redis `PUBLISH` on
    /// `<prefix>changes`. One message per call, never per row: callers debounce.
    /// MySQL/MariaDB have no notifications: `Ok(())` and nothing happens (polling only).
    fn notify_changed(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A feed of the notifications of [`notify_changed`](LeaseStore::notify_changed) from
    /// any node (this one included), on a connection of its own that reconnects by itself;
    /// `None` on MySQL/MariaDB (polling only). The subscription is in place when this
    /// returns, so a notification sent afterwards is delivered.
    fn changes(&self) -> impl Future<Output = Result<Option<ChangeFeed>, StoreError>> + Send;
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
/// `node` as a node id: refused when empty (`""` marks fires waiting for adoption).
pub(crate) fn check_node(node: &str) -> Result<(), StoreError> {
    if node.is_empty() {
        return Err(StoreError::invalid_argument(
            "a node id must not be empty (\"\" marks fires waiting for adoption)",
        ));
    }
    Ok(())
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
