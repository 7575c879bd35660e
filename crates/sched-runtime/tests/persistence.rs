//! Stored jobs in the runtime, on the paused clock, with the memory store and with SQLite:
//! quarantine of jobs that cannot run and their release by `register_task`, re-adding
//! jobs with `replace_existing` at a restart, the misfire policy applied to what was
//! missed while down, and several named stores side by side.
//!
//! SQLite answers from a thread of its own, and a paused tokio runtime moves its clock on
//! whenever it is idle, so these tests wait for what they expect with [`settle`], which
//! keeps the runtime busy (virtual time stands still) and gives up after a real deadline.
//! The SQLite store's own timers (its pool's acquire timeout) must not run on the paused
//! clock, where a jump of virtual time while a connection opens would time them out: the
//! store is opened and called on a second runtime with real time ([`RealTime`]), and the
//! paused runtime stays busy while it waits for the answer, so virtual time stands still
//! during a store call, as it would for a store that answers at once.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sched_core::event::{Event, EventKind};
use sched_core::job::{Coalesce, Job, JobId, JobSpec, TaskRef};
use sched_core::trigger::{AnyTrigger, IntervalTrigger};
use sched_runtime::{JobContext, Scheduler, ShutdownMode, TestClock};
use sched_stores::sqlite::SqliteStore;
use sched_stores::{BoxJobStore, JobStore, MemoryStore, QuarantinedJob, StoreError};
use support::{FlakyStore, Recorder, at, id, until};

/// Waits until `cond` holds without letting virtual time move (the runtime stays busy),
/// for at most 10 s of real time.
async fn settle(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
        tokio::task::yield_now().await;
    }
}

/// A store whose calls run on a runtime with real time (see the module docs).
#[derive(Clone)]
struct RealTime(BoxJobStore);

fn real_time() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

impl RealTime {
    async fn call<T: Send + 'static, F>(&self, f: impl FnOnce(BoxJobStore) -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
    {
        // Busy (as in `settle`) until the other runtime answers: awaiting the handle would
        // leave this runtime idle, and its paused clock would jump to the next timer while
        // SQLite works, firing runs the test has not reached yet.
        let call = real_time().spawn(f(self.0.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !call.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the store call took over 10 s"
            );
            std::thread::sleep(Duration::from_micros(100));
            tokio::task::yield_now().await;
        }
        call.await.expect("store call")
    }

    async fn sqlite(path: Option<std::path::PathBuf>) -> BoxJobStore {
        let store = real_time()
            .spawn(async move {
                match path {
                    Some(p) => SqliteStore::open(p).await,
                    None => SqliteStore::open_in_memory().await,
                }
            })
            .await
            .expect("open")
            .expect("sqlite");
        BoxJobStore::new(RealTime(BoxJobStore::new(store)))
    }
}

impl JobStore for RealTime {
    async fn add_job(&self, job: Job) -> Result<(), StoreError> {
        self.call(|s| async move { s.add_job(job).await }).await
    }
    async fn update_job(&self, job: Job) -> Result<(), StoreError> {
        self.call(|s| async move { s.update_job(job).await }).await
    }
    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        let id = id.clone();
        self.call(|s| async move { s.remove_job(&id).await }).await
    }
    async fn remove_all_jobs(&self) -> Result<(), StoreError> {
        self.call(|s| async move { s.remove_all_jobs().await })
            .await
    }
    async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let id = id.clone();
        self.call(|s| async move { s.lookup_job(&id).await }).await
    }
    async fn due_jobs(&self, up_to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.call(|s| async move { s.due_jobs(up_to, limit).await })
            .await
    }
    async fn next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(|s| async move { s.next_run_time().await }).await
    }
    async fn all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.call(|s| async move { s.all_jobs().await }).await
    }
    fn is_persistent(&self) -> bool {
        self.0.is_persistent()
    }
    async fn quarantine_job(&self, id: &JobId, reason: &str) -> Result<(), StoreError> {
        let (id, reason) = (id.clone(), reason.to_owned());
        self.call(|s| async move { s.quarantine_job(&id, &reason).await })
            .await
    }
    async fn quarantined_jobs(&self) -> Result<Vec<QuarantinedJob>, StoreError> {
        self.call(|s| async move { s.quarantined_jobs().await })
            .await
    }
    async fn release_job(&self, id: &JobId) -> Result<Job, StoreError> {
        let id = id.clone();
        self.call(|s| async move { s.release_job(&id).await }).await
    }
}

/// Every minute from 00:01:00.
fn every_minute() -> AnyTrigger {
    IntervalTrigger::new(Duration::from_secs(60))
        .start_date(at(0, 1, 0))
        .into()
}

#[derive(serde::Deserialize)]
struct Report {
    #[allow(dead_code)]
    to: String,
}

