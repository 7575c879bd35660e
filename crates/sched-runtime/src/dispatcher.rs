//! The dispatcher: one task per scheduler that sleeps until the earliest next run time,
//! fires what is due, and sleeps again.
//!
//! # Ground rules
//!
//! - **The store is the timer index.** Each store keeps its jobs ordered by
//!   `(next_run_time, id)` (the memory store in a B-tree: O(log n) per change); the
//!   dispatcher asks it for the due jobs and the earliest next run time and keeps no copy
//!   of its own, so there is no second index to drift from the truth. What the dispatcher
//!   does keep — the instant it sleeps until — may be stale: a change can make it too late
//!   (the change wakes it, below) or too early (it wakes, finds nothing due, sleeps again).
//! - **One owner of job writes at a time.** Handle operations (add, modify, pause, remove,
//!   ...) and the dispatcher's processing of a batch of due jobs hold the scheduler's `ops`
//!   mutex across their store calls, so neither overwrites the other's change. The
//!   dispatcher takes it per batch of [`BATCH`] jobs, so a large backlog does not shut
//!   handles out.
//! - **The store is written before anyone is woken.** A handle writes its change to the
//!   store, then wakes the dispatcher if the change's next run time is earlier than the
//!   wall time the dispatcher sleeps until (`sleeping_until`, an atomic the dispatcher sets
//!   to "awake" before it reads the stores and to its wake-up time just before it sleeps).
//!   The wake-up is a `Notify`, which keeps one permit if the dispatcher is not waiting, so
//!   a change made while it is busy ends its next sleep at once and none is lost. Changes
//!   that only make runs later, removals included, wake nobody: the dispatcher then wakes
//!   too early, finds nothing due and sleeps again. So adding 100,000 jobs for tomorrow
//!   wakes it not once. The dispatcher writes a due job's advanced next
//!   run time (or removes a finished job) *before* it submits the run; a run is never
//!   started for a schedule the store does not already show as advanced, so a crash or a
//!   failed write can lose a run but never repeat one. The changes of a whole batch are
//!   written with one `advance_jobs` call (one transaction or script call on the
//!   persistent stores) after every job of it is planned; only the jobs the store reports
//!   written fire, a job it reports gone is skipped, and when the call fails part-way the
//!   jobs it wrote before the failure still fire. The accepted runs of a batch are spawned
//!   together, a chunk at a time, after the batch's write (see `Launches`).
//! - **Re-checked before firing.** Each job the store returns as due is checked again
//!   against the time of this pass; it is fired only if its next run time is still at or
//!   before it.
//! - **A job that cannot run is quarantined, not fired.** Before a due job's schedule
//!   moves, a named task that is not registered or arguments that do not deserialize set
//!   the job aside in its store (see the `quarantine` module); `register_task` brings it
//!   back at the next pass.
//! - **No polling tick, and no wait longer than [`MAX_WAIT`] unless the kernel watches the
//!   wall clock.** The dispatcher sleeps until the earliest next run time, but at most a
//!   minute, so that a wall-clock jump or a suspended machine is noticed within a minute
//!   while an idle scheduler wakes once a minute at most. With the system clock on Linux,
//!   waits of a second or more are made on a `timerfd` of the real-time clock
//!   ([`WallTimer`]), which fires at the wall time across a suspend and at once when the
//!   clock is set: one wake-up per wait (tokio's timer wheel wakes a few seconds before a
//!   long sleep as well, to move it to a finer level), and no minute cap when every store
//!   is in memory. A persistent store keeps the cap: another process (a second scheduler,
//!   the CLI) may add a job to it that is due before this dispatcher would wake.
//! - **The loop never dies.** A store error becomes a `StoreError` event, a tracing error
//!   and a retry after an exponential backoff (100 ms doubling to 30 s); a panicking
//!   trigger pauses its job and is reported as a job error; a job's own failure or panic is
//!   caught in its run task.
//!
//! # Wall-clock jumps
//! Forward: the jobs whose run times were jumped over are due at the next wake-up, and the
//! misfire grace time and coalescing policy decide what runs, as after any downtime. Back:
//! next run times already stored stay as they are, so nothing runs twice; the wait until
//! them just gets longer by the jump.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sched_core::event::{
    Event, EventKind, FailureKind, JobEvent, JobExecutionEvent, JobFailure, JobSubmissionEvent,
    StoreErrorEvent,
};
use sched_core::jitter::jittered;
use sched_core::job::{Job, TaskRef};
use sched_stores::{BoxJobStore, JobStore, ScheduleChange, ScheduleWrite, StoreError};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Executor;
use crate::backlog::{Plan, backlog, plan};
use crate::clock::WallTimer;
use crate::cluster::FireHook;
use crate::scheduler::{AWAKE, InstanceGuard, PAUSED, SchedulerState, Shared, wall_nanos};
use crate::task::{AttemptCancel, CancelParent, JobContext, TaskFn, TaskResult, panic_message};

