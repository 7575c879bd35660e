//! One workload, one implementation, one repetition: what a child process runs. Returns the
//! JSON line's fields.
//!
//! Every run builds its own multi-threaded tokio runtime (a worker per core). The main
//! thread adds the jobs through `block_on`, then steps out of the runtime and takes the
//! measurements on its own (`getrusage` at the window's edges, sleeping in between), so the
//! measuring is not scheduled on the runtime it measures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::contender::{Anchor, Contender, Impl};
use crate::measure::{Recorder, Usage, peak_rss_bytes, percentile_ms, rss_bytes};
use crate::plan::{Params, Workload};
use crate::store::StoreSel;

const HOUR: Duration = Duration::from_secs(3600);

/// W1's second figure: jobs per bulk add call.
const W1_BATCH: u64 = 1_000;

/// Runs `w` on `kind` once.
pub(crate) fn run(w: Workload, kind: Impl, p: &Params, on: &StoreSel) -> Map<String, Value> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let fields = match w {
        Workload::W1 => add(&rt, kind, p, on),
        Workload::W2 | Workload::W6 | Workload::W6m => lateness(&rt, kind, p, on),
        Workload::W3 => idle(&rt, kind, p, on),
        Workload::W5 => burst(&rt, kind, p, on),
    };
    // The process exits right after printing; no need to tear a million jobs down.
    rt.shutdown_background();
    fields
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn sleep_until(t: Instant) {
    std::thread::sleep(t.saturating_duration_since(Instant::now()));
}