/// The scheduled times of the runs of a registered task.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<Vec<DateTime<Utc>>>>);

impl Ledger {
    fn register(&self, scheduler: &Scheduler) {
        let ledger = self.clone();
        scheduler.register_task("report", move |ctx: JobContext, _: Report| {
            ledger.0.lock().unwrap().push(ctx.scheduled_run_time());
            async { Ok::<_, String>(()) }
        });
    }

    fn times(&self) -> Vec<DateTime<Utc>> {
        self.0.lock().unwrap().clone()
    }
}

fn stored_job(args: serde_json::Value) -> Job {
    let mut job = Job::new(id("report"), TaskRef::named("report", args), every_minute());
    job.next_run_time = Some(at(0, 1, 0));
    job.misfire_grace_time = None;
    job.coalesce = Coalesce::All;
    job
}

enum Backend {
    Memory,
    Sqlite,
}

async fn open(backend: &Backend) -> BoxJobStore {
    match backend {
        Backend::Memory => BoxJobStore::new(MemoryStore::new()),
        Backend::Sqlite => RealTime::sqlite(None).await,
    }
}

fn scheduler_on(store: &BoxJobStore) -> (Scheduler, TestClock, Recorder) {
    support::scheduler_with(|b| b.store("default", store.clone()))
}

fn quarantined(rec: &Recorder) -> Vec<(JobId, String, String)> {
    rec.0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Quarantined(q) => Some((q.job_id.clone(), q.store.clone(), q.reason.clone())),
            _ => None,
        })
        .collect()
}

//   task "report" not registered
//   00:01 ── due: quarantined (kept, next run time still 00:01), one event, no error
//   00:03:30 register_task("report") ── released: 00:01, 00:02, 00:03 run (coalesce All,
//   no grace limit), next run time 00:04
async fn unregistered_task_is_quarantined_then_released(backend: Backend) {
    let store = open(&backend).await;
    store
        .add_job(stored_job(serde_json::json!({"to": "ops"})))
        .await
        .unwrap();
    let (s, clock, rec) = scheduler_on(&store);
    s.start().await.unwrap();

    until(&clock, at(0, 1, 30)).await;
    settle("the quarantine", || !quarantined(&rec).is_empty()).await;
    let q = quarantined(&rec);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].0, id("report"));
    assert_eq!(q[0].1, "default");
    assert!(q[0].2.contains("not registered"), "{}", q[0].2);
    assert_eq!(rec.count(EventKind::JobError), 0);
    let listed = s.quarantined_jobs().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, "default");
    assert_eq!(listed[0].1.id, id("report"));
    assert!(listed[0].1.reason.contains("not registered"));
    let kept = store
        .lookup_job(&id("report"))
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(kept.next_run_time, Some(at(0, 1, 0)));
    assert!(store.due_jobs(at(1, 0, 0), 10).await.unwrap().is_empty());

    until(&clock, at(0, 3, 30)).await;
    assert_eq!(quarantined(&rec).len(), 1, "reported once");
    let ledger = Ledger::default();
    ledger.register(&s);
    settle("the released runs", || ledger.times().len() == 3).await;
    assert_eq!(ledger.times(), vec![at(0, 1, 0), at(0, 2, 0), at(0, 3, 0)]);
    assert!(store.quarantined_jobs().await.unwrap().is_empty());
    let job = s.get_job(&id("report")).await.unwrap().expect("job");
    assert_eq!(job.next_run_time, Some(at(0, 4, 0)));

    until(&clock, at(0, 4, 0)).await;
    settle("the 00:04 run", || ledger.times().len() == 4).await;
    assert_eq!(ledger.times()[3], at(0, 4, 0));
    s.shutdown(ShutdownMode::Wait).await;
}

#[tokio::test(start_paused = true)]
async fn unregistered_task_is_quarantined_then_released_memory() {
    unregistered_task_is_quarantined_then_released(Backend::Memory).await;
}

#[tokio::test(start_paused = true)]
async fn unregistered_task_is_quarantined_then_released_sqlite() {
    unregistered_task_is_quarantined_then_released(Backend::Sqlite).await;
}

#[derive(serde::Deserialize)]
struct ReportV2 {
    #[allow(dead_code)]
    recipient: String,
}

