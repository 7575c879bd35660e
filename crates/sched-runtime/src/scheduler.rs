//! The scheduler: its builder, the cloneable handle, job operations and lifecycle.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use foldhash::fast::RandomState;
use sched_core::event::{Event, EventKind, EventMask, JobEvent, SchedulerEvent};
use sched_core::jitter::{RandomSource, SplitMix64};
use sched_core::job::{DEFAULT, Job, JobChanges, JobDefaults, JobId, JobSpec, JobTrigger, TaskRef};
use sched_core::{Trigger, Zone};
use sched_stores::{BoxJobStore, JobStore, MemoryStore, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{Clock, SystemClock};
use crate::config::StoreTypes;
use crate::events::{EventBus, EventStream, ListenerId};
use crate::pending::{Pending, PendingJobs};
use crate::task::{JobContext, TaskFn, local_task_fn};
use crate::{Executor, SchedulerError, dispatcher};

/// How [`Scheduler::shutdown`] treats runs still going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShutdownMode {
    /// Wait for every run to finish (APScheduler's `wait=True`).
    #[default]
    Wait,
    /// Return at once; runs go on by themselves (APScheduler's `wait=False`).
    NoWait,
    /// Fire every run's cancellation token, drop async runs at their next `.await`, and wait
    /// for what is left (blocking code that does not check its token).
    Cancel,
}

/// Where the scheduler is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerState {
    /// Built, not started: jobs added now wait as pending.
    Stopped,
    /// Running jobs.
    Running,
    /// Started, but not running jobs until resumed.
    Paused,
    /// Shut down for good.
    ShutDown,
}

/// Builds a [`Scheduler`] (APScheduler's `configure`): stores, executors, job defaults, time
/// zone and clock.
///
/// A store named `default` (a [`MemoryStore`]) and an executor named `default`
/// ([`Executor::tokio`]) are added unless given.
#[derive(Debug)]
#[must_use = "call build() to get the scheduler"]
pub struct SchedulerBuilder {
    pub(crate) stores: Vec<(String, BoxJobStore)>,
    pub(crate) executors: Executors,
    pub(crate) defaults: JobDefaults,
    pub(crate) zone: Zone,
    clock: Arc<dyn Clock>,
    max_backlog: usize,
    event_capacity: usize,
    pub(crate) store_types: StoreTypes,
    rng: Rng,
    /// The cluster part of the stores given by `cluster_store`.
    pub(crate) clusters: Vec<(String, Arc<crate::cluster::ClusterNode>)>,
}

/// The random source jitter draws from, behind a lock the dispatcher takes once per
/// jittered submission.
pub(crate) struct Rng(Mutex<Box<dyn RandomSource + Send>>);

impl Rng {
    fn new(source: impl RandomSource + Send + 'static) -> Rng {
        Rng(Mutex::new(Box::new(source)))
    }

    /// The next value of the source.
    pub(crate) fn next_u64(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_u64()
    }
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rng")
    }
}

impl RandomSource for &Rng {
    fn next_u64(&mut self) -> u64 {
        Rng::next_u64(self)
    }
}

impl SchedulerBuilder {
    /// Adds (or replaces) a named job store.
    pub fn store(mut self, name: impl Into<String>, store: impl JobStore) -> Self {
        let name = name.into();
        self.stores.retain(|(n, _)| *n != name);
        crate::cluster::Clusters::forget(&mut self.clusters, &name);
        self.stores.push((name, BoxJobStore::new(store)));
        self
    }

    /// Adds (or replaces) a named executor.
    pub fn executor(mut self, name: impl Into<String>, executor: Executor) -> Self {
        self.executors.insert(name.into(), executor);
        self
    }

    /// The options of jobs that do not set their own.
    pub fn job_defaults(mut self, defaults: JobDefaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// The zone times are shown in (job tables); default UTC.
    pub fn zone(mut self, zone: Zone) -> Self {
        self.zone = zone;
        self
    }

    /// Where wall time is read; default [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// At most this many overdue run times are considered per job at once (default 1000);
    /// the rest of a longer backlog is skipped. See the crate docs on misfires.
    pub fn max_backlog(mut self, n: usize) -> Self {
        self.max_backlog = n.max(1);
        self
    }

    /// Where jitter's random delays come from (see [`sched_core::jitter`]); default a
    /// [`SplitMix64`] seeded at random. Give a [`SplitMix64`] with a fixed seed for
    /// reproducible start times in tests.
    ///
    /// ```
    /// use sched_core::jitter::SplitMix64;
    /// let scheduler = sched_runtime::Scheduler::builder()
    ///     .random_source(SplitMix64::new(7))
    ///     .build();
    /// # drop(scheduler);
    /// ```
    pub fn random_source(mut self, source: impl RandomSource + Send + 'static) -> Self {
        self.rng = Rng::new(source);
        self
    }

    /// The buffer of event subscriptions (default 1024); see [`EventStream`].
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.max(1);
        self
    }

    /// The scheduler, stopped. Building needs no runtime; starting does.
    pub fn build(mut self) -> Scheduler {
        if !self.stores.iter().any(|(n, _)| n == DEFAULT) {
            self.stores.insert(
                0,
                (DEFAULT.to_owned(), BoxJobStore::new(MemoryStore::new())),
            );
        }
        self.executors
            .entry(DEFAULT.to_owned())
            .or_insert_with(Executor::tokio);
        let (state, _) = watch::channel(SchedulerState::Stopped);
        let mut tasks = TaskRegistry::default();
        tasks.insert(
            crate::COMMAND_TASK.to_owned(),
            TaskFn::named(crate::command::run_command),
        );
        Scheduler {
            shared: Arc::new(Shared {
                stores: RwLock::new(Arc::new(self.stores)),
                executors: RwLock::new(self.executors),
                defaults: RwLock::new(self.defaults),
                zone: RwLock::new(self.zone),
                store_types: self.store_types,
                clock: self.clock,
                max_backlog: self.max_backlog,
                rng: self.rng,
                clusters: crate::cluster::Clusters::new(self.clusters),
                tasks: RwLock::new(tasks),
                events: EventBus::new(self.event_capacity),
                state,
                ops: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
                sleeping_until: AtomicI64::new(AWAKE),
                pending: Mutex::new(PendingJobs::default()),
                release_check: AtomicBool::new(true),
                instances: Mutex::new(HashMap::default()),
                metrics: crate::metrics::MetricsCache::default(),
                tracker: TaskTracker::new(),
                run_cancel: CancellationToken::new(),
                stop: CancellationToken::new(),
                done: CancellationToken::new(),
                dispatcher: Mutex::new(None),
            }),
        }
    }
}

