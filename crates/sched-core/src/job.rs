//! The job model: what a scheduler keeps about each job, and the form stores persist.
//!
//! A [`Job`] says *what* runs ([`TaskRef`]), *when* ([`JobTrigger`] and
//! [`Job::next_run_time`]) and *how* late runs, overlapping runs and backlogs are handled
//! ([`Job::misfire_grace_time`], [`Coalesce`], [`Job::max_instances`]). A job whose task is a
//! registered name and whose trigger is an [`AnyTrigger`] is *persistable*: it converts into a
//! [`StoredJob`], the serde form written by persistent stores. A job holding a closure or a
//! trigger given as a Rust object lives in memory only.
//!
//! ```
//! use std::time::Duration;
//! use sched_core::job::{Coalesce, Job, JobDefaults, JobId, TaskRef};
//!
//! let id: JobId = "nightly-report".parse()?;
//! let defaults = JobDefaults::default();
//! assert_eq!(defaults.misfire_grace_time, Some(Duration::from_secs(1)));
//! assert_eq!(defaults.coalesce, Coalesce::Latest);
//! assert_eq!(defaults.max_instances, 1);
//!
//! // APScheduler 3's `coalesce=True` / `coalesce=False`.
//! assert_eq!(Coalesce::from(true), Coalesce::Latest);
//! assert_eq!(Coalesce::from(false), Coalesce::All);
//!
//! let task = TaskRef::named("send_report", serde_json::json!({"to": "ops"}));
//! assert_eq!(task.name(), Some("send_report"));
//! assert_eq!(id.to_string(), "nightly-report");
//! # Ok::<(), sched_core::job::InvalidJobId>(())
//! ```

use std::any::Any;
use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::Zone;
use crate::trigger::{AnyTrigger, Trigger};

/// The identifier of a job, unique within its store.
///
/// Any non-empty string is a valid id. Cloning is cheap (the text is shared).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(Arc<str>);

/// The error of parsing an empty string as a [`JobId`]. Permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id: must not be empty")]
pub struct InvalidJobId;

impl JobId {
    /// Makes an id from text.
    ///
    /// # Errors
    /// [`InvalidJobId`] when `id` is empty.
    pub fn new(id: impl AsRef<str>) -> Result<JobId, InvalidJobId> {
        let id = id.as_ref();
        if id.is_empty() {
            return Err(InvalidJobId);
        }
        Ok(JobId(Arc::from(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl FromStr for JobId {
    type Err = InvalidJobId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobId::new(s)
    }
}

impl TryFrom<&str> for JobId {
    type Error = InvalidJobId;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        JobId::new(s)
    }
}

impl TryFrom<String> for JobId {
    type Error = InvalidJobId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        JobId::new(s)
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for JobId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        JobId::new(s).map_err(serde::de::Error::custom)
    }
}

/// What to do when several run times of one job are due at once, typically after the
/// scheduler was down, paused, or the wall clock jumped forward.
///
/// Take an every-minute job whose runs at 10:01, 10:02 and 10:03 were all missed, found due
/// at 10:03:30 (`misfire_grace_time` long enough for each):
///
/// ```text
///            10:01   10:02   10:03   10:03:30 (now)
///  due:        *       *       *        |
///  Earliest:   R                        |   one run, scheduled_run_time 10:01
///  Latest:                     R        |   one run, scheduled_run_time 10:03
///  All:        R       R       R        |   three runs, one per time
/// ```
///
/// With `Earliest` and `Latest`, the chosen time is picked among the run times that are
/// still within the grace time; when none is, a single *missed* event is reported for the
/// latest one. With `All`, each time beyond the grace time gets its own *missed* event.
///
/// APScheduler 3 has a boolean `coalesce`: `true` runs once for the most recent time
/// (it keeps `run_times[-1:]`), which is [`Coalesce::Latest`], and `false` runs every
/// time, which is [`Coalesce::All`]. `From<bool>` maps them so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coalesce {
    /// Run once, for the earliest due run time still within the grace time.
    Earliest,
    /// Run once, for the latest due run time (APScheduler 3's `coalesce=True`; the default).
    #[default]
    Latest,
    /// Run once for every due run time within the grace time (APScheduler 3's
    /// `coalesce=False`).
    All,
}

impl From<bool> for Coalesce {
    /// `true` → [`Coalesce::Latest`], `false` → [`Coalesce::All`], as APScheduler 3.
    fn from(coalesce: bool) -> Coalesce {
        if coalesce {
            Coalesce::Latest
        } else {
            Coalesce::All
        }
    }
}

/// A task that lives only in the process that created it (a closure), opaque to this crate.
///
/// The runtime decides what it holds and downcasts it back with [`LocalTask::downcast`].
/// Jobs carrying one cannot be persisted.
#[derive(Clone)]
pub struct LocalTask {
    label: Arc<str>,
    inner: Arc<dyn Any + Send + Sync>,
}

impl LocalTask {
    /// Wraps a runtime-specific task value; `label` is shown in listings and errors.
    pub fn new<T: Any + Send + Sync>(label: impl Into<String>, task: T) -> LocalTask {
        LocalTask {
            label: Arc::from(label.into()),
            inner: Arc::new(task),
        }
    }