//   "report" takes {"to"}, the stored job holds {"recipient"}
//   00:01 ── quarantined: arguments do not deserialize
//   00:02:30 "report" registered again taking {"recipient"} ── 00:01 and 00:02 run
async fn bad_arguments_are_quarantined_then_released(backend: Backend) {
    let store = open(&backend).await;
    store
        .add_job(stored_job(serde_json::json!({"recipient": "ops"})))
        .await
        .unwrap();
    let (s, clock, rec) = scheduler_on(&store);
    let ledger = Ledger::default();
    ledger.register(&s);
    s.start().await.unwrap();

    until(&clock, at(0, 1, 30)).await;
    settle("the quarantine", || !quarantined(&rec).is_empty()).await;
    let reason = &quarantined(&rec)[0].2;
    assert!(reason.contains("do not deserialize"), "{reason}");
    assert!(ledger.times().is_empty());
    assert_eq!(rec.count(EventKind::JobError), 0);

    until(&clock, at(0, 2, 30)).await;
    let runs = ledger.clone();
    s.register_task("report", move |ctx: JobContext, _: ReportV2| {
        runs.0.lock().unwrap().push(ctx.scheduled_run_time());
        async { Ok::<_, String>(()) }
    });
    settle("the released runs", || ledger.times().len() == 2).await;
    assert_eq!(ledger.times(), vec![at(0, 1, 0), at(0, 2, 0)]);
    assert_eq!(quarantined(&rec).len(), 1);
    s.shutdown(ShutdownMode::Wait).await;
}

#[tokio::test(start_paused = true)]
async fn bad_arguments_are_quarantined_then_released_memory() {
    bad_arguments_are_quarantined_then_released(Backend::Memory).await;
}

#[tokio::test(start_paused = true)]
async fn bad_arguments_are_quarantined_then_released_sqlite() {
    bad_arguments_are_quarantined_then_released(Backend::Sqlite).await;
}

//   A store that cannot quarantine (FlakyStore keeps the trait's defaults): the job stays
//   due and each fire is a JobError of kind Setup, as before quarantine existed.
#[tokio::test(start_paused = true)]
async fn a_store_without_quarantine_reports_each_fire() {
    let store = FlakyStore::default();
    store
        .inner
        .add_job(stored_job(serde_json::json!({"to": "ops"})))
        .await
        .unwrap();
    let (s, clock, rec) = support::scheduler_with(|b| b.store("default", store.clone()));
    s.start().await.unwrap();
    until(&clock, at(0, 3, 30)).await;
    settle("three setup errors", || rec.count(EventKind::JobError) == 3).await;
    assert!(quarantined(&rec).is_empty());
    let errors = rec.executions(EventKind::JobError);
    assert!(
        errors
            .iter()
            .all(|e| e.failure.as_ref().unwrap().kind == sched_core::event::FailureKind::Setup)
    );
    assert_eq!(
        errors
            .iter()
            .map(|e| e.scheduled_run_time)
            .collect::<Vec<_>>(),
        vec![at(0, 1, 0), at(0, 2, 0), at(0, 3, 0)]
    );
    s.shutdown(ShutdownMode::Wait).await;
}

//   A job quarantined for its arguments, re-added with replace_existing and arguments
//   that deserialize, while running: released and run at once from its stored time.
async fn replacing_a_quarantined_job_releases_it(backend: Backend) {
    let store = open(&backend).await;
    store
        .add_job(stored_job(serde_json::json!({"recipient": "ops"})))
        .await
        .unwrap();
    let (s, clock, rec) = scheduler_on(&store);
    let ledger = Ledger::default();
    ledger.register(&s);
    s.start().await.unwrap();
    until(&clock, at(0, 1, 30)).await;
    settle("the quarantine", || !quarantined(&rec).is_empty()).await;

    s.add_job(
        JobSpec::new(
            TaskRef::named("report", serde_json::json!({"to": "ops"})),
            every_minute(),
        )
        .job_id(id("report"))
        .misfire_grace_time(None)
        .coalesce(Coalesce::All)
        .replace_existing(true),
    )
    .await
    .unwrap();
    settle("the released run", || ledger.times().len() == 1).await;
    assert_eq!(ledger.times(), vec![at(0, 1, 0)]);
    assert!(store.quarantined_jobs().await.unwrap().is_empty());
    s.shutdown(ShutdownMode::Wait).await;
}

#[tokio::test(start_paused = true)]
async fn replacing_a_quarantined_job_releases_it_memory() {
    replacing_a_quarantined_job_releases_it(Backend::Memory).await;
}

#[tokio::test(start_paused = true)]
async fn replacing_a_quarantined_job_releases_it_sqlite() {
    replacing_a_quarantined_job_releases_it(Backend::Sqlite).await;
}

/// The job a program adds at each start-up, with `replace_existing`.
fn report_spec(trigger: AnyTrigger) -> JobSpec {
    JobSpec::new(
        TaskRef::named("report", serde_json::json!({"to": "ops"})),
        trigger,
    )
    .job_id(id("report"))
    .misfire_grace_time(Some(Duration::from_secs(90)))
    .coalesce(Coalesce::All)
    .replace_existing(true)
}

