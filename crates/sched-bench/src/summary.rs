//! The summary on stderr: per workload and figure, the medians over repetitions of both
//! implementations, the median of the per-repetition ratios sched / bare, and the verdict
//! against issue 3's targets.

use std::fmt::Write as _;

use serde_json::Value;

use crate::contender::Impl;
use crate::plan::{Params, Workload};

/// What a figure is judged against.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// Reported, not judged.
    Info,
    /// The median of the per-repetition ratios sched / bare is at most this.
    RatioAtMost(f64),
    /// sched's median is below this.
    Below(f64),
    /// sched's median is at most this.
    AtMost(f64),
    /// Every sched repetition delivered every expected fire.
    Delivered,
}

#[derive(Clone, Copy, Debug)]
struct Figure {
    key: &'static str,
    label: &'static str,
    target: Target,
}

const fn fig(key: &'static str, label: &'static str, target: Target) -> Figure {
    Figure { key, label, target }
}

/// The derived field: fires as a percentage of the expected fires.
const DELIVERED: &str = "delivered_pct";

fn figures(w: Workload) -> Vec<Figure> {
    use Target::*;
    match w {
        Workload::W1 => vec![
            fig("add_s", "time to add all (s)", RatioAtMost(5.0)),
            fig("jobs_per_s", "jobs added per s", Info),
            fig("add_batched_s", "time to add all, 1,000 a call (s)", Info),
            fig(
                "peak_rss_bytes_per_job",
                "peak RSS increase/job (B)",
                Below(400.0),
            ),
            fig("rss_bytes_per_job", "RSS increase/job (B)", Info),
        ],
        Workload::W2 | Workload::W6 => vec![
            fig(DELIVERED, "fires delivered (%)", Delivered),
            fig("fires_per_s", "fires delivered/s in window", Info),
            fig("late_p50_ms", "lateness p50 (ms)", Info),
            fig("late_p99_ms", "lateness p99 (ms)", RatioAtMost(1.5)),
            fig("late_max_ms", "lateness max (ms)", Info),
            fig("cpu_s", "CPU in window (s)", RatioAtMost(2.0)),
        ],
        Workload::W6m => vec![
            fig(DELIVERED, "fires delivered (%)", Delivered),
            fig("fires_per_s", "fires delivered/s in window", Info),
            fig("late_p50_ms", "lateness p50 (ms)", Info),
            fig("late_p99_ms", "lateness p99 (ms)", RatioAtMost(2.0)),
            fig("late_max_ms", "lateness max (ms)", Info),
            fig("cpu_s", "CPU in window (s)", Info),
            fig("setup_s", "time to add all (s)", Info),
        ],
        Workload::W3 => vec![
            fig("cpu_s", "CPU in window (s)", AtMost(0.01)),
            fig("wakeups_per_min", "wake-ups/min", AtMost(1.0)),
            fig("voluntary_switches_per_min", "voluntary switches/min", Info),
        ],
        Workload::W5 => vec![
            fig(DELIVERED, "fires delivered (%)", Delivered),
            fig("first_start_ms", "T -> first start (ms)", Info),
            fig("last_start_ms", "T -> last start (ms)", RatioAtMost(3.0)),
            fig("fires_per_s", "fires/s", Info),
        ],
    }
}

fn number(line: &Value, key: &str) -> Option<f64> {
    if key == DELIVERED {
        let fires = line.get("fires")?.as_f64()?;
        let expected = line.get("expected")?.as_f64()?;
        return Some(if expected > 0.0 {
            100.0 * fires / expected
        } else {
            100.0
        });
    }
    line.get(key)?.as_f64()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        f64::midpoint(v[m - 1], v[m])
    })
}

fn show(x: Option<f64>) -> String {
    match x {
        None => "-".to_owned(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) if x.abs() >= 0.1 || x == 0.0 => format!("{x:.3}"),
        Some(x) => format!("{x:.4}"),
    }
}

/// Like [`show`], but a delivery short of 100% keeps its decimals (99.995, not 100.0).
fn show_figure(key: &str, x: Option<f64>) -> String {
    match x {
        Some(p) if key == DELIVERED && p != 100.0 => format!("{p:.3}"),
        _ => show(x),
    }
}

fn target_text(t: Target) -> String {
    match t {
        Target::Info => String::new(),
        Target::RatioAtMost(x) => format!("<= {x}x bare"),
        Target::Below(x) => format!("< {x}"),
        Target::AtMost(x) => format!("<= {x}"),
        Target::Delivered => "100%, every run".to_owned(),
    }
}

/// The parameters that size a workload, for its second row.
fn params_text(w: Workload, p: &Params) -> String {
    let s = |d: std::time::Duration| format!("{}s", d.as_secs_f64());
    match w {
        Workload::W1 | Workload::W5 => format!("N={}", p.n),
        Workload::W3 => format!("J={} D={}", p.j, s(p.d)),
        Workload::W2 | Workload::W6 | Workload::W6m => {
            format!("J={} I={} D={}", p.j, s(p.i), s(p.d))
        }
    }
}

