//! The cluster throughput workload (`--cluster-nodes 1,2,4`): fires per second of N
//! scheduler processes sharing one PostgreSQL schema, MySQL database or Redis key prefix.
//!
//! For each N the parent makes a private store, adds J no-op jobs firing every second from
//! t0 (misfire grace `None`, coalesce all: every fire runs, however late), and starts N node
//! processes (this binary again with the hidden `--cluster-child`), each a `Scheduler` with
//! `cluster_store`. The window is the slots of the first D seconds (J × D fires). Each node
//! counts the bodies of window fires it started and the time of the last; once every window
//! slot is committed (the store's next run time is past the window) it shuts down
//! gracefully, which waits for its runs and records their outcomes; the parent then checks
//! that no fire is left unfinished. So a fire counts when its body started and its outcome
//! is recorded. The rate is J × D over the time from t0 to the last window body's start;
//! the lateness (body start minus scheduled time) of window fires is reported as p50, p99
//! and max (the worst node's). The offered rate is J fires/s: above what the nodes sustain,
//! the rate is their capacity and the lateness grows through the window.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use sched_core::job::{Coalesce, Job, JobId, JobTrigger, TaskRef};
use sched_core::trigger::AnyTrigger;
use sched_runtime::{ClusterOptions, JobContext, Scheduler, ShutdownMode};
use sched_stores::{JobStore, LeaseStore, StoreError, StoreOptions};
use serde_json::{Value, json};

use crate::store::{self, Private, StoreKind};

/// What the parent needs to run one node.
pub(crate) struct NodeArgs {
    pub(crate) kind: StoreKind,
    pub(crate) url: String,
    /// The private schema, database or key prefix.
    pub(crate) space: String,
    pub(crate) name: String,
    /// The first slot (µs) and the window's seconds.
    pub(crate) t0_us: i64,
    pub(crate) secs: u64,
}

/// One node process: runs until no job is scheduled; prints a JSON line with its count,
/// lateness percentiles and end time.
pub(crate) fn node(args: &NodeArgs) -> Result<Value, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let late: Arc<Mutex<Vec<i64>>> = Arc::default();
        let last_start = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let t0 = DateTime::from_timestamp_micros(args.t0_us).ok_or("bad t0")?;
        let window_end = t0 + TimeDelta::seconds(args.secs as i64);
        let options = ClusterOptions::default()
            .node_id(args.name.clone())
            .lease(Duration::from_secs(10))
            .renew_every(Duration::from_secs(3))
            .poll_interval(Duration::from_secs(1))
            .claim_batch(1024);
        let (scheduler, probe) = match args.kind {
            StoreKind::Postgres => {
                node_scheduler(options, || {
                    sched_stores::postgres::PostgresStore::connect_with(
                        &args.url,
                        StoreOptions::new().schema(args.space.clone()),
                    )
                })
                .await?
            }
            StoreKind::Redis => {
                node_scheduler(options, || {
                    sched_stores::redis::RedisStore::connect_with(
                        &args.url,
                        StoreOptions::new().prefix(args.space.clone()),
                    )
                })
                .await?
            }
            _ => return Err("the cluster workload runs on postgres or redis".into()),
        };
        let (sink, last) = (late.clone(), last_start.clone());
        scheduler.register_task("noop", move |ctx: JobContext, _: Value| {
            if ctx.scheduled_run_time() < window_end {
                let now = Utc::now();
                let us = (now - ctx.scheduled_run_time()).num_microseconds();
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(us.unwrap_or(i64::MAX));
                last.fetch_max(now.timestamp_micros(), std::sync::atomic::Ordering::Relaxed);
            }
            async { Ok::<_, String>(()) }
        });
        scheduler.start().await.map_err(|e| e.to_string())?;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if Utc::now() >= window_end && probe.past(window_end).await {
                break;
            }
        }
        scheduler.shutdown(ShutdownMode::Wait).await;
        let last_start = last_start.load(std::sync::atomic::Ordering::Relaxed);
        let mut late = std::mem::take(
            &mut *late
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        late.sort_unstable();
        let pct = |p: f64| -> f64 {
            if late.is_empty() {
                return 0.0;
            }
            let i = ((late.len() as f64 - 1.0) * p).round() as usize;
            late[i] as f64 / 1000.0
        };
        Ok(json!({
            "node": args.name,
            "fires": late.len(),
            "late_p50_ms": pct(0.50),
            "late_p99_ms": pct(0.99),
            "late_max_ms": pct(1.0),
            "last_start_us": last_start,
        }))
    })
}

