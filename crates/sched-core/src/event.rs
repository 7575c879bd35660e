//! Scheduler events: APScheduler 3's event codes with the same names and bit values, a mask
//! type to select them, and the event payloads.
//!
//! ```
//! use sched_core::event::{EventKind, EventMask};
//!
//! let mask = EventKind::JobExecuted | EventKind::JobError;
//! assert!(mask.contains(EventKind::JobError));
//! assert!(!mask.contains(EventKind::JobMissed));
//! assert_eq!(mask.bits(), 4096 | 8192);
//! assert_eq!(EventKind::JobMaxInstances.name(), "EVENT_JOB_MAX_INSTANCES");
//! assert_eq!(EventKind::from_bit(65536), Some(EventKind::JobMaxInstances));
//! ```

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::job::JobId;

macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident = $bit:expr, $name:literal; )*) => {
        /// The kind of an event. Each is one bit; the values up to `JobMaxInstances` are
        /// APScheduler 3's (`apscheduler/events.py`), so masks written for it mean the same.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        #[non_exhaustive]
        pub enum EventKind {
            $( $(#[$doc])* $variant = $bit, )*
        }

        impl EventKind {
            /// Every kind, in bit order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),*];

            /// The APScheduler constant name, such as `EVENT_JOB_EXECUTED`.
            pub fn name(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }
        }
    };
}

kinds! {
    /// The scheduler was started.
    SchedulerStarted = 1, "EVENT_SCHEDULER_STARTED";
    /// The scheduler was shut down.
    SchedulerShutdown = 2, "EVENT_SCHEDULER_SHUTDOWN";
    /// Job processing was paused.
    SchedulerPaused = 4, "EVENT_SCHEDULER_PAUSED";
    /// Job processing was resumed.
    SchedulerResumed = 8, "EVENT_SCHEDULER_RESUMED";
    /// An executor was added.
    ExecutorAdded = 16, "EVENT_EXECUTOR_ADDED";
    /// An executor was removed.
    ExecutorRemoved = 32, "EVENT_EXECUTOR_REMOVED";
    /// A job store was added.
    JobstoreAdded = 64, "EVENT_JOBSTORE_ADDED";
    /// A job store was removed.
    JobstoreRemoved = 128, "EVENT_JOBSTORE_REMOVED";
    /// All jobs were removed from every store or from one store.
    AllJobsRemoved = 256, "EVENT_ALL_JOBS_REMOVED";
    /// A job was added to a store.
    JobAdded = 512, "EVENT_JOB_ADDED";
    /// A job was removed from a store.
    JobRemoved = 1024, "EVENT_JOB_REMOVED";
    /// A job was modified from outside the dispatcher.
    JobModified = 2048, "EVENT_JOB_MODIFIED";
    /// A run finished successfully.
    JobExecuted = 4096, "EVENT_JOB_EXECUTED";
    /// A run failed, panicked or timed out.
    JobError = 8192, "EVENT_JOB_ERROR";
    /// A run was not started because it was later than its misfire grace time.
    JobMissed = 16384, "EVENT_JOB_MISSED";
    /// A run was handed to its executor.
    JobSubmitted = 32768, "EVENT_JOB_SUBMITTED";
    /// A run was refused because the job already had `max_instances` runs going.
    JobMaxInstances = 65536, "EVENT_JOB_MAX_INSTANCES";
    /// A store call failed; the dispatcher retries with backoff (not in APScheduler).
    StoreError = 131072, "EVENT_JOBSTORE_ERROR";
}

impl EventKind {
    /// The kind's bit.
    pub const fn bit(self) -> u32 {
        self as u32
    }

    /// The kind whose bit is `bit`, if any.
    pub fn from_bit(bit: u32) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.bit() == bit)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`EventKind`]s, as APScheduler's OR-ed masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct EventMask(u32);

impl EventMask {
    /// No events.
    pub const NONE: EventMask = EventMask(0);
    /// Every event (APScheduler's `EVENT_ALL`, plus [`EventKind::StoreError`]).
    pub const ALL: EventMask = EventMask((1 << 18) - 1);