    /// The label given at creation.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The wrapped value, when it is a `T`.
    pub fn downcast<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.inner.downcast_ref::<T>()
    }
}

impl fmt::Debug for LocalTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTask")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// What a job runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TaskRef {
    /// A task registered on the scheduler under `name`, called with `args`. Persistable.
    Named {
        /// The registered task name (shared: jobs cloned from one another share the text).
        name: Arc<str>,
        /// The arguments, deserialized by the task into its own argument type.
        args: Value,
    },
    /// A closure held in memory. Not persistable.
    Local(LocalTask),
}

impl TaskRef {
    /// A registered task with JSON arguments.
    pub fn named(name: impl Into<Arc<str>>, args: Value) -> TaskRef {
        TaskRef::Named {
            name: name.into(),
            args,
        }
    }

    /// The registered name, for a named task.
    pub fn name(&self) -> Option<&str> {
        match self {
            TaskRef::Named { name, .. } => Some(name),
            TaskRef::Local(_) => None,
        }
    }

    /// Whether a persistent store can keep this task.
    pub fn is_persistable(&self) -> bool {
        matches!(self, TaskRef::Named { .. })
    }

    /// Whether `self` and `other` run the same thing: the same name and equal arguments, or
    /// the same closure (one [`LocalTask`] and its clones). Stores use it to share what
    /// many jobs have in common.
    ///
    /// ```
    /// use sched_core::job::{LocalTask, TaskRef};
    ///
    /// let a = TaskRef::Local(LocalTask::new("tick", 1u8));
    /// assert!(a.is_same(&a.clone()));
    /// assert!(!a.is_same(&TaskRef::Local(LocalTask::new("tick", 1u8))));
    /// assert!(TaskRef::named("t", 1.into()).is_same(&TaskRef::named("t", 1.into())));
    /// ```
    pub fn is_same(&self, other: &TaskRef) -> bool {
        match (self, other) {
            (TaskRef::Named { name: a, args: x }, TaskRef::Named { name: b, args: y }) => {
                a == b && x == y
            }
            (TaskRef::Local(a), TaskRef::Local(b)) => Arc::ptr_eq(&a.inner, &b.inner),
            _ => false,
        }
    }
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskRef::Named { name, .. } => f.write_str(name),
            TaskRef::Local(task) => write!(f, "<closure {}>", task.label()),
        }
    }
}

/// The trigger of a job: a serializable spec, or any [`Trigger`] object (memory only).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum JobTrigger {
    /// A trigger with a JSON spec. Persistable. Shared: triggers never change once built, and
    /// jobs are cloned on their way out of a store, so the (large) trigger is not copied.
    Spec(Arc<AnyTrigger>),
    /// A trigger implemented in Rust outside the spec kinds. Not persistable.
    Dynamic(Arc<dyn Trigger>),
}

impl JobTrigger {
    /// Wraps any trigger object (kept in memory only).
    pub fn dynamic(trigger: impl Trigger + 'static) -> JobTrigger {
        JobTrigger::Dynamic(Arc::new(trigger))
    }

    /// Whether a persistent store can keep this trigger.
    pub fn is_persistable(&self) -> bool {
        matches!(self, JobTrigger::Spec(_))
    }

    /// The trigger as a trait object.
    pub fn as_trigger(&self) -> &dyn Trigger {
        match self {
            JobTrigger::Spec(t) => t.as_ref(),
            JobTrigger::Dynamic(t) => t.as_ref(),
        }
    }
}

impl From<AnyTrigger> for JobTrigger {
    fn from(t: AnyTrigger) -> JobTrigger {
        JobTrigger::Spec(Arc::new(t))
    }
}

