//! Shared test helpers: test-only triggers, a recording task, an event recorder, and a store
//! wrapper that fails on demand.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sched_core::event::{Event, EventKind, EventMask, JobExecutionEvent};
use sched_core::job::{Job, JobId, JobSpec, JobTrigger, TaskRef};
use sched_core::{Trigger, Zone};
use sched_runtime::{JobContext, Scheduler, SchedulerBuilder, TestClock, closure_task};
use sched_stores::{JobStore, MemoryStore, StoreError};

/// 2026-01-01 00:00:00 UTC plus `h:m:s`.
pub fn at(h: i64, m: i64, s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        + TimeDelta::hours(h)
        + TimeDelta::minutes(m)
        + TimeDelta::seconds(s)
}

/// Fires at `first + k * period` for k = 0, 1, ...
#[derive(Debug, Clone)]
pub struct Every {
    pub first: DateTime<Utc>,
    pub period: TimeDelta,
}

impl Every {
    pub fn minute_from(first: DateTime<Utc>) -> JobTrigger {
        JobTrigger::dynamic(Every {
            first,
            period: TimeDelta::minutes(1),
        })
    }

    pub fn seconds_from(first: DateTime<Utc>, secs: i64) -> JobTrigger {
        JobTrigger::dynamic(Every {
            first,
            period: TimeDelta::seconds(secs),
        })
    }
}

impl Trigger for Every {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match previous {
            Some(p) => Some(p + self.period),
            None if now <= self.first => Some(self.first),
            None => {
                let step = self.period.num_milliseconds();
                let k = (now - self.first).num_milliseconds().div_euclid(step);
                let t = self.first + TimeDelta::milliseconds(k * step);
                Some(if t < now { t + self.period } else { t })
            }
        }
    }

    fn zone(&self) -> Zone {
        Zone::UTC
    }
}

/// Fires at each listed time once.
#[derive(Debug, Clone)]
pub struct Times(pub Vec<DateTime<Utc>>);

impl Trigger for Times {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match previous {
            Some(p) => self.0.iter().copied().find(|t| *t > p),
            None => self.0.iter().copied().find(|t| *t >= now),
        }
    }

    fn zone(&self) -> Zone {
        Zone::UTC
    }
}

/// A trigger firing once at `t`.
pub fn once(t: DateTime<Utc>) -> JobTrigger {
    JobTrigger::dynamic(Times(vec![t]))
}

/// Every run of a recording task: (scheduled run time, wall time at start).
#[derive(Clone, Default)]
pub struct Runs(pub Arc<Mutex<Vec<Run>>>);

/// (scheduled run time, wall time at start).
pub type Run = (DateTime<Utc>, DateTime<Utc>);

impl Runs {
    pub fn scheduled(&self) -> Vec<DateTime<Utc>> {
        self.0.lock().unwrap().iter().map(|r| r.0).collect()
    }

    pub fn started(&self) -> Vec<DateTime<Utc>> {
        self.0.lock().unwrap().iter().map(|r| r.1).collect()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// A closure task recording its runs, then sleeping `busy` (virtual time).
    pub fn task(&self, clock: &TestClock, busy: Duration) -> TaskRef {
        let runs = self.clone();
        let clock = clock.clone();
        closure_task("record", move |ctx: JobContext| {
            use sched_runtime::Clock;
            runs.0
                .lock()
                .unwrap()
                .push((ctx.scheduled_run_time(), clock.now()));
            async move {
                if !busy.is_zero() {
                    tokio::time::sleep(busy).await;
                }
                Ok::<_, String>(())
            }
        })
    }
}

/// Records every event.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Event>>>);

impl Recorder {
    pub fn attach(scheduler: &Scheduler) -> Recorder {
        let r = Recorder::default();
        let sink = r.0.clone();
        scheduler.add_listener(EventMask::ALL, move |e: &Event| {
            sink.lock().unwrap().push(e.clone())
        });
        r
    }

