//! Three node processes on one store, one of them killed with SIGKILL: every `(job, slot)`
//! runs exactly once, except fires the killed node had created and not yet finished.
//!
//! Each node is this test binary started again (`cluster_node`, which does nothing unless
//! `SCHED_CLUSTER_NODE` is set) running [`node`]: the claim loop a cluster dispatcher runs
//! on [`LeaseStore`] — claim due jobs with a short lease (renewed every second), compute
//! the due slots from the *stored* next run time (every slot, no grace limit, no
//! coalescing), create their fires and advance the job in one fenced commit, run only the
//! fires it created. A run appends `(job, slot, node, ran at)` to a ledger (a table, or a
//! Redis list) and records the fire's outcome.
//!
//! Parameters: jobs firing every second — 1,000 jobs for 30 s on Redis, 300 jobs for 20 s on
//! PostgreSQL and MariaDB (the three run at once on a 2-core CI machine, in debug builds;
//! `SCHED_CLUSTER_JOBS` and `SCHED_CLUSTER_SECS` override both) — lease 3 s renewed every 1 s, polling every
//! 100 ms. Node 0 is slow on purpose: it claims half a second ahead and holds each claim 2 s
//! before committing it; it is killed a third of the way through, at a moment the store
//! shows it holding claims. The checks:
//! - no `(job, slot)` is in the ledger twice;
//! - every slot of every job is in the ledger, or is a fire that the killed node created
//!   and never finished (the documented loss: a crash between creating a fire and finishing
//!   it), and such fires are scheduled no later than the kill;
//! - nothing runs more than 30 s after its slot (a sanity bound, not a latency target: the
//!   measured lateness is printed, typically 2–6 s at most under this load, nine processes
//!   and three servers on two shared cores);
//! - every job node0 held a claim on when it was killed runs its stored next slot and the
//!   later ones on another node, none of them before node0's lease ended (the take-over).

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use common::{server_url, unique};
use sched_core::job::{Coalesce, Job, JobId, JobTrigger, TaskRef};
use sched_core::trigger::AnyTrigger;
use sched_stores::mysql::MySqlStore;
use sched_stores::postgres::PostgresStore;
use sched_stores::redis::RedisStore;
use sched_stores::{Commit, FireId, LeaseStore, StoreOptions};
use serde_json::json;
use tokio::task::JoinSet;

const LEASE: Duration = Duration::from_secs(3);
const RENEW_EVERY: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(100);
const CLAIM_BATCH: usize = 256;
const NODES: usize = 3;

fn env_or(var: &str, default: i64) -> i64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A row of the ledger: job, slot (µs), node, ran at (µs).
type Entry = (String, i64, String, i64);

/// What a node needs beside the lease capability: a ledger to append runs to, and the
/// fires that were created and not finished.
trait Ledger: LeaseStore + Sized {
    async fn open(url: &str, space: &str) -> Self;
    async fn create_ledger(&self, space: &str);
    fn record(&self, space: &str, entry: Entry) -> impl std::future::Future<Output = ()> + Send;
    async fn ledger(&self, space: &str) -> Vec<Entry>;
    /// `(job, slot µs, node)` of every fire not finished.
    async fn unfinished(&self, space: &str) -> Vec<(String, i64, String)>;
    async fn cleanup(&self, space: &str);
    /// The unexpired leases `node` holds: job, lease end (µs, store clock) and the job's
    /// stored next run time (µs).
    async fn held(&self, space: &str, node: &str) -> Vec<(String, i64, i64)>;
}

