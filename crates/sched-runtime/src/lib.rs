//! The scheduler of `sched`, on tokio: APScheduler's operations without a polling tick.
//!
//! A [`Scheduler`] holds named job stores ([`sched_stores::JobStore`]) and named
//! [`Executor`]s. One dispatcher task per scheduler sleeps until the earliest next run time
//! of any job (the stores keep jobs ordered by it), fires what is due, and is woken early by
//! every change; an idle scheduler wakes at most once a minute (on Linux with the system
//! clock and in-memory stores, not at all: see [`clock::SystemClock`]). See the `dispatcher`
//! module source for its ground rules.
//!
//! Stores and executors can also be added and removed while the scheduler runs
//! ([`Scheduler::add_store`], [`Scheduler::add_executor`], ...). The [`config`] module reads
//! the scheduler's configuration as data (TOML, JSON, a flat `sched.` map, environment
//! variables); the [`metrics`] module lists what is recorded through the `metrics` facade.
//!
//! ```
//! use std::time::Duration;
//! use chrono::{DateTime, TimeDelta, Utc};
//! use sched_core::{JobSpec, Trigger, Zone};
//! use sched_core::job::JobTrigger;
//! use sched_runtime::{closure_task, JobContext, Scheduler, ShutdownMode};
//!
//! /// Every `0` from the first call on (a stand-in for the interval trigger).
//! #[derive(Debug)]
//! struct Every(TimeDelta);
//!
//! impl Trigger for Every {
//!     fn next_fire_time(&self, previous: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
//!         Some(previous.unwrap_or(now) + self.0)
//!     }
//!     fn zone(&self) -> Zone {
//!         Zone::UTC
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scheduler = Scheduler::builder().build();
//! scheduler.register_task("greet", |ctx: JobContext, name: String| async move {
//!     Ok::<_, std::convert::Infallible>(format!("hello {name} at {}", ctx.scheduled_run_time()))
//! });
//!
//! // A registered task with JSON arguments (persistable), and a closure (memory only).
//! let every_second = || JobTrigger::dynamic(Every(TimeDelta::seconds(1)));
//! scheduler
//!     .add_job(JobSpec::new(sched_core::TaskRef::named("greet", "world".into()), every_second()).id("greeter")?)
//!     .await?;
//! scheduler
//!     .add_job(JobSpec::new(closure_task("tick", |_ctx: JobContext| async { Ok::<_, String>(()) }), every_second()))
//!     .await?;
//!
//! let mut events = scheduler.subscribe(sched_core::EventKind::JobExecuted);
//! scheduler.start().await?;
//! let first = events.next().await.expect("a stream")?;
//! assert_eq!(first.kind(), sched_core::EventKind::JobExecuted);
//! scheduler.shutdown(ShutdownMode::Wait).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Misfires, coalescing and backlogs
//!
//! A run is *due* when its scheduled time has come. It *misfires* when it starts later than
//! the job's `misfire_grace_time` after that time (`None`: never). Runs fall behind when
//! the scheduler was paused, shut down (with a persistent store), the wall clock jumped, or
//! the dispatcher could not reach a store. When a job is found due, every overdue run time
//! is collected — at most the builder's `max_backlog` of them, the rest skipped in one step
//! to the trigger's first time after now — and then:
//!
//! ```text
//! every minute, grace 90 s, found due at 10:03:30:
//!
//!            10:01   10:02   10:03   10:03:30
//!              *       *       *        now
//!  Latest:                     R            one run (10:03)           APScheduler coalesce=True
//!  Earliest:           R                    one run (10:02; 10:01 is beyond the grace time)
//!  All:        M       R       R            10:01 missed, two runs    APScheduler coalesce=False
//! ```
//!
//! `R` runs, `M` is reported as a `JobMissed` event. The job's next run time is written to
//! its store before any of its runs start. A run refused because the job already has
//! `max_instances` runs going is reported as `JobMaxInstances`, and the schedule moves on
//! all the same.

mod backlog;
mod blocking;
pub mod clock;
mod cluster;
mod command;
mod components;
pub mod config;
mod dispatcher;
mod error;
mod events;
mod executor;
pub mod metrics;
mod pending;
mod quarantine;
mod scheduler;
mod task;

pub use blocking::BlockingScheduler;
pub use clock::{Clock, SystemClock, TestClock};
pub use cluster::{ClusterOptions, ClusterOptionsError};
pub use command::{COMMAND_TASK, Command};
pub use config::{Config, ConfigError};
pub use error::SchedulerError;
pub use events::{EventStream, Lagged, ListenerId};
pub use executor::Executor;
pub use scheduler::{Scheduler, SchedulerBuilder, SchedulerState, ShutdownMode};
pub use task::{JobContext, closure_task};