/// Due jobs fetched and processed per store call and per hold of the ops lock.
pub(crate) const BATCH: usize = 1024;
/// The longest single sleep, unless the wall-clock timer is used (see [`run`]).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);
/// The shortest wait made on the wall-clock timer of the system clock.
const WALL_TIMER_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The dispatcher task. Ends only when the scheduler's stop token fires.
pub(crate) async fn run(sh: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    // The system clock's kernel timer, where there is one (see `SystemClock`).
    let mut wall_timer = if sh.clock.is_system() {
        WallTimer::new()
    } else {
        None
    };
    loop {
        if sh.stop.is_cancelled() {
            return;
        }
        if sh.state() != SchedulerState::Running {
            sh.sleeping_until.store(PAUSED, Ordering::SeqCst);
            tokio::select! {
                _ = sh.stop.cancelled() => return,
                _ = sh.wake.notified() => continue,
            }
        }
        // Awake: from here on every change notifies (a stored permit ends the next sleep
        // at once), so none made while this pass reads the stores is missed.
        sh.sleeping_until.store(AWAKE, Ordering::SeqCst);
        let now = sh.clock.now();
        // Shutdown does not wait for a store that hangs; see the store's cancel safety.
        let (next, errors) = tokio::select! {
            biased;
            _ = sh.stop.cancelled() => return,
            r = process(&sh, now) => r,
        };
        // When to wake, as a wall time: the earliest next run time itself, not "now plus
        // the wait until it", which lands a hair later and would let every job added for
        // that same instant wake the dispatcher again. `None`: nothing is scheduled; sleep
        // until woken.
        let now = sh.clock.now();
        let after = |d: Duration| {
            TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        let mut wake_at = next;
        if errors.is_empty() {
            backoff = BACKOFF_MIN;
        } else {
            for (store, error) in errors {
                crate::metrics::store_failed(&store);
                tracing::error!(store = %store, error = %error, retry_in = ?backoff, "job store call failed");
                sh.emit(Event::Store(StoreErrorEvent::new(
                    store,
                    error.to_string(),
                    backoff,
                )));
            }
            wake_at = Some(wake_at.map_or(after(backoff), |t| t.min(after(backoff))));
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        // The wait is split into minutes unless the kernel watches the wall clock for us
        // and no other process can change a store (a persistent store can be written by
        // another scheduler or the CLI, which cannot wake this one).
        let split = wall_timer.is_none() || sh.stores().iter().any(|(_, s)| s.is_persistent());
        if split {
            wake_at = Some(wake_at.map_or(after(MAX_WAIT), |t| t.min(after(MAX_WAIT))));
        }
        let wait = wake_at.map(|t| (t - now).to_std().unwrap_or(Duration::ZERO));
        if wait.is_some_and(|w| w.is_zero()) {
            tokio::task::yield_now().await;
            continue;
        }
        sh.sleeping_until
            .store(wake_at.map_or(AWAKE, wall_nanos), Ordering::SeqCst);
        let sleep = async {
            match (&wall_timer, wake_at, wait) {
                (_, _, None) => std::future::pending().await,
                // Long waits on the kernel's wall-clock timer; short ones on tokio's, whose
                // millisecond ticks let one wake-up take every job due within the tick.
                (Some(timer), Some(at), Some(wait)) if wait >= WALL_TIMER_MIN => {
                    timer.sleep_until(at).await
                }
                (_, _, Some(wait)) => {
                    tokio::time::sleep(wait).await;
                    Ok(())
                }
            }
        };
        tokio::select! {
            biased;
            _ = sh.stop.cancelled() => return,
            _ = sh.wake.notified() => {}
            slept = sleep => {
                if let Err(error) = slept {
                    tracing::warn!(%error, "wall-clock timer failed; waiting on tokio's timer from now on");
                    wall_timer = None;
                }
            }
        }
    }
}

/// One pass over every store: fires what is due at `now`; returns the earliest next run
/// time and the stores that failed.
async fn process(
    sh: &Arc<Shared>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Vec<(String, StoreError)>) {
    let mut next: Option<DateTime<Utc>> = None;
    let mut errors = crate::quarantine::release_runnable(sh).await;
    for (name, store) in sh.stores().iter() {
        let processed = match sh.clusters.get(name) {
            Some(node) => crate::cluster::process_store(sh, name, store, node, now).await,
            None => process_store(sh, name, store, now).await,
        };
        match processed {
            Ok(n) => next = min_time(next, n),
            Err(e) => errors.push((name.clone(), e)),
        }
    }
    (next, errors)
}

fn min_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn process_store(
    sh: &Arc<Shared>,
    name: &str,
    store: &BoxJobStore,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    loop {
        if sh.stop.is_cancelled() || sh.state() != SchedulerState::Running {
            return Ok(None);
        }
        let ops = sh.ops.lock().await;
        // A store removed since this pass took its snapshot fires nothing more.
        if sh.store(name).is_none() {
            return Ok(None);
        }
        let batch = store.due_jobs(now, BATCH).await?;
        let full = batch.len() == BATCH;
        // Every due job of the batch is planned first, then the schedule changes are
        // written with one store call, then the jobs whose change was written fire. A store
        // error while planning (quarantining a job) still lets the jobs planned before it
        // fire, as an error in the write lets those the store wrote before it fire.
        let mut fires = Vec::with_capacity(batch.len());
        let mut failed = None;
        for job in batch {
            match prepare(sh, name, store, job, now).await {
                Ok(Some(fire)) => fires.push(fire),
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let written = if fires.is_empty() {
            ScheduleWrite::default()
        } else {
            let changes: Vec<ScheduleChange<'_>> = fires.iter().map(Fire::change).collect();
            store.advance_jobs(&changes).await
        };
        let mut launches = Launches::default();
        for (fire, found) in fires.into_iter().zip(written.found) {
            fire.written(sh, name, found, &mut launches);
        }
        drop(ops);
        // The batch's runs start together, after its writes (see `Launches`).
        drop(launches);
        if let Some(e) = failed.or(written.error) {
            return Err(e);
        }
        if !full {
            break;
        }
        tokio::task::yield_now().await;
    }
    store.next_run_time().await
}

/// A due job whose fire is planned: the schedule change to write, and what to do once the
/// store has written it.
struct Fire {
    job: Job,
    what: Planned,
}

/// What a due job's fire does.
enum Planned {
    /// The trigger panicked: the job is paused, and the panic reported as a job error of
    /// its run due at `first`.
    Panicked {
        first: DateTime<Utc>,
        message: String,
    },
    /// The job moves on to `next` (removed when `None`); the runs of `plan` are submitted
    /// and its missed runs reported.
    Runs {
        task: Result<TaskFn, String>,
        next: Option<DateTime<Utc>>,
        /// Whether the backlog was longer than the cap (the rest was skipped).
        truncated: bool,
        plan: Plan,
    },
}

/// Plans the fire of one due job: checks that it can run (quarantining it if not), then
/// computes its backlog and which runs of it to do. `None`: nothing to do (no longer due,
/// or quarantined).
async fn prepare(
    sh: &Arc<Shared>,
    store_name: &str,
    store: &BoxJobStore,
    job: Job,
    now: DateTime<Utc>,
) -> Result<Option<Fire>, StoreError> {
    let Some(first) = job.next_run_time else {
        return Ok(None);
    };
    if first > now {
        return Ok(None);
    }
    // A job that can never run is set aside with its schedule as it is. The task resolved
    // for the check is the one submitted.
    let task = sh.resolve_task(&job.task);
    if crate::quarantine::quarantine_if_unrunnable(sh, store_name, store, &job, &task).await? {
        return Ok(None);
    }
    let computed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        backlog(job.trigger.as_trigger(), first, now, sh.max_backlog)
    }));
    let what = match computed {
        Ok(bl) => Planned::Runs {
            plan: plan(&bl.due, now, job.misfire_grace_time, job.coalesce),
            task,
            next: bl.next,
            truncated: bl.truncated,
        },
        Err(payload) => {
            // A trigger that panics would panic again: pause the job rather than spin.
            let message = format!("trigger {}", panic_message(&*payload));
            tracing::error!(job_id = %job.id, store = store_name, "{message}; job paused");
            Planned::Panicked { first, message }
        }
    };
    Ok(Some(Fire { job, what }))
}

impl Fire {
    /// The change the store must show before anything else happens: only the next run
    /// time changes (an advance), so a store need not write the whole job again, or the
    /// job is removed when it has no run left.
    fn change(&self) -> ScheduleChange<'_> {
        match &self.what {
            Planned::Panicked { .. } => ScheduleChange::Advance {
                job: &self.job,
                next_run_time: None,
            },
            Planned::Runs { next: None, .. } => ScheduleChange::Remove(&self.job.id),
            Planned::Runs { next, .. } => ScheduleChange::Advance {
                job: &self.job,
                next_run_time: *next,
            },
        }
    }

    /// Reports and submits the fire once its change is written; `found`: the job was
    /// still stored. A job removed meanwhile (by a handle, another scheduler, the CLI) is
    /// skipped silently; a panicking trigger is reported either way.
    fn written(self, sh: &Arc<Shared>, store_name: &str, found: bool, launches: &mut Launches) {
        let Fire { job, what } = self;
        match what {
            Planned::Panicked { first, message } => {
                report_trigger_panic(sh, store_name, &job, first, message);
            }
            Planned::Runs { .. } if !found => {}
            Planned::Runs {
                task,
                next,
                truncated,
                plan,
            } => {
                if next.is_none() && sh.events.wants(EventKind::JobRemoved) {
                    sh.emit(Event::Job(JobEvent::new(
                        EventKind::JobRemoved,
                        job.id.clone(),
                        store_name,
                    )));
                }
                report_skipped(sh, store_name, &job, truncated, &plan.missed);
                if !plan.run.is_empty() {
                    submit_resolved(sh, &job, task, plan.run, next, None, launches);
                }
            }
        }
    }
}