impl Ledger for PostgresStore {
    async fn held(&self, space: &str, node: &str) -> Vec<(String, i64, i64)> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT l.job_id, l.until_us, j.next_run_time FROM \"{space}\".sched_leases l \
             JOIN \"{space}\".sched_jobs j ON j.id = l.job_id WHERE l.node = $1 \
             AND l.until_us > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::int8"
        )))
        .bind(node)
        .fetch_all(self.pool())
        .await
        .expect("leases")
    }
    async fn open(url: &str, space: &str) -> Self {
        PostgresStore::connect_with(url, StoreOptions::new().schema(space))
            .await
            .expect("connect")
    }
    async fn create_ledger(&self, space: &str) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE \"{space}\".ledger (job_id TEXT NOT NULL, slot_us BIGINT NOT NULL, \
             node TEXT NOT NULL, ran_us BIGINT NOT NULL)"
        )))
        .execute(self.pool())
        .await
        .expect("ledger");
    }
    async fn record(&self, space: &str, e: Entry) {
        let sql = format!("INSERT INTO \"{space}\".ledger VALUES ($1, $2, $3, $4)");
        patiently("record", || {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&e.0)
                .bind(e.1)
                .bind(&e.2)
                .bind(e.3)
                .execute(self.pool())
        })
        .await;
    }
    async fn ledger(&self, space: &str) -> Vec<Entry> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT job_id, slot_us, node, ran_us FROM \"{space}\".ledger"
        )))
        .fetch_all(self.pool())
        .await
        .expect("ledger")
    }
    async fn unfinished(&self, space: &str) -> Vec<(String, i64, String)> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT job_id, slot_us, node FROM \"{space}\".sched_fires WHERE finished_us IS NULL"
        )))
        .fetch_all(self.pool())
        .await
        .expect("fires")
    }
    async fn cleanup(&self, space: &str) {
        common::drop_pg_schema(self.pool(), space).await;
    }
}

impl Ledger for MySqlStore {
    async fn held(&self, space: &str, node: &str) -> Vec<(String, i64, i64)> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT l.job_id, l.until_us, j.next_run_time FROM `{space}`.sched_leases l \
             JOIN `{space}`.sched_jobs j ON j.id = l.job_id WHERE l.node = ? \
             AND l.until_us > CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)"
        )))
        .bind(node)
        .fetch_all(self.pool())
        .await
        .expect("leases")
    }
    async fn open(url: &str, space: &str) -> Self {
        MySqlStore::connect_with(url, StoreOptions::new().schema(space))
            .await
            .expect("connect")
    }
    async fn create_ledger(&self, space: &str) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE `{space}`.ledger (job_id VARCHAR(255) NOT NULL, slot_us BIGINT NOT NULL, \
             node VARCHAR(255) NOT NULL, ran_us BIGINT NOT NULL) ENGINE=InnoDB"
        )))
        .execute(self.pool())
        .await
        .expect("ledger");
    }
    async fn record(&self, space: &str, e: Entry) {
        let sql = format!("INSERT INTO `{space}`.ledger VALUES (?, ?, ?, ?)");
        patiently("record", || {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&e.0)
                .bind(e.1)
                .bind(&e.2)
                .bind(e.3)
                .execute(self.pool())
        })
        .await;
    }
    async fn ledger(&self, space: &str) -> Vec<Entry> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT job_id, slot_us, node, ran_us FROM `{space}`.ledger"
        )))
        .fetch_all(self.pool())
        .await
        .expect("ledger")
    }
    async fn unfinished(&self, space: &str) -> Vec<(String, i64, String)> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT job_id, slot_us, node FROM `{space}`.sched_fires WHERE finished_us IS NULL"
        )))
        .fetch_all(self.pool())
        .await
        .expect("fires")
    }
    async fn cleanup(&self, space: &str) {
        common::drop_mysql_database(self.pool(), space).await;
    }
}

