//! Cluster mode: several scheduler processes share one store (PostgreSQL, MySQL/MariaDB,
//! Redis) and each fire runs once.
//!
//! A store given with [`SchedulerBuilder::cluster_store`] is an ordinary named store for
//! every handle operation (`add_job`, `modify_job`, `get_jobs`, ...). What changes is how the
//! dispatcher fires its due jobs: instead of reading them and writing their advanced run
//! time, it *claims* them through [`LeaseStore`] and commits each claim.
//!
//! # Ground rules
//! - **Adopt, claim, plan, commit, run.** Each pass first adopts the unfinished fires of
//!   nodes whose registration ended (`adopt_fires`) and runs them again under their
//!   idempotency key (a removed job's fire is recorded finished, not run). Then it claims
//!   due jobs (`claim_due`, at most [`ClusterOptions::claim_batch`] per store call, a lease
//!   of [`ClusterOptions::lease`] on the store's clock). For each claim the run times are
//!   computed from the **stored** next run time, with the job's misfire grace time and
//!   coalescing (the same `backlog` and `plan` as a single node). One `commit_many` per
//!   batch then creates the fires of the runs, writes the advanced jobs and releases the
//!   leases. Only the fires a commit created run here; `Commit::Lost` runs nothing and
//!   records nothing; `Commit::Refused` (the job has `max_instances` unfinished fires in the
//!   cluster) is the `JobMaxInstances` event. A job's finished trigger removes it after the
//!   commit; a job that cannot run is quarantined (as on one node) and its claim released.
//! - **The fire is the identity.** A run's [`JobContext::idempotency_key`] is the fire's
//!   [`FireId::idempotency_key`]: the same on every node.
//! - **Outcomes are recorded after the run.** Each fire's outcome (`executed`, the error, a
//!   refusal for `max_instances` on this node) goes to a background flusher that records
//!   them in batches (`finish_fires`), so a run never waits for the store.
//! - **The store index stays the timer.** The dispatcher sleeps until the store's earliest
//!   next run time, but at most [`ClusterOptions::poll_interval`], and a little while when
//!   that time is due but held by another node. Handle operations on the store tell the
//!   other nodes (`notify_changed`, one notification per burst of changes), and the
//!   store's change feed (`changes`: PostgreSQL LISTEN/NOTIFY, Redis pub/sub) wakes this
//!   dispatcher; the poll interval is the safety net (MySQL/MariaDB have no feed).
//! - **Heartbeats and self-fencing.** A renew task, every [`ClusterOptions::renew_every`],
//!   registers the node (`heartbeat`, with a time to live of one lease) and renews its
//!   leases. A node that cannot do so before its lease ends stops claiming until it can
//!   again. A heartbeat that finds the registration lapsed (other nodes may have adopted
//!   this node's unfinished fires) cancels the cancellation tokens of this node's runs.
//!   The same task prunes fire records older than [`ClusterOptions::retention`] every
//!   minute.
//! - **Graceful shutdown** stops claiming, treats the runs as the shutdown mode says, records
//!   their outcomes, releases every claim of the node at once (`release_all`) and
//!   unregisters it.
//!
//! # The guarantee
//! Each `(job, scheduled time)` fire is created at most once in the cluster. Its run is
//! *at least once* across a crash: a node that dies (or lapses) before recording a fire's
//! outcome leaves it unfinished, and another node adopts it and runs it again under the
//! same idempotency key. A job whose side effects must happen once uses that key; see
//! `docs/cluster.md`.
//!
//! [`JobContext::idempotency_key`]: crate::JobContext::idempotency_key
//! [`FireId::idempotency_key`]: sched_stores::FireId::idempotency_key

mod dispatch;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sched_stores::{BoxLeaseStore, LeaseStore, NodeRecord, RunningFire};
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::SchedulerBuilder;
use crate::scheduler::Shared;

