//! Cluster dispatch semantics on tokio's paused clock, against an in-memory lease store
//! ([`MemLease`]: the [`LeaseStore`] rules of `sched_stores::lease`, timed by the test
//! clock, with failures on demand). Timelines: `*` a scheduled time, `R` a run, `M` a
//! missed event, `F` a fire created elsewhere, `now` where the test looks.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sched_core::event::EventKind;
use sched_core::job::{Coalesce, Job, JobId, JobSpec, TaskRef};
use sched_runtime::{
    Clock, ClusterOptions, JobContext, SchedulerError, ShutdownMode, TestClock, closure_task,
};
use sched_stores::{
    Adopted, ChangeFeed, Claim, Commit, CommitRequest, Finished, FireId, Heartbeat, JobStore,
    LeaseStore, MemoryStore, NodeInfo, NodeRecord, QuarantinedJob, RunningFire, StoreError,
};
use support::*;

/// A lease record: node, end (store clock), epoch.
type Lease = (String, DateTime<Utc>, i64);

#[derive(Default)]
struct LeaseState {
    leases: HashMap<JobId, Lease>,
    epochs: HashMap<JobId, i64>,
    /// Fire → (node, epoch, outcome once finished).
    fires: HashMap<FireId, (String, i64, Option<String>)>,
    /// Node → (started, registration end).
    nodes: HashMap<String, (DateTime<Utc>, DateTime<Utc>)>,
    notified: usize,
}

/// The lease rules on a memory store, timed by a test clock.
#[derive(Clone)]
struct MemLease {
    jobs: Arc<MemoryStore>,
    clock: TestClock,
    state: Arc<Mutex<LeaseState>>,
    /// The next commit finds its claim taken over (another node's).
    lose_next_commit: Arc<AtomicBool>,
    /// Renewals fail while set.
    fail_renew: Arc<AtomicBool>,
    claims: Arc<AtomicUsize>,
    released_all: Arc<Mutex<Vec<String>>>,
}

impl MemLease {
    fn new(clock: &TestClock) -> MemLease {
        MemLease {
            jobs: Arc::new(MemoryStore::new()),
            clock: clock.clone(),
            state: Arc::default(),
            lose_next_commit: Arc::default(),
            fail_renew: Arc::default(),
            claims: Arc::default(),
            released_all: Arc::default(),
        }
    }

    fn fires(&self) -> HashMap<FireId, (String, i64, Option<String>)> {
        self.state.lock().unwrap().fires.clone()
    }

    /// Creates a fire as another node would have.
    fn fire_elsewhere(&self, job: &str, slot: DateTime<Utc>) {
        let fire = FireId::new(id(job), slot);
        self.state.lock().unwrap().fires.insert(
            fire,
            ("elsewhere".to_owned(), 0, Some("executed".to_owned())),
        );
    }

    fn held(&self, st: &LeaseState, node: &str, job: &JobId, epoch: i64) -> bool {
        st.leases
            .get(job)
            .is_some_and(|(n, until, e)| n == node && *e == epoch && *until > self.clock.now())
    }
}

impl JobStore for MemLease {
    async fn add_job(&self, job: Job) -> Result<(), StoreError> {
        self.jobs.add_job(job).await
    }
    async fn update_job(&self, job: Job) -> Result<(), StoreError> {
        self.jobs.update_job(job).await
    }
    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        self.jobs.remove_job(id).await
    }
    async fn remove_all_jobs(&self) -> Result<(), StoreError> {
        self.jobs.remove_all_jobs().await
    }
    async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        self.jobs.lookup_job(id).await
    }
    async fn due_jobs(&self, up_to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.jobs.due_jobs(up_to, limit).await
    }
    async fn next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.jobs.next_run_time().await
    }
    async fn all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.jobs.all_jobs().await
    }
    async fn quarantine_job(&self, id: &JobId, reason: &str) -> Result<(), StoreError> {
        self.jobs.quarantine_job(id, reason).await
    }
    async fn quarantined_jobs(&self) -> Result<Vec<QuarantinedJob>, StoreError> {
        self.jobs.quarantined_jobs().await
    }
    async fn release_job(&self, id: &JobId) -> Result<Job, StoreError> {
        self.jobs.release_job(id).await
    }
}