impl From<Arc<AnyTrigger>> for JobTrigger {
    /// Shares one trigger between many jobs.
    fn from(t: Arc<AnyTrigger>) -> JobTrigger {
        JobTrigger::Spec(t)
    }
}

impl From<Arc<dyn Trigger>> for JobTrigger {
    fn from(t: Arc<dyn Trigger>) -> JobTrigger {
        JobTrigger::Dynamic(t)
    }
}

impl Trigger for JobTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.as_trigger().next_fire_time(previous, now)
    }

    fn zone(&self) -> Zone {
        self.as_trigger().zone()
    }

    fn jitter(&self) -> Option<Duration> {
        self.as_trigger().jitter()
    }
}

impl fmt::Display for JobTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobTrigger::Spec(t) => fmt::Display::fmt(t, f),
            JobTrigger::Dynamic(t) => write!(f, "{t:?}"),
        }
    }
}

/// How a failed run is tried again: up to `max_attempts` attempts in all, waiting
/// `initial_backoff` before the second, each later wait `multiplier` times the one before,
/// never more than `max_backoff`.
///
/// A run is retried when the task returns an error, panics or times out; not when it was
/// cancelled at shutdown or could not start (task not registered, arguments unreadable).
/// The retries belong to the same run: they hold its `max_instances` permit, carry its
/// scheduled run time, and number their attempts from 1.
///
/// ```
/// use std::time::Duration;
/// use sched_core::job::RetryPolicy;
///
/// let p = RetryPolicy::new(4); // 1 s, then 2 s, then 4 s
/// assert_eq!(p.backoff(1), Duration::from_secs(1));
/// assert_eq!(p.backoff(3), Duration::from_secs(4));
/// let capped = RetryPolicy { max_backoff: Duration::from_secs(3), ..p };
/// assert_eq!(capped.backoff(3), Duration::from_secs(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait before the second attempt (seconds in the stored form).
    #[serde(with = "secs")]
    pub initial_backoff: Duration,
    /// Each later wait is the previous one times this.
    pub multiplier: f64,
    /// The longest wait (seconds in the stored form).
    #[serde(with = "secs")]
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// `max_attempts` attempts, waits of 1 s doubling up to 60 s.
    pub fn new(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(60),
        }
    }

    /// The wait after failed attempt `attempt` (1-based) before the next one.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.multiplier.max(1.0).powi(exp);
        let secs = self.initial_backoff.as_secs_f64() * factor;
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Defaults applied to every job that does not set its own value (APScheduler 3's
/// `job_defaults`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobDefaults {
    /// How late a run may start and still run; `None` runs however late. Default 1 s.
    #[serde(with = "opt_secs")]
    pub misfire_grace_time: Option<Duration>,
    /// Default [`Coalesce::Latest`] (APScheduler 3's `coalesce=True`).
    pub coalesce: Coalesce,
    /// How many runs of one job may overlap. Default 1.
    pub max_instances: u32,
}

impl Default for JobDefaults {
    fn default() -> JobDefaults {
        JobDefaults {
            misfire_grace_time: Some(Duration::from_secs(1)),
            coalesce: Coalesce::Latest,
            max_instances: 1,
        }
    }
}

/// A scheduled job, as the scheduler and stores hold it.
///
/// The fields are public so stores and tools can read them; build one with [`Job::new`]
/// (every option from [`JobDefaults`]) and set what differs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Job {
    /// Unique within its store.
    pub id: JobId,
    /// A human-readable name (defaults to the task's name).
    ///
    /// This and the other names of a job are shared text (`Arc<str>`): a clone of a job,
    /// and every job of one task, executor and store, share them instead of copying.
    pub name: Arc<str>,
    /// What runs.
    pub task: TaskRef,
    /// When it runs.
    pub trigger: JobTrigger,
    /// The name of the executor that runs it.
    pub executor: Arc<str>,
    /// The name of the store that holds it.
    pub store: Arc<str>,
    /// How late a run may start and still run; `None` runs however late.
    pub misfire_grace_time: Option<Duration>,
    /// What to do with several due run times at once.
    pub coalesce: Coalesce,
    /// How many runs of this job may overlap (at least 1).
    pub max_instances: u32,
    /// The next time the job runs; `None` when it is paused.
    pub next_run_time: Option<DateTime<Utc>>,
    /// The largest random delay added to each run's start (never to the schedule).
    pub jitter: Option<Duration>,
    /// A run still going after this long is cancelled and reported as an error.
    pub timeout: Option<Duration>,
    /// Whether and how a failed run is tried again.
    pub retry: Option<RetryPolicy>,
}

