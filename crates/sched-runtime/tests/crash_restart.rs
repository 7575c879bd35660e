//! A scheduler killed with SIGKILL in the middle of a run, and started again, on a SQLite
//! file and on PostgreSQL (in a schema of its own; skipped without
//! `SCHED_TEST_POSTGRES_URL` unless `SCHED_TEST_REQUIRE_ALL` is set).
//!
//! The child process is this test binary itself, run as `crash_child` (a test that does
//! nothing unless `SCHED_CRASH_CHILD` is set): a scheduler on the system clock with two
//! jobs, added at every start-up with `replace_existing`, that write a ledger file, one
//! line per event, appended as it happens:
//!
//! ```text
//!   tick  every 1 s from S   coalesce latest, misfire grace 30 s   "run tick <t>"
//!   slow  every 4 s from S   coalesce all, misfire grace 1 s       "run slow <t>", 3 s later
//!                                                                  "end slow <t>"
//!   missed runs                                                    "missed <job> <t>"
//!   after start                                                    "up <now>"
//!
//!   S        S+1      S+2  kill        (down until slow's stored run time + 2 s)   restart
//!   tick     tick     tick  │                                                      tick (one run
//!   slow ──────────────────X│ (mid-run)                                            for the backlog)
//!                                                                                  slow: missed
//! ```
//!
//! What it shows: every job is back with the run time the store had when the process died
//! (the dispatcher writes it before a run starts, so the interrupted slow run is not run
//! again: at most once); at the restart the runs missed while down follow each job's
//! misfire grace time and coalescing (tick: one coalesced run; slow: each missed run
//! reported); re-adding the jobs with `replace_existing` kept the stored schedule (a
//! recomputed one would start after the restart and report nothing missed); no
//! (job, scheduled time) ran twice.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use sched_core::event::{Event, EventKind};
use sched_core::job::{Coalesce, JobId, JobSpec, TaskRef};
use sched_core::trigger::{AnyTrigger, IntervalTrigger};
use sched_runtime::{JobContext, Scheduler};
use sched_stores::postgres::PostgresStore;
use sched_stores::sqlite::SqliteStore;
use sched_stores::{BoxJobStore, JobStore, StoreOptions};

const CHILD_ENV: &str = "SCHED_CRASH_CHILD";
const SLOW_RUN: Duration = Duration::from_secs(3);

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Appends one line to the ledger (one `write` of a whole line, so lines never mix).
fn note(ledger: &Path, line: String) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ledger)
        .expect("ledger");
    f.write_all(format!("{line}\n").as_bytes()).expect("ledger");
}

/// Where the child keeps its jobs, as passed in `SCHED_CRASH_CHILD`.
#[derive(Clone, Debug)]
enum Backend {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Backend {
    fn to_env(&self) -> String {
        match self {
            Backend::Sqlite(p) => format!("sqlite {}", p.display()),
            Backend::Postgres { url, schema } => format!("postgres {schema} {url}"),
        }
    }

    fn from_env(s: &str) -> Backend {
        let mut parts = s.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("sqlite"), Some(p), None) => Backend::Sqlite(PathBuf::from(p)),
            (Some("postgres"), Some(schema), Some(url)) => Backend::Postgres {
                url: url.to_owned(),
                schema: schema.to_owned(),
            },
            _ => panic!("bad {CHILD_ENV}: {s}"),
        }
    }

    async fn open(&self) -> BoxJobStore {
        match self {
            Backend::Sqlite(p) => BoxJobStore::new(SqliteStore::open(p).await.expect("sqlite")),
            Backend::Postgres { url, schema } => BoxJobStore::new(
                PostgresStore::connect_with(url, StoreOptions::new().schema(schema.clone()))
                    .await
                    .expect("postgres"),
            ),
        }
    }
}

fn job_id(s: &str) -> JobId {
    JobId::new(s).unwrap()
}

fn every(secs: u64, start: DateTime<Utc>) -> AnyTrigger {
    IntervalTrigger::new(Duration::from_secs(secs))
        .start_date(start)
        .into()
}

