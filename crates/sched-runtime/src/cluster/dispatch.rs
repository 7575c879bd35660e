//! The cluster dispatcher pass, the renew task and the outcome flusher of one cluster
//! store. See the module docs of `cluster` for the ground rules.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sched_core::event::{
    Event, EventKind, FailureKind, JobEvent, JobExecutionEvent, JobFailure, StoreErrorEvent,
};
use sched_core::job::{Job, JobId};
use sched_stores::{BoxJobStore, Commit, FireId, JobStore, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ClusterNode;
use crate::backlog::{backlog, plan};
use crate::scheduler::{SchedulerState, Shared};
use crate::task::panic_message;

/// How soon to look again when the earliest next run time is due but another node holds
/// it (it commits within milliseconds, or its lease ends).
const HELD_RETRY: Duration = Duration::from_millis(100);
/// Outcomes recorded at once by the flusher.
const FLUSH_CONCURRENCY: usize = 3;
/// Claims committed at once: a store keeps a few connections (PostgreSQL and MySQL 10), and
/// the flusher and the handles need some too.
const COMMIT_CONCURRENCY: usize = 6;
/// Attempts to record one outcome before giving up on it (it then stays unfinished).
const FINISH_ATTEMPTS: u32 = 5;

/// A fire's outcome on its way to the store.
#[derive(Debug)]
pub(crate) struct Outcome {
    epoch: i64,
    fire: FireId,
    text: String,
}

pub(crate) type OutcomeSender = mpsc::UnboundedSender<Outcome>;

/// What the runs of one commit need to report their fires: the run's cancellation parent
/// (this node's token) and where the outcomes go.
#[derive(Clone, Debug)]
pub(crate) struct FireHook {
    job: JobId,
    epoch: i64,
    cancel: CancellationToken,
    outcomes: Option<OutcomeSender>,
}

impl FireHook {
    /// The parent of each run's [`JobContext`](crate::JobContext) token: cancelled when this
    /// node loses its fires.
    pub(crate) fn cancel_parent(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Records how the run of the fire at `scheduled` ended.
    pub(crate) fn finished(&self, scheduled: DateTime<Utc>, result: &Result<(), JobFailure>) {
        let text = match result {
            Ok(()) => "executed".to_owned(),
            Err(f) => format!("{}: {}", kind_name(&f.kind), f.message),
        };
        self.send(scheduled, text);
    }

    /// Records that the fire at `scheduled` was not run: the job had `max_instances` runs
    /// going on this node.
    pub(crate) fn refused(&self, scheduled: DateTime<Utc>) {
        self.send(scheduled, "refused: max_instances".to_owned());
    }

    fn send(&self, scheduled: DateTime<Utc>, text: String) {
        if let Some(tx) = &self.outcomes {
            let fire = FireId::new(self.job.clone(), scheduled);
            // Closed only once the flusher is gone (shutdown without waiting).
            let _ = tx.send(Outcome {
                epoch: self.epoch,
                fire,
                text,
            });
        }
    }
}

fn kind_name(kind: &FailureKind) -> &'static str {
    match kind {
        FailureKind::Error => "error",
        FailureKind::Panic => "panic",
        FailureKind::Timeout => "timeout",
        FailureKind::Cancelled => "cancelled",
        FailureKind::Setup => "setup",
        _ => "failed",
    }
}

/// A claimed job, planned: what to commit and what to report after.
struct Planned {
    job: Job,
    epoch: i64,
    /// The advanced job to write (next run time after the due ones; `None` when finished or
    /// paused because its trigger panicked).
    advanced: Job,
    run: Vec<DateTime<Utc>>,
    missed: Vec<DateTime<Utc>>,
    truncated: bool,
    /// The trigger panicked: the job is paused, with this message.
    panicked: Option<String>,
}

/// One pass over a cluster store: claims what is due at `now` (batch by batch), commits
/// each claim and submits the runs of the fires it created. Returns when to look again.
pub(crate) async fn process_store(
    sh: &Arc<Shared>,
    name: &str,
    store: &BoxJobStore,
    node: &Arc<ClusterNode>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let opts = &node.options;
    let poll = now
        .checked_add_signed(TimeDelta::from_std(opts.poll_interval).unwrap_or(TimeDelta::MAX))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if node.fenced.load(Ordering::SeqCst) {
        // Leases have ended without a renewal: claim nothing until one succeeds (the renew
        // task wakes the dispatcher then).
        return Ok(Some(poll));
    }
    loop {
        if sh.stop.is_cancelled() || sh.state() != SchedulerState::Running {
            return Ok(None);
        }
        let ops = sh.ops.lock().await;
        if sh.store(name).is_none() {
            return Ok(None);
        }
        let claims = node
            .lease
            .claim_due(&opts.node_id, now, opts.lease, opts.claim_batch)
            .await?;
        let full = claims.len() == opts.claim_batch;
        let mut commits = JoinSet::new();
        let mut failure = None;
        for claim in claims {
            let job = claim.job;
            let Some(first) = job.next_run_time.filter(|t| *t <= now) else {
                release(node, &job.id, claim.epoch).await;
                continue;
            };
            match crate::quarantine::quarantine_if_unrunnable(sh, name, store, &job).await {
                Ok(false) => {}
                Ok(true) => {
                    release(node, &job.id, claim.epoch).await;
                    continue;
                }
                Err(e) => {
                    // Left claimed: planned again once its lease ends.
                    failure.get_or_insert(e);
                    continue;
                }
            }
            let planned = plan_claim(sh, job, claim.epoch, first, now);
            let lease = node.lease.clone();
            let node_id = opts.node_id.clone();
            while commits.len() >= COMMIT_CONCURRENCY {
                if let Some(done) = commits.join_next().await {
                    settle(sh, name, store, node, done, &mut failure).await;
                }
            }
            commits.spawn(async move {
                let commit = lease
                    .commit_fires(&node_id, planned.epoch, &planned.run, &planned.advanced)
                    .await;
                (planned, commit)
            });
        }
        while let Some(done) = commits.join_next().await {
            settle(sh, name, store, node, done, &mut failure).await;
        }
        drop(ops);
        if let Some(e) = failure {
            return Err(e);
        }
        if !full {
            break;
        }
        tokio::task::yield_now().await;
    }
    let next = store.next_run_time().await?;
    Ok(Some(match next {
        // Due and not claimable: another node holds it.
        Some(t) if t <= now => {
            now + TimeDelta::from_std(HELD_RETRY.min(opts.poll_interval)).unwrap_or_default()
        }
        Some(t) => t.min(poll),
        None => poll,
    }))
}

/// Acts on one commit's answer as it comes; keeps the first store error in `failure`.
async fn settle(
    sh: &Arc<Shared>,
    name: &str,
    store: &BoxJobStore,
    node: &ClusterNode,
    done: Result<(Planned, Result<Commit, StoreError>), tokio::task::JoinError>,
    failure: &mut Option<StoreError>,
) {
    // A commit task only ends by returning (the dispatcher never aborts it).
    let Ok((planned, commit)) = done else {
        return;
    };
    match commit {
        Ok(Commit::Committed { created }) => {
            if let Err(e) = committed(sh, name, store, node, planned, created).await {
                failure.get_or_insert(e);
            }
        }
        Ok(Commit::Lost) => {
            tracing::debug!(job_id = %planned.job.id, epoch = planned.epoch, "claim lost before its commit; nothing runs");
        }
        Err(e) => {
            // The claim stays until its lease ends; the job is then claimed again and
            // planned from what the store holds.
            failure.get_or_insert(e);
        }
    }
}

/// Releases a claim that will not be committed (quarantined, or not due after all).
async fn release(node: &ClusterNode, id: &JobId, epoch: i64) {
    if let Err(e) = node.lease.release(&node.options.node_id, id, epoch).await {
        // The lease then ends by itself.
        tracing::warn!(job_id = %id, error = %e, "could not release a claim");
    }
}

/// The run times of a claimed job from its stored next run time, as on a single node.
fn plan_claim(
    sh: &Shared,
    job: Job,
    epoch: i64,
    first: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Planned {
    let computed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        backlog(job.trigger.as_trigger(), first, now, sh.max_backlog)
    }));
    let mut advanced = job.clone();
    match computed {
        Ok(bl) => {
            let p = plan(&bl.due, now, job.misfire_grace_time, job.coalesce);
            advanced.next_run_time = bl.next;
            Planned {
                job,
                epoch,
                advanced,
                run: p.run,
                missed: p.missed,
                truncated: bl.truncated,
                panicked: None,
            }
        }
        Err(payload) => {
            // A trigger that panics would panic again: pause the job rather than spin.
            advanced.next_run_time = None;
            Planned {
                job,
                epoch,
                advanced,
                run: Vec::new(),
                missed: Vec::new(),
                truncated: false,
                panicked: Some(format!("trigger {}", panic_message(&*payload))),
            }
        }
    }
}