/// The name of the store and of the executor a job uses unless it names another.
pub const DEFAULT: &str = "default";

/// [`DEFAULT`] as shared text, made once: every job in the default store and executor
/// points at the same two words.
fn default_name() -> Arc<str> {
    static NAME: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(DEFAULT));
    NAME.clone()
}

/// `name` as shared text, the default name without an allocation.
pub fn shared_name(name: impl AsRef<str> + Into<Arc<str>>) -> Arc<str> {
    if name.as_ref() == DEFAULT {
        default_name()
    } else {
        name.into()
    }
}

impl Job {
    /// A job with options from `JobDefaults::default()`, in the `default` store and
    /// executor, paused (no next run time) until the scheduler computes one.
    pub fn new(id: JobId, task: TaskRef, trigger: impl Into<JobTrigger>) -> Job {
        let defaults = JobDefaults::default();
        let name = match &task {
            TaskRef::Named { name, .. } => name.clone(),
            TaskRef::Local(t) => t.label.clone(),
        };
        Job {
            id,
            name,
            task,
            trigger: trigger.into(),
            executor: default_name(),
            store: default_name(),
            misfire_grace_time: defaults.misfire_grace_time,
            coalesce: defaults.coalesce,
            max_instances: defaults.max_instances,
            next_run_time: None,
            jitter: None,
            timeout: None,
            retry: None,
        }
    }

    /// Whether the job is paused (has no next run time).
    pub fn is_paused(&self) -> bool {
        self.next_run_time.is_none()
    }

    /// Whether a persistent store can keep this job (a named task and a spec trigger).
    pub fn is_persistable(&self) -> bool {
        self.task.is_persistable() && self.trigger.is_persistable()
    }

    /// The stored form of this job.
    ///
    /// # Errors
    /// [`NotPersistable`] when the task is a closure or the trigger has no spec.
    pub fn to_stored(&self) -> Result<StoredJob, NotPersistable> {
        let (task, args) = match &self.task {
            TaskRef::Named { name, args } => (name.to_string(), args.clone()),
            TaskRef::Local(t) => {
                return Err(NotPersistable {
                    id: self.id.clone(),
                    reason: format!(
                        "its task is a closure ({}); register the task by name instead",
                        t.label()
                    ),
                });
            }
        };
        let JobTrigger::Spec(trigger) = &self.trigger else {
            return Err(NotPersistable {
                id: self.id.clone(),
                reason: "its trigger has no JSON spec".to_owned(),
            });
        };
        Ok(StoredJob {
            format: StoredJob::FORMAT,
            id: self.id.clone(),
            name: self.name.to_string(),
            task,
            args,
            trigger: AnyTrigger::clone(trigger),
            executor: self.executor.to_string(),
            store: self.store.to_string(),
            misfire_grace_time: self.misfire_grace_time,
            coalesce: self.coalesce,
            max_instances: self.max_instances,
            next_run_time: self.next_run_time,
            jitter: self.jitter,
            timeout: self.timeout,
            retry: self.retry,
        })
    }
}

impl From<StoredJob> for Job {
    fn from(s: StoredJob) -> Job {
        Job {
            id: s.id,
            name: s.name.into(),
            task: TaskRef::Named {
                name: s.task.into(),
                args: s.args,
            },
            trigger: JobTrigger::Spec(Arc::new(s.trigger)),
            executor: shared_name(s.executor),
            store: shared_name(s.store),
            misfire_grace_time: s.misfire_grace_time,
            coalesce: s.coalesce,
            max_instances: s.max_instances,
            next_run_time: s.next_run_time,
            jitter: s.jitter,
            timeout: s.timeout,
            retry: s.retry,
        }
    }
}