    /// A mask from raw bits; bits that name no kind are dropped.
    pub const fn from_bits(bits: u32) -> EventMask {
        EventMask(bits & EventMask::ALL.0)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether `kind` is in the mask.
    pub const fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

impl From<EventKind> for EventMask {
    fn from(kind: EventKind) -> EventMask {
        EventMask(kind.bit())
    }
}

impl<T: Into<EventMask>> BitOr<T> for EventMask {
    type Output = EventMask;

    fn bitor(self, rhs: T) -> EventMask {
        EventMask(self.0 | rhs.into().0)
    }
}

impl<T: Into<EventMask>> BitOr<T> for EventKind {
    type Output = EventMask;

    fn bitor(self, rhs: T) -> EventMask {
        EventMask(self.bit() | rhs.into().0)
    }
}

impl<T: Into<EventMask>> BitOrAssign<T> for EventMask {
    fn bitor_assign(&mut self, rhs: T) {
        self.0 |= rhs.into().0;
    }
}

/// Something that happened in a scheduler.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A scheduler-wide change (started, paused, store added, all jobs removed, ...).
    Scheduler(SchedulerEvent),
    /// A job was added, modified or removed.
    Job(JobEvent),
    /// A run was submitted, or refused for `max_instances`.
    Submission(JobSubmissionEvent),
    /// A run finished, failed, or was missed.
    Execution(JobExecutionEvent),
    /// A store call failed and will be retried.
    Store(StoreErrorEvent),
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Scheduler(e) => e.kind,
            Event::Job(e) => e.kind,
            Event::Submission(e) => e.kind,
            Event::Execution(e) => e.kind,
            Event::Store(_) => EventKind::StoreError,
        }
    }

    /// The job concerned, for job events.
    pub fn job_id(&self) -> Option<&JobId> {
        match self {
            Event::Job(e) => Some(&e.job_id),
            Event::Submission(e) => Some(&e.job_id),
            Event::Execution(e) => Some(&e.job_id),
            Event::Scheduler(_) | Event::Store(_) => None,
        }
    }
}

/// A scheduler-wide event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchedulerEvent {
    /// One of the scheduler, executor, jobstore or all-jobs-removed kinds.
    pub kind: EventKind,
    /// The executor or store concerned, when there is one.
    pub alias: Option<String>,
}

impl SchedulerEvent {
    /// A scheduler event.
    pub fn new(kind: EventKind, alias: Option<String>) -> SchedulerEvent {
        SchedulerEvent { kind, alias }
    }
}

/// A job was added, removed or modified.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobEvent {
    /// `JobAdded`, `JobRemoved` or `JobModified`.
    pub kind: EventKind,
    /// The job.
    pub job_id: JobId,
    /// Its store.
    pub store: String,
}

impl JobEvent {
    /// A job event.
    pub fn new(kind: EventKind, job_id: JobId, store: impl Into<String>) -> JobEvent {
        JobEvent {
            kind,
            job_id,
            store: store.into(),
        }
    }
}

/// A run was submitted to an executor, or refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobSubmissionEvent {
    /// `JobSubmitted` or `JobMaxInstances`.
    pub kind: EventKind,
    /// The job.
    pub job_id: JobId,
    /// Its store.
    pub store: String,
    /// The scheduled times of the runs concerned.
    pub scheduled_run_times: Vec<DateTime<Utc>>,
}

impl JobSubmissionEvent {
    /// A submission event.
    pub fn new(
        kind: EventKind,
        job_id: JobId,
        store: impl Into<String>,
        scheduled_run_times: Vec<DateTime<Utc>>,
    ) -> JobSubmissionEvent {
        JobSubmissionEvent {
            kind,
            job_id,
            store: store.into(),
            scheduled_run_times,
        }
    }
}

/// How a run went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The task returned an error.
    Error,
    /// The task panicked.
    Panic,
    /// The task ran longer than the job's timeout.
    Timeout,
    /// The task was cancelled at shutdown.
    Cancelled,
    /// The task could not be started (not registered, arguments did not deserialize).
    Setup,
}

/// What went wrong in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobFailure {
    /// How it went wrong.
    pub kind: FailureKind,
    /// The error text or panic message.
    pub message: String,
}

