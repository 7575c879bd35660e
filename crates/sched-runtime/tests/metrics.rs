//! The metrics move: a small in-test recorder installed with `metrics::with_local_recorder`
//! around a current-thread runtime on tokio's paused clock (every task runs on this thread,
//! so every recording reaches it).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use sched_core::event::EventKind;
use sched_core::job::JobSpec;
use sched_runtime::metrics::{ERRORS, FIRES, LATENESS, MAX_INSTANCES, MISSES, RUNNING};
use sched_runtime::{ShutdownMode, closure_task};
use support::{Every, Runs, at, scheduler, until};

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// Keeps every counter, gauge and histogram by its key (name and labels).
#[derive(Default)]
struct TestRecorder {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
}

/// `name{label=value,...}`, labels in the order given.
fn key_text(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl TestRecorder {
    fn counter(&self, key: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    fn gauge(&self, key: &str) -> f64 {
        self.gauges
            .lock()
            .unwrap()
            .get(key)
            .map_or(0.0, |g| f64::from_bits(g.load(Ordering::SeqCst)))
    }

    fn samples(&self, key: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap()
            .get(key)
            .map(|h| h.0.lock().unwrap().clone())
            .unwrap_or_default()
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let c = self
            .counters
            .lock()
            .unwrap()
            .entry(key_text(key))
            .or_default()
            .clone();
        Counter::from_arc(c)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let g = self
            .gauges
            .lock()
            .unwrap()
            .entry(key_text(key))
            .or_default()
            .clone();
        Gauge::from_arc(g)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let h = self
            .histograms
            .lock()
            .unwrap()
            .entry(key_text(key))
            .or_default()
            .clone();
        Histogram::from_arc(h)
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn labels(name: &str) -> String {
    format!("{name}{{store=default,executor=default}}")
}

// Every minute, each run busy 150 s, max_instances 1; a second job fails every minute; a
// third is added at 00:01:30 with its first run time 00:01 and 1 s of grace:
//
//   00:01  00:01:30  00:02  00:03  00:04  00:05  00:05:10
//     R-------------------------------- R------------       "busy"    fires 00:01, 00:04
//                      X      X                X            "busy"    refusals
//     E                E      E      E      E               "failing" 5 fires, 5 errors
//            M         R      R      R      R               "late"    00:01 missed
#[test]
fn counters_gauge_and_histogram_move() {
    let recorder = TestRecorder::default();
    metrics::with_local_recorder(&recorder, || {
        paused_runtime().block_on(async {
            let (s, clock, rec) = scheduler();
            let runs = Runs::default();
            s.add_job(
                JobSpec::new(
                    runs.task(&clock, Duration::from_secs(150)),
                    Every::minute_from(at(0, 1, 0)),
                )
                .id("busy")
                .unwrap(),
            )
            .await
            .unwrap();
            s.add_job(
                JobSpec::new(
                    closure_task("fail", |_| async { Err::<(), _>("always") }),
                    Every::minute_from(at(0, 1, 0)),
                )
                .id("failing")
                .unwrap(),
            )
            .await
            .unwrap();
            s.start().await.unwrap();

            until(&clock, at(0, 1, 30)).await;
            // The 00:01 run of "busy" is going: one running submission.
            assert_eq!(
                recorder.gauge(&format!("{RUNNING}{{executor=default}}")),
                1.0
            );

            // Added at 00:01:30 with a first run time of 00:01:00 and 1 s of grace: missed.
            s.add_job(
                JobSpec::new(
                    closure_task("late", |_| async { Ok::<_, String>(()) }),
                    Every::minute_from(at(0, 1, 0)),
                )
                .id("late")
                .unwrap()
                .next_run_time(at(0, 1, 0))
                .misfire_grace_time(Some(Duration::from_secs(1))),
            )
            .await
            .unwrap();
            until(&clock, at(0, 5, 10)).await;

            s.shutdown(ShutdownMode::Cancel).await;
            assert!(rec.count(EventKind::JobMissed) >= 1);
            assert_eq!(
                recorder.counter(&labels(MISSES)),
                rec.count(EventKind::JobMissed) as u64
            );
            assert_eq!(
                recorder.counter(&labels(MAX_INSTANCES)),
                rec.count(EventKind::JobMaxInstances) as u64
            );
            assert!(recorder.counter(&labels(MAX_INSTANCES)) >= 1);
            let fired: usize = rec
                .submissions(EventKind::JobSubmitted)
                .iter()
                .map(Vec::len)
                .sum();
            assert_eq!(recorder.counter(&labels(FIRES)), fired as u64);
            assert_eq!(
                recorder.counter(&labels(ERRORS)),
                rec.count(EventKind::JobError) as u64
            );
            assert!(recorder.counter(&labels(ERRORS)) >= 1);
            // Every run started on time on the paused clock; one sample per run started.
            let lateness = recorder.samples(&labels(LATENESS));
            assert!(!lateness.is_empty());
            assert!(
                lateness.iter().all(|l| (0.0..0.5).contains(l)),
                "{lateness:?}"
            );
            // Nothing is left running after shutdown.
            assert_eq!(
                recorder.gauge(&format!("{RUNNING}{{executor=default}}")),
                0.0
            );
        });
    });
}

// The store fails its next 3 calls from 00:00:30 on: three store errors, counted per store.
#[test]
fn store_errors_are_counted() {
    use std::sync::atomic::Ordering::SeqCst;
    let recorder = TestRecorder::default();
    metrics::with_local_recorder(&recorder, || {
        paused_runtime().block_on(async {
            let store = support::FlakyStore::default();
            let handle = store.clone();
            let (s, clock, rec) = support::scheduler_with(move |b| b.store("default", store));
            s.start().await.unwrap();
            until(&clock, at(0, 0, 30)).await;
            handle.failures.store(3, SeqCst);
            until(&clock, at(0, 2, 0)).await;
            s.shutdown(ShutdownMode::Wait).await;
            assert_eq!(rec.count(EventKind::StoreError), 3);
            assert_eq!(
                recorder.counter(&format!(
                    "{}{{store=default}}",
                    sched_runtime::metrics::STORE_ERRORS
                )),
                3
            );
        });
    });
}