impl LeaseStore for MemLease {
    async fn store_time(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(self.clock.now())
    }

    async fn claim_due(
        &self,
        node: &str,
        up_to: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        let due = self.jobs.due_jobs(up_to, usize::MAX).await?;
        let now = self.clock.now();
        let until = now + chrono::TimeDelta::from_std(lease).unwrap();
        let mut st = self.state.lock().unwrap();
        let mut claims = Vec::new();
        for job in due {
            if claims.len() == limit {
                break;
            }
            if st.leases.get(&job.id).is_some_and(|(_, u, _)| *u > now) {
                continue;
            }
            let epoch = {
                let e = st.epochs.entry(job.id.clone()).or_insert(0);
                *e += 1;
                *e
            };
            st.leases
                .insert(job.id.clone(), (node.to_owned(), until, epoch));
            claims.push(Claim {
                job,
                epoch,
                expires_at: until,
            });
        }
        self.claims.fetch_add(claims.len(), Ordering::SeqCst);
        Ok(claims)
    }

    async fn renew(&self, node: &str, lease: Duration) -> Result<u64, StoreError> {
        if self.fail_renew.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("injected outage", None));
        }
        let now = self.clock.now();
        let until = now + chrono::TimeDelta::from_std(lease).unwrap();
        let mut st = self.state.lock().unwrap();
        let mut n = 0;
        for (owner, u, _) in st.leases.values_mut() {
            if owner == node && *u > now {
                *u = until;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn commit_many(
        &self,
        node: &str,
        batch: &[CommitRequest<'_>],
    ) -> Result<Vec<Commit>, StoreError> {
        let mut out = Vec::new();
        for req in batch {
            let job = req.job;
            if self.lose_next_commit.swap(false, Ordering::SeqCst) {
                // Another node took the job over: its lease now.
                let mut st = self.state.lock().unwrap();
                let until = self.clock.now() + chrono::TimeDelta::seconds(30);
                st.leases
                    .insert(job.id.clone(), ("other".to_owned(), until, req.epoch + 1));
                st.epochs.insert(job.id.clone(), req.epoch + 1);
            }
            let created = {
                let mut st = self.state.lock().unwrap();
                if !self.held(&st, node, &job.id, req.epoch) {
                    out.push(Commit::Lost);
                    continue;
                }
                let mut created = Vec::new();
                for slot in req.slots {
                    let fire = FireId::new(job.id.clone(), *slot);
                    if !st.fires.contains_key(&fire) {
                        st.fires
                            .insert(fire.clone(), (node.to_owned(), req.epoch, None));
                        created.push(fire);
                    }
                }
                st.leases.remove(&job.id);
                created
            };
            match self.jobs.update_job(job.clone()).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            out.push(Commit::Committed { created });
        }
        Ok(out)
    }

    async fn finish_fires(&self, node: &str, done: &[Finished]) -> Result<u64, StoreError> {
        let mut st = self.state.lock().unwrap();
        let mut n = 0;
        for d in done {
            if let Some((owner, e, outcome)) = st.fires.get_mut(&d.fire)
                && owner == node
                && *e == d.epoch
            {
                *outcome = Some(d.outcome.clone());
                n += 1;
            }
        }
        Ok(n)
    }

    async fn heartbeat(
        &self,
        node: &NodeInfo,
        _node_now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Heartbeat, StoreError> {
        let now = self.clock.now();
        let expires_at = now + chrono::TimeDelta::from_std(ttl).unwrap();
        let mut st = self.state.lock().unwrap();
        let lapsed = st.nodes.get(&node.id).is_none_or(|(_, end)| *end <= now);
        if lapsed {
            // Its unfinished fires go to adoption.
            for (owner, _, outcome) in st.fires.values_mut() {
                if *owner == node.id && outcome.is_none() {
                    owner.clear();
                }
            }
        }
        st.nodes
            .insert(node.id.clone(), (node.started_at, expires_at));
        Ok(Heartbeat {
            store_time: now,
            expires_at,
            lapsed,
        })
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn unregister_node(&self, node: &str) -> Result<bool, StoreError> {
        Ok(self.state.lock().unwrap().nodes.remove(node).is_some())
    }

    async fn running_fires(&self) -> Result<Vec<RunningFire>, StoreError> {
        Ok(Vec::new())
    }

    async fn adopt_fires(&self, node: &str, limit: usize) -> Result<Vec<Adopted>, StoreError> {
        let now = self.clock.now();
        let mut adopted = Vec::new();
        {
            let mut st = self.state.lock().unwrap();
            if st.nodes.get(node).is_none_or(|(_, end)| *end <= now) {
                return Ok(Vec::new());
            }
            let alive: Vec<String> = st
                .nodes
                .iter()
                .filter(|(_, (_, end))| *end > now)
                .map(|(n, _)| n.clone())
                .collect();
            for (fire, (owner, epoch, outcome)) in st.fires.iter_mut() {
                if adopted.len() == limit {
                    break;
                }
                if outcome.is_none() && !alive.contains(owner) {
                    *owner = node.to_owned();
                    *epoch += 1;
                    adopted.push((fire.clone(), *epoch));
                }
            }
        }
        let mut out = Vec::new();
        for (fire, epoch) in adopted {
            let job = self.jobs.lookup_job(&fire.job).await?;
            out.push(Adopted { fire, epoch, job });
        }
        Ok(out)
    }

    async fn prune(&self, _before: DateTime<Utc>, _limit: usize) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn notify_changed(&self) -> Result<(), StoreError> {
        self.state.lock().unwrap().notified += 1;
        Ok(())
    }

    async fn changes(&self) -> Result<Option<ChangeFeed>, StoreError> {
        Ok(None)
    }

    async fn release(&self, node: &str, id: &JobId, epoch: i64) -> Result<bool, StoreError> {
        let mut st = self.state.lock().unwrap();
        if self.held(&st, node, id, epoch) {
            st.leases.remove(id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn release_all(&self, node: &str) -> Result<u64, StoreError> {
        self.released_all.lock().unwrap().push(node.to_owned());
        let mut st = self.state.lock().unwrap();
        let before = st.leases.len();
        st.leases.retain(|_, (n, _, _)| n != node);
        Ok((before - st.leases.len()) as u64)
    }
}

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .node_id("node-a")
        .lease(Duration::from_secs(3))
        .renew_every(Duration::from_secs(1))
        .poll_interval(Duration::from_secs(2))
}

/// A scheduler on the test clock with `store` as its cluster store `default`.
fn cluster_scheduler(
    store: &MemLease,
    clock: &TestClock,
    options: ClusterOptions,
) -> (sched_runtime::Scheduler, Recorder) {
    let scheduler = sched_runtime::Scheduler::builder()
        .clock(clock.clone())
        .cluster_store("default", store.clone(), options)
        .build();
    let rec = Recorder::attach(&scheduler);
    (scheduler, rec)
}

/// The runs of a [`keyed`] task: (scheduled time, idempotency key).
type Keys = Arc<Mutex<Vec<(DateTime<Utc>, String)>>>;

/// A closure task recording (scheduled time, idempotency key).
fn keyed(keys: &Keys) -> TaskRef {
    let keys = keys.clone();
    closure_task("keyed", move |ctx: JobContext| {
        keys.lock()
            .unwrap()
            .push((ctx.scheduled_run_time(), ctx.idempotency_key()));
        async { Ok::<_, String>(()) }
    })
}

// Every minute from 00:01; the store says 00:01 is next (another node died before it),
// found due at 00:03:30, grace 90 s, coalesce all:
//
//   00:01  00:02  00:03  00:03:30  00:04
//     M      R      R      now       R
//
// Only the runs get fires, each run's key is its fire's, the outcomes are recorded.
#[tokio::test(start_paused = true)]
async fn the_backlog_comes_from_the_stored_next_run_time() {
    let clock = TestClock::new(at(0, 3, 30));
    let store = MemLease::new(&clock);
    let (s, rec) = cluster_scheduler(&store, &clock, options());
    let keys = Keys::default();
    s.start().await.unwrap();
    s.add_job(
        JobSpec::new(keyed(&keys), Every::minute_from(at(0, 1, 0)))
            .id("tick")
            .unwrap()
            .next_run_time(at(0, 1, 0))
            .coalesce(Coalesce::All)
            .misfire_grace_time(Some(Duration::from_secs(90))),
    )
    .await
    .unwrap();
    until(&clock, at(0, 4, 30)).await;
    s.shutdown(ShutdownMode::Wait).await;

    let ran: Vec<_> = keys.lock().unwrap().clone();
    let expect = [at(0, 2, 0), at(0, 3, 0), at(0, 4, 0)];
    assert_eq!(ran.iter().map(|r| r.0).collect::<Vec<_>>(), expect);
    for (t, key) in &ran {
        assert_eq!(*key, FireId::new(id("tick"), *t).idempotency_key());
    }
    assert_eq!(rec.times(EventKind::JobMissed), [at(0, 1, 0)]);
    let fires = store.fires();
    assert_eq!(fires.len(), 3, "{fires:?}");
    for t in expect {
        let (node, _, outcome) = &fires[&FireId::new(id("tick"), t)];
        assert_eq!(node, "node-a");
        assert_eq!(outcome.as_deref(), Some("executed"));
    }
    let stored = store.jobs.lookup_job(&id("tick")).await.unwrap().unwrap();
    assert_eq!(stored.next_run_time, Some(at(0, 5, 0)));
    assert_eq!(*store.released_all.lock().unwrap(), ["node-a"]);
}

// A claim taken over before the commit runs nothing and records nothing; the next slot,
// claimed again once the other node's lease ended, runs.
//
//   00:01            00:01:30 (other's lease ends)   00:02
//     * lost                                            R
#[tokio::test(start_paused = true)]
async fn a_lost_claim_runs_nothing() {
    let clock = TestClock::new(at(0, 0, 30));
    let store = MemLease::new(&clock);
    let (s, rec) = cluster_scheduler(&store, &clock, options());
    let runs = Runs::default();
    s.start().await.unwrap();
    s.add_job(
        JobSpec::new(
            runs.task(&clock, Duration::ZERO),
            Every::minute_from(at(0, 1, 0)),
        )
        .id("tick")
        .unwrap()
        .misfire_grace_time(None)
        .coalesce(Coalesce::All),
    )
    .await
    .unwrap();
    store.lose_next_commit.store(true, Ordering::SeqCst);
    until(&clock, at(0, 1, 10)).await;
    assert!(runs.scheduled().is_empty());
    assert!(store.fires().is_empty());
    assert_eq!(rec.count(EventKind::JobMissed), 0);
    // The other node never committed: its lease ends at 00:01:30 and this node plans the
    // job again from the stored 00:01 (no grace limit: both slots run).
    until(&clock, at(0, 2, 10)).await;
    s.shutdown(ShutdownMode::Wait).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0), at(0, 2, 0)]);
}

// A fire created before (by another node) is not run again here.
//
//   00:01  00:02
//     F      R
#[tokio::test(start_paused = true)]
async fn a_fire_created_elsewhere_is_not_run() {
    let clock = TestClock::new(at(0, 0, 30));
    let store = MemLease::new(&clock);
    let (s, _rec) = cluster_scheduler(&store, &clock, options());
    let runs = Runs::default();
    store.fire_elsewhere("tick", at(0, 1, 0));
    s.start().await.unwrap();
    s.add_job(
        JobSpec::new(
            runs.task(&clock, Duration::ZERO),
            Every::minute_from(at(0, 1, 0)),
        )
        .id("tick")
        .unwrap(),
    )
    .await
    .unwrap();
    until(&clock, at(0, 2, 10)).await;
    s.shutdown(ShutdownMode::Wait).await;
    assert_eq!(runs.scheduled(), [at(0, 2, 0)]);
}

// Renewals fail from 00:00:30: after two failures (at 00:00:31 and 00:00:32 the next one
// would come after the 3 s lease) the node stops claiming; at 00:01:30 renewals succeed
// again and the job, due since 00:01, runs (late, its grace time is unlimited).
#[tokio::test(start_paused = true)]
async fn a_node_that_cannot_renew_stops_claiming_until_it_can() {
    let clock = TestClock::new(at(0, 0, 0));
    let store = MemLease::new(&clock);
    let (s, rec) = cluster_scheduler(&store, &clock, options());
    let runs = Runs::default();
    s.start().await.unwrap();
    s.add_job(
        JobSpec::new(
            runs.task(&clock, Duration::ZERO),
            Every::minute_from(at(0, 1, 0)),
        )
        .id("tick")
        .unwrap()
        .misfire_grace_time(None),
    )
    .await
    .unwrap();
    until(&clock, at(0, 0, 30)).await;
    store.fail_renew.store(true, Ordering::SeqCst);
    until(&clock, at(0, 1, 20)).await;
    assert!(runs.scheduled().is_empty(), "a fenced node claimed");
    assert_eq!(store.claims.load(Ordering::SeqCst), 0);
    assert!(rec.count(EventKind::JobstoreAdded) > 0);
    store.fail_renew.store(false, Ordering::SeqCst);
    until(&clock, at(0, 1, 30)).await;
    s.shutdown(ShutdownMode::Wait).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0)]);
    assert!(runs.started()[0] >= at(0, 1, 20), "ran while fenced");
}