/// A job scheduler on tokio: APScheduler's operations, without a polling tick.
///
/// `Scheduler` is a handle: clone it freely and use it from any task (it is `Send + Sync`).
/// See the [crate docs](crate) for an example and for the execution semantics.
///
/// Stores and executors are given to the builder (or by a [`Config`](crate::Config)), and
/// can be added and removed later with [`add_store`](Scheduler::add_store),
/// [`remove_store`](Scheduler::remove_store), [`add_executor`](Scheduler::add_executor) and
/// [`remove_executor`](Scheduler::remove_executor); `start` reports each it starts with as
/// a `JobstoreAdded` / `ExecutorAdded` event, and later changes report themselves. Once started, the scheduler runs until
/// [`shutdown`](Scheduler::shutdown): dropping every handle does not stop it.
///
/// ```
/// use std::time::Duration;
/// use sched_core::{Coalesce, JobChanges, JobSpec, TaskRef};
/// use sched_runtime::{JobContext, Scheduler, ShutdownMode};
/// # use chrono::{DateTime, TimeDelta, Utc};
/// # #[derive(Debug)] struct Hourly;
/// # impl sched_core::Trigger for Hourly {
/// #     fn next_fire_time(&self, p: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
/// #         Some(p.unwrap_or(now) + TimeDelta::hours(1))
/// #     }
/// #     fn zone(&self) -> sched_core::Zone { sched_core::Zone::UTC }
/// # }
/// # fn hourly() -> sched_core::JobTrigger { sched_core::JobTrigger::dynamic(Hourly) }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let scheduler = Scheduler::builder().build();
/// scheduler.register_task("cleanup", |_ctx: JobContext, days: u32| async move {
///     Ok::<_, std::io::Error>(format!("removed files older than {days} days"))
/// });
/// scheduler.start().await?;
///
/// let id = scheduler
///     .add_job(
///         JobSpec::new(TaskRef::named("cleanup", 30.into()), hourly())
///             .id("cleanup")?
///             .coalesce(Coalesce::All)
///             .misfire_grace_time(Some(Duration::from_secs(300))),
///     )
///     .await?;
/// scheduler.modify_job(&id, JobChanges::new().max_instances(2)).await?;
/// assert!(scheduler.pause_job(&id).await?.is_paused());
/// assert!(scheduler.resume_job(&id).await?.is_some());
/// println!("{}", scheduler.job_table().await?);
/// scheduler.remove_job(&id).await?;
/// scheduler.shutdown(ShutdownMode::Wait).await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Scheduler {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("state", &self.state())
            .field(
                "stores",
                &self
                    .shared
                    .stores()
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The executors by name. Hashed with foldhash: a job's executor is looked up on every
/// add and every fire, and std's SipHash cost more than the rest of the lookup.
pub(crate) type Executors = HashMap<String, Executor, RandomState>;

/// The registered tasks by name, hashed with foldhash: a named job's task is looked up at
/// every fire.
pub(crate) type TaskRegistry = HashMap<String, TaskFn, RandomState>;

/// A job's key in the `max_instances` table: its store and id.
pub(crate) type InstanceKey = (Arc<str>, JobId);

/// A job's runs going, and the limit they were accepted under.
struct Instances {
    running: u32,
    max: u32,
}

/// One run of a job counted against its `max_instances` (see
/// [`Shared::try_acquire_instance`]); dropping it ends the count, and removes the job's
/// entry when it was the last.
pub(crate) struct InstanceGuard {
    sh: Arc<Shared>,
    key: InstanceKey,
}

impl InstanceGuard {
    /// The scheduler the run belongs to.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.sh
    }

    /// The job's store.
    pub(crate) fn store(&self) -> &Arc<str> {
        &self.key.0
    }

    /// The job's id.
    pub(crate) fn id(&self) -> &JobId {
        &self.key.1
    }
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        let mut map = self
            .sh
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.key) {
            count.running -= 1;
            if count.running == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Everything the handles and the dispatcher share.
pub(crate) struct Shared {
    /// Copy-on-write, so a pass over the stores holds no lock across its awaits; changed
    /// only under the `ops` lock (`add_store`, `remove_store`, `configure`).
    pub(crate) stores: RwLock<Arc<Vec<(String, BoxJobStore)>>>,
    pub(crate) executors: RwLock<Executors>,
    pub(crate) defaults: RwLock<JobDefaults>,
    pub(crate) zone: RwLock<Zone>,
    /// Store types the configuration can name.
    pub(crate) store_types: StoreTypes,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_backlog: usize,
    /// Draws jitter delays.
    pub(crate) rng: Rng,
    /// The stores that are shared with other nodes (see the `cluster` module).
    pub(crate) clusters: crate::cluster::Clusters,
    pub(crate) tasks: RwLock<TaskRegistry>,
    pub(crate) events: EventBus,
    pub(crate) state: watch::Sender<SchedulerState>,
    /// Serializes job writes: handle operations and the dispatcher's processing of a batch
    /// hold it across their store calls, so neither overwrites the other's change.
    pub(crate) ops: tokio::sync::Mutex<()>,
    /// Wakes the dispatcher after a change that moves a run time earlier than its wake-up.
    pub(crate) wake: Notify,
    /// The wall time (ns since the epoch) the dispatcher sleeps until: [`AWAKE`] while it
    /// is processing (every change wakes it again), [`PAUSED`] while paused (only `resume`
    /// wakes it).
    pub(crate) sleeping_until: AtomicI64,
    pub(crate) pending: Mutex<PendingJobs>,
    /// Set by `register_task` (and at build): the dispatcher's next pass looks for
    /// quarantined jobs that can run now (see the `quarantine` module).
    pub(crate) release_check: AtomicBool,
    /// The `max_instances` counts of jobs with runs going, by (store, id); a job's entry
    /// goes when its last run ends.
    instances: Mutex<HashMap<InstanceKey, Instances, foldhash::fast::RandomState>>,
    /// Metric handles per (store, executor), registered at first use.
    pub(crate) metrics: crate::metrics::MetricsCache,
    pub(crate) tracker: TaskTracker,
    /// Cancels running jobs ([`ShutdownMode::Cancel`]); each run's token is a child.
    pub(crate) run_cancel: CancellationToken,
    /// Stops the dispatcher.
    pub(crate) stop: CancellationToken,
    /// Fired when `shutdown` has finished (for `run`).
    done: CancellationToken,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

/// `sleeping_until` while the dispatcher is processing: any new run time is earlier.
pub(crate) const AWAKE: i64 = i64::MAX;
/// `sleeping_until` while paused: no run time is earlier.
pub(crate) const PAUSED: i64 = i64::MIN;

/// A wall time as `sleeping_until` holds it.
pub(crate) fn wall_nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN + 1
    } else {
        i64::MAX - 1
    })
}