/// What to add: a task, a trigger, and every option a job has, each left to the
/// scheduler's [`JobDefaults`] unless set (APScheduler's `add_job` arguments).
///
/// ```
/// use std::time::Duration;
/// use sched_core::job::{Coalesce, JobDefaults, JobId, JobSpec, TaskRef};
/// # use sched_core::{Trigger, Zone};
/// # #[derive(Debug)] struct Never;
/// # impl Trigger for Never {
/// #     fn next_fire_time(&self, _: Option<chrono::DateTime<chrono::Utc>>, _: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> { None }
/// #     fn zone(&self) -> Zone { Zone::UTC }
/// # }
///
/// let spec = JobSpec::new(TaskRef::named("ping", serde_json::json!(null)), sched_core::JobTrigger::dynamic(Never))
///     .id("ping-every-minute")?
///     .coalesce(Coalesce::All)
///     .misfire_grace_time(None);
/// let job = spec.into_job(&JobDefaults::default(), || JobId::new("generated").unwrap());
/// assert_eq!(job.id.as_str(), "ping-every-minute");
/// assert_eq!(job.max_instances, 1); // from the defaults
/// assert_eq!(job.misfire_grace_time, None);
/// # Ok::<(), sched_core::job::InvalidJobId>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a JobSpec does nothing until passed to add_job"]
pub struct JobSpec {
    task: TaskRef,
    trigger: JobTrigger,
    id: Option<JobId>,
    name: Option<Arc<str>>,
    misfire_grace_time: Option<Option<Duration>>,
    coalesce: Option<Coalesce>,
    max_instances: Option<u32>,
    next_run_time: Option<Option<DateTime<Utc>>>,
    store: Option<Arc<str>>,
    executor: Option<Arc<str>>,
    replace_existing: bool,
    jitter: Option<Duration>,
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
}

impl JobSpec {
    /// A job running `task` when `trigger` fires, every option from the defaults.
    pub fn new(task: TaskRef, trigger: impl Into<JobTrigger>) -> JobSpec {
        JobSpec {
            task,
            trigger: trigger.into(),
            id: None,
            name: None,
            misfire_grace_time: None,
            coalesce: None,
            max_instances: None,
            next_run_time: None,
            store: None,
            executor: None,
            replace_existing: false,
            jitter: None,
            timeout: None,
            retry: None,
        }
    }

    /// The job's id (default: a random one).
    ///
    /// # Errors
    /// [`InvalidJobId`] when `id` is empty.
    pub fn id(mut self, id: impl AsRef<str>) -> Result<JobSpec, InvalidJobId> {
        self.id = Some(JobId::new(id)?);
        Ok(self)
    }

    /// The job's id, already checked.
    pub fn job_id(mut self, id: JobId) -> JobSpec {
        self.id = Some(id);
        self
    }

    /// The id set so far, if any.
    pub fn id_ref(&self) -> Option<&JobId> {
        self.id.as_ref()
    }

    /// A display name (default: the task's name).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> JobSpec {
        self.name = Some(name.into());
        self
    }

    /// How late a run may start; `None` runs however late.
    pub fn misfire_grace_time(mut self, grace: Option<Duration>) -> JobSpec {
        self.misfire_grace_time = Some(grace);
        self
    }

    /// The coalescing policy (a `bool` converts as APScheduler 3's).
    pub fn coalesce(mut self, coalesce: impl Into<Coalesce>) -> JobSpec {
        self.coalesce = Some(coalesce.into());
        self
    }

    /// How many runs may overlap (at least 1; 0 is read as 1).
    pub fn max_instances(mut self, n: u32) -> JobSpec {
        self.max_instances = Some(n.max(1));
        self
    }

    /// The first run time, instead of the trigger's first fire time.
    pub fn next_run_time(mut self, at: DateTime<Utc>) -> JobSpec {
        self.next_run_time = Some(Some(at));
        self
    }

    /// Adds the job paused (APScheduler's `next_run_time=None`).
    pub fn paused(mut self) -> JobSpec {
        self.next_run_time = Some(None);
        self
    }

    /// The explicit first run time: `None` when not set, `Some(None)` when paused.
    pub fn explicit_next_run_time(&self) -> Option<Option<DateTime<Utc>>> {
        self.next_run_time
    }

    /// The store that keeps the job (default `default`).
    pub fn store(mut self, store: impl AsRef<str> + Into<Arc<str>>) -> JobSpec {
        self.store = Some(shared_name(store));
        self
    }

    /// The executor that runs it (default `default`).
    pub fn executor(mut self, executor: impl AsRef<str> + Into<Arc<str>>) -> JobSpec {
        self.executor = Some(shared_name(executor));
        self
    }

    /// Replace a job with the same id instead of failing.
    pub fn replace_existing(mut self, replace: bool) -> JobSpec {
        self.replace_existing = replace;
        self
    }

    /// Whether a job with the same id is replaced.
    pub fn is_replace_existing(&self) -> bool {
        self.replace_existing
    }

    /// The largest random delay added to each run's start.
    pub fn jitter(mut self, jitter: Duration) -> JobSpec {
        self.jitter = Some(jitter);
        self
    }

    /// Cancel a run that takes longer than this.
    pub fn timeout(mut self, timeout: Duration) -> JobSpec {
        self.timeout = Some(timeout);
        self
    }

    /// Try a failed run again as `policy` says.
    pub fn retry(mut self, policy: RetryPolicy) -> JobSpec {
        self.retry = Some(policy);
        self
    }

    /// The job this spec describes, options not set taken from `defaults`, the id from
    /// `fallback_id` when none was set. The next run time is left as set (or `None`): the
    /// scheduler computes it when the job is added.
    pub fn into_job(self, defaults: &JobDefaults, fallback_id: impl FnOnce() -> JobId) -> Job {
        let id = self.id.unwrap_or_else(fallback_id);
        let mut job = Job::new(id, self.task, self.trigger);
        if let Some(name) = self.name {
            job.name = name;
        }
        job.misfire_grace_time = self
            .misfire_grace_time
            .unwrap_or(defaults.misfire_grace_time);
        job.coalesce = self.coalesce.unwrap_or(defaults.coalesce);
        job.max_instances = self.max_instances.unwrap_or(defaults.max_instances).max(1);
        job.next_run_time = self.next_run_time.flatten();
        if let Some(store) = self.store {
            job.store = store;
        }
        if let Some(executor) = self.executor {
            job.executor = executor;
        }
        job.jitter = self.jitter;
        job.timeout = self.timeout;
        job.retry = self.retry;
        job
    }
}

