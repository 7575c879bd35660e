#![doc = include_str!("../README.md")]
//!
//! # Crate layout
//!
//! This facade re-exports what users need, item by item, so code names `sched::…` and never
//! the sub-crates:
//!
//! * [`trigger`]: the trigger kinds, [`trigger::AnyTrigger`] (the serializable spec form)
//!   and the [`trigger::Trigger`] trait (from `sched-core`);
//! * [`Zone`], [`LocalTime`] and [`TriggerError`] at the top level;
//! * [`jitter`]: how the scheduler spreads fire times;
//! * [`prelude`]: the traits, for `use sched::prelude::*`.
//!
//! The scheduler runtime (`sched-runtime`) and the job stores (`sched-stores`) are not
//! re-exported yet: they are still being built.

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

// The scheduler goes here once `sched-runtime` exists, re-exported item by item in the same
// way (for example `pub use sched_runtime::{Scheduler, SchedulerBuilder, ...};`), and the
// stores as feature-gated modules (`#[cfg(feature = "postgres")] pub mod stores::postgres`).

/// Runs the Rust examples of the trigger guide (`docs/triggers.md`) as doctests, so the guide
/// cannot drift from the API. Compiled only when rustdoc collects doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/triggers.md")]
struct TriggerGuide;

pub mod prelude {
    //! The traits, for a glob import: `use sched::prelude::*;` brings methods into scope and
    //! nothing else.

    pub use crate::trigger::Trigger;
}