impl Shared {
    /// Wakes the dispatcher if `next` is earlier than the time it sleeps until. The caller
    /// has written the change to the store already; see the dispatcher's ground rules.
    pub(crate) fn wake_if_before(&self, next: Option<DateTime<Utc>>) {
        if let Some(t) = next
            && wall_nanos(t) < self.sleeping_until.load(Ordering::SeqCst)
        {
            self.wake.notify_one();
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        self.events.emit(event);
    }

    pub(crate) fn state(&self) -> SchedulerState {
        *self.state.borrow()
    }

    /// The stores as they are now (a snapshot: one added or removed later is not in it).
    pub(crate) fn stores(&self) -> Arc<Vec<(String, BoxJobStore)>> {
        self.stores
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn store(&self, name: &str) -> Option<BoxJobStore> {
        self.stores()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }

    pub(crate) fn has_executor(&self, name: &str) -> bool {
        self.executors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }

    pub(crate) fn executor(&self, name: &str) -> Option<Executor> {
        self.executors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    pub(crate) fn defaults(&self) -> JobDefaults {
        *self.defaults.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The task a job runs, or why it cannot run.
    pub(crate) fn resolve_task(&self, task: &TaskRef) -> Result<TaskFn, String> {
        match task {
            TaskRef::Named { name, .. } => self
                .tasks
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&**name)
                .cloned()
                .ok_or_else(|| format!("task {name:?} is not registered")),
            TaskRef::Local(local) => local_task_fn(local)
                .ok_or_else(|| format!("closure {} was not made by this runtime", local.label())),
            _ => Err("unsupported task kind".to_owned()),
        }
    }

    /// Counts a run of `job` against its `max_instances`, if the limit leaves room: the
    /// returned guard holds the place until it is dropped, however the run ends.
    ///
    /// The limit a job's runs are counted against is fixed while any of them is going: a
    /// changed `max_instances` applies from the first submission that finds none running.
    pub(crate) fn try_acquire_instance(self: &Arc<Self>, job: &Job) -> Option<InstanceGuard> {
        let max = job.max_instances.max(1);
        let mut map = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = map
            .entry((job.store.clone(), job.id.clone()))
            .or_insert(Instances { running: 0, max });
        if count.running == 0 {
            count.max = max;
        }
        if count.running >= count.max {
            return None;
        }
        count.running += 1;
        drop(map);
        Some(InstanceGuard {
            sh: self.clone(),
            key: (job.store.clone(), job.id.clone()),
        })
    }

    /// Finds a job in any store: its store's name and the job.
    async fn find(&self, id: &JobId) -> Result<Option<(String, Job)>, SchedulerError> {
        for (name, store) in self.stores().iter() {
            if let Some(job) = store
                .lookup_job(id)
                .await
                .map_err(|e| SchedulerError::store(name, e))?
            {
                return Ok(Some((name.clone(), job)));
            }
        }
        Ok(None)
    }
}

/// Whether a job re-added with `replace_existing` keeps the next run time `stored` has: when
/// both triggers have a JSON spec and the specs are equal (a restart that adds its jobs
/// again must not lose the runs missed while it was down, nor move the schedule). A changed
/// trigger, or a trigger without a spec, gets its first run time computed again.
fn keep_stored_schedule(stored: &Job, new: &Job) -> bool {
    match (&stored.trigger, &new.trigger) {
        (JobTrigger::Spec(a), JobTrigger::Spec(b)) => a.to_value() == b.to_value(),
        _ => false,
    }
}

/// A job checked against the scheduler's stores, executors and tasks, ready to write.
struct NewJob {
    job: Job,
    store: BoxJobStore,
    replace: bool,
    explicit_next: bool,
}

impl NewJob {
    fn into_pending(self) -> Pending {
        Pending {
            job: self.job,
            replace_existing: self.replace,
            explicit_next: self.explicit_next,
        }
    }
}

/// Makes the job of `spec` (options from `defaults`, a random id if it has none) and checks
/// that its store (one of `stores`), executor and task exist, and that a persistent store
/// can hold it.
fn check_new(
    stores: &[(String, BoxJobStore)],
    sh: &Shared,
    spec: JobSpec,
    defaults: &JobDefaults,
) -> Result<NewJob, SchedulerError> {
    let replace = spec.is_replace_existing();
    let explicit_next = spec.explicit_next_run_time().is_some();
    let job = spec.into_job(defaults, random_id);
    let Some((_, store)) = stores.iter().find(|(n, _)| **n == *job.store) else {
        return Err(SchedulerError::UnknownStore(job.store.to_string()));
    };
    if !sh.has_executor(&job.executor) {
        return Err(SchedulerError::UnknownExecutor(job.executor.to_string()));
    }
    sh.resolve_task(&job.task)
        .map_err(|_| SchedulerError::UnknownTask(job.task.name().unwrap_or_default().to_owned()))?;
    if store.is_persistent() {
        job.to_stored()?;
    }
    Ok(NewJob {
        job,
        store: store.clone(),
        replace,
        explicit_next,
    })
}

/// A random id of 32 hex digits (APScheduler uses a UUID4's hex the same way), written
/// into a stack buffer two digits at a time: one allocation, the id's own.
fn random_id() -> JobId {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = fastrand::u128(..);
    let mut text = [0u8; 32];
    for (i, pair) in text.chunks_exact_mut(2).enumerate() {
        let byte = (bits >> (120 - 8 * i)) as u8;
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    let text = std::str::from_utf8(&text).expect("hex digits are ASCII");
    JobId::new(text).expect("32 hex digits are never empty")
}

impl Scheduler {
    /// A builder with the defaults: a memory store and a tokio executor named `default`,
    /// APScheduler 3's job defaults, UTC, the system clock.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder {
            stores: Vec::new(),
            executors: Executors::default(),
            defaults: JobDefaults::default(),
            zone: Zone::UTC,
            clock: Arc::new(SystemClock),
            max_backlog: 1000,
            event_capacity: 1024,
            store_types: StoreTypes::new(),
            rng: Rng::new(SplitMix64::new(fastrand::u64(..))),
            clusters: Vec::new(),
        }
    }

    /// Where the scheduler is in its life.
    pub fn state(&self) -> SchedulerState {
        self.shared.state()
    }

    /// The wall time of the scheduler's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// The zone times are shown in.
    pub fn zone(&self) -> Zone {
        *self
            .shared
            .zone
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers an async function as a task under `name`, so jobs (persistent ones
    /// included) can name it. It gets the run's [`JobContext`] and the job's arguments
    /// deserialized into `A`. Registering a name again replaces the function.
    ///
    /// A stored job naming a task that is not registered, or whose arguments do not
    /// deserialize into `A`, is quarantined when it comes due (kept in its store with the
    /// reason, a `JobQuarantined` event, never deleted); registering the task (again)
    /// brings such jobs back at the dispatcher's next pass, due from their stored next run
    /// time. With a store that cannot quarantine, each of their fires is a `JobError` event
    /// of kind `Setup` instead.
    ///
    /// ```
    /// use sched_runtime::{JobContext, Scheduler};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Report { to: String }
    ///
    /// let scheduler = Scheduler::builder().build();
    /// scheduler.register_task("send_report", |_ctx: JobContext, args: Report| async move {
    ///     Ok::<_, std::io::Error>(format!("sent to {}", args.to))
    /// });
    /// ```
    pub fn register_task<F, Fut, A, R, E>(&self, name: impl Into<String>, f: F)
    where
        F: Fn(JobContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
        E: fmt::Display + 'static,
    {
        self.shared
            .tasks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.into(), TaskFn::named(f));
        self.shared.release_check.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    /// Calls `listener` with every event whose kind is in `mask`, in the task that emits it
    /// (keep it quick; it must not block). A panicking listener is logged and ignored.
    pub fn add_listener(
        &self,
        mask: impl Into<EventMask>,
        listener: impl Fn(&Event) + Send + Sync + 'static,
    ) -> ListenerId {
        self.shared
            .events
            .add_listener(mask.into(), Arc::new(listener))
    }

    /// Removes a listener; `false` when it was not there.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.shared.events.remove_listener(id)
    }

    /// The events whose kind is in `mask`, as an async stream (see [`EventStream`] for what
    /// happens to a subscriber that falls behind).
    pub fn subscribe(&self, mask: impl Into<EventMask>) -> EventStream {
        self.shared.events.subscribe(mask.into())
    }

    /// Adds a job and returns its id.
    ///
    /// Options the spec leaves unset come from the job defaults. The first run time is the
    /// spec's, else the trigger's first fire time after now. Before the scheduler starts the
    /// job waits as pending, and its first run time is computed at start.
    ///
    /// # Errors
    /// [`UnknownStore`](SchedulerError::UnknownStore),
    /// [`UnknownExecutor`](SchedulerError::UnknownExecutor),
    /// [`UnknownTask`](SchedulerError::UnknownTask) (a named task not registered),
    /// [`NotPersistable`](SchedulerError::NotPersistable) (a closure or trigger object for a
    /// persistent store), [`JobExists`](SchedulerError::JobExists) (the id is taken and
    /// `replace_existing` is not set), [`Store`](SchedulerError::Store), or
    /// [`ShutDown`](SchedulerError::ShutDown).
    ///
    /// # Cancel safety
    /// Dropping the future before it completes may leave the job added or not.
    pub async fn add_job(&self, spec: JobSpec) -> Result<JobId, SchedulerError> {
        let sh = &self.shared;
        let new = check_new(&sh.stores(), sh, spec, &sh.defaults())?;
        let id = new.job.id.clone();
        let _ops = sh.ops.lock().await;
        match sh.state() {
            SchedulerState::ShutDown => return Err(SchedulerError::ShutDown),
            SchedulerState::Stopped => {
                let mut pending = sh.pending.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(i) = pending.position(&id) {
                    if !new.replace {
                        return Err(SchedulerError::JobExists {
                            id,
                            store: pending.get(i).job.store.to_string(),
                        });
                    }
                    pending.remove(i);
                }
                pending.push(new.into_pending());
                return Ok(id);
            }
            SchedulerState::Running | SchedulerState::Paused => {}
        }
        let NewJob {
            job,
            store,
            replace,
            explicit_next,
        } = new;
        self.write_new_job(&store, job, replace, explicit_next)
            .await?;
        Ok(id)
    }

    /// Adds several jobs and returns their ids, in the order of `specs`: as many
    /// [`add_job`](Scheduler::add_job) calls, but the jobs bound for one store are written
    /// in one store call ([`JobStore::add_jobs`]: one lock for the memory store, one
    /// transaction for SQL, one script for Redis) and the dispatcher is woken once. Use it
    /// to register many jobs at start-up or in bulk.
    ///
    /// All or nothing for jobs without `replace_existing`: every spec is checked first
    /// (store, executor, task, persistability, and an id given twice in `specs`), and when
    /// a store refuses its batch (an id it holds already) the jobs written to other stores
    /// by this call are removed again. Jobs with `replace_existing` are written after the
    /// others, one at a time, as `add_job` writes them.
    ///
    /// ```
    /// use sched_core::job::{JobSpec, TaskRef};
    /// use sched_core::trigger::{AnyTrigger, IntervalTrigger};
    /// use sched_runtime::{JobContext, Scheduler};
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let scheduler = Scheduler::builder().build();
    /// scheduler.register_task("poll", |_ctx: JobContext, feed: String| async move {
    ///     Ok::<_, std::convert::Infallible>(feed)
    /// });
    /// let specs = (0..1_000).map(|i| {
    ///     let feed = serde_json::json!(format!("feed-{i}"));
    ///     let every = IntervalTrigger::new(Duration::from_secs(60));
    ///     JobSpec::new(TaskRef::named("poll", feed), AnyTrigger::Interval(every))
    /// });
    /// let ids = scheduler.add_jobs(specs).await?;
    /// assert_eq!(ids.len(), 1_000);
    /// assert_eq!(scheduler.get_jobs().await?.len(), 1_000);
    /// # Ok::<(), sched_runtime::SchedulerError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`add_job`](Scheduler::add_job), for the first spec that fails;
    /// [`JobExists`](SchedulerError::JobExists) also for an id that appears twice in
    /// `specs`.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes may leave some of the jobs added.
    pub async fn add_jobs(
        &self,
        specs: impl IntoIterator<Item = JobSpec>,
    ) -> Result<Vec<JobId>, SchedulerError> {
        let sh = &self.shared;
        let stores = sh.stores();
        let defaults = sh.defaults();
        let specs = specs.into_iter();
        let mut news = Vec::with_capacity(specs.size_hint().0);
        let mut seen = HashSet::with_capacity_and_hasher(news.capacity(), RandomState::default());
        for spec in specs {
            let new = check_new(&stores, sh, spec, &defaults)?;
            if !seen.insert(new.job.id.clone()) {
                return Err(SchedulerError::JobExists {
                    id: new.job.id,
                    store: new.job.store.to_string(),
                });
            }
            news.push(new);
        }
        drop(seen);
        let ids: Vec<JobId> = news.iter().map(|n| n.job.id.clone()).collect();
        let _ops = sh.ops.lock().await;
        match sh.state() {
            SchedulerState::ShutDown => return Err(SchedulerError::ShutDown),
            SchedulerState::Stopped => {
                let mut pending = sh.pending.lock().unwrap_or_else(PoisonError::into_inner);
                for n in news.iter().filter(|n| !n.replace) {
                    if let Some(i) = pending.position(&n.job.id) {
                        return Err(SchedulerError::JobExists {
                            id: n.job.id.clone(),
                            store: pending.get(i).job.store.to_string(),
                        });
                    }
                }
                for new in news {
                    if let Some(i) = pending.position(&new.job.id) {
                        pending.remove(i);
                    }
                    pending.push(new.into_pending());
                }
                return Ok(ids);
            }
            SchedulerState::Running | SchedulerState::Paused => {}
        }
        let (replacing, adding): (Vec<NewJob>, Vec<NewJob>) =
            news.into_iter().partition(|n| n.replace);
        self.write_new_jobs(adding).await?;
        for new in replacing {
            self.write_new_job(&new.store, new.job, true, new.explicit_next)
                .await?;
        }
        Ok(ids)
    }

    /// Writes jobs that replace nothing: one `add_jobs` call per store, in the order the
    /// stores first appear; when one fails, those of the stores written before are removed
    /// again (best effort) and nothing of the failed one was written (ops lock held).
    async fn write_new_jobs(&self, news: Vec<NewJob>) -> Result<(), SchedulerError> {
        let sh = &self.shared;
        let now = sh.clock.now();
        let mut batches: Vec<(Arc<str>, BoxJobStore, Vec<Job>)> = Vec::new();
        let mut earliest: Option<DateTime<Utc>> = None;
        for NewJob {
            mut job,
            store,
            explicit_next,
            ..
        } in news
        {
            if !explicit_next {
                job.next_run_time = job.trigger.next_fire_time(None, now);
            }
            if let Some(t) = job.next_run_time {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
            match batches.iter_mut().find(|(name, ..)| *name == job.store) {
                Some((.., jobs)) => jobs.push(job),
                None => batches.push((job.store.clone(), store, vec![job])),
            }
        }
        let mut written: Vec<(Arc<str>, BoxJobStore, Vec<JobId>)> = Vec::new();
        for (name, store, jobs) in batches {
            let ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
            if let Err(e) = store.add_jobs(jobs).await {
                for (name, store, ids) in &written {
                    for id in ids {
                        // Best effort: the error being returned is the one that matters.
                        let _ = store.remove_job(id).await;
                    }
                    crate::cluster::changed(sh, name);
                }
                return Err(match e {
                    StoreError::Conflict { id } => SchedulerError::JobExists {
                        id,
                        store: name.to_string(),
                    },
                    e => SchedulerError::store(&name, e),
                });
            }
            written.push((name, store, ids));
        }
        let announce = sh.events.wants(EventKind::JobAdded);
        for (name, _, ids) in written {
            crate::cluster::changed(sh, &name);
            if announce {
                for id in ids {
                    sh.emit(Event::Job(JobEvent::new(EventKind::JobAdded, id, &*name)));
                }
            }
        }
        sh.wake_if_before(earliest);
        Ok(())
    }

    /// Computes the first run time when needed and writes a new job to `store`, its store
    /// (ops lock held).
    async fn write_new_job(
        &self,
        store: &BoxJobStore,
        mut job: Job,
        replace: bool,
        explicit_next: bool,
    ) -> Result<(), SchedulerError> {
        let sh = &self.shared;
        if !explicit_next {
            job.next_run_time = job.trigger.next_fire_time(None, sh.clock.now());
        }
        let store_name = job.store.clone();
        let id = job.id.clone();
        let mut next = job.next_run_time;
        let written = if replace {
            // Replace if there, add if not (the rare path pays for the clone). The same
            // trigger keeps the stored schedule: see `keep_stored_schedule`.
            match store.lookup_job(&job.id).await {
                Ok(Some(stored)) if !explicit_next && keep_stored_schedule(&stored, &job) => {
                    job.next_run_time = stored.next_run_time;
                    next = stored.next_run_time;
                }
                // Not there, another trigger, or a stored record that cannot be read back
                // (the new job replaces it).
                Ok(_) | Err(StoreError::Serialization { .. }) => {}
                Err(e) => return Err(SchedulerError::store(&store_name, e)),
            }
            match store.update_job(job.clone()).await {
                Err(e) if e.is_not_found() => store.add_job(job).await,
                // A quarantined job stays quarantined when updated: the next pass looks
                // whether the new task and arguments let it run.
                Ok(()) => {
                    sh.release_check.store(true, Ordering::SeqCst);
                    sh.wake.notify_one();
                    Ok(())
                }
                other => other,
            }
        } else {
            store.add_job(job).await
        };
        match written {
            Ok(()) => {}
            Err(e) if e.is_conflict() => {
                return Err(SchedulerError::JobExists {
                    id,
                    store: store_name.to_string(),
                });
            }
            Err(e) => return Err(SchedulerError::store(&store_name, e)),
        }
        crate::cluster::changed(sh, &store_name);
        // The hot path of a bulk add: no event built when nobody listens.
        if sh.events.wants(EventKind::JobAdded) {
            sh.emit(Event::Job(JobEvent::new(
                EventKind::JobAdded,
                id,
                &*store_name,
            )));
        }
        sh.wake_if_before(next);
        Ok(())
    }

    /// The job with this id (pending jobs included), from whichever store holds it.
    ///
    /// # Errors
    /// [`Store`](SchedulerError::Store) when a store cannot be read.
    pub async fn get_job(&self, id: &JobId) -> Result<Option<Job>, SchedulerError> {
        if let Some(p) = self.pending_job(id) {
            return Ok(Some(p));
        }
        Ok(self.shared.find(id).await?.map(|(_, job)| job))
    }

    fn pending_job(&self, id: &JobId) -> Option<Job> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|p| p.job.id == *id)
            .map(|p| p.job.clone())
    }

    /// Every job: pending ones first, then each store's in its order (by next run time,
    /// paused last).
    ///
    /// # Errors
    /// [`Store`](SchedulerError::Store) when a store cannot be read.
    pub async fn get_jobs(&self) -> Result<Vec<Job>, SchedulerError> {
        let mut jobs: Vec<Job> = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|p| p.job.clone())
            .collect();
        for (name, store) in self.shared.stores().iter() {
            jobs.extend(
                store
                    .all_jobs()
                    .await
                    .map_err(|e| SchedulerError::store(name, e))?,
            );
        }
        Ok(jobs)
    }

    /// A table of the jobs per store, like APScheduler's `print_jobs`:
    ///
    /// ```text
    /// Pending jobs:
    ///     No pending jobs
    /// Jobstore default:
    ///     report (trigger: {"type":"cron",...}, next run at: 2026-03-30T09:00:00+02:00)
    ///     cleanup (trigger: ..., paused)
    /// ```
    ///
    /// # Errors
    /// [`Store`](SchedulerError::Store) when a store cannot be read.
    pub async fn job_table(&self) -> Result<String, SchedulerError> {
        let zone = self.zone();
        let line = |out: &mut String, job: &Job| {
            let when = match job.next_run_time {
                Some(t) => format!("next run at: {}", zone.format(t)),
                None => "paused".to_owned(),
            };
            let _ = writeln!(out, "    {} (trigger: {}, {when})", job.name, job.trigger);
        };
        let mut out = String::new();
        if self.state() == SchedulerState::Stopped {
            out.push_str("Pending jobs:\n");
            let pending: Vec<Job> = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|p| p.job.clone())
                .collect();
            if pending.is_empty() {
                out.push_str("    No pending jobs\n");
            }
            for job in &pending {
                line(&mut out, job);
            }
        }
        for (name, store) in self.shared.stores().iter() {
            let jobs = store
                .all_jobs()
                .await
                .map_err(|e| SchedulerError::store(name, e))?;
            let _ = writeln!(out, "Jobstore {name}:");
            if jobs.is_empty() {
                out.push_str("    No scheduled jobs\n");
            }
            for job in &jobs {
                line(&mut out, job);
            }
        }
        Ok(out)
    }

    /// Changes a job's options.
    ///
    /// # Errors
    /// [`JobNotFound`](SchedulerError::JobNotFound),
    /// [`UnknownExecutor`](SchedulerError::UnknownExecutor), [`Store`](SchedulerError::Store).
    pub async fn modify_job(&self, id: &JobId, changes: JobChanges) -> Result<Job, SchedulerError> {
        if let Some(e) = changes.executor_ref()
            && self.shared.executor(e).is_none()
        {
            return Err(SchedulerError::UnknownExecutor(e.to_owned()));
        }
        let sets_next = changes.explicit_next_run_time().is_some();
        self.update_with(id, sets_next, |job, _| {
            changes.apply(job);
            Ok(())
        })
        .await
    }

    /// Gives a job a new trigger; its next run time becomes the trigger's first fire time
    /// after now (none: the job is paused).
    ///
    /// # Errors
    /// As [`modify_job`](Scheduler::modify_job), plus
    /// [`NotPersistable`](SchedulerError::NotPersistable) for a trigger object in a
    /// persistent store.
    pub async fn reschedule_job(
        &self,
        id: &JobId,
        trigger: impl Into<JobTrigger>,
    ) -> Result<Job, SchedulerError> {
        let trigger = trigger.into();
        self.update_with(id, true, move |job, now| {
            job.trigger = trigger;
            job.next_run_time = job.trigger.next_fire_time(None, now);
            Ok(())
        })
        .await
    }

    /// Pauses a job: it keeps its trigger, but has no next run time until resumed.
    ///
    /// # Errors
    /// As [`modify_job`](Scheduler::modify_job).
    pub async fn pause_job(&self, id: &JobId) -> Result<Job, SchedulerError> {
        self.update_with(id, true, |job, _| {
            job.next_run_time = None;
            Ok(())
        })
        .await
    }

    /// Resumes a paused job from the trigger's first fire time after now. A trigger with no
    /// more fire times removes the job (as APScheduler does); `None` is returned then.
    ///
    /// # Errors
    /// As [`modify_job`](Scheduler::modify_job).
    pub async fn resume_job(&self, id: &JobId) -> Result<Option<Job>, SchedulerError> {
        let now = self.now();
        let job = self.get_job(id).await?;
        if let Some(job) = &job
            && job.trigger.next_fire_time(None, now).is_none()
        {
            self.remove_job(id).await?;
            return Ok(None);
        }
        self.update_with(id, true, |job, now| {
            job.next_run_time = job.trigger.next_fire_time(None, now);
            Ok(())
        })
        .await
        .map(Some)
    }

    /// Looks a job up (pending or stored), changes it, writes it back, emits `JobModified`
    /// and wakes the dispatcher; all under the ops lock. `sets_next`: the change decides the
    /// next run time (for a pending job, it is then not computed at start).
    async fn update_with(
        &self,
        id: &JobId,
        sets_next: bool,
        change: impl FnOnce(&mut Job, DateTime<Utc>) -> Result<(), SchedulerError>,
    ) -> Result<Job, SchedulerError> {
        let sh = &self.shared;
        let _ops = sh.ops.lock().await;
        let now = sh.clock.now();
        {
            let mut pending = sh.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(i) = pending.position(id) {
                let p = pending.get_mut(i);
                change(&mut p.job, now)?;
                p.explicit_next |= sets_next;
                return Ok(p.job.clone());
            }
        }
        let Some((store_name, mut job)) = sh.find(id).await? else {
            return Err(SchedulerError::JobNotFound { id: id.clone() });
        };
        change(&mut job, now)?;
        let store = sh
            .store(&store_name)
            .ok_or_else(|| SchedulerError::UnknownStore(store_name.clone()))?;
        if store.is_persistent() {
            job.to_stored()?;
        }
        store
            .update_job(job.clone())
            .await
            .map_err(|e| SchedulerError::store(&store_name, e))?;
        crate::cluster::changed(sh, &store_name);
        sh.emit(Event::Job(JobEvent::new(
            EventKind::JobModified,
            id.clone(),
            store_name,
        )));
        sh.wake_if_before(job.next_run_time);
        Ok(job)
    }

    /// Removes a job. Runs already going finish.
    ///
    /// # Errors
    /// [`JobNotFound`](SchedulerError::JobNotFound), [`Store`](SchedulerError::Store).
    pub async fn remove_job(&self, id: &JobId) -> Result<(), SchedulerError> {
        let sh = &self.shared;
        let _ops = sh.ops.lock().await;
        {
            let mut pending = sh.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(i) = pending.position(id) {
                pending.remove(i);
                return Ok(());
            }
        }
        let Some((store_name, _)) = sh.find(id).await? else {
            return Err(SchedulerError::JobNotFound { id: id.clone() });
        };
        if let Some(store) = sh.store(&store_name) {
            match store.remove_job(id).await {
                Ok(()) => {}
                Err(StoreError::NotFound { .. }) => {
                    return Err(SchedulerError::JobNotFound { id: id.clone() });
                }
                Err(e) => return Err(SchedulerError::store(&store_name, e)),
            }
        }
        // No wake-up: a removal can only make the dispatcher wake too early, and then it
        // finds nothing due and sleeps again.
        crate::cluster::changed(sh, &store_name);
        sh.emit(Event::Job(JobEvent::new(
            EventKind::JobRemoved,
            id.clone(),
            store_name,
        )));
        Ok(())
    }

    /// Removes every job, from every store (`store: None`) or from one, and pending ones.
    ///
    /// # Errors
    /// [`UnknownStore`](SchedulerError::UnknownStore), [`Store`](SchedulerError::Store).
    pub async fn remove_all_jobs(&self, store: Option<&str>) -> Result<(), SchedulerError> {
        let sh = &self.shared;
        if let Some(name) = store
            && sh.store(name).is_none()
        {
            return Err(SchedulerError::UnknownStore(name.to_owned()));
        }
        let _ops = sh.ops.lock().await;
        sh.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|p| store.is_some_and(|s| *p.job.store != *s));
        for (name, st) in sh.stores().iter() {
            if store.is_none_or(|s| s == name) {
                st.remove_all_jobs()
                    .await
                    .map_err(|e| SchedulerError::store(name, e))?;
                crate::cluster::changed(sh, name);
            }
        }
        sh.emit(Event::Scheduler(SchedulerEvent::new(
            EventKind::AllJobsRemoved,
            store.map(str::to_owned),
        )));
        Ok(())
    }