/// Changes to apply to an existing job (APScheduler's `modify_job` keywords). Fields left
/// unset stay as they are.
#[derive(Clone, Debug, Default)]
#[must_use = "JobChanges do nothing until passed to modify_job"]
pub struct JobChanges {
    name: Option<Arc<str>>,
    misfire_grace_time: Option<Option<Duration>>,
    coalesce: Option<Coalesce>,
    max_instances: Option<u32>,
    executor: Option<Arc<str>>,
    next_run_time: Option<Option<DateTime<Utc>>>,
    args: Option<Value>,
    jitter: Option<Option<Duration>>,
    timeout: Option<Option<Duration>>,
    retry: Option<Option<RetryPolicy>>,
}

impl JobChanges {
    /// No changes.
    pub fn new() -> JobChanges {
        JobChanges::default()
    }

    /// A new name.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> JobChanges {
        self.name = Some(name.into());
        self
    }

    /// A new misfire grace time.
    pub fn misfire_grace_time(mut self, grace: Option<Duration>) -> JobChanges {
        self.misfire_grace_time = Some(grace);
        self
    }

    /// A new coalescing policy.
    pub fn coalesce(mut self, coalesce: impl Into<Coalesce>) -> JobChanges {
        self.coalesce = Some(coalesce.into());
        self
    }

    /// A new instance limit (at least 1); runs going on keep their permits.
    pub fn max_instances(mut self, n: u32) -> JobChanges {
        self.max_instances = Some(n.max(1));
        self
    }

    /// A new executor.
    pub fn executor(mut self, executor: impl AsRef<str> + Into<Arc<str>>) -> JobChanges {
        self.executor = Some(shared_name(executor));
        self
    }

    /// The executor to be set, if any.
    pub fn executor_ref(&self) -> Option<&str> {
        self.executor.as_deref()
    }

    /// A new next run time (`None` pauses the job).
    pub fn next_run_time(mut self, at: Option<DateTime<Utc>>) -> JobChanges {
        self.next_run_time = Some(at);
        self
    }

    /// The next run time to be set: `None` when not set, `Some(None)` when pausing.
    pub fn explicit_next_run_time(&self) -> Option<Option<DateTime<Utc>>> {
        self.next_run_time
    }

    /// New arguments for a named task (ignored for closures).
    pub fn args(mut self, args: Value) -> JobChanges {
        self.args = Some(args);
        self
    }

    /// A new jitter.
    pub fn jitter(mut self, jitter: Option<Duration>) -> JobChanges {
        self.jitter = Some(jitter);
        self
    }

    /// A new timeout.
    pub fn timeout(mut self, timeout: Option<Duration>) -> JobChanges {
        self.timeout = Some(timeout);
        self
    }

    /// A new retry policy (`None`: no retries).
    pub fn retry(mut self, retry: Option<RetryPolicy>) -> JobChanges {
        self.retry = Some(retry);
        self
    }

    /// Applies the changes to `job`.
    pub fn apply(self, job: &mut Job) {
        if let Some(name) = self.name {
            job.name = name;
        }
        if let Some(g) = self.misfire_grace_time {
            job.misfire_grace_time = g;
        }
        if let Some(c) = self.coalesce {
            job.coalesce = c;
        }
        if let Some(n) = self.max_instances {
            job.max_instances = n;
        }
        if let Some(e) = self.executor {
            job.executor = e;
        }
        if let Some(t) = self.next_run_time {
            job.next_run_time = t;
        }
        if let (Some(new), TaskRef::Named { args, .. }) = (self.args, &mut job.task) {
            *args = new;
        }
        if let Some(j) = self.jitter {
            job.jitter = j;
        }
        if let Some(t) = self.timeout {
            job.timeout = t;
        }
        if let Some(r) = self.retry {
            job.retry = r;
        }
    }
}