//   run 1: 00:00 start; 00:01 runs; shut down at 00:01:30 (next run time 00:02 stored)
//   run 2: a scheduler starting at 00:04:10 adds the same job again (same trigger):
//          the stored 00:02 is kept, so 00:02 (130 s late > 90 s grace) is missed,
//          00:03 (70 s late) and 00:04 run, next 00:05
//   run 3: the job re-added with another trigger (every 2 min): its run time is computed
//          anew
#[tokio::test(start_paused = true)]
async fn restart_with_replace_existing_keeps_the_schedule_sqlite() {
    let dir = std::env::temp_dir().join(format!("sched-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jobs.db");
    let _ = std::fs::remove_file(&path);

    let store = RealTime::sqlite(Some(path.clone())).await;
    let (s, clock, _rec) = scheduler_on(&store);
    let ledger = Ledger::default();
    ledger.register(&s);
    s.add_job(report_spec(every_minute())).await.unwrap();
    s.start().await.unwrap();
    until(&clock, at(0, 1, 30)).await;
    settle("the 00:01 run", || ledger.times() == vec![at(0, 1, 0)]).await;
    s.shutdown(ShutdownMode::Wait).await;
    drop(store);

    // Down until 00:04:10 (the next scheduler's clock starts there).
    let store = RealTime::sqlite(Some(path.clone())).await;
    let (s, clock, rec) = support::scheduler_with(|b| b.store("default", store.clone()));
    clock.set(at(0, 4, 10));
    let ledger = Ledger::default();
    ledger.register(&s);
    s.add_job(report_spec(every_minute())).await.unwrap();
    s.start().await.unwrap();
    settle("the runs after the restart", || ledger.times().len() == 2).await;
    assert_eq!(ledger.times(), vec![at(0, 3, 0), at(0, 4, 0)]);
    assert_eq!(rec.times(EventKind::JobMissed), vec![at(0, 2, 0)]);
    let job = store.lookup_job(&id("report")).await.unwrap().unwrap();
    assert_eq!(job.next_run_time, Some(at(0, 5, 0)));

    // Another trigger: computed anew from now (00:04:10), not kept.
    let every_two: AnyTrigger = IntervalTrigger::new(Duration::from_secs(120))
        .start_date(at(0, 0, 0))
        .into();
    s.add_job(report_spec(every_two)).await.unwrap();
    let job = store.lookup_job(&id("report")).await.unwrap().unwrap();
    assert_eq!(job.next_run_time, Some(at(0, 6, 0)));
    s.shutdown(ShutdownMode::Wait).await;
    let _ = std::fs::remove_dir_all(&dir);
}

//   Two named stores, memory and SQLite, side by side: each job lands in the store it
//   names, and its events name that store.
#[tokio::test(start_paused = true)]
async fn named_stores_side_by_side() {
    let disk = RealTime::sqlite(None).await;
    let (s, clock, rec) = support::scheduler_with(|b| b.store("disk", disk.clone()));
    let ledger = Ledger::default();
    ledger.register(&s);
    s.start().await.unwrap();
    for (job, store) in [("in-memory", "default"), ("on-disk", "disk")] {
        s.add_job(
            JobSpec::new(
                TaskRef::named("report", serde_json::json!({"to": "ops"})),
                every_minute(),
            )
            .id(job)
            .unwrap()
            .store(store),
        )
        .await
        .unwrap();
    }
    assert!(disk.lookup_job(&id("on-disk")).await.unwrap().is_some());
    assert!(disk.lookup_job(&id("in-memory")).await.unwrap().is_none());
    assert_eq!(
        &*s.get_job(&id("in-memory")).await.unwrap().unwrap().store,
        "default"
    );

    until(&clock, at(0, 1, 0)).await;
    settle("both runs", || rec.count(EventKind::JobExecuted) == 2).await;
    let by_store = |kind: EventKind| {
        let mut v: Vec<(String, String)> = rec
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind() == kind)
            .filter_map(|e| match e {
                Event::Job(x) => Some((x.job_id.to_string(), x.store.clone())),
                Event::Submission(x) => Some((x.job_id.to_string(), x.store.clone())),
                Event::Execution(x) => Some((x.job_id.to_string(), x.store.clone())),
                _ => None,
            })
            .collect();
        v.sort();
        v
    };
    let expected = vec![
        ("in-memory".to_owned(), "default".to_owned()),
        ("on-disk".to_owned(), "disk".to_owned()),
    ];
    assert_eq!(by_store(EventKind::JobAdded), expected);
    assert_eq!(by_store(EventKind::JobSubmitted), expected);
    assert_eq!(by_store(EventKind::JobExecuted), expected);
    s.shutdown(ShutdownMode::Wait).await;
}
