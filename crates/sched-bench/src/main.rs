//! `sched-bench`: the workloads of `BENCH.md` (W1 add, W2 lateness, W3 idle, W5 burst, W6
//! scale, and W6's fire rate from a million held jobs) against sched and the bare tokio
//! floor, in one invocation, so that sched is judged by its ratio to a floor measured on
//! the same machine at the same time.
//!
//! Each (workload, implementation, repetition) runs in a fresh child process of this binary
//! (re-executed with the hidden `--child` flag), so the memory and threads of one run never
//! pollute another. Each child prints one JSON line, which the parent passes on to stdout;
//! after the last run the parent prints a summary table on stderr. Repetitions interleave
//! the implementations (bare, sched, bare, sched, ...) so drifting machine load hits both.
//!
//! ```text
//! cargo build --release -p sched-bench
//! target/release/sched-bench --quick                       # a smoke run, about a minute
//! target/release/sched-bench                               # every workload, 5 repetitions
//! target/release/sched-bench --workloads w2,w6 -r 3 --d 10
//! target/release/sched-bench --store postgres --cluster-nodes 1,2,4   # cluster fires/s
//! ```
//!
//! See `docs/benchmarks.md` for the fields.

use std::io::Write as _;
use std::process::{Command, ExitCode, Stdio};

use clap::Parser;
use serde_json::Value;

mod bare;
mod cluster;
mod contender;
mod measure;
mod plan;
mod store;
mod summary;
mod workloads;

use contender::Impl;
use plan::{Overrides, Params, Workload};
use store::{StoreKind, StoreSel};

/// Runs BENCH.md's workloads against sched and a bare tokio floor in one invocation; one
/// JSON line per run on stdout, a summary with ratios to bare on stderr.
#[derive(Debug, Parser)]
#[command(name = "sched-bench", version)]
struct Cli {
    /// Workloads to run, comma-separated (w6m: W6's fire rate from 1,000,000 held jobs).
    #[arg(long, short = 'w', value_enum, value_delimiter = ',', default_values_t = Workload::ALL)]
    workloads: Vec<Workload>,

    /// Implementations to run, comma-separated.
    #[arg(long = "impls", value_enum, value_delimiter = ',', default_values_t = [Impl::Bare, Impl::Sched])]
    impls: Vec<Impl>,

    /// Repetitions of each (workload, implementation) [default: 5, 1 with --quick].
    #[arg(long, short = 'r')]
    repetitions: Option<usize>,

    /// N, jobs added (W1, W5).
    #[arg(long)]
    n: Option<u64>,

    /// J, jobs held (W2, W3, W6, W6m).
    #[arg(long)]
    j: Option<u64>,

    /// I, seconds between a job's fires (W2, W6, W6m).
    #[arg(long)]
    i: Option<f64>,

    /// D, seconds measured (W2, W6, W6m: the fire window; W3: the idle window).
    #[arg(long)]
    d: Option<f64>,

    /// Seconds from the start of a run (opening its store, then the adds) to t0 (the first
    /// fire, W5's instant T)
    /// [default: 1 s + 20 us per job; W5 2 s + 20 us per job].
    #[arg(long)]
    lead: Option<f64>,

    /// The job store the `sched` implementation runs on; each run gets a private one (a
    /// temporary SQLite file, a PostgreSQL schema, a MySQL database, a Redis key prefix),
    /// dropped after it.
    #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
    store: StoreKind,

    /// The server of `--store postgres|mysql|redis` [default: SCHED_TEST_POSTGRES_URL,
    /// SCHED_TEST_MYSQL_URL, SCHED_TEST_REDIS_URL].
    #[arg(long)]
    store_url: Option<String>,

    /// Runs the cluster throughput workload instead: fires/s of this many scheduler node
    /// processes on `--store postgres|redis`, one count after the other (see `cluster.rs`).
    #[arg(long, value_delimiter = ',')]
    cluster_nodes: Vec<usize>,

    /// The cluster workload's jobs, each firing every second (the offered fires/s).
    #[arg(long, default_value_t = 20_000)]
    cluster_jobs: u64,

    /// The cluster workload's seconds of fires.
    #[arg(long, default_value_t = 10)]
    cluster_secs: u64,

    /// Internal: run one cluster node with this name.
    #[arg(long, hide = true)]
    cluster_child: Option<String>,

    /// Internal: the cluster node's private schema or key prefix.
    #[arg(long, hide = true)]
    cluster_space: Option<String>,

    /// Internal: the cluster workload's first slot (µs since the epoch).
    #[arg(long, hide = true, default_value_t = 0)]
    cluster_t0: i64,

    /// Small sizes and short windows, one repetition: a smoke run.
    #[arg(long)]
    quick: bool,

    /// Internal: run one workload in this process and print its JSON line.
    #[arg(long, hide = true, requires = "child_impl")]
    child: Option<Workload>,

    /// Internal: the implementation of a `--child` run.
    #[arg(long, hide = true, value_enum)]
    child_impl: Option<Impl>,

    /// Internal: the repetition number of a `--child` run.
    #[arg(long, hide = true, default_value_t = 0)]
    rep: usize,
}