impl Ledger for RedisStore {
    async fn held(&self, space: &str, node: &str) -> Vec<(String, i64, i64)> {
        // One atomic snapshot (MULTI/EXEC) of owners, lease ends, next run times and the
        // store's clock: read one by one, a commit and a new claim by another node can land
        // in between and pair node0's name with the other node's lease.
        type Snapshot = (
            Vec<(String, String)>,
            std::collections::HashMap<String, i64>,
            std::collections::HashMap<String, f64>,
            (i64, i64),
        );
        let (owners, until, next, (secs, micros)): Snapshot = redis::pipe()
            .atomic()
            .cmd("HGETALL")
            .arg(format!("{space}:lease_node"))
            .cmd("HGETALL")
            .arg(format!("{space}:lease_until"))
            .cmd("ZRANGE")
            .arg(format!("{space}:run_times"))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .cmd("TIME")
            .query_async(&mut self.connection())
            .await
            .expect("lease snapshot");
        let now = secs * 1_000_000 + micros;
        let mut held = Vec::new();
        for (id, n) in owners {
            if let (Some(u), Some(t)) = (until.get(&id), next.get(&id))
                && n == node
                && *u > now
            {
                held.push((id, *u, *t as i64));
            }
        }
        held
    }
    async fn open(url: &str, space: &str) -> Self {
        RedisStore::connect_with(url, StoreOptions::new().prefix(format!("{space}:")))
            .await
            .expect("connect")
    }
    async fn create_ledger(&self, _: &str) {}
    async fn record(&self, space: &str, e: Entry) {
        let () = redis::cmd("RPUSH")
            .arg(format!("{space}:ledger"))
            .arg(format!("{}\t{}\t{}\t{}", e.0, e.1, e.2, e.3))
            .query_async(&mut self.connection())
            .await
            .expect("record");
    }
    async fn ledger(&self, space: &str) -> Vec<Entry> {
        let rows: Vec<String> = redis::cmd("LRANGE")
            .arg(format!("{space}:ledger"))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.connection())
            .await
            .expect("ledger");
        rows.iter()
            .map(|r| {
                let f: Vec<&str> = r.split('\t').collect();
                (
                    f[0].to_owned(),
                    f[1].parse().unwrap(),
                    f[2].to_owned(),
                    f[3].parse().unwrap(),
                )
            })
            .collect()
    }
    async fn unfinished(&self, space: &str) -> Vec<(String, i64, String)> {
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(format!("{space}:fires"))
            .query_async(&mut self.connection())
            .await
            .expect("fires");
        all.into_iter()
            .filter_map(|(k, v)| {
                let f: Vec<&str> = v.split('\t').collect();
                if f.len() > 3 {
                    return None;
                }
                let (job, slot) = k.split_once('\n')?;
                Some((job.to_owned(), slot.parse().ok()?, f[0].to_owned()))
            })
            .collect()
    }
    async fn cleanup(&self, space: &str) {
        let mut conn = self.connection();
        common::delete_redis_keys(&mut conn, &format!("{space}:")).await;
    }
}

/// The due slots of a claimed job from its stored next run time up to `now` (every one:
/// these jobs have no grace limit and do not coalesce), and the next run time after them.
fn slots(job: &Job, now: DateTime<Utc>) -> (Vec<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let trigger = job.trigger.as_trigger();
    let mut due = Vec::new();
    let mut next = job.next_run_time;
    while let Some(t) = next {
        if t > now {
            break;
        }
        due.push(t);
        next = trigger.next_fire_time(Some(t), t).filter(|n| *n > t);
    }
    (due, next)
}