// A job whose task is not registered is quarantined (not fired) and its claim released.
#[tokio::test(start_paused = true)]
async fn an_unrunnable_job_is_quarantined_and_its_claim_released() {
    let clock = TestClock::new(at(0, 0, 30));
    let store = MemLease::new(&clock);
    let (s, rec) = cluster_scheduler(&store, &clock, options());
    s.register_task("later", |_: JobContext, _: u32| async {
        Ok::<_, String>(())
    });
    s.start().await.unwrap();
    s.add_job(
        JobSpec::new(
            TaskRef::named("later", serde_json::json!("not a number")),
            Every::minute_from(at(0, 1, 0)),
        )
        .id("bad")
        .unwrap(),
    )
    .await
    .unwrap();
    until(&clock, at(0, 1, 10)).await;
    s.shutdown(ShutdownMode::Wait).await;
    assert_eq!(rec.count(EventKind::JobQuarantined), 1);
    assert!(store.fires().is_empty());
    assert!(store.state.lock().unwrap().leases.is_empty(), "claim kept");
    let quarantined = store.jobs.quarantined_jobs().await.unwrap();
    assert_eq!(quarantined.len(), 1);
}

// Several jobs finishing in one pass: each last fire runs, and every job is removed (in
// one store call) with one JobRemoved event each.
//
//   0:00:30 start   0:01:00 the five last fires   0:01:10 five runs, five removed
#[tokio::test(start_paused = true)]
async fn jobs_finishing_together_are_all_removed() {
    let clock = TestClock::new(at(0, 0, 30));
    let store = MemLease::new(&clock);
    let (s, rec) = cluster_scheduler(&store, &clock, options());
    let runs = Runs::default();
    s.start().await.unwrap();
    for n in 0..5 {
        s.add_job(
            JobSpec::new(runs.task(&clock, Duration::ZERO), once(at(0, 1, 0)))
                .id(format!("once{n}"))
                .unwrap(),
        )
        .await
        .unwrap();
    }
    until(&clock, at(0, 1, 10)).await;
    s.shutdown(ShutdownMode::Wait).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0); 5]);
    assert_eq!(rec.count(EventKind::JobRemoved), 5);
    assert!(store.jobs.all_jobs().await.unwrap().is_empty());
}