/// Reports a trigger that panicked while planning `job`'s fire (the job is paused) as a
/// job error of its run due at `first`.
pub(crate) fn report_trigger_panic(
    sh: &Shared,
    store_name: &str,
    job: &Job,
    first: DateTime<Utc>,
    message: String,
) {
    sh.metrics.get(store_name, &job.executor).errored();
    sh.emit(Event::Execution(JobExecutionEvent::error(
        job.id.clone(),
        store_name,
        first,
        JobFailure::new(FailureKind::Setup, message),
        None,
    )));
}

/// Reports what the plan of `job`'s fire skipped: the backlog cut at the cap
/// (`truncated`), and each run `missed` by more than its misfire grace time.
pub(crate) fn report_skipped(
    sh: &Shared,
    store_name: &str,
    job: &Job,
    truncated: bool,
    missed: &[DateTime<Utc>],
) {
    if truncated {
        tracing::warn!(job_id = %job.id, cap = sh.max_backlog, "backlog longer than the cap; the rest was skipped");
    }
    for &t in missed {
        tracing::warn!(job_id = %job.id, scheduled = %t, "run missed by more than its misfire grace time");
        sh.metrics.get(store_name, &job.executor).missed();
        sh.emit(Event::Execution(JobExecutionEvent::missed(
            job.id.clone(),
            store_name,
            t,
        )));
    }
}