pub(crate) use dispatch::{FireHook, process_store};

/// How a node takes part in a cluster: its id, its lease and how often it renews it, how
/// often it looks at the store without a wake-up, how many jobs it claims at once, and how
/// long finished fire records are kept.
///
/// Every setter validates nothing; [`validate`](ClusterOptions::validate) (called by
/// [`Scheduler::start`](crate::Scheduler::start)) names the first option that is wrong.
///
/// ```
/// use std::time::Duration;
/// use sched_runtime::ClusterOptions;
///
/// let options = ClusterOptions::default()
///     .node_id("web-1")
///     .lease(Duration::from_secs(15))
///     .renew_every(Duration::from_secs(5));
/// options.validate()?;
///
/// let wrong = ClusterOptions::default().renew_every(Duration::from_secs(30));
/// assert_eq!(wrong.validate().unwrap_err().option(), "renew_every");
/// # Ok::<(), sched_runtime::ClusterOptionsError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterOptions {
    /// This node's id, unique among the running nodes (default `<host>-<pid>-<random>`).
    pub node_id: String,
    /// How long a claim lasts on the store's clock unless renewed (default 30 s).
    pub lease: Duration,
    /// How often the node renews its leases (default 10 s); less than `lease`.
    pub renew_every: Duration,
    /// The longest the dispatcher sleeps without looking at the store (default 5 s): the
    /// safety net for changes made by other nodes.
    pub poll_interval: Duration,
    /// Jobs claimed per store call (default 256).
    pub claim_batch: usize,
    /// How long records of finished fires are kept (default 1 day).
    pub retention: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            node_id: default_node_id(),
            lease: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
            claim_batch: 256,
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// `<host>-<pid>-<8 random hex digits>`.
fn default_node_id() -> String {
    format!(
        "{}-{}-{:08x}",
        host_name(),
        std::process::id(),
        fastrand::u32(..)
    )
}

/// This machine's name, as far as it can be told without a system call (`node` if not).
pub(crate) fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned())
}

impl ClusterOptions {
    /// Sets [`node_id`](ClusterOptions::node_id).
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = id.into();
        self
    }

    /// Sets [`lease`](ClusterOptions::lease).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets [`renew_every`](ClusterOptions::renew_every).
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.renew_every = every;
        self
    }

    /// Sets [`poll_interval`](ClusterOptions::poll_interval).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// Sets [`claim_batch`](ClusterOptions::claim_batch).
    pub fn claim_batch(mut self, n: usize) -> Self {
        self.claim_batch = n;
        self
    }

    /// Sets [`retention`](ClusterOptions::retention).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Checks the options: a node id of 1 to 255 characters without control characters; a
    /// lease of at least 10 ms; `renew_every` more than zero and less than `lease`; a
    /// `poll_interval` more than zero; a `claim_batch` of 1 to 100,000; a `retention` of at
    /// least the lease.
    ///
    /// # Errors
    /// The first option that is wrong, named, with what it must be.
    pub fn validate(&self) -> Result<(), ClusterOptionsError> {
        let bad = |option, message: String| Err(ClusterOptionsError { option, message });
        let id = &self.node_id;
        if id.is_empty() || id.chars().count() > 255 {
            return bad("node_id", format!("{id:?} must have 1 to 255 characters"));
        }
        if id.chars().any(char::is_control) {
            return bad(
                "node_id",
                format!("{id:?} must not contain control characters"),
            );
        }
        if self.lease < Duration::from_millis(10) {
            return bad("lease", format!("{:?} must be at least 10ms", self.lease));
        }
        if self.renew_every.is_zero() || self.renew_every >= self.lease {
            return bad(
                "renew_every",
                format!(
                    "{:?} must be more than zero and less than the lease ({:?})",
                    self.renew_every, self.lease
                ),
            );
        }
        if self.poll_interval.is_zero() {
            return bad(
                "poll_interval",
                format!("{:?} must be more than zero", self.poll_interval),
            );
        }
        if !(1..=100_000).contains(&self.claim_batch) {
            return bad(
                "claim_batch",
                format!("{} must be from 1 to 100000", self.claim_batch),
            );
        }
        if self.retention < self.lease {
            return bad(
                "retention",
                format!(
                    "{:?} must be at least the lease ({:?})",
                    self.retention, self.lease
                ),
            );
        }
        Ok(())
    }
}