    pub fn kinds(&self) -> Vec<EventKind> {
        self.0.lock().unwrap().iter().map(Event::kind).collect()
    }

    pub fn count(&self, kind: EventKind) -> usize {
        self.kinds().iter().filter(|k| **k == kind).count()
    }

    pub fn executions(&self, kind: EventKind) -> Vec<JobExecutionEvent> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Execution(x) if x.kind == kind => Some(x.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn times(&self, kind: EventKind) -> Vec<DateTime<Utc>> {
        self.executions(kind)
            .iter()
            .map(|e| e.scheduled_run_time)
            .collect()
    }

    pub fn submissions(&self, kind: EventKind) -> Vec<Vec<DateTime<Utc>>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Submission(x) if x.kind == kind => Some(x.scheduled_run_times.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Adds to `s` a recording job every minute from 00:01 whose runs each take `busy`
/// (virtual time); returns its runs.
pub async fn every_minute(s: &Scheduler, clock: &TestClock, busy: Duration) -> Runs {
    let runs = Runs::default();
    s.add_job(JobSpec::new(
        runs.task(clock, busy),
        Every::minute_from(at(0, 1, 0)),
    ))
    .await
    .unwrap();
    runs
}

/// A scheduler on a test clock starting at `at(0, 0, 0)`, with an event recorder.
pub fn scheduler_with(
    configure: impl FnOnce(SchedulerBuilder) -> SchedulerBuilder,
) -> (Scheduler, TestClock, Recorder) {
    let clock = TestClock::new(at(0, 0, 0));
    let scheduler = configure(Scheduler::builder().clock(clock.clone())).build();
    let rec = Recorder::attach(&scheduler);
    (scheduler, clock, rec)
}

pub fn scheduler() -> (Scheduler, TestClock, Recorder) {
    scheduler_with(|b| b)
}

/// Sleeps (virtual time) until the test clock reads `wall`; the clock must not have jumped.
pub async fn until(clock: &TestClock, wall: DateTime<Utc>) {
    use sched_runtime::Clock;
    let d = (wall - clock.now()).to_std().unwrap_or_default();
    tokio::time::sleep(d).await;
}

pub fn id(s: &str) -> JobId {
    JobId::new(s).unwrap()
}

/// A memory store with injected faults: its calls fail with `Unavailable` while
/// `failures` is above zero (each failed call counts one down), and the job named in
/// `vanish` is removed behind the scheduler's back by the next `due_jobs` that returns it
/// (as another process sharing a persistent store can remove it).
#[derive(Default, Clone)]
pub struct FlakyStore {
    pub inner: Arc<MemoryStore>,
    pub failures: Arc<AtomicUsize>,
    pub calls_failed: Arc<AtomicUsize>,
    pub vanish: Arc<std::sync::Mutex<Option<JobId>>>,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StoreError> {
        let took = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if took.is_ok() {
            self.calls_failed.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::unavailable("injected outage", None));
        }
        Ok(())
    }
}

impl JobStore for FlakyStore {
    async fn add_job(&self, job: Job) -> Result<(), StoreError> {
        self.inner.add_job(job).await
    }
    async fn update_job(&self, job: Job) -> Result<(), StoreError> {
        self.check()?;
        self.inner.update_job(job).await
    }
    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        self.inner.remove_job(id).await
    }
    async fn remove_all_jobs(&self) -> Result<(), StoreError> {
        self.inner.remove_all_jobs().await
    }
    async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        self.inner.lookup_job(id).await
    }
    async fn due_jobs(&self, up_to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.check()?;
        let due = self.inner.due_jobs(up_to, limit).await?;
        let vanish = self
            .vanish
            .lock()
            .unwrap()
            .take_if(|id| due.iter().any(|j| j.id == *id));
        if let Some(id) = vanish {
            self.inner.remove_job(&id).await?;
        }
        Ok(due)
    }
    async fn next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.check()?;
        self.inner.next_run_time().await
    }
    async fn all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.inner.all_jobs().await
    }
}