// A trigger with no more fire times: its last fire runs and the job is removed.
#[tokio::test(start_paused = true)]
async fn a_finished_job_is_removed_after_its_last_fire() {
    let clock = TestClock::new(at(0, 0, 30));
    let store = MemLease::new(&clock);
    let (s, rec) = cluster_scheduler(&store, &clock, options());
    let runs = Runs::default();
    s.start().await.unwrap();
    s.add_job(
        JobSpec::new(runs.task(&clock, Duration::ZERO), once(at(0, 1, 0)))
            .id("once")
            .unwrap(),
    )
    .await
    .unwrap();
    until(&clock, at(0, 1, 10)).await;
    s.shutdown(ShutdownMode::Wait).await;
    assert_eq!(runs.scheduled(), [at(0, 1, 0)]);
    assert_eq!(rec.count(EventKind::JobRemoved), 1);
    assert!(store.jobs.lookup_job(&id("once")).await.unwrap().is_none());
}

// Options that cannot work fail `start`, naming the option.
#[tokio::test(start_paused = true)]
async fn bad_options_fail_start_naming_the_option() {
    let clock = TestClock::new(at(0, 0, 0));
    let cases = [
        (options().renew_every(Duration::from_secs(3)), "renew_every"),
        (options().node_id(""), "node_id"),
        (options().lease(Duration::ZERO), "lease"),
        (options().poll_interval(Duration::ZERO), "poll_interval"),
        (options().claim_batch(0), "claim_batch"),
        (options().retention(Duration::from_secs(1)), "retention"),
    ];
    for (opts, name) in cases {
        let (s, _) = cluster_scheduler(&MemLease::new(&clock), &clock, opts);
        match s.start().await {
            Err(SchedulerError::Cluster(e)) => {
                assert_eq!(e.option(), name);
                assert!(e.to_string().contains(name), "{e}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(options().validate().is_ok());
}

// A fire of a node whose registration ended, never finished: adopted and run again under
// its idempotency key, its outcome recorded under the new epoch. A removed job's fire is
// recorded, not run.
//
//   00:01 F (node "dead", unfinished)      00:01:05 adopted: R(00:01)
#[tokio::test(start_paused = true)]
async fn a_lapsed_nodes_fires_are_adopted_and_run_again_under_their_key() {
    let clock = TestClock::new(at(0, 1, 5));
    let store = MemLease::new(&clock);
    let keys = Keys::default();
    let mut job = Job::new(id("tick"), keyed(&keys), Every::minute_from(at(0, 1, 0)));
    job.next_run_time = Some(at(0, 2, 0));
    store.jobs.add_job(job).await.unwrap();
    {
        let mut st = store.state.lock().unwrap();
        st.nodes
            .insert("dead".to_owned(), (at(0, 0, 0), at(0, 1, 2)));
        st.fires.insert(
            FireId::new(id("tick"), at(0, 1, 0)),
            ("dead".to_owned(), 7, None),
        );
        st.fires.insert(
            FireId::new(id("gone"), at(0, 1, 0)),
            ("dead".to_owned(), 3, None),
        );
    }
    let (s, _rec) = cluster_scheduler(&store, &clock, options());
    s.start().await.unwrap();
    until(&clock, at(0, 1, 10)).await;
    s.shutdown(ShutdownMode::Wait).await;

    let ran = keys.lock().unwrap().clone();
    assert_eq!(
        ran,
        [(
            at(0, 1, 0),
            FireId::new(id("tick"), at(0, 1, 0)).idempotency_key()
        )]
    );
    let fires = store.fires();
    let (node, epoch, outcome) = &fires[&FireId::new(id("tick"), at(0, 1, 0))];
    assert_eq!((node.as_str(), *epoch), ("node-a", 8));
    assert_eq!(outcome.as_deref(), Some("executed"));
    let (node, _, outcome) = &fires[&FireId::new(id("gone"), at(0, 1, 0))];
    assert_eq!(node, "node-a");
    assert_eq!(outcome.as_deref(), Some("not run: the job was removed"));
}

// This node's registration lapses while a fire runs (the store dropped it): the next
// heartbeat says so, and the run's cancellation token fires.
#[tokio::test(start_paused = true)]
async fn a_lapsed_heartbeat_cancels_the_runs_of_this_nodes_fires() {
    let clock = TestClock::new(at(0, 0, 30));
    let store = MemLease::new(&clock);
    let (s, rec) = cluster_scheduler(&store, &clock, options());
    let cancelled = Arc::new(AtomicBool::new(false));
    let seen = cancelled.clone();
    let task = closure_task("long", move |ctx: JobContext| {
        let seen = seen.clone();
        async move {
            ctx.cancellation_token().cancelled().await;
            seen.store(true, Ordering::SeqCst);
            Ok::<_, String>(())
        }
    });
    s.start().await.unwrap();
    s.add_job(JobSpec::new(task, once(at(0, 1, 0))).id("long").unwrap())
        .await
        .unwrap();
    until(&clock, at(0, 1, 5)).await;
    assert!(
        !cancelled.load(Ordering::SeqCst),
        "cancelled before the lapse"
    );
    store.state.lock().unwrap().nodes.clear();
    until(&clock, at(0, 1, 10)).await;
    s.shutdown(ShutdownMode::Wait).await;
    let errors = rec.executions(EventKind::JobError);
    assert!(
        cancelled.load(Ordering::SeqCst)
            || errors.iter().any(|e| e
                .failure
                .as_ref()
                .is_some_and(|f| f.kind == sched_core::event::FailureKind::Cancelled)),
        "the run was not cancelled: {errors:?}"
    );
}

// The same lapse, with a task that ignores its token: the runtime ends the run itself and
// the error says why (the registration lapsed), not "at shutdown".
#[tokio::test(start_paused = true)]
async fn a_run_cancelled_by_a_lapse_says_so() {
    let clock = TestClock::new(at(0, 0, 30));
    let store = MemLease::new(&clock);
    let (s, rec) = cluster_scheduler(&store, &clock, options());
    let task = closure_task("stuck", |_: JobContext| async {
        std::future::pending::<()>().await;
        Ok::<_, String>(())
    });
    s.start().await.unwrap();
    s.add_job(JobSpec::new(task, once(at(0, 1, 0))).id("stuck").unwrap())
        .await
        .unwrap();
    until(&clock, at(0, 1, 5)).await;
    assert!(rec.executions(EventKind::JobError).is_empty());
    store.state.lock().unwrap().nodes.clear();
    until(&clock, at(0, 1, 10)).await;
    let errors = rec.executions(EventKind::JobError);
    s.shutdown(ShutdownMode::Wait).await;
    let failure = errors
        .iter()
        .find_map(|e| e.failure.as_ref())
        .unwrap_or_else(|| panic!("no run was cancelled by the lapse: {errors:?}"));
    assert_eq!(failure.kind, sched_core::event::FailureKind::Cancelled);
    assert!(
        failure.message.contains("registration lapsed"),
        "{failure:?}"
    );
}

// Handle operations on a cluster store tell the other nodes, once per burst.
#[tokio::test(start_paused = true)]
async fn job_changes_notify_the_other_nodes_debounced() {
    let clock = TestClock::new(at(0, 0, 0));
    let store = MemLease::new(&clock);
    let (s, _rec) = cluster_scheduler(&store, &clock, options());
    s.start().await.unwrap();
    for i in 0..50 {
        s.add_job(
            JobSpec::new(
                closure_task("noop", |_: JobContext| async { Ok::<_, String>(()) }),
                Every::minute_from(at(1, 0, 0)),
            )
            .id(format!("j{i}"))
            .unwrap(),
        )
        .await
        .unwrap();
    }
    until(&clock, at(0, 0, 1)).await;
    let notified = store.state.lock().unwrap().notified;
    assert!((1..=2).contains(&notified), "{notified} notifications");
    s.remove_job(&id("j0")).await.unwrap();
    until(&clock, at(0, 0, 2)).await;
    assert_eq!(store.state.lock().unwrap().notified, notified + 1);
    s.shutdown(ShutdownMode::Wait).await;
}
