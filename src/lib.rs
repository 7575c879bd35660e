#![doc = include_str!("../README.md")]
//!
//! # Crate layout
//!
//! This facade re-exports what users need, item by item, so code names `sched::…` and never
//! the sub-crates:
//!
//! * the scheduler at the top level: [`Scheduler`], [`SchedulerBuilder`],
//!   [`BlockingScheduler`], [`Executor`], [`JobContext`], [`closure_task`], [`Command`],
//!   [`ClusterOptions`] (several processes sharing one store, see `docs/cluster.md`),
//!   [`ShutdownMode`], [`SchedulerState`], [`SchedulerError`], the clocks ([`Clock`],
//!   [`SystemClock`], [`TestClock`]) and events ([`Event`], [`EventKind`], [`EventMask`],
//!   [`EventStream`]) (from `sched-runtime`);
//! * the job model: [`JobSpec`], [`TaskRef`], [`JobTrigger`], [`JobChanges`], [`Job`],
//!   [`JobId`], [`JobDefaults`], [`Coalesce`], [`RetryPolicy`] (from `sched-core`), with the
//!   rest in [`job`] and the event payloads in [`event`];
//! * [`config`]: configuration as data ([`Config`], TOML, JSON, flat `sched.` keys,
//!   environment variables) and the registry of store types;
//! * [`stores`]: the [`stores::JobStore`] contract and its backends ([`stores::MemoryStore`]);
//! * [`metrics`]: the names of the metrics the scheduler records;
//! * [`trigger`]: the trigger kinds, [`trigger::AnyTrigger`] (the serializable spec form)
//!   and the [`trigger::Trigger`] trait;
//! * [`Zone`], [`LocalTime`] and [`TriggerError`] at the top level; [`jitter`]: how the
//!   scheduler spreads fire times;
//! * [`prelude`]: the traits, for `use sched::prelude::*`.
//!
//! The scheduler's guide is `docs/scheduler.md`; its Rust examples run as doctests.

pub mod trigger {
    //! Triggers: pure functions from (previous fire time, now) to the next fire time.
    //!
    //! Every kind implements [`Trigger`]; [`AnyTrigger`] is any of them in the form a job
    //! stores, read from and written to the JSON spec described in `docs/triggers.md`.
    //!
    //! ```
    //! use sched::trigger::{AnyTrigger, Trigger};
    //! use chrono::{TimeZone, Utc};
    //!
    //! let every_6h: AnyTrigger = r#"{"type": "interval", "hours": 6,
    //!                                "start_date": "2026-01-01T00:00:00Z"}"#.parse()?;
    //! let now = Utc.with_ymd_and_hms(2026, 3, 27, 13, 0, 0).unwrap();
    //! let next = every_6h.next_fire_time(None, now).unwrap();
    //! assert_eq!(every_6h.zone().format(next), "2026-03-27T18:00:00+00:00");
    //! # Ok::<(), sched::TriggerError>(())
    //! ```

    pub use sched_core::trigger::{
        AndTrigger, AnyTrigger, CalendarIntervalBuilder, CalendarIntervalTrigger, CronTrigger,
        CronTriggerBuilder, CrontabTrigger, DateTrigger, DstRepeat, IntervalTrigger, OrTrigger,
        Trigger,
    };
}

pub use sched_core::jitter;
pub use sched_core::{LocalTime, TriggerError, Zone};

// The scheduler, item by item.
pub use sched_runtime::{
    BlockingScheduler, COMMAND_TASK, Clock, ClusterOptions, ClusterOptionsError, Command, Config,
    ConfigError, EventStream, Executor, JobContext, Lagged, ListenerId, Scheduler,
    SchedulerBuilder, SchedulerError, SchedulerState, ShutdownMode, SystemClock, TestClock,
    closure_task,
};
// The job model and events.
pub use sched_core::{
    Coalesce, Event, EventKind, EventMask, Job, JobChanges, JobDefaults, JobId, JobSpec,
    JobTrigger, RetryPolicy, TaskRef,
};

