//! The two implementations behind one interface: add a job at an offset from t0, stop.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use clap::ValueEnum;
use sched_core::job::{Coalesce, JobDefaults, JobSpec, TaskRef};
use sched_core::trigger::{AnyTrigger, DateTrigger, IntervalTrigger};
use sched_runtime::{Executor, JobContext, Scheduler, ShutdownMode, closure_task};
use serde_json::Value;
use tokio::time::Instant;

use crate::bare::Bare;
use crate::measure::{Recorder, nanos};
use crate::store::{Private, StoreKind};

/// Which implementation runs a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub(crate) enum Impl {
    /// The floor: a heap of instants, one sleeping task, one spawn per fire.
    Bare,
    /// `sched_runtime::Scheduler`: memory store, tokio executor, interval and date triggers.
    Sched,
}

impl Impl {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Impl::Bare => "bare",
            Impl::Sched => "sched",
        }
    }
}

/// The instant every offset is counted from, on both clocks: tokio's monotonic clock (the
/// floor sleeps on it) and the wall clock (the scheduler's `SystemClock`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anchor {
    pub(crate) instant: Instant,
    pub(crate) wall: DateTime<Utc>,
}

impl Anchor {
    /// About `lead` from now, on a whole microsecond of wall time: the interval trigger
    /// counts in whole microseconds, so a t0 between two would move every fire after the
    /// first by the fraction and blur the window's edges.
    pub(crate) fn after(lead: Duration) -> Anchor {
        let instant = Instant::now();
        let wall = Utc::now() + TimeDelta::from_std(lead).unwrap_or(TimeDelta::MAX);
        let fraction = Duration::from_nanos(u64::from(wall.timestamp_subsec_nanos() % 1000));
        Anchor {
            instant: instant + lead.saturating_sub(fraction),
            wall: wall - TimeDelta::from_std(fraction).unwrap_or_default(),
        }
    }
}

/// A running implementation.
#[derive(Debug)]
pub(crate) enum Contender {
    Bare {
        bare: Bare,
        t0: Instant,
    },
    Sched {
        scheduler: Scheduler,
        t0: DateTime<Utc>,
        /// One task shared by every job, as the floor shares its body: a closure on the
        /// memory store, a registered task with JSON arguments on a persistent one.
        task: TaskRef,
        /// The private schema, database, key prefix or file to drop after the run.
        private: Private,
    },
}

impl Contender {
    /// Starts `kind` on the current runtime. Every body records its lateness in `rec`:
    /// the floor reads tokio's clock against the intended instant, the scheduler reads the
    /// wall clock (`Utc::now`, what its `SystemClock` reads) against the run's
    /// `scheduled_run_time`. The scheduler runs on `store` (`url`: its server).
    pub(crate) async fn start(
        kind: Impl,
        store: StoreKind,
        url: Option<&str>,
        t0: Anchor,
        rec: Arc<Recorder>,
    ) -> Contender {
        match kind {
            Impl::Bare => {
                let origin = t0.instant;
                let bare = Bare::start(move |at: Instant| {
                    let rec = rec.clone();
                    async move {
                        let started = Instant::now();
                        rec.record(
                            nanos(at.saturating_duration_since(origin)),
                            nanos(started.saturating_duration_since(at)),
                        );
                    }
                });
                Contender::Bare {
                    bare,
                    t0: t0.instant,
                }
            }
            Impl::Sched => {
                let origin = t0.wall;
                let body = move |ctx: JobContext| {
                    let started = Utc::now();
                    let scheduled = ctx.scheduled_run_time();
                    rec.record(
                        signed_nanos(scheduled - origin),
                        signed_nanos(started - scheduled),
                    );
                };
                // Late fires still run (and are measured), one run per fire time, as the
                // peers' figures were taken (APScheduler with misfire_grace_time=None).
                let defaults = JobDefaults {
                    misfire_grace_time: None,
                    coalesce: Coalesce::All,
                    ..JobDefaults::default()
                };
                let (job_store, private) = crate::store::open(store, url)
                    .await
                    .unwrap_or_else(|e| panic!("sched-bench: {e}"));
                let scheduler = Scheduler::builder()
                    .store("default", job_store)
                    .executor("default", Executor::tokio())
                    .job_defaults(defaults)
                    .build();
                let task = if store.persistent() {
                    // A persistent store keeps jobs that name a registered task.
                    scheduler.register_task("bench", move |ctx: JobContext, _: Value| {
                        body(ctx);
                        async { Ok::<(), Infallible>(()) }
                    });
                    TaskRef::named("bench", Value::Null)
                } else {
                    closure_task("bench", move |ctx: JobContext| {
                        body(ctx);
                        async { Ok::<(), Infallible>(()) }
                    })
                };
                scheduler.start().await.expect("the scheduler starts");
                Contender::Sched {
                    scheduler,
                    t0: t0.wall,
                    task,
                    private,
                }
            }
        }
    }

    /// Adds a job first due `first` after t0, then every `period` (`None`: a one-shot).
    pub(crate) async fn add(&self, first: Duration, period: Option<Duration>) {
        match self {
            Contender::Bare { bare, t0 } => bare.add(*t0 + first, period),
            Contender::Sched {
                scheduler,
                t0,
                task,
                ..
            } => {
                let trigger = trigger(*t0, first, period);
                scheduler
                    .add_job(JobSpec::new(task.clone(), trigger))
                    .await
                    .expect("add_job into a running scheduler");
            }
        }
    }

    /// Adds `count` jobs first due `first` after t0, then every `period`, in one bulk call
    /// (`Scheduler::add_jobs`; one lock for the floor).
    pub(crate) async fn add_many(&self, first: Duration, period: Option<Duration>, count: usize) {
        match self {
            Contender::Bare { bare, t0 } => bare.add_many(*t0 + first, period, count),
            Contender::Sched {
                scheduler,
                t0,
                task,
                ..
            } => {
                let specs =
                    (0..count).map(|_| JobSpec::new(task.clone(), trigger(*t0, first, period)));
                scheduler
                    .add_jobs(specs)
                    .await
                    .expect("add_jobs into a running scheduler");
            }
        }
    }

    /// Stops scheduling; bodies already started finish on their own.
    pub(crate) async fn stop(self) {
        match self {
            Contender::Bare { bare, .. } => bare.stop(),
            Contender::Sched {
                scheduler, private, ..
            } => {
                scheduler.shutdown(ShutdownMode::NoWait).await;
                private.drop_it().await;
            }
        }
    }
}

/// The trigger of a job first due `first` after `t0`, then every `period` (`None`: once).
fn trigger(t0: DateTime<Utc>, first: Duration, period: Option<Duration>) -> AnyTrigger {
    let at = t0 + TimeDelta::from_std(first).unwrap_or(TimeDelta::MAX);
    match period {
        Some(p) => AnyTrigger::Interval(IntervalTrigger::new(p).start_date(at)),
        None => AnyTrigger::Date(DateTrigger::new(at)),
    }
}

fn signed_nanos(d: TimeDelta) -> i64 {
    d.num_nanoseconds().unwrap_or(if d < TimeDelta::zero() {
        i64::MIN
    } else {
        i64::MAX
    })
}