/// Submits the runs of `job` at `times` as one submission: one `max_instances` permit,
/// the runs done one after the other in that order (as APScheduler runs a backlog). Without
/// a free permit the submission is refused and reported. Returns whether it was accepted.
///
/// `next` is the job's next unjittered run time after `times`: a jittered start stays
/// strictly before it (see [`jittered`]).
pub(crate) fn submit(
    sh: &Arc<Shared>,
    job: &Job,
    times: Vec<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
) -> bool {
    submit_with(sh, job, times, next, None)
}

/// [`submit`], reporting each time's outcome to `hook` (the fires of a cluster store).
pub(crate) fn submit_with(
    sh: &Arc<Shared>,
    job: &Job,
    times: Vec<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
    hook: Option<FireHook>,
) -> bool {
    let mut launches = Launches::default();
    submit_resolved(
        sh,
        job,
        sh.resolve_task(&job.task),
        times,
        next,
        hook,
        &mut launches,
    )
}

/// [`submit`] with the job's task already resolved (`Err`: why it cannot run).
fn submit_resolved(
    sh: &Arc<Shared>,
    job: &Job,
    task: Result<TaskFn, String>,
    times: Vec<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
    hook: Option<FireHook>,
    launches: &mut Launches,
) -> bool {
    let metrics = sh.metrics.get(&job.store, &job.executor);
    let failed = |message: String| {
        tracing::error!(job_id = %job.id, "{message}");
        for &t in &times {
            metrics.errored();
            sh.emit(Event::Execution(JobExecutionEvent::error(
                job.id.clone(),
                &*job.store,
                t,
                JobFailure::new(FailureKind::Setup, message.clone()),
                None,
            )));
            if let Some(hook) = &hook {
                hook.finished(
                    t,
                    &Err(JobFailure::new(FailureKind::Setup, message.clone())),
                );
            }
        }
    };
    let task = match task {
        Ok(task) => task,
        Err(message) => {
            failed(message);
            return true;
        }
    };
    let Some(executor) = sh.executor(&job.executor) else {
        failed(format!("executor {:?} does not exist", job.executor));
        return true;
    };
    let Some(instance) = sh.try_acquire_instance(job) else {
        tracing::warn!(job_id = %job.id, max_instances = job.max_instances, "run refused: maximum number of running instances reached");
        metrics.refused();
        sh.emit(Event::Submission(JobSubmissionEvent::new(
            EventKind::JobMaxInstances,
            job.id.clone(),
            &*job.store,
            times.clone(),
        )));
        if let Some(hook) = &hook {
            times.iter().for_each(|t| hook.refused(*t));
        }
        return false;
    };
    metrics.fired(times.len());
    if sh.events.wants(EventKind::JobSubmitted) {
        sh.emit(Event::Submission(JobSubmissionEvent::new(
            EventKind::JobSubmitted,
            job.id.clone(),
            &*job.store,
            times.clone(),
        )));
    }
    let start_at = start_time(sh, job, times.first().copied(), next);
    let running = crate::metrics::Running::new(metrics);
    let launch = prepare_run(
        sh,
        job,
        task,
        executor,
        times,
        start_at,
        (instance, running),
        hook,
    );
    launches.push(launch);
    true
}