/// A job cannot be written to a persistent store. Permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {id} cannot be persisted: {reason}")]
pub struct NotPersistable {
    /// The job.
    pub id: JobId,
    /// Why not.
    pub reason: String,
}

/// The serde form of a persistable [`Job`], as persistent stores write it.
///
/// `format` is the version of this layout, so that nodes of two releases can share a store;
/// durations are seconds (fractions allowed), times RFC 3339 UTC, and the trigger is its
/// JSON spec. Unknown fields are rejected.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoredJob {
    /// The layout version ([`StoredJob::FORMAT`] when written by this release).
    pub format: u32,
    /// See [`Job::id`].
    pub id: JobId,
    /// See [`Job::name`].
    pub name: String,
    /// The registered task name.
    pub task: String,
    /// The task's arguments.
    #[serde(default)]
    pub args: Value,
    /// See [`Job::trigger`].
    pub trigger: AnyTrigger,
    /// See [`Job::executor`].
    pub executor: String,
    /// See [`Job::store`].
    pub store: String,
    /// See [`Job::misfire_grace_time`].
    #[serde(with = "opt_secs")]
    pub misfire_grace_time: Option<Duration>,
    /// See [`Job::coalesce`].
    pub coalesce: Coalesce,
    /// See [`Job::max_instances`].
    pub max_instances: u32,
    /// See [`Job::next_run_time`].
    pub next_run_time: Option<DateTime<Utc>>,
    /// See [`Job::jitter`].
    #[serde(default, with = "opt_secs")]
    pub jitter: Option<Duration>,
    /// See [`Job::timeout`].
    #[serde(default, with = "opt_secs")]
    pub timeout: Option<Duration>,
    /// See [`Job::retry`].
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
}

impl StoredJob {
    /// The layout version this release writes.
    pub const FORMAT: u32 = 1;
}

/// `Duration` as seconds (`1.5`).
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs)
            .map_err(|_| serde::de::Error::custom(format!("invalid duration {secs} s")))
    }
}

