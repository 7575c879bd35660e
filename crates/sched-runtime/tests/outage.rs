//! A store server stopped for 10 s under a running scheduler, on servers the test owns: a
//! private PostgreSQL cluster (`initdb` + `pg_ctl` in a temporary directory on a spare
//! port, run as the `postgres` OS user when the test runs as root, since PostgreSQL refuses
//! to run as root) and a private `redis-server` on a spare port. Stopping them cannot
//! disturb other tests or leave the shared servers down; a guard kills them on every exit
//! path. Without the server programs the tests are skipped with a message, and fail under
//! `SCHED_TEST_REQUIRE_ALL` (CI).
//!
//! ```text
//!   tick every 1 s (coalesce latest, grace 60 s) on the private server; beat every 1 s on
//!   the memory store; 20 more jobs stored, paused or far in the future
//!
//!   ──ticks──┤ server killed ├──── 10 s: store errors, retries with backoff ────┤ back ├──ticks──
//!            beats go on all along
//! ```
//!
//! Checks: store-error events while it is down and the scheduler still running; jobs on
//! the memory store ran during the outage; ticks resume once it is back; every stored job
//! is still there; no (job, scheduled time) ran twice.
//!
//! Redis runs with an append-only file synced at every write (`--appendonly yes
//! --appendfsync always`, in the temporary directory): it is killed with SIGKILL, and
//! without persistence a restarted Redis would come back empty.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sched_core::event::{Event, EventKind};
use sched_core::job::{Coalesce, JobId, JobSpec, TaskRef};
use sched_core::trigger::{AnyTrigger, IntervalTrigger};
use sched_runtime::{JobContext, Scheduler, SchedulerState, ShutdownMode};
use sched_stores::postgres::PostgresStore;
use sched_stores::redis::RedisStore;
use sched_stores::{BoxJobStore, JobStore, MemoryStore};

const OUTAGE: Duration = Duration::from_secs(10);

fn required() -> bool {
    std::env::var("SCHED_TEST_REQUIRE_ALL").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Skips (or fails under `SCHED_TEST_REQUIRE_ALL`) when a server cannot be run here.
fn skip(why: &str) {
    assert!(
        !required(),
        "{why}, and SCHED_TEST_REQUIRE_ALL says nothing may be skipped"
    );
    eprintln!("skipped: {why}");
}

fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sched-outage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A server the test owns: stopped hard, started again, killed when dropped.
trait Server {
    fn url(&self) -> String;
    fn kill(&mut self);
    fn start(&mut self) -> Result<(), String>;
}

struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    fn new() -> Result<PrivateRedis, String> {
        let mut r = PrivateRedis {
            port: spare_port(),
            dir: temp_dir("redis"),
            child: None,
        };
        r.start()?;
        Ok(r)
    }
}