    /// Runs a job once now, outside its schedule (which is left as it is). The run counts
    /// against `max_instances`. Returns once the run is submitted.
    ///
    /// # Errors
    /// [`NotRunning`](SchedulerError::NotRunning) before start or after shutdown,
    /// [`JobNotFound`](SchedulerError::JobNotFound),
    /// [`MaxInstances`](SchedulerError::MaxInstances) (also reported as an event),
    /// [`Store`](SchedulerError::Store).
    pub async fn run_job_now(&self, id: &JobId) -> Result<(), SchedulerError> {
        let sh = &self.shared;
        if !matches!(sh.state(), SchedulerState::Running | SchedulerState::Paused) {
            return Err(SchedulerError::NotRunning);
        }
        let Some((_, job)) = sh.find(id).await? else {
            return Err(SchedulerError::JobNotFound { id: id.clone() });
        };
        let now = sh.clock.now();
        if !dispatcher::submit(&self.shared, &job, vec![now], job.next_run_time) {
            return Err(SchedulerError::MaxInstances {
                id: id.clone(),
                max: job.max_instances,
            });
        }
        Ok(())
    }

    /// Starts processing jobs: pending jobs are written to their stores (their first run
    /// time computed now), and the dispatcher task is spawned on the current runtime.
    ///
    /// # Errors
    /// [`AlreadyRunning`](SchedulerError::AlreadyRunning),
    /// [`ShutDown`](SchedulerError::ShutDown), [`NoRuntime`](SchedulerError::NoRuntime), or
    /// the first error writing pending jobs (those not written stay pending: jobs without
    /// `replace_existing` are written in one all-or-nothing batch per store, then the
    /// others one at a time).
    pub async fn start(&self) -> Result<(), SchedulerError> {
        self.start_in(SchedulerState::Running).await
    }