/// `Option<Duration>` as optional seconds (`1.5`), the unit APScheduler uses.
mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            None => Ok(None),
            Some(secs) => Duration::try_from_secs_f64(secs)
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("invalid duration {secs} s"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[derive(Debug)]
    struct Never;

    impl Trigger for Never {
        fn next_fire_time(
            &self,
            _: Option<DateTime<Utc>>,
            _: DateTime<Utc>,
        ) -> Option<DateTime<Utc>> {
            None
        }
        fn zone(&self) -> Zone {
            Zone::UTC
        }
    }

    #[test]
    fn job_id_rejects_empty_and_round_trips() {
        assert_eq!("".parse::<JobId>(), Err(InvalidJobId));
        let id: JobId = "a b".parse().unwrap();
        assert_eq!(id.to_string(), "a b");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""a b""#);
        assert!(serde_json::from_str::<JobId>(r#""""#).is_err());
        assert_eq!(
            serde_json::from_str::<JobId>(r#""x""#).unwrap().as_str(),
            "x"
        );
    }

    #[test]
    fn coalesce_bool_mapping_and_serde() {
        assert_eq!(Coalesce::from(true), Coalesce::Latest);
        assert_eq!(Coalesce::from(false), Coalesce::All);
        assert_eq!(
            serde_json::to_string(&Coalesce::Earliest).unwrap(),
            r#""earliest""#
        );
        assert_eq!(Coalesce::default(), Coalesce::Latest);
    }

    #[test]
    fn defaults_are_apscheduler_3s() {
        let d = JobDefaults::default();
        assert_eq!(d.misfire_grace_time, Some(Duration::from_secs(1)));
        assert_eq!(d.coalesce, Coalesce::Latest);
        assert_eq!(d.max_instances, 1);
        let read: JobDefaults =
            serde_json::from_str(r#"{"misfire_grace_time": null, "coalesce": "all"}"#).unwrap();
        assert_eq!(read.misfire_grace_time, None);
        assert_eq!(read.coalesce, Coalesce::All);
        assert_eq!(read.max_instances, 1);
        assert!(serde_json::from_str::<JobDefaults>(r#"{"grace": 1}"#).is_err());
    }

    #[test]
    fn closure_and_dynamic_jobs_are_not_persistable() {
        let id = JobId::new("j").unwrap();
        let job = Job::new(
            id.clone(),
            TaskRef::Local(LocalTask::new("tick", 5u8)),
            JobTrigger::dynamic(Never),
        );
        assert!(!job.is_persistable());
        let err = job.to_stored().unwrap_err();
        assert_eq!(err.id, id);
        assert!(err.to_string().contains("closure (tick)"), "{err}");

        let job = Job::new(
            id,
            TaskRef::named("t", Value::Null),
            JobTrigger::dynamic(Never),
        );
        assert!(
            job.to_stored()
                .unwrap_err()
                .to_string()
                .contains("no JSON spec")
        );
        assert_eq!(&*job.name, "t");
        assert!(job.is_paused());
    }

    #[test]
    fn spec_takes_defaults_and_changes_apply() {
        let defaults = JobDefaults {
            misfire_grace_time: Some(Duration::from_secs(30)),
            coalesce: Coalesce::All,
            max_instances: 3,
        };
        let spec = JobSpec::new(TaskRef::named("t", Value::Null), JobTrigger::dynamic(Never))
            .coalesce(false)
            .store("s");
        let mut job = spec
            .clone()
            .into_job(&defaults, || JobId::new("gen").unwrap());
        assert_eq!(job.id.as_str(), "gen");
        assert_eq!(job.misfire_grace_time, Some(Duration::from_secs(30)));
        assert_eq!(job.coalesce, Coalesce::All);
        assert_eq!(job.max_instances, 3);
        assert_eq!(&*job.store, "s");
        assert_eq!(&*job.executor, "default");
        let job2 = spec
            .max_instances(0)
            .into_job(&defaults, || JobId::new("gen").unwrap());
        assert_eq!(job2.max_instances, 1);

        JobChanges::new()
            .name("renamed")
            .coalesce(true)
            .misfire_grace_time(None)
            .args(serde_json::json!([1]))
            .next_run_time(None)
            .apply(&mut job);
        assert_eq!(&*job.name, "renamed");
        assert_eq!(job.coalesce, Coalesce::Latest);
        assert_eq!(job.misfire_grace_time, None);
        assert!(job.is_paused());
        assert!(
            matches!(&job.task, TaskRef::Named { args, .. } if args == &serde_json::json!([1]))
        );
    }

    #[test]
    fn retry_policy_serde_and_backoff() {
        let p: RetryPolicy = serde_json::from_str(
            r#"{"max_attempts": 3, "initial_backoff": 0.5, "multiplier": 3, "max_backoff": 2}"#,
        )
        .unwrap();
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_millis(1500));
        assert_eq!(p.backoff(3), Duration::from_secs(2));
        assert_eq!(p.backoff(1000), Duration::from_secs(2));
        let back: RetryPolicy = serde_json::from_value(serde_json::to_value(p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn local_task_downcasts_to_its_type_only() {
        let t = LocalTask::new("x", 7u32);
        assert_eq!(t.downcast::<u32>(), Some(&7));
        assert_eq!(t.downcast::<u8>(), None);
    }

    #[test]
    fn stored_job_rejects_unknown_fields_and_bad_triggers() {
        let when = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut v = serde_json::json!({
            "format": 1, "id": "j", "name": "n", "task": "t", "args": [1],
            "trigger": {"type": "nonsense"}, "executor": "default", "store": "default",
            "misfire_grace_time": 1.5, "coalesce": "all", "max_instances": 2,
            "next_run_time": when,
        });
        let err = serde_json::from_value::<StoredJob>(v.clone()).unwrap_err();
        assert!(err.to_string().contains("unknown trigger type"), "{err}");
        v["surprise"] = Value::Bool(true);
        let err = serde_json::from_value::<StoredJob>(v).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `surprise`"),
            "{err}"
        );
    }
}