impl Server for PrivateRedis {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn start(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        wait_port(self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct PrivatePostgres {
    port: u16,
    dir: PathBuf,
    as_postgres: bool,
    running: bool,
}

impl PrivatePostgres {
    fn new() -> Result<PrivatePostgres, String> {
        let dir = temp_dir("postgres");
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err("cannot give the cluster directory to the postgres user".into());
            }
        }
        let mut pg = PrivatePostgres {
            port: spare_port(),
            dir,
            as_postgres,
            running: false,
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
        pg.start()?;
        Ok(pg)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

impl Server for PrivatePostgres {
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m immediate`: the server quits at once, as after a crash.
    fn kill(&mut self) {
        if self.running {
            let data = self.dir.join("data");
            let _ = self.run(
                "pg_ctl",
                &["-D", path(&data), "-m", "immediate", "-w", "stop"],
            );
            self.running = false;
        }
    }

    fn start(&mut self) -> Result<(), String> {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            path(&self.dir)
        );
        let log = self.dir.join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-o",
                &options,
                "-l",
                path(&log),
                "-w",
                "start",
            ],
        )?;
        self.running = true;
        wait_port(self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until something listens on `port` (10 s at most).
fn wait_port(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() >= deadline {
            return Err(format!("nothing listens on port {port} after 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Polls `cond` every 20 ms until it holds, for at most `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn every_second() -> AnyTrigger {
    let start = DateTime::from_timestamp(Utc::now().timestamp() + 1, 0).unwrap();
    IntervalTrigger::new(Duration::from_secs(1))
        .start_date(start)
        .into()
}

/// (job, scheduled time) of every run, in order.
type Ledger = Arc<Mutex<Vec<(String, DateTime<Utc>)>>>;

fn count(ledger: &Ledger, job: &str, after: DateTime<Utc>) -> usize {
    ledger
        .lock()
        .unwrap()
        .iter()
        .filter(|(j, t)| j == job && *t > after)
        .count()
}

async fn outage(server: &mut dyn Server, store: BoxJobStore) {
    let begun = Instant::now();
    let scheduler = Scheduler::builder()
        .store("remote", store.clone())
        .store("local", MemoryStore::new())
        .build();
    let ledger: Ledger = Arc::default();
    let l = ledger.clone();
    scheduler.register_task("record", move |ctx: JobContext, job: String| {
        l.lock().unwrap().push((job, ctx.scheduled_run_time()));
        async { Ok::<_, String>(()) }
    });
    let store_errors = Arc::new(Mutex::new(0usize));
    let e = store_errors.clone();
    scheduler.add_listener(EventKind::StoreError, move |ev: &Event| {
        if let Event::Store(s) = ev {
            assert_eq!(s.store, "remote");
            *e.lock().unwrap() += 1;
        }
    });
    let spec = |job: &str, store: &str| {
        JobSpec::new(TaskRef::named("record", job.into()), every_second())
            .id(job)
            .unwrap()
            .store(store)
            .coalesce(Coalesce::Latest)
            .misfire_grace_time(Some(Duration::from_secs(60)))
    };
    scheduler.add_job(spec("tick", "remote")).await.unwrap();
    scheduler.add_job(spec("beat", "local")).await.unwrap();
    for i in 0..20 {
        let mut s = spec(&format!("idle-{i}"), "remote");
        if i % 2 == 0 {
            s = s.paused();
        } else {
            s = s.next_run_time(Utc::now() + chrono::TimeDelta::days(1));
        }
        scheduler.add_job(s).await.unwrap();
    }
    scheduler.start().await.unwrap();
    // Pending until the start; 11 scheduled and 10 paused now.
    assert_eq!(store.all_jobs().await.unwrap().len(), 21);
    let t0 = Utc::now();
    wait_for("ticks before the outage", Duration::from_secs(10), || {
        count(&ledger, "tick", t0) >= 2
    })
    .await;

    server.kill();
    let down = Utc::now();
    let down_at = Instant::now();
    // A SQL pool retries connecting for its acquire timeout (3 s) before the error.
    wait_for("store errors", Duration::from_secs(9), || {
        *store_errors.lock().unwrap() >= 2
    })
    .await;
    wait_for("the outage", OUTAGE + Duration::from_secs(1), || {
        down_at.elapsed() >= OUTAGE
    })
    .await;
    assert_eq!(scheduler.state(), SchedulerState::Running);
    let ticks_down = count(&ledger, "tick", down + chrono::TimeDelta::seconds(1));
    assert_eq!(ticks_down, 0, "ticks ran while the store was down");
    // Each pass waits up to the store's timeout for the remote store, then fires the
    // memory store's due jobs (late, coalesced).
    assert!(
        count(&ledger, "beat", down + chrono::TimeDelta::seconds(1)) >= 2,
        "the memory store's job ran during the outage"
    );

    server.start().expect("server back");
    let up = Utc::now();
    // The dispatcher's backoff reaches 6.4 s after 10 s of failures: resumed within 10 s.
    wait_for("ticks after the outage", Duration::from_secs(15), || {
        count(&ledger, "tick", up) >= 2
    })
    .await;
    let resumed = begun.elapsed();
    scheduler.shutdown(ShutdownMode::Wait).await;

    let jobs = store.all_jobs().await.unwrap();
    let mut ids: Vec<String> = jobs.iter().map(|j| j.id.to_string()).collect();
    ids.sort();
    assert_eq!(ids.len(), 21, "jobs after the outage: {ids:?}");
    assert!(ids.contains(&"tick".to_owned()));
    for i in 0..20 {
        let id = JobId::new(format!("idle-{i}")).unwrap();
        let job = store.lookup_job(&id).await.unwrap().expect("still stored");
        assert_eq!(job.next_run_time.is_none(), i % 2 == 0);
    }
    let runs = ledger.lock().unwrap().clone();
    let mut unique = runs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        runs.len(),
        "a (job, scheduled time) ran twice"
    );
    eprintln!(
        "outage: {} store errors, resumed {resumed:?} after the start",
        store_errors.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage() {
    let mut server = match PrivatePostgres::new() {
        Ok(s) => s,
        Err(why) => return skip(&format!("no private PostgreSQL cluster: {why}")),
    };
    let store = PostgresStore::connect(&server.url())
        .await
        .expect("connect");
    outage(&mut server, BoxJobStore::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage() {
    let mut server = match PrivateRedis::new() {
        Ok(s) => s,
        Err(why) => return skip(&format!("no private redis-server: {why}")),
    };
    let store = RedisStore::connect(&server.url()).await.expect("connect");
    outage(&mut server, BoxJobStore::new(store)).await;
}
