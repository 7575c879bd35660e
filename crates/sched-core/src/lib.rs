//! Triggers, errors and the job model of the `sched` job scheduler.
//!
//! This crate has no async runtime in it: triggers are pure functions of time, so they are
//! fast, property-testable and usable from the CLI as well as from the scheduler.
//!
//! ```
//! use sched_core::trigger::{AnyTrigger, Trigger};
//! use chrono::{TimeZone, Utc};
//!
//! // Every weekday at 09:00 in Berlin, as a stored spec would say it.
//! let trigger = AnyTrigger::from_json(
//!     r#"{"type": "cron", "day_of_week": "mon-fri", "hour": 9, "timezone": "Europe/Berlin"}"#,
//! )?;
//! let now = Utc.with_ymd_and_hms(2026, 3, 28, 0, 0, 0).unwrap(); // a Saturday
//! let first = trigger.next_fire_time(None, now).unwrap();
//! assert_eq!(trigger.zone().format(first), "2026-03-30T09:00:00+02:00");
//! # Ok::<(), sched_core::TriggerError>(())
//! ```

pub mod error;
pub mod event;
pub mod jitter;
pub mod job;
pub(crate) mod spec;
pub mod trigger;
pub mod zone;

pub use error::TriggerError;
pub use event::{Event, EventKind, EventMask};
pub use job::{
    Coalesce, Job, JobChanges, JobDefaults, JobId, JobSpec, JobTrigger, RetryPolicy, TaskRef,
};
pub use trigger::{AnyTrigger, Trigger};
pub use zone::{LocalTime, Zone};