/// A [`ClusterOptions`] value that cannot work, named with what it must be. Permanent: the
/// same options fail the same way.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid cluster option {option}: {message}")]
pub struct ClusterOptionsError {
    option: &'static str,
    message: String,
}

impl ClusterOptionsError {
    /// The option, as its field is named (`renew_every`).
    pub fn option(&self) -> &'static str {
        self.option
    }
}

impl SchedulerBuilder {
    /// Adds (or replaces) a named job store shared with other scheduler processes: each fire
    /// of its jobs runs on one node of the cluster. See the `cluster` module docs and
    /// `docs/cluster.md`.
    ///
    /// The store is an ordinary store for every job operation; its due jobs are claimed
    /// through [`LeaseStore`] instead of read. The options are checked by
    /// [`Scheduler::start`](crate::Scheduler::start).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use sched_runtime::{ClusterOptions, JobContext, Scheduler};
    /// use sched_stores::postgres::PostgresStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::connect("postgres://sched@db/app").await?;
    /// let scheduler = Scheduler::builder()
    ///     .cluster_store(
    ///         "default",
    ///         store,
    ///         ClusterOptions::default().lease(Duration::from_secs(15)).renew_every(Duration::from_secs(5)),
    ///     )
    ///     .build();
    /// scheduler.register_task("report", |ctx: JobContext, _: serde_json::Value| async move {
    ///     // The same key on every node: make side effects idempotent with it.
    ///     println!("report {}", ctx.idempotency_key());
    ///     Ok::<_, std::io::Error>(())
    /// });
    /// scheduler.run().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn cluster_store<S: LeaseStore + 'static>(
        self,
        name: impl Into<String>,
        store: S,
        options: ClusterOptions,
    ) -> Self {
        let name = name.into();
        let store = BoxLeaseStore::new(store);
        let mut this = self;
        this.stores.retain(|(n, _)| *n != name);
        this.stores.push((name.clone(), store.as_job_store()));
        Clusters::forget(&mut this.clusters, &name);
        let node = Arc::new(ClusterNode::new(name.clone(), options, store));
        this.clusters.push((name, node));
        this
    }
}