impl Cli {
    fn overrides(&self) -> Overrides {
        Overrides {
            n: self.n,
            j: self.j,
            i: self.i,
            d: self.d,
            lead: self.lead,
            slow_adds: self.store.persistent(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(name) = &cli.cluster_child {
        let args = cluster::NodeArgs {
            kind: cli.store,
            url: cli.store_url.clone().unwrap_or_default(),
            space: cli.cluster_space.clone().unwrap_or_default(),
            name: name.clone(),
            t0_us: cli.cluster_t0,
            secs: cli.cluster_secs,
        };
        return match cluster::node(&args) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sched-bench: {name}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if !cli.cluster_nodes.is_empty() {
        let url = match cli.store.url(cli.store_url.as_deref()) {
            Ok(url) => url,
            Err(e) => {
                eprintln!("sched-bench: {e}");
                return ExitCode::FAILURE;
            }
        };
        let ran = cluster::run(
            cli.store,
            url,
            &cli.cluster_nodes,
            cli.cluster_jobs,
            cli.cluster_secs,
        );
        return match ran {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sched-bench: cluster: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match (cli.child, cli.child_impl) {
        (Some(w), Some(imp)) => child(w, imp, cli.rep, &cli),
        _ => parent(&cli),
    }
}

/// One run in this process: the JSON line on stdout.
fn child(w: Workload, imp: Impl, rep: usize, cli: &Cli) -> ExitCode {
    let params = Params::resolve(w, cli.quick, &cli.overrides());
    let on = StoreSel {
        kind: cli.store,
        url: cli.store_url.clone(),
    };
    let mut line = workloads::run(w, imp, &params, &on);
    line.insert("workload".into(), w.name().into());
    line.insert("store".into(), cli.store.name().into());
    line.insert("impl".into(), imp.name().into());
    line.insert("rep".into(), rep.into());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", Value::Object(line));
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// Runs every (repetition, workload, implementation) as a child; relays the lines; prints
/// the summary.
fn parent(cli: &Cli) -> ExitCode {
    let reps = cli
        .repetitions
        .unwrap_or(if cli.quick { 1 } else { 5 })
        .max(1);
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("sched-bench: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Resolved once here, so a missing URL fails before any run and every child gets it.
    let store_url = match cli.store.url(cli.store_url.as_deref()) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("sched-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut workloads = cli.workloads.clone();
    workloads.dedup();
    let mut impls = cli.impls.clone();
    impls.sort();
    impls.dedup();
    let overrides = cli.overrides();
    for &w in &workloads {
        let p = Params::resolve(w, cli.quick, &overrides);
        eprintln!(
            "sched-bench: {} ({}): store={} n={} j={} i={:?} d={:?} lead={:?}",
            w.name(),
            w.title(),
            cli.store.name(),
            p.n,
            p.j,
            p.i,
            p.d,
            p.lead
        );
    }
    let mut lines = Vec::new();
    let mut failed = 0;
    for rep in 0..reps {
        for &w in &workloads {
            let p = Params::resolve(w, cli.quick, &overrides);
            for &imp in &impls {
                eprintln!(
                    "sched-bench: rep {}/{reps} {} {}",
                    rep + 1,
                    w.name(),
                    imp.name()
                );
                match run_child(&exe, w, imp, rep, &p, cli.store, store_url.as_deref()) {
                    Ok(line) => {
                        println!("{line}");
                        lines.push(line);
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!(
                            "sched-bench: {} {} rep {rep} failed: {e}",
                            w.name(),
                            imp.name()
                        );
                    }
                }
            }
        }
    }
    let _ = std::io::stdout().flush();
    let sized: Vec<(Workload, Params)> = workloads
        .iter()
        .map(|&w| (w, Params::resolve(w, cli.quick, &overrides)))
        .collect();
    eprint!("{}", summary::table(&lines, &sized, reps, cli.store.name()));
    if failed > 0 {
        eprintln!("sched-bench: {failed} run(s) failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Runs one child with the resolved parameters and returns its JSON line.
fn run_child(
    exe: &std::path::Path,
    w: Workload,
    imp: Impl,
    rep: usize,
    p: &Params,
    store: StoreKind,
    url: Option<&str>,
) -> Result<Value, String> {
    let mut cmd = Command::new(exe);
    cmd.args(["--store", store.name()]);
    if let Some(url) = url {
        cmd.args(["--store-url", url]);
    }
    let out = cmd
        .args(["--child", w.name(), "--child-impl", imp.name()])
        .args(["--rep", &rep.to_string()])
        .args(["--n", &p.n.to_string(), "--j", &p.j.to_string()])
        .args(["--i", &p.i.as_secs_f64().to_string()])
        .args(["--d", &p.d.as_secs_f64().to_string()])
        .args(["--lead", &p.lead.as_secs_f64().to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start a child: {e}"))?;
    if !out.status.success() {
        return Err(format!("child exited with {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rfind(|l| l.starts_with('{'))
        .ok_or("child printed no JSON line")?;
    let value: Value = serde_json::from_str(line).map_err(|e| format!("bad JSON line: {e}"))?;
    if Workload::from_name(value.get("workload").and_then(Value::as_str).unwrap_or("")) != Some(w) {
        return Err("child reported another workload".into());
    }
    Ok(value)
}
