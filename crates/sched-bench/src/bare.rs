//! The floor every comparison is made against, exactly as `BENCH.md` defines it: a binary
//! heap of next-run instants, one task sleeping until the earliest, one `tokio::spawn` per
//! fire, no features (no ids, no removal, no misfire rules, no events, no store).
//!
//! Jobs are added into the running loop through a mutex on the heap; an add that becomes the
//! earliest entry wakes the loop. All jobs share one body, called with the intended instant.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One heap entry: the next run, and the period of a repeating job.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    at: Instant,
    period: Option<Duration>,
}

impl Ord for Entry {
    /// Reversed on `at`, so the `BinaryHeap` (a max-heap) yields the earliest first.
    fn cmp(&self, other: &Entry) -> Ordering {
        other.at.cmp(&self.at)
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Shared {
    heap: Mutex<BinaryHeap<Entry>>,
    wake: Notify,
}

/// The bare tokio loop, running.
pub(crate) struct Bare {
    shared: Arc<Shared>,
    driver: JoinHandle<()>,
}

impl fmt::Debug for Bare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let jobs = self
            .shared
            .heap
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Bare").field("jobs", &jobs).finish()
    }
}

impl Bare {
    /// Starts the loop on the current runtime; every fire spawns `body(intended instant)`.
    pub(crate) fn start<F, Fut>(body: F) -> Bare
    where
        F: Fn(Instant) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            heap: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
        });
        let driver = tokio::spawn(drive(shared.clone(), body));
        Bare { shared, driver }
    }

    /// Adds a job first due `at`, then every `period` (`None`: once).
    pub(crate) fn add(&self, at: Instant, period: Option<Duration>) {
        self.add_many(at, period, 1);
    }

    /// Adds `count` jobs first due `at`, then every `period`, under one lock: the floor's
    /// form of a bulk add.
    pub(crate) fn add_many(&self, at: Instant, period: Option<Duration>, count: usize) {
        let mut heap = self
            .shared
            .heap
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let earliest = heap.peek().is_none_or(|e| at < e.at);
        heap.extend((0..count).map(|_| Entry { at, period }));
        drop(heap);
        if earliest && count > 0 {
            self.shared.wake.notify_one();
        }
    }

    /// Stops the loop (bodies already spawned run on).
    pub(crate) fn stop(self) {
        self.driver.abort();
    }
}

async fn drive<F, Fut>(shared: Arc<Shared>, body: F)
where
    F: Fn(Instant) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut due = Vec::new();
    loop {
        let next = {
            let mut heap = shared.heap.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            while heap.peek().is_some_and(|e| e.at <= now) {
                let Some(e) = heap.pop() else { break };
                due.push(e.at);
                if let Some(p) = e.period {
                    heap.push(Entry {
                        at: e.at + p,
                        period: e.period,
                    });
                }
            }
            heap.peek().map(|e| e.at)
        };
        for at in due.drain(..) {
            tokio::spawn(body(at));
        }
        match next {
            Some(at) => tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = shared.wake.notified() => {}
            },
            None => shared.wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// every 100 ms from t+100ms, plus one at t+50ms; run to t+350ms:
    ///
    /// ```text
    ///   t    50   100   200   300  350
    ///        o     *     *     *    |   4 fires
    /// ```
    #[tokio::test(start_paused = true)]
    async fn fires_repeating_and_one_shot_jobs_in_order() {
        let fired = Arc::new(Mutex::new(Vec::new()));
        let t = Instant::now();
        let log = fired.clone();
        let bare = Bare::start(move |at| {
            let log = log.clone();
            async move { log.lock().unwrap().push(at - t) }
        });
        bare.add(
            t + Duration::from_millis(100),
            Some(Duration::from_millis(100)),
        );
        bare.add(t + Duration::from_millis(50), None);
        tokio::time::sleep(Duration::from_millis(350)).await;
        bare.stop();
        let got: Vec<u64> = fired
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(got, vec![50, 100, 200, 300]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_add_wakes_the_loop() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let bare = Bare::start(move |_| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
            }
        });
        let t = Instant::now();
        bare.add(t + Duration::from_secs(3600), None);
        tokio::time::sleep(Duration::from_millis(10)).await;
        bare.add(t + Duration::from_millis(20), None);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
        bare.stop();
    }
}
