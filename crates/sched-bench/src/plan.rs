//! The workloads and their parameters: BENCH.md's defaults, the `--quick` sizes, overrides.

use std::time::Duration;

use clap::ValueEnum;

/// A workload of `BENCH.md` (W4, the cron-next criterion bench, lives in sched-core).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub(crate) enum Workload {
    /// Add N jobs with a 1-hour interval trigger into a running scheduler.
    W1,
    /// J jobs every I, first fires spread over the first interval, for D.
    W2,
    /// J jobs first due in an hour; CPU and wake-ups over D of idling.
    W3,
    /// N one-shot jobs all due at the same instant.
    W5,
    /// W2 with 100,000 jobs every 10 s.
    W6,
    /// W6's fire rate from 1,000,000 held jobs (every 100 s): issue 3's million-job target.
    W6m,
}

impl Workload {
    pub(crate) const ALL: [Workload; 6] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W5,
        Workload::W6,
        Workload::W6m,
    ];

    /// The name on the command line and in the JSON lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::W1 => "w1",
            Workload::W2 => "w2",
            Workload::W3 => "w3",
            Workload::W5 => "w5",
            Workload::W6 => "w6",
            Workload::W6m => "w6m",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The title in the summary table.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Workload::W1 => "W1 add",
            Workload::W2 => "W2 lateness",
            Workload::W3 => "W3 idle",
            Workload::W5 => "W5 burst",
            Workload::W6 => "W6 scale",
            Workload::W6m => "W6 1M held",
        }
    }
}

/// Overrides from the command line, applied to every selected workload that has the
/// parameter.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) n: Option<u64>,
    pub(crate) j: Option<u64>,
    pub(crate) i: Option<f64>,
    pub(crate) d: Option<f64>,
    pub(crate) lead: Option<f64>,
    /// The scheduler runs on a persistent store, where each add is a write to it: the
    /// default lead allows 1 ms per job instead of 20 us.
    pub(crate) slow_adds: bool,
}

/// The resolved parameters of one workload. Only the ones the workload uses matter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Params {
    /// Jobs added (W1, W5).
    pub(crate) n: u64,
    /// Jobs held (W2, W3, W6).
    pub(crate) j: u64,
    /// The interval of each job (W2, W6).
    pub(crate) i: Duration,
    /// The measured window (W2, W3, W6).
    pub(crate) d: Duration,
    /// From the start of the adds to t0 (the first fire, or W5's instant T); jobs are added
    /// within it.
    pub(crate) lead: Duration,
}

const HOUR: Duration = Duration::from_secs(3600);

impl Params {
    /// BENCH.md's defaults (or the `--quick` sizes), then the overrides.
    pub(crate) fn resolve(w: Workload, quick: bool, o: &Overrides) -> Params {
        let secs = Duration::from_secs;
        let (n, j, i, d) = match (w, quick) {
            (Workload::W1, false) => (100_000, 0, HOUR, Duration::ZERO),
            (Workload::W1, true) => (10_000, 0, HOUR, Duration::ZERO),
            (Workload::W2, false) => (0, 10_000, secs(1), secs(20)),
            (Workload::W2, true) => (0, 1_000, secs(1), secs(3)),
            (Workload::W3, false) => (0, 10_000, HOUR, secs(10)),
            (Workload::W3, true) => (0, 1_000, HOUR, secs(2)),
            (Workload::W5, false) => (100_000, 0, Duration::ZERO, Duration::ZERO),
            (Workload::W5, true) => (10_000, 0, Duration::ZERO, Duration::ZERO),
            (Workload::W6, false) => (0, 100_000, secs(10), secs(20)),
            (Workload::W6, true) => (0, 10_000, secs(5), secs(3)),
            (Workload::W6m, false) => (0, 1_000_000, secs(100), secs(20)),
            (Workload::W6m, true) => (0, 100_000, secs(50), secs(3)),
        };
        let mut p = Params {
            n: o.n.unwrap_or(n),
            j: o.j.unwrap_or(j),
            i: o.i.map_or(i, Duration::from_secs_f64),
            d: o.d.map_or(d, Duration::from_secs_f64),
            lead: Duration::ZERO,
        };
        if w == Workload::W3 {
            p.i = HOUR; // "first due in 1 hour": not a parameter
        }
        // Enough for either implementation to add every job before t0 (sched added 60,000 to
        // 80,000 jobs/s into a running scheduler in release builds on a 2-core machine); a run
        // that overruns it says so.
        let per_job = if o.slow_adds {
            Duration::from_millis(1)
        } else {
            Duration::from_micros(20)
        };
        p.lead = match o.lead {
            Some(s) => Duration::from_secs_f64(s),
            None => match w {
                Workload::W1 | Workload::W3 => Duration::ZERO,
                Workload::W5 => secs(2) + per_job * u32::try_from(p.n).unwrap_or(u32::MAX),
                _ => secs(1) + per_job * u32::try_from(p.j).unwrap_or(u32::MAX),
            },
        };
        p
    }

    /// The first fire of job `k` of `j`, after t0: spread evenly over the first interval
    /// (whole microseconds, so both implementations get the same instants).
    pub(crate) fn offset(&self, k: u64) -> Duration {
        let i_us = self.i.as_micros();
        let off = u128::from(k) * i_us / u128::from(self.j.max(1));
        Duration::from_micros(u64::try_from(off).unwrap_or(u64::MAX))
    }

    /// Fires intended within `[t0, t0 + D)`: for each job, its first fire and every `I`
    /// after it that falls in the window.
    pub(crate) fn expected_fires(&self) -> u64 {
        let d = self.d.as_micros();
        let i = self.i.as_micros().max(1);
        (0..self.j)
            .map(|k| {
                let off = self.offset(k).as_micros();
                if off < d {
                    u64::try_from((d - off).div_ceil(i)).unwrap_or(u64::MAX)
                } else {
                    0
                }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bench_md_s() {
        let o = Overrides::default();
        let w2 = Params::resolve(Workload::W2, false, &o);
        assert_eq!(
            (w2.j, w2.i, w2.d),
            (10_000, Duration::from_secs(1), Duration::from_secs(20))
        );
        assert_eq!(w2.expected_fires(), 200_000);
        let w6 = Params::resolve(Workload::W6, false, &o);
        assert_eq!(w6.expected_fires(), 200_000);
        let w6m = Params::resolve(Workload::W6m, false, &o);
        assert_eq!(w6m.expected_fires(), 200_000);
        assert_eq!(Params::resolve(Workload::W1, false, &o).n, 100_000);
    }

    #[test]
    fn offsets_spread_over_the_first_interval() {
        let p = Params::resolve(
            Workload::W2,
            false,
            &Overrides {
                j: Some(4),
                i: Some(1.0),
                d: Some(1.5),
                ..Overrides::default()
            },
        );
        let offs: Vec<u128> = (0..4).map(|k| p.offset(k).as_millis()).collect();
        assert_eq!(offs, vec![0, 250, 500, 750]);
        // 0, 1.0 | 0.25, 1.25 | 0.5 | 0.75 -> 6 fires before 1.5 s
        assert_eq!(p.expected_fires(), 6);
    }
}