/// One cluster store's node state.
pub(crate) struct ClusterNode {
    /// The store's name in this scheduler.
    store: String,
    options: ClusterOptions,
    lease: BoxLeaseStore,
    /// When this node started (its registration says so).
    started_at: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// Raised by handle operations on the store: the notifier tells the other nodes.
    changed: tokio::sync::Notify,
    /// Held while a batch is committed and its runs submitted (see `stop_node`).
    committing: Arc<tokio::sync::Mutex<()>>,
    /// Set when renewals failed for a whole lease: claim nothing.
    fenced: AtomicBool,
    /// The parent of this node's run tokens (a child of the scheduler's `run_cancel`).
    runs: Mutex<CancellationToken>,
    /// Where runs send their outcomes; taken at shutdown.
    outcomes: Mutex<Option<dispatch::OutcomeSender>>,
    /// The renew and flusher tasks.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterNode")
            .field("store", &self.store)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ClusterNode {
    fn new(store: String, options: ClusterOptions, lease: BoxLeaseStore) -> ClusterNode {
        ClusterNode {
            store,
            options,
            lease,
            started_at: Mutex::new(None),
            changed: tokio::sync::Notify::new(),
            committing: Arc::default(),
            fenced: AtomicBool::new(false),
            runs: Mutex::new(CancellationToken::new()),
            outcomes: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl crate::Scheduler {
    /// The nodes registered in the cluster store `store`, alive or not (a node is listed
    /// until its expired registration is pruned), with their heartbeat and clock skew.
    ///
    /// # Errors
    /// [`UnknownStore`](crate::SchedulerError::UnknownStore) when `store` is not a cluster
    /// store; [`Store`](crate::SchedulerError::Store) when it cannot be read.
    pub async fn cluster_nodes(
        &self,
        store: &str,
    ) -> Result<Vec<NodeRecord>, crate::SchedulerError> {
        let node = self.cluster_node(store)?;
        node.lease
            .nodes()
            .await
            .map_err(|e| crate::SchedulerError::store(store, e))
    }

    /// The fires of the cluster store `store` created and not finished, on every node: the
    /// runs going on in the cluster (node, epoch, creation time), and fires waiting for
    /// adoption (node `""`).
    ///
    /// # Errors
    /// As [`cluster_nodes`](crate::Scheduler::cluster_nodes).
    pub async fn running_fires(
        &self,
        store: &str,
    ) -> Result<Vec<RunningFire>, crate::SchedulerError> {
        let node = self.cluster_node(store)?;
        node.lease
            .running_fires()
            .await
            .map_err(|e| crate::SchedulerError::store(store, e))
    }

    /// This scheduler's node id in the cluster store `store`.
    ///
    /// # Errors
    /// [`UnknownStore`](crate::SchedulerError::UnknownStore) when `store` is not a cluster
    /// store.
    pub fn node_id(&self, store: &str) -> Result<&str, crate::SchedulerError> {
        Ok(&self.cluster_node(store)?.options.node_id)
    }

    fn cluster_node(&self, store: &str) -> Result<&Arc<ClusterNode>, crate::SchedulerError> {
        self.shared
            .clusters
            .get(store)
            .ok_or_else(|| crate::SchedulerError::UnknownStore(store.to_owned()))
    }
}

/// The cluster stores of a scheduler, fixed when it is built.
#[derive(Debug, Default)]
pub(crate) struct Clusters(Vec<(String, Arc<ClusterNode>)>);

impl Clusters {
    pub(crate) fn new(nodes: Vec<(String, Arc<ClusterNode>)>) -> Clusters {
        Clusters(nodes)
    }

    /// The node of the cluster store `name`, if it is one.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<ClusterNode>> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Drops the cluster part of a store replaced by a plain one.
    pub(crate) fn forget(nodes: &mut Vec<(String, Arc<ClusterNode>)>, name: &str) {
        nodes.retain(|(n, _)| n != name);
    }
}

/// Checks every cluster store's options (before `start` changes anything).
pub(crate) fn validate(sh: &Shared) -> Result<(), ClusterOptionsError> {
    for (_, node) in &sh.clusters.0 {
        node.options.validate()?;
    }
    Ok(())
}

/// Starts each cluster store's renew task and outcome flusher (at `start`).
pub(crate) fn start(sh: &Arc<Shared>, runtime: &tokio::runtime::Handle) {
    for (_, node) in &sh.clusters.0 {
        dispatch::start_node(sh, node, runtime);
    }
}

/// A handle operation changed jobs of the store `name`: when it is a cluster store, the
/// other nodes are told (debounced: one notification for a burst of changes).
pub(crate) fn changed(sh: &Shared, name: &str) {
    if let Some(node) = sh.clusters.get(name) {
        node.changed.notify_one();
    }
}

/// At shutdown, after the dispatcher stopped: waits for the outcomes of finished runs to
/// be recorded (unless `wait` is false), stops the renew task, releases every claim.
pub(crate) async fn shutdown(sh: &Shared, wait: bool) {
    for (_, node) in &sh.clusters.0 {
        dispatch::stop_node(sh, node, wait).await;
    }
}