/// The lines of one workload and implementation, by repetition.
fn lines(all: &[Value], w: Workload, imp: Impl) -> Vec<&Value> {
    let mut v: Vec<&Value> = all
        .iter()
        .filter(|l| {
            l.get("workload").and_then(Value::as_str) == Some(w.name())
                && l.get("impl").and_then(Value::as_str) == Some(imp.name())
        })
        .collect();
    v.sort_by_key(|l| l.get("rep").and_then(Value::as_u64));
    v
}

/// The summary table of every line, for the workloads given.
pub(crate) fn table(
    all: &[Value],
    workloads: &[(Workload, Params)],
    repetitions: usize,
    store: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nsched-bench summary: sched on the {store} store; medians over {repetitions} \
         repetition(s); ratio = median over repetitions of sched/bare, each pair from the same \
         repetition"
    );
    let _ = writeln!(
        out,
        "{:<22} {:<28} {:>11} {:>11} {:>8}  {:<16} verdict",
        "workload", "figure", "bare", "sched", "ratio", "target"
    );
    let mut overran = Vec::new();
    for &(w, p) in workloads {
        let bare = lines(all, w, Impl::Bare);
        let sched = lines(all, w, Impl::Sched);
        for l in bare.iter().chain(&sched) {
            if l.get("setup_overran").and_then(Value::as_bool) == Some(true) {
                overran.push(format!(
                    "{} {} rep {}",
                    w.name(),
                    l.get("impl").and_then(Value::as_str).unwrap_or("?"),
                    l.get("rep").and_then(Value::as_u64).unwrap_or(0)
                ));
            }
        }
        for (row, f) in figures(w).into_iter().enumerate() {
            let values = |ls: &[&Value]| ls.iter().filter_map(|l| number(l, f.key)).collect();
            let mb = median(values(&bare));
            let ms = median(values(&sched));
            let ratios: Vec<f64> = sched
                .iter()
                .filter_map(|s| {
                    let rep = s.get("rep");
                    let b = bare.iter().find(|b| b.get("rep") == rep)?;
                    let (b, s) = (number(b, f.key)?, number(s, f.key)?);
                    (b != 0.0).then_some(s / b)
                })
                .collect();
            let ratio = median(ratios);
            let verdict = match f.target {
                Target::Info => None,
                Target::RatioAtMost(x) => ratio.map(|r| r <= x),
                Target::Below(x) => ms.map(|s| s < x),
                Target::AtMost(x) => ms.map(|s| s <= x),
                Target::Delivered => (!sched.is_empty()).then(|| {
                    sched
                        .iter()
                        .all(|l| number(l, DELIVERED).is_some_and(|p| p == 100.0))
                }),
            };
            let verdict = match (f.target, verdict) {
                (Target::Info, _) => "",
                (_, None) => "n/a",
                (_, Some(true)) => "ok",
                (_, Some(false)) => "MISS",
            };
            let title = match row {
                0 => w.title().to_owned(),
                1 => params_text(w, &p),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<22} {:<28} {:>11} {:>11} {:>8}  {:<16} {}",
                title,
                f.label,
                show_figure(f.key, mb),
                show_figure(f.key, ms),
                ratio.map_or("-".to_owned(), |r| format!("{r:.2}x")),
                target_text(f.target),
                verdict
            );
        }
    }
    if !overran.is_empty() {
        let _ = writeln!(
            out,
            "warning: adding the jobs took longer than the lead before t0 in: {} (raise --lead)",
            overran.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn medians_of_paired_ratios_and_verdicts() {
        let all = vec![
            json!({"workload": "w5", "impl": "bare", "rep": 0, "fires": 10, "expected": 10, "last_start_ms": 100.0}),
            json!({"workload": "w5", "impl": "sched", "rep": 0, "fires": 10, "expected": 10, "last_start_ms": 200.0}),
            json!({"workload": "w5", "impl": "bare", "rep": 1, "fires": 10, "expected": 10, "last_start_ms": 50.0}),
            json!({"workload": "w5", "impl": "sched", "rep": 1, "fires": 9, "expected": 10, "last_start_ms": 400.0}),
        ];
        let p = Params::resolve(Workload::W5, true, &crate::plan::Overrides::default());
        let t = table(&all, &[(Workload::W5, p)], 2, "memory");
        let row = |label: &str| t.lines().find(|l| l.contains(label)).unwrap().to_owned();
        // ratios 2 and 8: median 5 > 3
        assert!(row("last start").contains("5.00x"), "{t}");
        assert!(row("last start").ends_with("MISS"), "{t}");
        assert!(row("delivered").ends_with("MISS"), "{t}");
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