/// The child: a scheduler that runs until it is killed (or gives up after a minute, should
/// the test that started it be gone).
#[test]
fn crash_child() {
    let Ok(backend) = std::env::var(CHILD_ENV) else {
        return;
    };
    let backend = Backend::from_env(&backend);
    let ledger = PathBuf::from(std::env::var("SCHED_CRASH_LEDGER").expect("ledger"));
    let start: DateTime<Utc> = std::env::var("SCHED_CRASH_START")
        .expect("start")
        .parse()
        .expect("start time");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = backend.open().await;
        let scheduler = Scheduler::builder().store("default", store).build();
        let l = ledger.clone();
        scheduler.register_task("tick", move |ctx: JobContext, _: serde_json::Value| {
            note(&l, format!("run tick {}", ts(ctx.scheduled_run_time())));
            async { Ok::<_, String>(()) }
        });
        let l = ledger.clone();
        scheduler.register_task("slow", move |ctx: JobContext, _: serde_json::Value| {
            let t = ts(ctx.scheduled_run_time());
            note(&l, format!("run slow {t}"));
            let l = l.clone();
            async move {
                tokio::time::sleep(SLOW_RUN).await;
                note(&l, format!("end slow {t}"));
                Ok::<_, String>(())
            }
        });
        let l = ledger.clone();
        scheduler.add_listener(EventKind::JobMissed, move |e: &Event| {
            if let Event::Execution(x) = e {
                note(
                    &l,
                    format!("missed {} {}", x.job_id, ts(x.scheduled_run_time)),
                );
            }
        });
        let spec = |name: &str, secs, coalesce, grace| {
            JobSpec::new(
                TaskRef::named(name, serde_json::Value::Null),
                every(secs, start),
            )
            .job_id(job_id(name))
            .coalesce(coalesce)
            .misfire_grace_time(Some(Duration::from_secs(grace)))
            .replace_existing(true)
        };
        scheduler
            .add_job(spec("tick", 1, Coalesce::Latest, 30))
            .await
            .unwrap();
        scheduler
            .add_job(spec("slow", 4, Coalesce::All, 1))
            .await
            .unwrap();
        scheduler.start().await.unwrap();
        note(&ledger, format!("up {}", ts(Utc::now())));
        tokio::time::sleep(Duration::from_secs(60)).await;
        std::process::exit(3);
    });
}

/// A child process, killed when dropped (on every exit path of the test).
struct ChildGuard(Child);

impl ChildGuard {
    fn spawn(backend: &Backend, ledger: &Path, start: DateTime<Utc>) -> ChildGuard {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, backend.to_env())
            .env("SCHED_CRASH_LEDGER", ledger)
            .env("SCHED_CRASH_START", ts(start))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child");
        ChildGuard(child)
    }

    /// SIGKILL (`Child::kill` on Unix), then reaps it.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Line {
    kind: String,
    job: String,
    t: DateTime<Utc>,
}

