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
use std::sync::Arc;
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
        /// The registered task name.
        name: String,
        /// The arguments, deserialized by the task into its own argument type.
        args: Value,
    },
    /// A closure held in memory. Not persistable.
    Local(LocalTask),
}

impl TaskRef {
    /// A registered task with JSON arguments.
    pub fn named(name: impl Into<String>, args: Value) -> TaskRef {
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
    /// A trigger with a JSON spec. Persistable.
    Spec(AnyTrigger),
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
            JobTrigger::Spec(t) => t,
            JobTrigger::Dynamic(t) => t.as_ref(),
        }
    }
}

impl From<AnyTrigger> for JobTrigger {
    fn from(t: AnyTrigger) -> JobTrigger {
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
    pub name: String,
    /// What runs.
    pub task: TaskRef,
    /// When it runs.
    pub trigger: JobTrigger,
    /// The name of the executor that runs it.
    pub executor: String,
    /// The name of the store that holds it.
    pub store: String,
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
}

/// The name of the store and of the executor a job uses unless it names another.
pub const DEFAULT: &str = "default";

impl Job {
    /// A job with options from `JobDefaults::default()`, in the `default` store and
    /// executor, paused (no next run time) until the scheduler computes one.
    pub fn new(id: JobId, task: TaskRef, trigger: impl Into<JobTrigger>) -> Job {
        let defaults = JobDefaults::default();
        let name = match &task {
            TaskRef::Named { name, .. } => name.clone(),
            TaskRef::Local(t) => t.label().to_owned(),
        };
        Job {
            id,
            name,
            task,
            trigger: trigger.into(),
            executor: DEFAULT.to_owned(),
            store: DEFAULT.to_owned(),
            misfire_grace_time: defaults.misfire_grace_time,
            coalesce: defaults.coalesce,
            max_instances: defaults.max_instances,
            next_run_time: None,
            jitter: None,
            timeout: None,
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
            TaskRef::Named { name, args } => (name.clone(), args.clone()),
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
            name: self.name.clone(),
            task,
            args,
            trigger: trigger.clone(),
            executor: self.executor.clone(),
            store: self.store.clone(),
            misfire_grace_time: self.misfire_grace_time,
            coalesce: self.coalesce,
            max_instances: self.max_instances,
            next_run_time: self.next_run_time,
            jitter: self.jitter,
            timeout: self.timeout,
        })
    }
}

impl From<StoredJob> for Job {
    fn from(s: StoredJob) -> Job {
        Job {
            id: s.id,
            name: s.name,
            task: TaskRef::Named {
                name: s.task,
                args: s.args,
            },
            trigger: JobTrigger::Spec(s.trigger),
            executor: s.executor,
            store: s.store,
            misfire_grace_time: s.misfire_grace_time,
            coalesce: s.coalesce,
            max_instances: s.max_instances,
            next_run_time: s.next_run_time,
            jitter: s.jitter,
            timeout: s.timeout,
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
}

impl StoredJob {
    /// The layout version this release writes.
    pub const FORMAT: u32 = 1;
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
        assert_eq!(job.name, "t");
        assert!(job.is_paused());
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