pub mod job {
    //! The job model beyond the top-level items: ids, closures held in memory, the stored
    //! form persistent stores write.

    pub use sched_core::job::{
        Coalesce, DEFAULT, InvalidJobId, Job, JobChanges, JobDefaults, JobId, JobSpec, JobTrigger,
        LocalTask, NotPersistable, RetryPolicy, StoredJob, TaskRef,
    };
}

pub mod event {
    //! Events: APScheduler 3's kinds with the same names and bit values, and their payloads.

    pub use sched_core::event::{
        Event, EventKind, EventMask, FailureKind, JobEvent, JobExecutionEvent, JobFailure,
        JobQuarantinedEvent, JobSubmissionEvent, SchedulerEvent, StoreErrorEvent,
    };
}

pub mod config {
    //! Configuration as data: a [`Config`] from TOML or JSON, from a flat map of `sched.`
    //! keys, or from `SCHED_` environment variables, and the registry of store types a
    //! configuration can name. See `docs/scheduler.md` for every key.

    pub use sched_runtime::config::{
        Config, ConfigError, DEFAULT_MAX_WORKERS, ENV_PREFIX, ExecutorConfig, PREFIX, StoreConfig,
        StoreFactory, StoreOptions, StoreTypes,
    };
}

pub mod metrics {
    //! The metrics the scheduler records through the `metrics` crate facade; install any
    //! `metrics` exporter to collect them. Labels are store and executor names, never job
    //! ids.

    pub use sched_runtime::metrics::{
        ERRORS, FIRES, LATENESS, MAX_INSTANCES, MISSES, RUNNING, STORE_ERRORS,
    };
}

pub mod stores {
    //! Where a scheduler keeps its jobs: the [`JobStore`] contract, the in-memory default,
    //! and the persistent backends, each behind a feature of its own name (`sqlite`,
    //! `postgres`, `mysql`, `redis`): `sched::stores::sqlite::SqliteStore`,
    //! `sched::stores::postgres::PostgresStore`, `sched::stores::mysql::MySqlStore`,
    //! `sched::stores::redis::RedisStore`.
    //!
    //! ```
    //! use sched::stores::{BoxJobStore, JobStore, MemoryStore};
    //!
    //! let store = BoxJobStore::new(MemoryStore::new());
    //! assert!(!store.is_persistent());
    //! ```

    pub use sched_stores::{
        BoxError, BoxJobStore, JobCodec, JobStore, MemoryStore, QuarantinedJob, StoreError,
        StoreErrorKind, StoreOptions, StoredJobCodec,
    };

    #[cfg(feature = "sqlite")]
    pub mod sqlite {
        //! Jobs in one SQLite file: see [`SqliteStore`].
        pub use sched_stores::sqlite::SqliteStore;
    }

    #[cfg(feature = "postgres")]
    pub mod postgres {
        //! Jobs in PostgreSQL: see [`PostgresStore`].
        pub use sched_stores::postgres::PostgresStore;
    }

    #[cfg(feature = "mysql")]
    pub mod mysql {
        //! Jobs in MySQL or MariaDB: see [`MySqlStore`].
        pub use sched_stores::mysql::MySqlStore;
    }

    #[cfg(feature = "redis")]
    pub mod redis {
        //! Jobs in Redis: see [`RedisStore`].
        pub use sched_stores::redis::RedisStore;
    }
}

/// Runs the Rust examples of the trigger guide (`docs/triggers.md`) as doctests, so the guide
/// cannot drift from the API. Compiled only when rustdoc collects doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/triggers.md")]
struct TriggerGuide;

/// Runs the Rust examples of the scheduler guide (`docs/scheduler.md`) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/scheduler.md")]
struct SchedulerGuide;

pub mod prelude {
    //! The traits, for a glob import: `use sched::prelude::*;` brings methods into scope and
    //! nothing else.

    pub use crate::Clock;
    pub use crate::stores::JobStore;
    pub use crate::trigger::Trigger;
}