/// Whether every slot before `t` is committed (the store's next run time is at or after it).
/// A node's scheduler on a store `open` connects to, and a second connection to the same
/// store for watching it.
async fn node_scheduler<S, Fut>(
    options: ClusterOptions,
    open: impl Fn() -> Fut,
) -> Result<(Scheduler, Box<dyn JobStoreProbe>), String>
where
    S: LeaseStore,
    Fut: std::future::Future<Output = Result<S, StoreError>>,
{
    let store = open().await.map_err(|e| e.to_string())?;
    let probe = open().await.map_err(|e| e.to_string())?;
    let scheduler = Scheduler::builder()
        .cluster_store("default", store, options)
        .build();
    Ok((scheduler, Box::new(probe)))
}

trait JobStoreProbe {
    fn past(
        &self,
        t: DateTime<Utc>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>>;
}

impl<S: JobStore> JobStoreProbe for S {
    fn past(
        &self,
        t: DateTime<Utc>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            self.next_run_time()
                .await
                .is_ok_and(|n| n.is_none_or(|n| n >= t))
        })
    }
}

/// Runs the workload for each node count; one JSON line per count on stdout, a table on
/// stderr.
pub(crate) fn run(
    kind: StoreKind,
    url: Option<String>,
    nodes: &[usize],
    jobs: u64,
    secs: u64,
) -> Result<(), String> {
    let url = url.ok_or("the cluster workload needs a server URL")?;
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let mut rows = Vec::new();
    for &n in nodes {
        let (jobs_store, private) = rt.block_on(store::open(kind, Some(&url)))?;
        let space = match &private {
            Private::PgSchema(_, schema) => schema.clone(),
            Private::RedisPrefix(_, prefix) => prefix.clone(),
            _ => return Err("the cluster workload runs on postgres or redis".into()),
        };
        // Jobs are added before t0 (a second per 10,000, plus the nodes' start-up).
        let t0 = Utc::now().trunc_subsecs(0) + TimeDelta::seconds(3 + (jobs / 10_000) as i64);
        let result = rt
            .block_on(add_jobs(&jobs_store, jobs, secs, t0))
            .and_then(|()| {
                let children: Vec<_> = (0..n)
                    .map(|i| {
                        Command::new(&exe)
                            .args(["--cluster-child", &format!("node{i}")])
                            .args(["--store", kind.name(), "--store-url", &url])
                            .args(["--cluster-space", &space])
                            .args(["--cluster-t0", &t0.timestamp_micros().to_string()])
                            .args(["--cluster-secs", &secs.to_string()])
                            .stdin(Stdio::null())
                            .stderr(Stdio::inherit())
                            .stdout(Stdio::piped())
                            .spawn()
                            .map_err(|e| format!("start a node: {e}"))
                    })
                    .collect::<Result<_, _>>()?;
                let mut lines = Vec::new();
                for child in children {
                    let out = child.wait_with_output().map_err(|e| format!("node: {e}"))?;
                    if !out.status.success() {
                        return Err(format!("a node exited with {}", out.status));
                    }
                    let text = String::from_utf8_lossy(&out.stdout);
                    let line = text
                        .lines()
                        .rfind(|l| l.starts_with('{'))
                        .ok_or("a node printed no JSON line")?;
                    lines.push(serde_json::from_str::<Value>(line).map_err(|e| e.to_string())?);
                }
                let unfinished = jobs_unfinished(kind, &url, &space)?;
                Ok(summarize(kind, n, jobs, secs, t0, &lines, unfinished))
            });
        rt.block_on(private.drop_it());
        let row = result?;
        println!("{row}");
        rows.push(row);
    }
    eprintln!(
        "cluster throughput on {}: {jobs} jobs every second for {secs} s (offered {jobs} fires/s)",
        kind.name()
    );
    eprintln!("nodes  fires    fires/s  late p50 ms  late p99 ms  late max ms  unfinished");
    for r in &rows {
        eprintln!(
            "{:>5}  {:>7}  {:>7.0}  {:>11.0}  {:>11.0}  {:>11.0}  {:>10}",
            r["nodes"],
            r["fires"],
            r["fires_per_s"].as_f64().unwrap_or(0.0),
            r["late_p50_ms"].as_f64().unwrap_or(0.0),
            r["late_p99_ms"].as_f64().unwrap_or(0.0),
            r["late_max_ms"].as_f64().unwrap_or(0.0),
            r["unfinished_after"],
        );
    }
    Ok(())
}