/// When a submission whose first run is due at `first` should start: with jitter (the
/// job's own if set, else its trigger's), a random instant in `[first, first + jitter]`
/// and before `next`, drawn afresh from the unjittered time so delays never add up;
/// without, `None` (at once).
fn start_time(
    sh: &Shared,
    job: &Job,
    first: Option<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let first = first?;
    let jitter = job
        .jitter
        .or_else(|| job.trigger.as_trigger().jitter())
        .filter(|j| !j.is_zero())?;
    Some(jittered(first, jitter, next, &mut &sh.rng))
}

/// Submissions accepted and not yet spawned. The dispatcher collects those of a batch and
/// spawns them together, [`LAUNCH_CHUNK`] at a time and at the end of the batch, after
/// their schedules are written: a run of spawns wakes an idle worker once, where spawns
/// spread between other work would wake one per run; and chunks keep the other workers
/// running a large batch's runs while the dispatcher is still submitting the rest.
/// Dropping the list spawns what it holds, so a batch cut short still starts every run
/// accepted so far. (The dispatcher's future dropped at shutdown while the batch's write
/// is in flight starts none of the batch's runs, whether or not the write landed: a run
/// lost, never one repeated.)
#[derive(Default)]
pub(crate) struct Launches(Vec<Launch>);

/// How many accepted submissions are spawned together at most.
const LAUNCH_CHUNK: usize = 64;

impl Launches {
    fn push(&mut self, launch: Launch) {
        self.0.push(launch);
        if self.0.len() >= LAUNCH_CHUNK {
            for launch in self.0.drain(..) {
                launch.spawn();
            }
        }
    }
}

impl Drop for Launches {
    fn drop(&mut self) {
        for launch in self.0.drain(..) {
            launch.spawn();
        }
    }
}