impl JobFailure {
    /// A failure.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> JobFailure {
        JobFailure {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A run finished (`JobExecuted`), failed (`JobError`) or was missed (`JobMissed`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JobExecutionEvent {
    /// `JobExecuted`, `JobError` or `JobMissed`.
    pub kind: EventKind,
    /// The job.
    pub job_id: JobId,
    /// Its store.
    pub store: String,
    /// When the run was scheduled.
    pub scheduled_run_time: DateTime<Utc>,
    /// What the task returned, as JSON (`JobExecuted` only).
    pub return_value: Option<Value>,
    /// What went wrong (`JobError` only).
    pub failure: Option<JobFailure>,
    /// How long the run took (not for `JobMissed`).
    pub duration: Option<Duration>,
    /// Which attempt of the run this was (1 unless retried; 0 for `JobMissed`).
    pub attempt: u32,
}

impl JobExecutionEvent {
    /// A successful run.
    pub fn executed(
        job_id: JobId,
        store: impl Into<String>,
        scheduled_run_time: DateTime<Utc>,
        return_value: Value,
        duration: Duration,
    ) -> JobExecutionEvent {
        JobExecutionEvent {
            kind: EventKind::JobExecuted,
            job_id,
            store: store.into(),
            scheduled_run_time,
            return_value: Some(return_value),
            failure: None,
            duration: Some(duration),
            attempt: 1,
        }
    }

    /// A failed run.
    pub fn error(
        job_id: JobId,
        store: impl Into<String>,
        scheduled_run_time: DateTime<Utc>,
        failure: JobFailure,
        duration: Option<Duration>,
    ) -> JobExecutionEvent {
        JobExecutionEvent {
            kind: EventKind::JobError,
            job_id,
            store: store.into(),
            scheduled_run_time,
            return_value: None,
            failure: Some(failure),
            duration,
            attempt: 1,
        }
    }

    /// The same event for attempt `attempt`.
    pub fn with_attempt(mut self, attempt: u32) -> JobExecutionEvent {
        self.attempt = attempt;
        self
    }

    /// A missed run.
    pub fn missed(
        job_id: JobId,
        store: impl Into<String>,
        scheduled_run_time: DateTime<Utc>,
    ) -> JobExecutionEvent {
        JobExecutionEvent {
            kind: EventKind::JobMissed,
            job_id,
            store: store.into(),
            scheduled_run_time,
            return_value: None,
            failure: None,
            duration: None,
            attempt: 0,
        }
    }
}

/// A store call failed; the dispatcher retries it after `retry_in`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreErrorEvent {
    /// The store's name.
    pub store: String,
    /// The error text.
    pub error: String,
    /// When the dispatcher tries again.
    pub retry_in: Duration,
}

impl StoreErrorEvent {
    /// A store error event.
    pub fn new(store: impl Into<String>, error: impl Into<String>, retry_in: Duration) -> Self {
        StoreErrorEvent {
            store: store.into(),
            error: error.into(),
            retry_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_apschedulers() {
        let expected: [(EventKind, u32, &str); 17] = [
            (EventKind::SchedulerStarted, 1, "EVENT_SCHEDULER_STARTED"),
            (EventKind::SchedulerShutdown, 2, "EVENT_SCHEDULER_SHUTDOWN"),
            (EventKind::SchedulerPaused, 4, "EVENT_SCHEDULER_PAUSED"),
            (EventKind::SchedulerResumed, 8, "EVENT_SCHEDULER_RESUMED"),
            (EventKind::ExecutorAdded, 16, "EVENT_EXECUTOR_ADDED"),
            (EventKind::ExecutorRemoved, 32, "EVENT_EXECUTOR_REMOVED"),
            (EventKind::JobstoreAdded, 64, "EVENT_JOBSTORE_ADDED"),
            (EventKind::JobstoreRemoved, 128, "EVENT_JOBSTORE_REMOVED"),
            (EventKind::AllJobsRemoved, 256, "EVENT_ALL_JOBS_REMOVED"),
            (EventKind::JobAdded, 512, "EVENT_JOB_ADDED"),
            (EventKind::JobRemoved, 1024, "EVENT_JOB_REMOVED"),
            (EventKind::JobModified, 2048, "EVENT_JOB_MODIFIED"),
            (EventKind::JobExecuted, 4096, "EVENT_JOB_EXECUTED"),
            (EventKind::JobError, 8192, "EVENT_JOB_ERROR"),
            (EventKind::JobMissed, 16384, "EVENT_JOB_MISSED"),
            (EventKind::JobSubmitted, 32768, "EVENT_JOB_SUBMITTED"),
            (EventKind::JobMaxInstances, 65536, "EVENT_JOB_MAX_INSTANCES"),
        ];
        for (kind, bit, name) in expected {
            assert_eq!(kind.bit(), bit, "{name}");
            assert_eq!(kind.name(), name);
            assert_eq!(EventKind::from_bit(bit), Some(kind));
        }
        assert_eq!(EventKind::ALL.len(), 18);
    }

    #[test]
    fn mask_operations() {
        let mut m = EventMask::NONE;
        assert!(!m.contains(EventKind::JobAdded));
        m |= EventKind::JobAdded;
        assert!(m.contains(EventKind::JobAdded));
        let m2 = m | EventKind::JobRemoved | EventKind::JobModified;
        assert_eq!(m2.bits(), 512 | 1024 | 2048);
        for k in EventKind::ALL {
            assert!(EventMask::ALL.contains(*k));
        }
        assert_eq!(EventMask::from_bits(u32::MAX), EventMask::ALL);
        assert_eq!(EventKind::from_bit(3), None);
    }
}