async fn add_jobs(
    store: &sched_stores::BoxJobStore,
    jobs: u64,
    secs: u64,
    t0: DateTime<Utc>,
) -> Result<(), String> {
    let _ = secs;
    let spec = json!({
        "type": "interval", "seconds": 1, "timezone": "UTC",
        "start_date": t0.to_rfc3339(),
    })
    .to_string();
    let trigger = AnyTrigger::from_json(&spec).map_err(|e| e.to_string())?;
    let all: Vec<Job> = (0..jobs)
        .map(|i| {
            let mut job = Job::new(
                JobId::new(format!("job{i:07}")).expect("non-empty"),
                TaskRef::named("noop", json!({})),
                JobTrigger::from(trigger.clone()),
            );
            job.next_run_time = Some(t0);
            job.misfire_grace_time = None;
            job.coalesce = Coalesce::All;
            job.max_instances = 1000;
            job
        })
        .collect();
    for chunk in all.chunks(5000) {
        store
            .add_jobs(chunk.to_vec())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Fires still unfinished in the store once every node shut down (0 when every outcome
/// was recorded).
fn jobs_unfinished(kind: StoreKind, url: &str, space: &str) -> Result<usize, String> {
    use sched_stores::LeaseStore;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let running = match kind {
            StoreKind::Postgres => {
                sched_stores::postgres::PostgresStore::connect_with(
                    url,
                    StoreOptions::new().schema(space.to_owned()),
                )
                .await
                .map_err(|e| e.to_string())?
                .running_fires()
                .await
            }
            _ => {
                sched_stores::redis::RedisStore::connect_with(
                    url,
                    StoreOptions::new().prefix(space.to_owned()),
                )
                .await
                .map_err(|e| e.to_string())?
                .running_fires()
                .await
            }
        };
        running.map(|r| r.len()).map_err(|e| e.to_string())
    })
}

fn summarize(
    kind: StoreKind,
    n: usize,
    jobs: u64,
    secs: u64,
    t0: DateTime<Utc>,
    lines: &[Value],
    unfinished: usize,
) -> Value {
    let fires: u64 = lines.iter().filter_map(|l| l["fires"].as_u64()).sum();
    let ended = lines
        .iter()
        .filter_map(|l| l["last_start_us"].as_i64())
        .max()
        .unwrap_or(0);
    let elapsed = (ended - t0.timestamp_micros()) as f64 / 1e6;
    let max_of = |k: &str| {
        lines
            .iter()
            .filter_map(|l| l[k].as_f64())
            .fold(0.0_f64, f64::max)
    };
    json!({
        "workload": "cluster",
        "store": kind.name(),
        "nodes": n,
        "jobs": jobs,
        "secs": secs,
        "fires": fires,
        "expected": jobs * secs,
        "elapsed_s": elapsed,
        "fires_per_s": fires as f64 / elapsed.max(1e-9),
        "unfinished_after": unfinished,
        // The worst node's percentiles (a conservative merge).
        "late_p50_ms": max_of("late_p50_ms"),
        "late_p99_ms": max_of("late_p99_ms"),
        "late_max_ms": max_of("late_max_ms"),
        "per_node": lines,
    })
}