/// One submission, ready to spawn.
pub(crate) struct Launch {
    run: Run,
    times: Vec<DateTime<Utc>>,
    start_at: Option<DateTime<Utc>>,
    span: tracing::Span,
    /// Where each time's outcome goes (the fires of a cluster store).
    hook: Option<FireHook>,
}

impl Launch {
    /// Spawns the runs. The `max_instances` count moves into the task's future (in the
    /// [`Run`]), so it is released however the runs end: success, error, panic (caught),
    /// timeout, cancellation, or the future dropped.
    fn spawn(self) {
        let Launch {
            run,
            times,
            start_at,
            span,
            hook,
        } = self;
        let tracker = run.sh().tracker.clone();
        let fut = async move {
            // The delay is measured from now, so a late dispatch is not made later still.
            let delay = start_at.and_then(|t| (t - run.sh().clock.now()).to_std().ok());
            if let Some(delay) = delay.filter(|d| !d.is_zero()) {
                // Boxed: only jittered jobs wait here, and the timer would make every
                // run's future larger.
                let sleep = Box::pin(tokio::time::sleep(delay));
                tokio::select! {
                    _ = sleep => {}
                    _ = run.cancel().cancelled() => {}
                }
            }
            for scheduled in times {
                let result = run.run(scheduled).await;
                if let Some(hook) = &hook {
                    hook.finished(scheduled, &result);
                }
            }
        };
        // The span wrapper only where a subscriber wants the span.
        if span.is_disabled() {
            tracker.spawn(fut);
        } else {
            tracker.spawn(fut.instrument(span));
        }
    }
}

/// Prepares the runs of one submission (see [`Launch::spawn`]).
#[allow(clippy::too_many_arguments)]
fn prepare_run(
    sh: &Arc<Shared>,
    job: &Job,
    task: TaskFn,
    executor: Executor,
    times: Vec<DateTime<Utc>>,
    start_at: Option<DateTime<Utc>>,
    (instance, running): (InstanceGuard, crate::metrics::Running),
    hook: Option<FireHook>,
) -> Launch {
    let first = times.first().copied();
    // The span is built only when a subscriber wants it (`Span::none()` otherwise), so its
    // fields cost nothing without one.
    let span = tracing::info_span!(
        "job_run",
        job_id = %job.id,
        scheduled = ?first,
        lateness_ms = tracing::field::Empty,
    );
    if !span.is_disabled()
        && let Some(first) = first
    {
        span.record("lateness_ms", (sh.clock.now() - first).num_milliseconds());
    }
    let run = Run {
        instance,
        args: match &job.task {
            TaskRef::Named { args, .. } => args.clone(),
            _ => Value::Null,
        },
        timeout: job.timeout,
        retry: job.retry,
        task,
        executor,
        running,
        node_cancel: hook.as_ref().map(FireHook::cancel_parent),
    };
    Launch {
        run,
        times,
        start_at,
        span,
        hook,
    }
}

/// What one submission needs to run its times.
struct Run {
    /// The run's place under the job's `max_instances`, released when the run is dropped;
    /// also the scheduler, the job's store and its id.
    instance: InstanceGuard,
    args: Value,
    timeout: Option<Duration>,
    retry: Option<sched_core::job::RetryPolicy>,
    task: TaskFn,
    executor: Executor,
    /// Counts the submission as running while it lives; holds the metric handles.
    running: crate::metrics::Running,
    /// The parent of each attempt's token when it is a cluster node's; `None`: the
    /// scheduler's, not cloned (see [`CancelParent`]).
    node_cancel: Option<CancellationToken>,
}

impl Run {
    fn sh(&self) -> &Arc<Shared> {
        self.instance.shared()
    }

    fn id(&self) -> &sched_core::job::JobId {
        self.instance.id()
    }

    fn store(&self) -> &str {
        self.instance.store()
    }

    /// The parent of each attempt's token: the scheduler's, or a cluster node's.
    fn cancel(&self) -> &CancellationToken {
        self.node_cancel
            .as_ref()
            .unwrap_or(&self.instance.shared().run_cancel)
    }