    /// Starts the scheduler paused: jobs can be added and are stored, but nothing runs until
    /// [`resume`](Scheduler::resume).
    ///
    /// # Errors
    /// As [`start`](Scheduler::start).
    pub async fn start_paused(&self) -> Result<(), SchedulerError> {
        self.start_in(SchedulerState::Paused).await
    }

    async fn start_in(&self, target: SchedulerState) -> Result<(), SchedulerError> {
        let sh = &self.shared;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| SchedulerError::NoRuntime)?;
        crate::cluster::validate(sh)?;
        {
            let _ops = sh.ops.lock().await;
            match sh.state() {
                SchedulerState::Stopped => {}
                SchedulerState::ShutDown => return Err(SchedulerError::ShutDown),
                _ => return Err(SchedulerError::AlreadyRunning),
            }
            // Jobs that replace nothing are written in one batch per store (all or
            // nothing), then the others one at a time; what was not written stays pending.
            let pending = sh
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let stores = sh.stores();
            let restore = |jobs: Vec<Pending>| {
                sh.pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .restore(jobs);
            };
            let mut adding = Vec::with_capacity(pending.len());
            for p in pending.iter().filter(|p| !p.replace_existing) {
                let Some((_, store)) = stores.iter().find(|(n, _)| **n == *p.job.store) else {
                    let store = p.job.store.to_string();
                    restore(pending);
                    return Err(SchedulerError::UnknownStore(store));
                };
                adding.push(NewJob {
                    job: p.job.clone(),
                    store: store.clone(),
                    replace: false,
                    explicit_next: p.explicit_next,
                });
            }
            if let Err(e) = self.write_new_jobs(adding).await {
                restore(pending);
                return Err(e);
            }
            let mut rest = pending.into_iter().filter(|p| p.replace_existing);
            while let Some(p) = rest.next() {
                let Some((_, store)) = stores.iter().find(|(n, _)| **n == *p.job.store) else {
                    let store = p.job.store.to_string();
                    restore(std::iter::once(p).chain(rest).collect());
                    return Err(SchedulerError::UnknownStore(store));
                };
                if let Err(e) = self
                    .write_new_job(store, p.job.clone(), true, p.explicit_next)
                    .await
                {
                    restore(std::iter::once(p).chain(rest).collect());
                    return Err(e);
                }
            }
            sh.state.send_replace(target);
        }
        for (name, _) in sh.stores().iter() {
            sh.emit(Event::Scheduler(SchedulerEvent::new(
                EventKind::JobstoreAdded,
                Some(name.clone()),
            )));
        }
        let mut executors: Vec<String> = sh
            .executors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        executors.sort();
        for name in executors {
            sh.emit(Event::Scheduler(SchedulerEvent::new(
                EventKind::ExecutorAdded,
                Some(name),
            )));
        }
        crate::metrics::describe();
        crate::cluster::start(&self.shared, &runtime);
        let handle = runtime.spawn(dispatcher::run(self.shared.clone()));
        *sh.dispatcher.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        sh.emit(Event::Scheduler(SchedulerEvent::new(
            EventKind::SchedulerStarted,
            None,
        )));
        Ok(())
    }

    /// Stops running jobs until [`resume`](Scheduler::resume); runs going on finish. Runs
    /// that come due meanwhile are handled on resume by the misfire and coalescing rules.
    ///
    /// # Errors
    /// [`NotRunning`](SchedulerError::NotRunning) unless running.
    pub fn pause(&self) -> Result<(), SchedulerError> {
        self.transition(SchedulerState::Running, SchedulerState::Paused)?;
        self.shared.emit(Event::Scheduler(SchedulerEvent::new(
            EventKind::SchedulerPaused,
            None,
        )));
        Ok(())
    }

    /// Resumes a paused scheduler.
    ///
    /// # Errors
    /// [`NotRunning`](SchedulerError::NotRunning) unless paused.
    pub fn resume(&self) -> Result<(), SchedulerError> {
        self.transition(SchedulerState::Paused, SchedulerState::Running)?;
        self.shared.wake.notify_one();
        self.shared.emit(Event::Scheduler(SchedulerEvent::new(
            EventKind::SchedulerResumed,
            None,
        )));
        Ok(())
    }

    fn transition(&self, from: SchedulerState, to: SchedulerState) -> Result<(), SchedulerError> {
        let mut ok = false;
        self.shared.state.send_if_modified(|s| {
            ok = *s == from;
            if ok {
                *s = to;
            }
            ok
        });
        if ok {
            Ok(())
        } else {
            Err(SchedulerError::NotRunning)
        }
    }

    /// Shuts the scheduler down: stops the dispatcher, then treats running jobs as `mode`
    /// says. A shut-down scheduler cannot start again. Calling it twice is harmless.
    ///
    /// # Cancel safety
    /// Dropping the future after the first poll leaves the scheduler shut down; only the
    /// waiting for runs is abandoned.
    pub async fn shutdown(&self, mode: ShutdownMode) {
        let sh = &self.shared;
        let previous = sh.state.send_replace(SchedulerState::ShutDown);
        if previous == SchedulerState::ShutDown {
            return;
        }
        sh.stop.cancel();
        let handle = sh
            .dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            // The dispatcher only ends by the stop token; a join error means it panicked,
            // which its own loop already logs.
            let _ = handle.await;
        }
        sh.tracker.close();
        match mode {
            ShutdownMode::NoWait => {}
            ShutdownMode::Wait => sh.tracker.wait().await,
            ShutdownMode::Cancel => {
                sh.run_cancel.cancel();
                sh.tracker.wait().await;
            }
        }
        crate::cluster::shutdown(sh, mode != ShutdownMode::NoWait).await;
        sh.emit(Event::Scheduler(SchedulerEvent::new(
            EventKind::SchedulerShutdown,
            None,
        )));
        sh.done.cancel();
    }

    /// Starts the scheduler and waits until it is shut down (from another task, through a
    /// clone of this handle): for programs whose main loop is the scheduler.
    ///
    /// # Errors
    /// As [`start`](Scheduler::start).
    pub async fn run(&self) -> Result<(), SchedulerError> {
        self.start().await?;
        self.shared.done.cancelled().await;
        Ok(())
    }

    /// How many runs are going on now.
    pub fn running_jobs(&self) -> usize {
        self.shared.tracker.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::random_id;

    #[test]
    fn random_ids_are_32_lowercase_hex_digits_and_differ() {
        let ids: HashSet<String> = (0..10_000).map(|_| random_id().to_string()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
        }
        // Every digit position takes more than one value: no position is stuck.
        for pos in 0..32 {
            let seen: HashSet<u8> = ids.iter().map(|id| id.as_bytes()[pos]).collect();
            assert!(seen.len() > 8, "position {pos} took only {seen:?}");
        }
    }
}
