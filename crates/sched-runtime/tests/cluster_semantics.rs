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
    Claim, Commit, FireId, JobStore, LeaseStore, MemoryStore, QuarantinedJob, StoreError,
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

    async fn commit_fires(
        &self,
        node: &str,
        epoch: i64,
        slots: &[DateTime<Utc>],
        job: &Job,
    ) -> Result<Commit, StoreError> {
        if self.lose_next_commit.swap(false, Ordering::SeqCst) {
            // Another node took the job over: its lease now.
            let mut st = self.state.lock().unwrap();
            let until = self.clock.now() + chrono::TimeDelta::seconds(30);
            st.leases
                .insert(job.id.clone(), ("other".to_owned(), until, epoch + 1));
            st.epochs.insert(job.id.clone(), epoch + 1);
        }
        let created = {
            let mut st = self.state.lock().unwrap();
            if !self.held(&st, node, &job.id, epoch) {
                return Ok(Commit::Lost);
            }
            let mut created = Vec::new();
            for slot in slots {
                let fire = FireId::new(job.id.clone(), *slot);
                if !st.fires.contains_key(&fire) {
                    st.fires
                        .insert(fire.clone(), (node.to_owned(), epoch, None));
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
        Ok(Commit::Committed { created })
    }

    async fn finish_fire(
        &self,
        node: &str,
        epoch: i64,
        fire: &FireId,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let mut st = self.state.lock().unwrap();
        match st.fires.get_mut(fire) {
            Some((n, e, done)) if n == node && *e == epoch => {
                *done = Some(outcome.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
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