    /// Runs the task for one scheduled time, with retries, reporting each attempt's end;
    /// the last attempt's failure, if it failed.
    async fn run(&self, scheduled: DateTime<Utc>) -> Result<(), JobFailure> {
        let max_attempts = self.retry.map_or(1, |r| r.max_attempts.max(1));
        let lateness = (self.sh().clock.now() - scheduled)
            .to_std()
            .unwrap_or_default();
        self.running.handles().late(lateness);
        for attempt in 1..=max_attempts {
            let (result, started) = self.attempt(scheduled, attempt).await;
            let (event, failed) = match result {
                // The hot path: skip building an event nobody listens to.
                Ok(_) if !self.sh().events.wants(EventKind::JobExecuted) => return Ok(()),
                Ok(value) => (
                    JobExecutionEvent::executed(
                        self.id().clone(),
                        self.store(),
                        scheduled,
                        value,
                        started.elapsed(),
                    ),
                    None,
                ),
                Err(failure) => {
                    let duration = started.elapsed();
                    self.running.handles().errored();
                    tracing::error!(error = %failure, scheduled = %scheduled, attempt, "job run failed");
                    let retry = attempt < max_attempts
                        && matches!(
                            failure.kind,
                            FailureKind::Error | FailureKind::Panic | FailureKind::Timeout
                        );
                    let event = JobExecutionEvent::error(
                        self.id().clone(),
                        self.store(),
                        scheduled,
                        failure.clone(),
                        Some(duration),
                    );
                    (event, Some((failure, retry)))
                }
            };
            self.sh()
                .emit(Event::Execution(event.with_attempt(attempt)));
            let failure = match failed {
                None => return Ok(()),
                Some((failure, false)) => return Err(failure),
                Some((failure, true)) => failure,
            };
            let wait = self.retry.map(|r| r.backoff(attempt)).unwrap_or_default();
            // Boxed: only retried runs wait here (see the jitter delay).
            let sleep = Box::pin(tokio::time::sleep(wait));
            tokio::select! {
                _ = sleep => {}
                _ = self.cancel().cancelled() => return Err(failure),
            }
        }
        Ok(())
    }

    /// Why this run's token was cancelled: the scheduler's shutdown, or (a cluster node's
    /// run) the node's registration lapsing, after which its fires may run elsewhere.
    fn cancel_reason(&self) -> &'static str {
        if self.sh().run_cancel.is_cancelled() {
            "cancelled at shutdown"
        } else {
            "cancelled: this node's registration lapsed, so the fire may run on another node"
        }
    }

    /// One attempt: the task under its timeout and the shutdown token. Returns its result
    /// and when it started (the attempt's duration is measured only where reported).
    async fn attempt(&self, scheduled: DateTime<Utc>, attempt: u32) -> (TaskResult, Instant) {
        let started = Instant::now();
        if self.cancel().is_cancelled() {
            let failure = JobFailure::new(FailureKind::Cancelled, "cancelled before it started");
            return (Err(failure), started);
        }
        // The task's token is a child of `self.cancel()`, made only if asked for (see
        // `AttemptCancel`); the attempt itself waits on the parent.
        let parent = match &self.node_cancel {
            Some(token) => CancelParent::Node(token.clone()),
            None => CancelParent::Scheduler(self.sh().clone()),
        };
        let cancel = Arc::new(AttemptCancel::new(parent));
        let ctx = JobContext {
            job_id: self.id().clone(),
            store: self.instance.store().clone(),
            scheduled_run_time: scheduled,
            attempt,
            cancel: cancel.clone(),
            args: self.args.clone(),
        };
        let run = self.executor.run(self.task.call(ctx));
        let cancelled = || JobFailure::new(FailureKind::Cancelled, self.cancel_reason());
        // The run is polled first, so a task that finishes at once never touches the
        // shutdown token's waiters or the timer.
        let result = match self.timeout {
            None => tokio::select! {
                biased;
                r = run => r,
                _ = self.cancel().cancelled() => Err(cancelled()),
            },
            Some(limit) => tokio::select! {
                biased;
                r = run => r,
                _ = self.cancel().cancelled() => Err(cancelled()),
                // Boxed, as the other timers of a run (see the jitter delay).
                _ = Box::pin(tokio::time::sleep(limit)) => {
                    cancel.cancel();
                    Err(JobFailure::new(
                        FailureKind::Timeout,
                        format!("timed out after {limit:?}"),
                    ))
                }
            },
        };
        (result, started)
    }
}