fn read_ledger(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            match parts.as_slice() {
                ["up", t] => Some(Line {
                    kind: "up".into(),
                    job: String::new(),
                    t: t.parse().ok()?,
                }),
                [kind, job, t] => Some(Line {
                    kind: (*kind).into(),
                    job: (*job).into(),
                    t: t.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

fn times(lines: &[Line], kind: &str, job: &str) -> Vec<DateTime<Utc>> {
    lines
        .iter()
        .filter(|l| l.kind == kind && l.job == job)
        .map(|l| l.t)
        .collect()
}

/// Polls `cond` every 20 ms until it holds, for at most `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_run_time(store: &BoxJobStore, id: &str) -> DateTime<Utc> {
    store
        .lookup_job(&job_id(id))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("job {id} is stored"))
        .next_run_time
        .unwrap_or_else(|| panic!("job {id} is scheduled"))
}

async fn crash_and_restart(backend: Backend, ledger: &Path) {
    let begun = std::time::Instant::now();
    // The jobs' grid starts on a whole second a moment from now.
    let now = Utc::now();
    let start = DateTime::from_timestamp(now.timestamp() + 2, 0).unwrap();
    let second = TimeDelta::seconds(1);

    // Run 1: until three ticks ran and the slow job is in the middle of a run.
    let mut child = ChildGuard::spawn(&backend, ledger, start);
    wait_for(
        "three ticks and a slow run going",
        Duration::from_secs(20),
        || {
            let l = read_ledger(ledger);
            times(&l, "run", "tick").len() >= 3
                && times(&l, "run", "slow").len() > times(&l, "end", "slow").len()
        },
    )
    .await;
    child.kill();
    let run1 = read_ledger(ledger);
    let interrupted = *times(&run1, "run", "slow").last().unwrap();
    assert!(!times(&run1, "end", "slow").contains(&interrupted));

    // Every job is stored, with the run time after its last run written before the run.
    let store = backend.open().await;
    let last_tick = *times(&run1, "run", "tick").last().unwrap();
    let tick_next = next_run_time(&store, "tick").await;
    // +2 s when the kill fell between the store write and the task's start (a run lost,
    // never repeated).
    assert!(
        tick_next == last_tick + second || tick_next == last_tick + second * 2,
        "tick: last run {last_tick}, stored next {tick_next}"
    );
    let slow_next = next_run_time(&store, "slow").await;
    assert_eq!(slow_next, interrupted + TimeDelta::seconds(4));

    // Down until the slow job's stored run time is 2 s past (beyond its 1 s grace).
    wait_for("the downtime", Duration::from_secs(10), || {
        Utc::now() >= slow_next + second * 2
    })
    .await;
    assert_eq!(next_run_time(&store, "tick").await, tick_next, "nobody ran");

    // Run 2: the same start-up, replace_existing included.
    let restarted = Utc::now();
    let mut child = ChildGuard::spawn(&backend, ledger, start);
    wait_for(
        "three ticks after the restart",
        Duration::from_secs(20),
        || {
            let l = read_ledger(ledger);
            let Some(up) = l.iter().filter(|x| x.kind == "up").nth(1).map(|x| x.t) else {
                return false;
            };
            times(&l, "run", "tick").iter().filter(|t| **t > up).count() >= 3
        },
    )
    .await;
    child.kill();
    let all = read_ledger(ledger);
    let run2 = all[run1.len()..].to_vec();

    // The kept schedule: slow's stored run time is reported missed, as its grace time
    // says (with coalesce all, each due time more than 1 s late is); none of its times
    // is both missed and run.
    let missed = times(&run2, "missed", "slow");
    assert!(
        missed.contains(&slow_next),
        "missed {missed:?}, stored {slow_next}"
    );
    let slow_runs2 = times(&run2, "run", "slow");
    assert!(
        slow_runs2
            .iter()
            .all(|t| *t > slow_next && !missed.contains(t)),
        "slow after the restart: ran {slow_runs2:?}, missed {missed:?}"
    );
    // tick: the backlog from its stored run time ran once, coalesced, at the latest due
    // time (at least 2 s after the stored one); then on, in order.
    let ticks2 = times(&run2, "run", "tick");
    let first = ticks2[0];
    assert!(
        first >= tick_next + second * 2,
        "{first} vs stored {tick_next}"
    );
    assert!(
        first <= restarted + second * 10,
        "{first} vs restart {restarted}"
    );
    assert!(
        ticks2.windows(2).all(|w| w[1] > w[0]),
        "ticks after the restart: {ticks2:?}"
    );
    assert!(times(&run2, "missed", "tick").is_empty());
    // The interrupted run was not run again, and no (job, time) ran twice.
    let mut runs: Vec<(String, DateTime<Utc>)> = all
        .iter()
        .filter(|l| l.kind == "run")
        .map(|l| (l.job.clone(), l.t))
        .collect();
    assert_eq!(
        runs.iter()
            .filter(|r| **r == ("slow".to_owned(), interrupted))
            .count(),
        1
    );
    let n = runs.len();
    runs.sort();
    runs.dedup();
    assert_eq!(runs.len(), n, "a (job, scheduled time) ran twice");

    // Every job is back, scheduled after its last run.
    let last_tick = *ticks2.last().unwrap();
    let tick_next = next_run_time(&store, "tick").await;
    assert!(tick_next == last_tick + second || tick_next == last_tick + second * 2);
    assert!(next_run_time(&store, "slow").await > slow_next);
    eprintln!("crash and restart ({backend:?}) took {:?}", begun.elapsed());
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sched-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_crash_and_restart() {
    let dir = temp_dir("sqlite");
    crash_and_restart(Backend::Sqlite(dir.join("jobs.db")), &dir.join("ledger")).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_and_restart() {
    let url = match std::env::var("SCHED_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let required =
                std::env::var("SCHED_TEST_REQUIRE_ALL").is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "SCHED_TEST_POSTGRES_URL is not set, and SCHED_TEST_REQUIRE_ALL says no backend may be skipped"
            );
            eprintln!("skipped: SCHED_TEST_POSTGRES_URL is not set");
            return;
        }
    };
    let schema = format!("sched_crash_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
    let create = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&pool)
        .await
        .expect("schema");
    let dir = temp_dir("postgres");
    let backend = Backend::Postgres {
        url,
        schema: schema.clone(),
    };
    crash_and_restart(backend, &dir.join("ledger")).await;
    let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .expect("drop schema");
    let _ = std::fs::remove_dir_all(&dir);
}
