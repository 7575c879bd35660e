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

use std::time::Duration;

use ::metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
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

pub(crate) fn fired(store: &str, executor: &str, runs: usize) {
    counter!(FIRES, "store" => store.to_owned(), "executor" => executor.to_owned())
        .increment(runs as u64);
}

pub(crate) fn missed(store: &str, executor: &str) {
    counter!(MISSES, "store" => store.to_owned(), "executor" => executor.to_owned()).increment(1);
}

pub(crate) fn errored(store: &str, executor: &str) {
    counter!(ERRORS, "store" => store.to_owned(), "executor" => executor.to_owned()).increment(1);
}

pub(crate) fn refused(store: &str, executor: &str) {
    counter!(MAX_INSTANCES, "store" => store.to_owned(), "executor" => executor.to_owned())
        .increment(1);
}

pub(crate) fn late(store: &str, executor: &str, lateness: Duration) {
    histogram!(LATENESS, "store" => store.to_owned(), "executor" => executor.to_owned())
        .record(lateness.as_secs_f64());
}

pub(crate) fn store_failed(store: &str) {
    counter!(STORE_ERRORS, "store" => store.to_owned()).increment(1);
}

/// Counts a submission in `sched_jobs_running` while it lives: released on every exit path
/// (end, panic caught, cancellation, the future dropped at shutdown).
pub(crate) struct Running(::metrics::Gauge);

impl Running {
    pub(crate) fn new(executor: &str) -> Running {
        let g = gauge!(RUNNING, "executor" => executor.to_owned());
        g.increment(1.0);
        Running(g)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
