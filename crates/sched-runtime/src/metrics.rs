//! Metrics through the [`metrics`] facade: the scheduler records, the application chooses
//! an exporter (Prometheus, StatsD, ...) by installing a recorder. Without one, recording
//! costs next to nothing.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `sched_job_fires_total` | counter | `store`, `executor` | run times handed to an executor |
//! | `sched_job_misses_total` | counter | `store`, `executor` | run times missed (later than the grace time) |
//! | `sched_job_errors_total` | counter | `store`, `executor` | failed attempts (error, panic, timeout, cancel, setup) |
//! | `sched_job_max_instances_total` | counter | `store`, `executor` | submissions refused by `max_instances` |
//! | `sched_jobs_running` | gauge | `executor` | submissions going on now |
//! | `sched_job_lateness_seconds` | histogram | `store`, `executor` | start of a run minus its scheduled time |
//! | `sched_store_errors_total` | counter | `store` | failed store calls of the dispatcher |
//!
//! Labels are store and executor names, never job ids: a scheduler may hold a million jobs,
//! and one time series per job would swamp any metrics backend. Per-job detail is in the
//! events and the tracing spans.
//!
//! The handles of each (store, executor) pair are registered with the recorder once, at
//! the pair's first use, and kept by the scheduler ([`MetricsCache`]), so a fire costs a
//! few atomic increments and no label strings. A recorder is therefore seen by the
//! schedulers that record their first metric after it is installed: install it at the
//! start of the program (as exporters ask anyway).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ::metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};

/// Run times handed to an executor.
pub const FIRES: &str = "sched_job_fires_total";
/// Run times missed.
pub const MISSES: &str = "sched_job_misses_total";
/// Failed attempts.
pub const ERRORS: &str = "sched_job_errors_total";
/// Submissions refused by `max_instances`.
pub const MAX_INSTANCES: &str = "sched_job_max_instances_total";
/// Submissions going on now.
pub const RUNNING: &str = "sched_jobs_running";
/// Lateness of each run's start, in seconds.
pub const LATENESS: &str = "sched_job_lateness_seconds";
/// Failed store calls of the dispatcher.
pub const STORE_ERRORS: &str = "sched_store_errors_total";

/// Describes every metric to the installed recorder (called at start).
pub(crate) fn describe() {
    describe_counter!(FIRES, Unit::Count, "run times handed to an executor");
    describe_counter!(
        MISSES,
        Unit::Count,
        "run times missed (later than their misfire grace time)"
    );
    describe_counter!(ERRORS, Unit::Count, "failed run attempts");
    describe_counter!(
        MAX_INSTANCES,
        Unit::Count,
        "submissions refused because the job had max_instances runs going"
    );
    describe_gauge!(RUNNING, Unit::Count, "submissions going on now");
    describe_histogram!(
        LATENESS,
        Unit::Seconds,
        "start of a run minus its scheduled time"
    );
    describe_counter!(
        STORE_ERRORS,
        Unit::Count,
        "failed store calls of the dispatcher"
    );
}

/// The metric handles of one (store, executor) pair.
pub(crate) struct Handles {
    fires: Counter,
    misses: Counter,
    errors: Counter,
    refused: Counter,
    lateness: Histogram,
    running: Gauge,
}

impl Handles {
    fn register(store: &str, executor: &str) -> Handles {
        let labels = [
            ("store", store.to_owned()),
            ("executor", executor.to_owned()),
        ];
        Handles {
            fires: counter!(FIRES, &labels),
            misses: counter!(MISSES, &labels),
            errors: counter!(ERRORS, &labels),
            refused: counter!(MAX_INSTANCES, &labels),
            lateness: histogram!(LATENESS, &labels),
            running: gauge!(RUNNING, "executor" => executor.to_owned()),
        }
    }

    /// `runs` run times handed to the executor.
    pub(crate) fn fired(&self, runs: usize) {
        self.fires.increment(runs as u64);
    }

    /// A run time missed.
    pub(crate) fn missed(&self) {
        self.misses.increment(1);
    }

    /// A failed attempt.
    pub(crate) fn errored(&self) {
        self.errors.increment(1);
    }

    /// A submission refused by `max_instances`.
    pub(crate) fn refused(&self) {
        self.refused.increment(1);
    }

    /// The lateness of a run's start.
    pub(crate) fn late(&self, lateness: Duration) {
        self.lateness.record(lateness.as_secs_f64());
    }
}

/// The handles of every (store, executor) pair met so far: a short list (a scheduler has a
/// few stores and executors), read under a shared lock, added to at a pair's first use.
#[derive(Default)]
pub(crate) struct MetricsCache(RwLock<Vec<Pair>>);

/// A store name, an executor name and their handles.
type Pair = (Box<str>, Box<str>, Arc<Handles>);

impl MetricsCache {
    /// The handles of `store` and `executor`, registered at their first use.
    pub(crate) fn get(&self, store: &str, executor: &str) -> Arc<Handles> {
        let find = |list: &[Pair]| {
            list.iter()
                .find(|(s, e, _)| **s == *store && **e == *executor)
                .map(|(_, _, h)| h.clone())
        };
        if let Some(h) = find(&self.0.read().unwrap_or_else(PoisonError::into_inner)) {
            return h;
        }
        let mut list = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = find(&list) {
            return h;
        }
        let h = Arc::new(Handles::register(store, executor));
        list.push((store.into(), executor.into(), h.clone()));
        h
    }
}

pub(crate) fn store_failed(store: &str) {
    counter!(STORE_ERRORS, "store" => store.to_owned()).increment(1);
}

/// Counts a submission in `sched_jobs_running` while it lives: released on every exit path
/// (end, panic caught, cancellation, the future dropped at shutdown).
pub(crate) struct Running(Arc<Handles>);

impl Running {
    pub(crate) fn new(handles: Arc<Handles>) -> Running {
        handles.running.increment(1.0);
        Running(handles)
    }

    /// The handles of the run's (store, executor).
    pub(crate) fn handles(&self) -> &Handles {
        &self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.decrement(1.0);
    }
}
