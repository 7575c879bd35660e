//! What the workloads measure: process CPU time and context switches (getrusage), resident
//! memory (/proc), and the start times of job bodies.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::{SysconfVar, sysconf};

/// A reading of the resource use of every thread of the process but the calling one (the
/// harness's measuring thread, which only sleeps): the runtime's workers and whatever
/// threads the implementation started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    /// User plus system CPU time.
    pub(crate) cpu: Duration,
    /// Voluntary context switches: a thread gave up the CPU to wait (a park, a sleep).
    pub(crate) voluntary_switches: i64,
}

impl Usage {
    /// `getrusage(RUSAGE_SELF)` minus `getrusage(RUSAGE_THREAD)`.
    pub(crate) fn now() -> Usage {
        let process = Usage::read(UsageWho::RUSAGE_SELF);
        let this = Usage::read(UsageWho::RUSAGE_THREAD);
        Usage {
            cpu: process.cpu.saturating_sub(this.cpu),
            voluntary_switches: process.voluntary_switches - this.voluntary_switches,
        }
    }

    fn read(who: UsageWho) -> Usage {
        let u = getrusage(who).expect("getrusage of this process and thread cannot fail");
        let micros = |tv: nix::sys::time::TimeVal| {
            let us = i128::from(tv.tv_sec()) * 1_000_000 + i128::from(tv.tv_usec());
            Duration::from_micros(u64::try_from(us).unwrap_or(0))
        };
        Usage {
            cpu: micros(u.user_time()) + micros(u.system_time()),
            voluntary_switches: u.voluntary_context_switches(),
        }
    }

    /// The use between `earlier` and `self`: CPU seconds and voluntary switches.
    pub(crate) fn since(&self, earlier: &Usage) -> (f64, i64) {
        (
            self.cpu.saturating_sub(earlier.cpu).as_secs_f64(),
            self.voluntary_switches - earlier.voluntary_switches,
        )
    }
}

/// Resident set size now, from `/proc/self/statm` (resident pages times the page size).
pub(crate) fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let page = sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    pages * page
}

/// The peak resident set size so far (`VmHWM` of `/proc/self/status`).
pub(crate) fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Collects, from every job body, its lateness: body start minus intended fire time, in
/// nanoseconds, each implementation reading the clock it schedules by.
///
/// Bodies call [`record`](Recorder::record) concurrently: a slot index from one atomic
/// counter, the value stored in a preallocated slot, then a second counter says it is
/// there. Fires meant for after the window are only counted.
#[derive(Debug)]
pub(crate) struct Recorder {
    window_ns: i64,
    slots: Box<[AtomicI64]>,
    claimed: AtomicUsize,
    stored: AtomicUsize,
    outside: AtomicU64,
}

impl Recorder {
    /// Room for `capacity` lateness values of fires intended within `window` of t0.
    pub(crate) fn new(capacity: usize, window: Option<Duration>) -> Recorder {
        Recorder {
            window_ns: window.map_or(i64::MAX, nanos),
            slots: (0..capacity).map(|_| AtomicI64::new(0)).collect(),
            claimed: AtomicUsize::new(0),
            stored: AtomicUsize::new(0),
            outside: AtomicU64::new(0),
        }
    }

    /// A body started `lateness_ns` after its intended time, which was `offset_ns` after t0.
    pub(crate) fn record(&self, offset_ns: i64, lateness_ns: i64) {
        if !(0..self.window_ns).contains(&offset_ns) {
            self.outside.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let i = self.claimed.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.slots.get(i) {
            slot.store(lateness_ns, Ordering::Relaxed);
        }
        self.stored.fetch_add(1, Ordering::Release);
    }

    /// Fires intended within the window whose bodies have started.
    pub(crate) fn fires(&self) -> usize {
        self.stored.load(Ordering::Acquire)
    }

    /// Fires intended for outside the window (after it, or before t0).
    pub(crate) fn outside(&self) -> u64 {
        self.outside.load(Ordering::Relaxed)
    }

    /// The lateness values recorded so far, sorted (ns).
    pub(crate) fn sorted(&self) -> Vec<i64> {
        let n = self.fires().min(self.slots.len());
        let mut v: Vec<i64> = self.slots[..n]
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        v.sort_unstable();
        v
    }
}

/// Whole nanoseconds of a duration, saturating.
pub(crate) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The nearest-rank percentile `p` (0–100] of sorted values, in milliseconds.
pub(crate) fn percentile_ms(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[i] as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        assert_eq!(percentile_ms(&v, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&v, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&v, 100.0), Some(100.0));
        assert_eq!(percentile_ms(&[], 50.0), None);
    }

    #[test]
    fn recorder_counts_only_the_window() {
        let r = Recorder::new(4, Some(Duration::from_secs(1)));
        r.record(0, 5);
        r.record(999_999_999, 3);
        r.record(1_000_000_000, 1);
        r.record(-1, 1);
        assert_eq!(r.fires(), 2);
        assert_eq!(r.outside(), 2);
        assert_eq!(r.sorted(), vec![3, 5]);
    }

    #[test]
    fn usage_and_memory_read() {
        let a = Usage::now();
        let spinner = std::thread::spawn(|| {
            let spin = std::time::Instant::now();
            while spin.elapsed() < Duration::from_millis(20) {}
        });
        spinner.join().unwrap();
        let (cpu, _) = Usage::now().since(&a);
        assert!(cpu > 0.0);
        assert!(rss_bytes() > 0);
        assert!(peak_rss_bytes() >= rss_bytes() / 2);
    }
}
