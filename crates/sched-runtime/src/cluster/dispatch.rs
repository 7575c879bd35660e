//! The cluster dispatcher pass, the renew task and the outcome flusher of one cluster
//! store. See the module docs of `cluster` for the ground rules.

use std::sync::Arc;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sched_core::event::{
    Event, EventKind, FailureKind, JobEvent, JobFailure, JobSubmissionEvent, StoreErrorEvent,
};
use sched_core::job::{Job, JobId};
use sched_stores::{
    BoxJobStore, Commit, CommitRequest, Finished, FireId, JobStore, LeaseStore, NodeInfo,
    ScheduleChange, StoreError,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ClusterNode;
use crate::backlog::{backlog, plan};
use crate::scheduler::{SchedulerState, Shared};
use crate::task::panic_message;

/// How soon to look again when the earliest next run time is due but another node holds
/// it (it commits within milliseconds, or its lease ends).
const HELD_RETRY: Duration = Duration::from_millis(100);
/// Outcomes recorded per store call by the flusher.
const FLUSH_BATCH: usize = 1024;
/// Attempts to record a batch of outcomes before giving up on it (its fires then stay
/// unfinished, and are adopted if this node's registration ends).
const FINISH_ATTEMPTS: u32 = 5;
/// How often finished fire records older than the retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Records pruned per kind and call.
const PRUNE_LIMIT: usize = 10_000;
/// How long a burst of job changes is gathered into one notification.
const NOTIFY_DEBOUNCE: Duration = Duration::from_millis(20);

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
    let mut failure = adopt(sh, node).await.err();
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
        let mut planned = Vec::with_capacity(claims.len());
        for claim in claims {
            let job = claim.job;
            let Some(first) = job.next_run_time.filter(|t| *t <= now) else {
                release(node, &job.id, claim.epoch).await;
                continue;
            };
            let task = sh.resolve_task(&job.task);
            match crate::quarantine::quarantine_if_unrunnable(sh, name, store, &job, &task).await {
                Ok(false) => planned.push(plan_claim(sh, job, claim.epoch, first, now)),
                Ok(true) => release(node, &job.id, claim.epoch).await,
                // Left claimed: planned again once its lease ends.
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if !planned.is_empty() {
            // A task of its own, holding the node's commit guard: a pass cancelled at
            // shutdown must not drop fires its commit created before their runs are
            // submitted (shutdown waits for the guard; see `stop_node`).
            let guard = node.committing.clone().lock_owned().await;
            let batch = tokio::spawn(commit_batch(
                sh.clone(),
                name.to_owned(),
                store.clone(),
                node.clone(),
                planned,
                guard,
            ));
            match batch.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    failure.get_or_insert(StoreError::unavailable(
                        format!("commit task failed: {e}"),
                        None,
                    ));
                }
            }
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

/// Commits a planned batch in one round trip and acts on each answer; the first store
/// error, if any. Holds `_guard` (the node's commit guard) throughout.
async fn commit_batch(
    sh: Arc<Shared>,
    name: String,
    store: BoxJobStore,
    node: Arc<ClusterNode>,
    planned: Vec<Planned>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
) -> Result<(), StoreError> {
    let requests: Vec<CommitRequest<'_>> = planned
        .iter()
        .map(|p| CommitRequest {
            epoch: p.epoch,
            slots: &p.run,
            job: &p.advanced,
        })
        .collect();
    // Nothing written on an error: the claims end with their lease and the jobs are
    // planned again from what the store holds.
    let commits = node
        .lease
        .commit_many(&node.options.node_id, &requests)
        .await?;
    drop(requests);
    let finished: Vec<JobId> = planned
        .into_iter()
        .zip(commits)
        .filter_map(|(p, commit)| settle(&sh, &name, &node, p, commit))
        .collect();
    remove_finished(&sh, &name, &store, &finished).await
}

/// Removes the jobs that have no run left (their commit stored them without a next run
/// time, so nobody claims them again), in one store call.
async fn remove_finished(
    sh: &Shared,
    name: &str,
    store: &BoxJobStore,
    finished: &[JobId],
) -> Result<(), StoreError> {
    if finished.is_empty() {
        return Ok(());
    }
    let changes: Vec<ScheduleChange<'_>> = finished.iter().map(ScheduleChange::Remove).collect();
    let written = store.advance_jobs(&changes).await;
    for (id, found) in finished.iter().zip(written.found) {
        if found {
            sh.emit(Event::Job(JobEvent::new(
                EventKind::JobRemoved,
                id.clone(),
                name,
            )));
        }
    }
    written.error.map_or(Ok(()), Err)
}

/// Acts on one commit's answer; the job's id when it has no run left and goes.
fn settle(
    sh: &Arc<Shared>,
    name: &str,
    node: &ClusterNode,
    planned: Planned,
    commit: Commit,
) -> Option<JobId> {
    match commit {
        Commit::Committed { created } => committed(sh, name, node, planned, Some(created)),
        Commit::Refused => committed(sh, name, node, planned, None),
        Commit::Lost => {
            tracing::debug!(job_id = %planned.job.id, epoch = planned.epoch, "claim lost before its commit; nothing runs");
            None
        }
    }
}

/// Takes over the unfinished fires of nodes whose registration ended, and runs each again
/// under its idempotency key (a removed job's fire is recorded finished, not run).
async fn adopt(sh: &Arc<Shared>, node: &Arc<ClusterNode>) -> Result<(), StoreError> {
    let opts = &node.options;
    loop {
        let adopted = node
            .lease
            .adopt_fires(&opts.node_id, opts.claim_batch)
            .await?;
        let full = adopted.len() == opts.claim_batch;
        for a in adopted {
            let hook = node.hook(a.fire.job.clone(), a.epoch);
            let Some(job) = a.job else {
                tracing::warn!(fire = %a.fire, "adopted a fire of a removed job; recorded, not run");
                hook.send(a.fire.scheduled, "not run: the job was removed".to_owned());
                continue;
            };
            tracing::info!(fire = %a.fire, epoch = a.epoch, "adopted the fire of a node that lapsed; running it again under its idempotency key");
            let next = job.next_run_time;
            crate::dispatcher::submit_with(sh, &job, vec![a.fire.scheduled], next, Some(hook));
        }
        if !full {
            return Ok(());
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

/// After a commit: reports and submits the fires this node created. Returns the job's id
/// when it has no run left, for the caller to remove.
fn committed(
    sh: &Arc<Shared>,
    name: &str,
    node: &ClusterNode,
    planned: Planned,
    created: Option<Vec<FireId>>,
) -> Option<JobId> {
    let job = &planned.job;
    if let Some(message) = planned.panicked {
        tracing::error!(job_id = %job.id, store = name, "{message}; job paused");
        let first = job.next_run_time.unwrap_or_default();
        crate::dispatcher::report_trigger_panic(sh, name, job, first, message);
        return None;
    }
    let next = planned.advanced.next_run_time;
    crate::dispatcher::report_skipped(sh, name, job, planned.truncated, &planned.missed);
    match created {
        Some(created) if !created.is_empty() => {
            let times: Vec<DateTime<Utc>> = created.into_iter().map(|f| f.scheduled).collect();
            let hook = node.hook(job.id.clone(), planned.epoch);
            crate::dispatcher::submit_with(sh, job, times.clone(), next, Some(hook));
        }
        Some(_) => {}
        // The job has max_instances fires unfinished in the cluster: no fire was created.
        None if planned.run.is_empty() => {}
        None => {
            tracing::warn!(job_id = %job.id, max_instances = job.max_instances, "run refused: maximum number of running instances reached in the cluster");
            sh.metrics.get(name, &job.executor).refused();
            sh.emit(Event::Submission(JobSubmissionEvent::new(
                EventKind::JobMaxInstances,
                job.id.clone(),
                name,
                planned.run.clone(),
            )));
        }
    }
    // Finished: the commit stored it without a next run time, so nobody claims it again;
    // now it goes.
    next.is_none().then(|| job.id.clone())
}

impl ClusterNode {
    /// The hook of the runs of fires created (or adopted) under `epoch`.
    fn hook(&self, job: JobId, epoch: i64) -> FireHook {
        FireHook {
            job,
            epoch,
            cancel: ClusterNode::lock(&self.runs).clone(),
            outcomes: ClusterNode::lock(&self.outcomes).clone(),
        }
    }

    fn info(&self) -> NodeInfo {
        let started_at = ClusterNode::lock(&self.started_at).unwrap_or_default();
        NodeInfo {
            id: self.options.node_id.clone(),
            host: super::host_name(),
            pid: std::process::id(),
            started_at,
        }
    }
}

/// Starts a node's renew task (heartbeats, renewals, pruning), outcome flusher, change
/// notifier and change listener.
pub(crate) fn start_node(
    sh: &Arc<Shared>,
    node: &Arc<ClusterNode>,
    runtime: &tokio::runtime::Handle,
) {
    *ClusterNode::lock(&node.started_at) = Some(sh.clock.now());
    *ClusterNode::lock(&node.runs) = sh.run_cancel.child_token();
    let (tx, rx) = mpsc::unbounded_channel();
    *ClusterNode::lock(&node.outcomes) = Some(tx);
    let renew = runtime.spawn(renew_loop(sh.clone(), node.clone()));
    let flusher = runtime.spawn(flush(node.clone(), rx));
    let notifier = runtime.spawn(notify_loop(sh.clone(), node.clone()));
    let listener = runtime.spawn(listen(sh.clone(), node.clone()));
    ClusterNode::lock(&node.tasks).extend([renew, flusher, notifier, listener]);
}

/// Stops a node (the dispatcher has stopped): ends its tasks, waits for the outcomes of
/// the finished runs to be recorded when `wait`, releases every claim of the node and
/// unregisters it (its unfinished fires, left by runs still going, are adopted).
pub(crate) async fn stop_node(sh: &Shared, node: &ClusterNode, wait: bool) {
    // A commit in flight when the dispatcher stopped submits its runs first.
    drop(node.committing.lock().await);
    if wait {
        sh.tracker.wait().await;
    }
    // Dropping the sender lets the flusher end once every run's sender is gone.
    ClusterNode::lock(&node.outcomes).take();
    let tasks: Vec<_> = ClusterNode::lock(&node.tasks).drain(..).collect();
    let mut flusher = None;
    for (i, task) in tasks.into_iter().enumerate() {
        if i == 1 {
            flusher = Some(task);
        } else {
            task.abort();
            let _ = task.await;
        }
    }
    if let Some(flusher) = flusher
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
    if wait && let Err(e) = node.lease.unregister_node(id).await {
        tracing::warn!(node = %id, error = %e, "could not unregister the node; its registration ends by itself");
    }
}

/// Every `renew_every`: a heartbeat (registration, clock skew) and a renewal of the
/// node's leases; every [`PRUNE_EVERY`], pruning. Fences the node when it could not renew
/// before its lease ends and lets it claim again after the next success. A lapsed
/// heartbeat (the registration had ended, so other nodes may adopt this node's unfinished
/// fires) cancels the runs of this node's fires.
async fn renew_loop(sh: Arc<Shared>, node: Arc<ClusterNode>) {
    let opts = &node.options;
    let mut last_ok = Instant::now();
    let mut registered = false;
    let mut last_prune: Option<Instant> = None;
    loop {
        let round = async {
            let beat = node
                .lease
                .heartbeat(&node.info(), sh.clock.now(), opts.lease)
                .await?;
            node.lease.renew(&opts.node_id, opts.lease).await?;
            Ok::<_, StoreError>(beat)
        };
        let result = tokio::select! {
            _ = sh.stop.cancelled() => return,
            r = round => r,
        };
        match result {
            Ok(beat) => {
                last_ok = Instant::now();
                if beat.lapsed && registered {
                    tracing::warn!(node = %opts.node_id, store = %node.store, "registration had lapsed: the runs of this node's fires are cancelled (other nodes adopt them)");
                    let fresh = sh.run_cancel.child_token();
                    let old = std::mem::replace(&mut *ClusterNode::lock(&node.runs), fresh);
                    old.cancel();
                }
                registered = true;
                if node.fenced.swap(false, Ordering::SeqCst) {
                    tracing::info!(node = %opts.node_id, store = %node.store, "leases renewed again; claiming again");
                    sh.wake.notify_one();
                }
                if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                    last_prune = Some(Instant::now());
                    let before = TimeDelta::from_std(opts.retention)
                        .ok()
                        .and_then(|r| beat.store_time.checked_sub_signed(r));
                    let pruned = match before {
                        Some(before) => node.lease.prune(before, PRUNE_LIMIT).await,
                        None => Ok(0),
                    };
                    match pruned {
                        Ok(n) if n > 0 => {
                            tracing::debug!(store = %node.store, pruned = n, "old fire records pruned")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(store = %node.store, error = %e, "pruning failed"),
                    }
                }
            }
            Err(e) => {
                tracing::error!(node = %opts.node_id, store = %node.store, error = %e, "heartbeat or lease renewal failed");
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
        tokio::select! {
            _ = sh.stop.cancelled() => return,
            _ = tokio::time::sleep(opts.renew_every) => {}
        }
    }
}

/// Records fire outcomes as they come, a batch per store call, until every sender is gone.
async fn flush(node: Arc<ClusterNode>, mut rx: mpsc::UnboundedReceiver<Outcome>) {
    let id = &node.options.node_id;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![Finished {
            epoch: first.epoch,
            fire: first.fire,
            outcome: first.text,
        }];
        while batch.len() < FLUSH_BATCH {
            match rx.try_recv() {
                Ok(o) => batch.push(Finished {
                    epoch: o.epoch,
                    fire: o.fire,
                    outcome: o.text,
                }),
                Err(_) => break,
            }
        }
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=FINISH_ATTEMPTS {
            match node.lease.finish_fires(id, &batch).await {
                Ok(n) => {
                    if n < batch.len() as u64 {
                        tracing::warn!(node = %id, recorded = n, of = batch.len(), "some fire outcomes not recorded: those fires were adopted by another node");
                    }
                    break;
                }
                Err(e) if attempt < FINISH_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "recording fire outcomes failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    tracing::error!(error = %e, fires = batch.len(), "fire outcomes not recorded; the fires stay unfinished");
                }
            }
        }
    }
}

/// Tells the other nodes about this node's job changes: one notification per burst.
async fn notify_loop(sh: Arc<Shared>, node: Arc<ClusterNode>) {
    loop {
        tokio::select! {
            _ = sh.stop.cancelled() => return,
            _ = node.changed.notified() => {}
        }
        tokio::time::sleep(NOTIFY_DEBOUNCE).await;
        if let Err(e) = node.lease.notify_changed().await {
            tracing::warn!(store = %node.store, error = %e, "could not notify the other nodes of a change; they see it at their next poll");
        }
    }
}

/// Wakes the dispatcher at every change another node announces (stores without
/// notifications: nothing, the poll interval is the safety net).
async fn listen(sh: Arc<Shared>, node: Arc<ClusterNode>) {
    let mut feed = match node.lease.changes().await {
        Ok(Some(feed)) => feed,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(store = %node.store, error = %e, "no change notifications; polling only");
            return;
        }
    };
    while std::future::poll_fn(|cx| feed.as_mut().poll_next(cx))
        .await
        .is_some()
    {
        sh.wake.notify_one();
    }
}