/// After a commit: reports, removes a finished job, submits the fires this node created.
async fn committed(
    sh: &Arc<Shared>,
    name: &str,
    store: &BoxJobStore,
    node: &ClusterNode,
    planned: Planned,
    created: Vec<FireId>,
) -> Result<(), StoreError> {
    let job = &planned.job;
    if let Some(message) = planned.panicked {
        tracing::error!(job_id = %job.id, store = name, "{message}; job paused");
        crate::metrics::errored(name, &job.executor);
        sh.emit(Event::Execution(JobExecutionEvent::error(
            job.id.clone(),
            name,
            job.next_run_time.unwrap_or_default(),
            JobFailure::new(FailureKind::Setup, message),
            None,
        )));
        return Ok(());
    }
    let next = planned.advanced.next_run_time;
    if planned.truncated {
        tracing::warn!(job_id = %job.id, cap = sh.max_backlog, "backlog longer than the cap; the rest was skipped");
    }
    for t in planned.missed {
        tracing::warn!(job_id = %job.id, scheduled = %t, "run missed by more than its misfire grace time");
        crate::metrics::missed(name, &job.executor);
        sh.emit(Event::Execution(JobExecutionEvent::missed(
            job.id.clone(),
            name,
            t,
        )));
    }
    if !created.is_empty() {
        let times: Vec<DateTime<Utc>> = created.into_iter().map(|f| f.scheduled).collect();
        let hook = FireHook {
            job: job.id.clone(),
            epoch: planned.epoch,
            cancel: ClusterNode::lock(&node.runs).clone(),
            outcomes: ClusterNode::lock(&node.outcomes).clone(),
        };
        crate::dispatcher::submit_with(sh, job, &times, next, Some(hook));
    }
    // Finished: the commit stored it without a next run time, so nobody claims it again;
    // now it goes.
    if next.is_none() {
        match store.remove_job(&job.id).await {
            Ok(()) => sh.emit(Event::Job(JobEvent::new(
                EventKind::JobRemoved,
                job.id.clone(),
                name,
            ))),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Starts a node's renew task and outcome flusher.
pub(crate) fn start_node(
    sh: &Arc<Shared>,
    node: &Arc<ClusterNode>,
    runtime: &tokio::runtime::Handle,
) {
    *ClusterNode::lock(&node.runs) = sh.run_cancel.child_token();
    let (tx, rx) = mpsc::unbounded_channel();
    *ClusterNode::lock(&node.outcomes) = Some(tx);
    let renew = runtime.spawn(renew_loop(sh.clone(), node.clone()));
    let flusher = runtime.spawn(flush(node.clone(), rx));
    ClusterNode::lock(&node.tasks).extend([renew, flusher]);
}

/// Stops a node (the dispatcher has stopped): ends the renew task, waits for the outcomes
/// of the finished runs to be recorded when `wait`, and releases every claim of the node.
pub(crate) async fn stop_node(node: &ClusterNode, wait: bool) {
    // Dropping the sender lets the flusher end once every run's sender is gone.
    ClusterNode::lock(&node.outcomes).take();
    let tasks: Vec<_> = ClusterNode::lock(&node.tasks).drain(..).collect();
    let mut tasks = tasks.into_iter();
    if let Some(renew) = tasks.next() {
        renew.abort();
        let _ = renew.await;
    }
    if let Some(flusher) = tasks.next()
        && wait
    {
        let _ = flusher.await;
    }
    let id = &node.options.node_id;
    match node.lease.release_all(id).await {
        Ok(n) => tracing::debug!(node = %id, released = n, "cluster claims released"),
        Err(e) => {
            tracing::warn!(node = %id, error = %e, "could not release the cluster claims; they end with their lease")
        }
    }
}

/// Renews the node's leases every `renew_every`; fences the node when it could not renew
/// before its lease ends, and lets it claim again after the next success.
async fn renew_loop(sh: Arc<Shared>, node: Arc<ClusterNode>) {
    let opts = &node.options;
    let mut last_ok = Instant::now();
    loop {
        tokio::select! {
            _ = sh.stop.cancelled() => return,
            _ = tokio::time::sleep(opts.renew_every) => {}
        }
        let renewed = tokio::select! {
            _ = sh.stop.cancelled() => return,
            r = node.lease.renew(&opts.node_id, opts.lease) => r,
        };
        match renewed {
            Ok(_) => {
                last_ok = Instant::now();
                if node.fenced.swap(false, Ordering::SeqCst) {
                    tracing::info!(node = %opts.node_id, store = %node.store, "leases renewed again; claiming again");
                    sh.wake.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(node = %opts.node_id, store = %node.store, error = %e, "lease renewal failed");
                sh.emit(Event::Store(StoreErrorEvent::new(
                    node.store.clone(),
                    e.to_string(),
                    opts.renew_every,
                )));
                // The next attempt would come after the lease a renewal gave has ended.
                if last_ok.elapsed() + opts.renew_every >= opts.lease
                    && !node.fenced.swap(true, Ordering::SeqCst)
                {
                    tracing::warn!(node = %opts.node_id, store = %node.store, "cannot renew before the lease ends; this node stops claiming");
                }
            }
        }
    }
}

/// Records fire outcomes as they come, a few at a time, until every sender is gone.
async fn flush(node: Arc<ClusterNode>, mut rx: mpsc::UnboundedReceiver<Outcome>) {
    let mut inflight = JoinSet::new();
    while let Some(outcome) = rx.recv().await {
        while inflight.len() >= FLUSH_CONCURRENCY {
            inflight.join_next().await;
        }
        let node = node.clone();
        inflight.spawn(async move { record(&node, outcome).await });
    }
    while inflight.join_next().await.is_some() {}
}

async fn record(node: &ClusterNode, o: Outcome) {
    let id = &node.options.node_id;
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=FINISH_ATTEMPTS {
        match node.lease.finish_fire(id, o.epoch, &o.fire, &o.text).await {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!(fire = %o.fire, epoch = o.epoch, "fire outcome not recorded: the fire is not this node's");
                return;
            }
            Err(e) if attempt < FINISH_ATTEMPTS => {
                tracing::warn!(fire = %o.fire, error = %e, attempt, "recording a fire outcome failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                tracing::error!(fire = %o.fire, error = %e, "fire outcome not recorded; the fire stays unfinished");
            }
        }
    }
}