/// One node: claims, commits fires, runs them, until no job is scheduled (or `end`); then
/// releases its claims.
///
/// The renewals go through `renewals`, a second handle with a connection pool of its own (as
/// a cluster runtime gives its renew task): with hundreds of runs and commits queued for
/// the main pool on a loaded machine, a renewal waiting behind them for a whole lease
/// would fence the node for good.
async fn node<S: Ledger + Send + Sync + 'static>(
    store: Arc<S>,
    renewals: Arc<S>,
    space: Arc<str>,
    name: Arc<str>,
    end: DateTime<Utc>,
) {
    // Renewal: a node that cannot renew for a whole lease stops claiming (self-fencing).
    let fenced = Arc::new(AtomicBool::new(false));
    let renewer = {
        let (store, name, fenced) = (renewals, name.clone(), fenced.clone());
        tokio::spawn(async move {
            let mut last_ok = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match store.renew(&name, LEASE).await {
                    Ok(_) => last_ok = tokio::time::Instant::now(),
                    Err(_) if last_ok.elapsed() >= LEASE => fenced.store(true, Ordering::SeqCst),
                    Err(_) => {}
                }
            }
        })
    };
    // How long this node holds a claim before committing it: node 0 is slow on purpose, so
    // that the kill lands while it holds claims and their take-over is exercised.
    let hold = Duration::from_millis(
        std::env::var("SCHED_CLUSTER_HOLD_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    // How early this node claims jobs before they are due (node 0: half a second, so that it
    // wins the race for claims and holds some whenever the test looks).
    let lookahead = TimeDelta::milliseconds(
        std::env::var("SCHED_CLUSTER_LOOKAHEAD_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    let mut runs = JoinSet::new();
    while Utc::now() < end {
        while !fenced.load(Ordering::SeqCst) {
            let now = Utc::now();
            let claims = match store
                .claim_due(&name, now + lookahead, LEASE, CLAIM_BATCH)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{name}: claim failed: {e}");
                    break;
                }
            };
            let full = claims.len() == CLAIM_BATCH;
            let mut commits = JoinSet::new();
            for claim in claims {
                let (store, name) = (store.clone(), name.clone());
                commits.spawn(async move {
                    tokio::time::sleep(hold).await;
                    let (due, next) = slots(&claim.job, Utc::now());
                    let mut job = claim.job;
                    job.next_run_time = next;
                    match store.commit_fires(&name, claim.epoch, &due, &job).await {
                        Ok(Commit::Committed { created }) => (claim.epoch, created),
                        Ok(Commit::Lost | Commit::Refused) => (claim.epoch, Vec::new()),
                        Err(e) => {
                            // Nothing was written (the pool had no connection, or a
                            // deadlock victim was retried out): give the claim back, or
                            // the renewals would keep it this node's and nobody would run
                            // the job again.
                            eprintln!("{name}: commit failed: {e}");
                            let released =
                                patiently("release", || store.release(&name, &job.id, claim.epoch))
                                    .await;
                            eprintln!("{name}: released {} after the failure: {released}", job.id);
                            (claim.epoch, Vec::new())
                        }
                    }
                });
            }
            while let Some(done) = commits.join_next().await {
                let (epoch, created) = done.expect("commit task");
                for fire in created {
                    let (store, space, name) = (store.clone(), space.clone(), name.clone());
                    runs.spawn(async move { run(&*store, &space, &name, epoch, fire).await });
                }
            }
            if !full {
                break;
            }
        }
        while runs.try_join_next().is_some() {}
        // Done when no job is scheduled any more (a job whose claim was lost to an error
        // is still scheduled, and is taken over when that lease ends).
        if matches!(store.next_run_time().await, Ok(None)) {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    while runs.join_next().await.is_some() {}
    renewer.abort();
    store.release_all(&name).await.expect("release");
}

/// A fire's body: append to the ledger, then record the outcome.
async fn run<S: Ledger>(store: &S, space: &str, node: &str, epoch: i64, fire: FireId) {
    let entry = (
        fire.job.to_string(),
        fire.scheduled.timestamp_micros(),
        node.to_owned(),
        Utc::now().timestamp_micros(),
    );
    store.record(space, entry).await;
    let finished = patiently("finish", || store.finish_fire(node, epoch, &fire, "ok")).await;
    assert!(finished, "{node} created {fire} under epoch {epoch}");
}

/// Runs `op` until it succeeds, up to 30 times 100 ms apart. With hundreds of runs at once,
/// a node's pool (10 connections, 3 s to wait for one) is sometimes exhausted for a moment
/// on the loaded 2-core machine; a run that gave up then would leave a fire it created
/// unrecorded, which the checks would count as never run.
async fn patiently<T, E, Fut>(what: &str, mut op: impl FnMut() -> Fut) -> T
where
    E: std::fmt::Debug,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(done) => return done,
            Err(e) if attempt < 30 => {
                eprintln!("{what} failed (attempt {attempt}, trying again): {e:?}");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: {e:?}"),
        }
    }
}

/// The child process: runs one node when `SCHED_CLUSTER_NODE` says so.
#[test]
fn cluster_node() {
    let Ok(name) = std::env::var("SCHED_CLUSTER_NODE") else {
        return;
    };
    let backend = std::env::var("SCHED_CLUSTER_BACKEND").expect("backend");
    let url = std::env::var("SCHED_CLUSTER_URL").expect("url");
    let space: Arc<str> = std::env::var("SCHED_CLUSTER_SPACE").expect("space").into();
    let end_us: i64 = std::env::var("SCHED_CLUSTER_END").unwrap().parse().unwrap();
    let end = DateTime::from_timestamp_micros(end_us).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let name: Arc<str> = name.into();
    rt.block_on(async move {
        match backend.as_str() {
            "postgres" => {
                let store = Arc::new(PostgresStore::open(&url, &space).await);
                let renewals = Arc::new(PostgresStore::open(&url, &space).await);
                node(store, renewals, space, name, end).await;
            }
            "mysql" => {
                let store = Arc::new(MySqlStore::open(&url, &space).await);
                let renewals = Arc::new(MySqlStore::open(&url, &space).await);
                node(store, renewals, space, name, end).await;
            }
            _ => {
                let store = Arc::new(RedisStore::open(&url, &space).await);
                let renewals = Arc::new(RedisStore::open(&url, &space).await);
                node(store, renewals, space, name, end).await;
            }
        }
    });
}

/// Starts the nodes, kills node 0 with SIGKILL a third of the way through, waits for the
/// others, and checks the ledger.
async fn prove<S: Ledger>(backend: &str, var: &str, jobs: i64, secs: i64) {
    let Some(url) = server_url(var) else {
        return;
    };
    let jobs = env_or("SCHED_CLUSTER_JOBS", jobs);
    let secs = env_or("SCHED_CLUSTER_SECS", secs);
    let space = unique("sched_cluster_");
    match backend {
        "postgres" => {
            let admin = PostgresStore::connect(&url).await.expect("connect");
            common::create_pg_schema(admin.pool(), &space).await;
        }
        "mysql" => {
            let admin = MySqlStore::connect(&url).await.expect("connect");
            common::create_mysql_database(admin.pool(), &space).await;
        }
        _ => {}
    }
    let store = S::open(&url, &space).await;
    store.create_ledger(&space).await;

    // Slots T0, T0 + 1 s, ..., T0 + (secs - 1) s for every job.
    let t0 = Utc::now().trunc_subsecs(0) + TimeDelta::seconds(3);
    let last = t0 + TimeDelta::seconds(secs - 1);
    let spec = json!({
        "type": "interval", "seconds": 1, "timezone": "UTC",
        "start_date": t0.to_rfc3339(), "end_date": last.to_rfc3339(),
    })
    .to_string();
    let trigger = AnyTrigger::from_json(&spec).expect("interval spec");
    let batch: Vec<Job> = (0..jobs)
        .map(|i| {
            let mut job = Job::new(
                JobId::new(format!("job{i:05}")).unwrap(),
                TaskRef::named("ledger", json!({})),
                JobTrigger::from(trigger.clone()),
            );
            job.next_run_time = Some(t0);
            job.misfire_grace_time = None;
            job.coalesce = Coalesce::All;
            // The proof is about fires created once, not about max_instances: a fire node0
            // created and never finished would otherwise count against its job forever
            // (these nodes do not register, so nobody adopts it).
            job.max_instances = u32::MAX;
            job
        })
        .collect();
    store.add_jobs(batch).await.expect("add jobs");

    // The nodes stop once no job is scheduled; this is only their deadline.
    let end = last + TimeDelta::seconds(60);
    let exe = std::env::current_exe().expect("test binary");
    let mut children: Vec<Child> = (0..NODES)
        .map(|n| {
            Command::new(&exe)
                .args(["--exact", "cluster_node", "--nocapture", "--test-threads=1"])
                .env("SCHED_CLUSTER_NODE", format!("node{n}"))
                .env("SCHED_CLUSTER_BACKEND", backend)
                .env("SCHED_CLUSTER_URL", &url)
                .env("SCHED_CLUSTER_SPACE", &space)
                .env("SCHED_CLUSTER_END", end.timestamp_micros().to_string())
                .env("SCHED_CLUSTER_HOLD_MS", if n == 0 { "2000" } else { "0" })
                .env(
                    "SCHED_CLUSTER_LOOKAHEAD_MS",
                    if n == 0 { "500" } else { "0" },
                )
                .stdout(Stdio::null())
                .spawn()
                .expect("start a node")
        })
        .collect();

    // Kill node 0 a third of the way through.
    let kill_at = t0 + TimeDelta::seconds(secs / 3);
    tokio::time::sleep((kill_at - Utc::now()).to_std().unwrap_or_default()).await;
    // ... at a moment it holds claims, so that their take-over is exercised.
    let holds_by = std::time::Instant::now() + Duration::from_secs(10);
    let held = loop {
        let held = store.held(&space, "node0").await;
        if !held.is_empty() {
            break held;
        }
        assert!(
            std::time::Instant::now() < holds_by,
            "node0 never held a claim"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    children[0].kill().expect("SIGKILL node0");
    let killed_at = Utc::now();
    children[0].wait().expect("reap node0");
    let deadline = std::time::Instant::now()
        + (end - Utc::now()).to_std().unwrap_or_default()
        + Duration::from_secs(10);
    for (n, child) in children.iter_mut().enumerate().skip(1) {
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(status.success(), "node{n} failed: {status}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "node{n} did not end");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The checks.
    let ledger = store.ledger(&space).await;
    let unfinished = store.unfinished(&space).await;
    let mut seen = std::collections::HashMap::new();
    for (job, slot, node, ran) in &ledger {
        if let Some(first) = seen.insert((job.clone(), *slot), node.clone()) {
            panic!("{job} at {slot} ran twice: on {first} and on {node}");
        }
        let late = TimeDelta::microseconds(ran - slot);
        // Not a latency target: a sanity bound that every fire ran, none starved. Measured
        // lateness is printed; a take-over costs a lease at most, a commit lost to a MariaDB
        // deadlock another lease, and the rest is load (nine processes and three servers
        // on two shared cores).
        let bound = TimeDelta::seconds(30);
        assert!(late <= bound, "{job} at {slot} ran {late} late on {node}");
    }
    let mut lost = 0;
    for i in 0..jobs {
        let job = format!("job{i:05}");
        for s in 0..secs {
            let slot = (t0 + TimeDelta::seconds(s)).timestamp_micros();
            if seen.contains_key(&(job.clone(), slot)) {
                continue;
            }
            let created_by_dead = unfinished
                .iter()
                .any(|(j, sl, n)| *j == job && *sl == slot && n == "node0");
            assert!(
                created_by_dead,
                "{job} at {slot} never ran and was not node0's"
            );
            assert!(
                slot <= killed_at.timestamp_micros(),
                "{job} at {slot}: node0 created it after it was killed"
            );
            lost += 1;
        }
    }
    let per_node = |n: &str| ledger.iter().filter(|e| e.2 == n).count();
    let max_late = ledger.iter().map(|e| e.3 - e.1).max().unwrap_or(0);
    let after_kill = ledger
        .iter()
        .filter(|e| e.1 > killed_at.timestamp_micros())
        .map(|e| e.3 - e.1)
        .max()
        .unwrap_or(0);
    // Take-over: each job node0 held when it died (and had not committed in the instant
    // before the kill) runs its stored next slot, and every later one, on another node, and
    // not before node0's lease ended (50 ms for the clocks of processes on one machine).
    let mut taken_over = 0;
    for (job, until, next) in &held {
        // Committed in the instant between the snapshot and the kill: node0 created the
        // fire (and ran it, or died before finishing it — the documented loss, counted above).
        let committed_by_node0 = ledger
            .iter()
            .any(|e| e.0 == *job && e.1 >= *next && e.2 == "node0")
            || unfinished
                .iter()
                .any(|(j, sl, n)| j == job && *sl >= *next && n == "node0");
        if committed_by_node0 {
            continue;
        }
        let after: Vec<&Entry> = ledger
            .iter()
            .filter(|e| e.0 == *job && e.1 >= *next)
            .collect();
        assert!(
            after.iter().any(|e| e.1 == *next),
            "{job}: slot {next}, claimed by node0 when it died, never ran"
        );
        for e in after {
            assert!(
                e.3 >= until - 50_000,
                "{job} at {} ran on {} {} µs before node0's lease ended",
                e.1,
                e.2,
                until - e.3
            );
        }
        taken_over += 1;
    }
    eprintln!(
        "{backend}: {jobs} jobs x {secs} slots = {} fires; ran {} (node0 {}, node1 {}, node2 {}); \
         lost with node0 (created, not finished): {lost}; jobs node0 held at the kill, taken \
         over after its lease ended: {taken_over} of {}; max lateness of slots after the kill {} ms, of all {} ms",
        jobs * secs,
        ledger.len(),
        per_node("node0"),
        per_node("node1"),
        per_node("node2"),
        held.len(),
        after_kill / 1000,
        max_late / 1000,
    );
    assert_eq!(ledger.len() as i64 + lost, jobs * secs);
    assert!(per_node("node1") > 0 && per_node("node2") > 0);
    // Every claim node 0 held and had not committed was checked above. That there was one
    // depends on the instant of the kill: under CI's load node 0 has been seen committing
    // every claim of the snapshot before the SIGKILL landed (then the take-over is shown by
    // the scheduler-process proof in sched-runtime's tests/cluster_nodes.rs, not here).
    if taken_over == 0 {
        eprintln!(
            "{backend}: node0 committed all {} claims of the snapshot before it died; no \
             take-over to check this run",
            held.len()
        );
    }
    store.cleanup(&space).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_postgres_nodes_run_each_fire_once_through_a_kill() {
    prove::<PostgresStore>("postgres", "SCHED_TEST_POSTGRES_URL", 300, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_redis_nodes_run_each_fire_once_through_a_kill() {
    prove::<RedisStore>("redis", "SCHED_TEST_REDIS_URL", 1000, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_mariadb_nodes_run_each_fire_once_through_a_kill() {
    prove::<MySqlStore>("mysql", "SCHED_TEST_MYSQL_URL", 300, 20).await;
}