/// Waits until `rec` has `expected` fires or `deadline` passes, polling every 5 ms.
fn wait_for(rec: &Recorder, expected: usize, deadline: Instant) {
    while rec.fires() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `kind` and adds `count` jobs, job `k` first due `first(k)` after t0; returns the
/// implementation and how long the adds took.
fn setup(
    rt: &tokio::runtime::Runtime,
    (kind, on): (Impl, &StoreSel),
    t0: Anchor,
    rec: Arc<Recorder>,
    count: u64,
    first: impl Fn(u64) -> Duration,
    period: Option<Duration>,
) -> (Contender, Duration) {
    rt.block_on(async {
        let c = Contender::start(kind, on.kind, on.url.as_deref(), t0, rec).await;
        let started = Instant::now();
        for k in 0..count {
            c.add(first(k), period).await;
        }
        (c, started.elapsed())
    })
}

/// W1: add N jobs with a 1-hour interval trigger into the running implementation.
fn add(rt: &tokio::runtime::Runtime, kind: Impl, p: &Params, on: &StoreSel) -> Map<String, Value> {
    let rec = Arc::new(Recorder::new(0, None));
    let t0 = Anchor::after(Duration::ZERO);
    let c = rt.block_on(async {
        let c = Contender::start(kind, on.kind, on.url.as_deref(), t0, rec.clone()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        c
    });
    let rss0 = rss_bytes();
    let started = Instant::now();
    rt.block_on(async {
        for _ in 0..p.n {
            c.add(HOUR, Some(HOUR)).await;
        }
    });
    let took = started.elapsed().as_secs_f64();
    let (rss1, peak1) = (rss_bytes(), peak_rss_bytes());
    let n = p.n.max(1) as f64;
    // Then as many again in bulk calls of W1_BATCH jobs (after the memory readings, which
    // are the one-at-a-time adds').
    let started = Instant::now();
    rt.block_on(async {
        let mut left = p.n;
        while left > 0 {
            let count = left.min(W1_BATCH);
            c.add_many(HOUR, Some(HOUR), count as usize).await;
            left -= count;
        }
    });
    let took_batched = started.elapsed().as_secs_f64();
    rt.block_on(c.stop());
    obj(json!({
        "n": p.n,
        "add_s": took,
        "add_batched_s": took_batched,
        "batch": W1_BATCH,
        "jobs_per_s": p.n as f64 / took,
        "rss_bytes_per_job": (rss1 as f64 - rss0 as f64) / n,
        "peak_rss_bytes_per_job": (peak1 as f64 - rss0 as f64) / n,
        "fires": rec.fires(),
    }))
}

/// W2, W6 and the million-job W6: J jobs every I, for D; lateness and CPU in the window.
fn lateness(
    rt: &tokio::runtime::Runtime,
    kind: Impl,
    p: &Params,
    on: &StoreSel,
) -> Map<String, Value> {
    let expected = p.expected_fires();
    let capacity = usize::try_from(expected + expected / 10 + 64).unwrap_or(usize::MAX);
    let rec = Arc::new(Recorder::new(capacity, Some(p.d)));
    let t0 = Anchor::after(p.lead);
    let (c, took) = setup(
        rt,
        (kind, on),
        t0,
        rec.clone(),
        p.j,
        |k| p.offset(k),
        Some(p.i),
    );
    let start = t0.instant.into_std();
    let overran = Instant::now() > start;
    sleep_until(start);
    let u0 = Usage::now();
    sleep_until(start + p.d);
    let (cpu, switches) = Usage::now().since(&u0);
    let expected_n = usize::try_from(expected).unwrap_or(usize::MAX);
    wait_for(
        &rec,
        expected_n,
        start + p.d + p.i.max(Duration::from_secs(5)),
    );
    rt.block_on(c.stop());
    let fires = rec.fires();
    let late = rec.sorted();
    obj(json!({
        "j": p.j,
        "i_s": p.i.as_secs_f64(),
        "d_s": p.d.as_secs_f64(),
        "fires": fires,
        "fires_per_s": fires as f64 / p.d.as_secs_f64().max(1e-9),
        "expected": expected,
        "fires_after_window": rec.outside(),
        "late_p50_ms": percentile_ms(&late, 50.0),
        "late_p99_ms": percentile_ms(&late, 99.0),
        "late_max_ms": percentile_ms(&late, 100.0),
        "cpu_s": cpu,
        "voluntary_switches": switches,
        "setup_s": took.as_secs_f64(),
        "setup_overran": overran,
    }))
}

/// W3: J jobs first due in an hour; CPU, voluntary context switches and wake-ups over D of
/// idling. A wake-up is a second of the window in which any thread of the runtime switched
/// (the measuring thread reads `getrusage` every second, its own switches left out), so the
/// two or three threads that stir when the dispatcher wakes once count as one wake-up.
fn idle(rt: &tokio::runtime::Runtime, kind: Impl, p: &Params, on: &StoreSel) -> Map<String, Value> {
    let rec = Arc::new(Recorder::new(0, None));
    let t0 = Anchor::after(Duration::ZERO);
    let (c, took) = setup(rt, (kind, on), t0, rec.clone(), p.j, |_| HOUR, Some(HOUR));
    // Let the wake-ups the adds caused play out before measuring.
    std::thread::sleep(Duration::from_millis(200));
    let u0 = Usage::now();
    let end = Instant::now() + p.d;
    let mut last = u0;
    let mut wakeups = Vec::new();
    while let Some(left) = end
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        std::thread::sleep(left.min(Duration::from_secs(1)));
        let u = Usage::now();
        if u.voluntary_switches > last.voluntary_switches {
            // Which second of the window (1-based), and how many switches in it.
            let second = (p.d - left).as_secs() + 1;
            let switches = u64::try_from(u.voluntary_switches - last.voluntary_switches);
            wakeups.push([second, switches.unwrap_or(0)]);
        }
        last = u;
    }
    let (cpu, switches) = last.since(&u0);
    rt.block_on(c.stop());
    let per_min = 60.0 / p.d.as_secs_f64().max(1e-9);
    obj(json!({
        "j": p.j,
        "d_s": p.d.as_secs_f64(),
        "cpu_s": cpu,
        "voluntary_switches": switches,
        "voluntary_switches_per_s": switches as f64 * per_min / 60.0,
        "voluntary_switches_per_min": switches as f64 * per_min,
        "wakeups": wakeups.len(),
        "wakeups_per_min": wakeups.len() as f64 * per_min,
        "wakeup_seconds": wakeups,
        "fires": rec.fires(),
        "setup_s": took.as_secs_f64(),
    }))
}

/// W5: N one-shot jobs all due at T; T → first and last body started.
fn burst(
    rt: &tokio::runtime::Runtime,
    kind: Impl,
    p: &Params,
    on: &StoreSel,
) -> Map<String, Value> {
    let n = usize::try_from(p.n).unwrap_or(usize::MAX);
    let rec = Arc::new(Recorder::new(n + 64, None));
    let t0 = Anchor::after(p.lead);
    let (c, took) = setup(
        rt,
        (kind, on),
        t0,
        rec.clone(),
        p.n,
        |_| Duration::ZERO,
        None,
    );
    let start = t0.instant.into_std();
    let overran = Instant::now() > start;
    sleep_until(start);
    let u0 = Usage::now();
    wait_for(&rec, n, start + Duration::from_secs(60));
    let (cpu, _) = Usage::now().since(&u0);
    rt.block_on(c.stop());
    let late = rec.sorted();
    let last_ms = percentile_ms(&late, 100.0);
    obj(json!({
        "n": p.n,
        "fires": rec.fires(),
        "expected": p.n,
        "first_start_ms": late.first().map(|&ns| ns as f64 / 1e6),
        "last_start_ms": last_ms,
        "fires_per_s": last_ms.map(|ms| p.n as f64 / (ms / 1e3)),
        "cpu_s": cpu,
        "setup_s": took.as_secs_f64(),
        "setup_overran": overran,
    }))
}
