//! Executors and load with real threads and real time. These tests wait on conditions with
//! deadlines, never on fixed sleeps.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sched_core::event::{Event, EventKind};
use sched_core::job::JobSpec;
use sched_runtime::{Executor, JobContext, Scheduler, ShutdownMode, closure_task};
use support::*;

/// Waits until `cond` holds, checking every few milliseconds, failing after `deadline`.
async fn eventually(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// Four runs of a blocking task on a pool of two workers: all run, never more than two at
// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_executor_limits_workers() {
    let s = Scheduler::builder()
        .executor("pool", Executor::blocking(2))
        .build();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (r, p, d) = (running.clone(), peak.clone(), done.clone());
    let task = closure_task("blocking", move |_ctx: JobContext| {
        let (r, p, d) = (r.clone(), p.clone(), d.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50)); // blocks this pool thread
            r.fetch_sub(1, Ordering::SeqCst);
            d.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(std::thread::current().name().map(str::to_owned))
        }
    });
    s.start().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        let spec = JobSpec::new(
            task.clone(),
            once(at(0, 0, 0) + chrono::TimeDelta::days(400_000)),
        )
        .id(format!("b{i}"))
        .unwrap()
        .executor("pool");
        ids.push(s.add_job(spec).await.unwrap());
    }
    for id in &ids {
        s.run_job_now(id).await.unwrap();
    }
    eventually("four blocking runs", Duration::from_secs(10), || {
        done.load(Ordering::SeqCst) == 4
    })
    .await;
    assert!(
        peak.load(Ordering::SeqCst) <= 2,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    s.shutdown(ShutdownMode::Wait).await;
}

// A panic on the blocking pool is reported like one on the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_executor_reports_panics() {
    let s = Scheduler::builder()
        .executor("pool", Executor::blocking(1))
        .build();
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = errors.clone();
    s.add_listener(EventKind::JobError, move |e: &Event| {
        if let Event::Execution(x) = e {
            sink.lock()
                .unwrap()
                .push(x.failure.clone().unwrap().message);
        }
    });
    let task = closure_task("boom", |_ctx: JobContext| async move {
        if true {
            panic!("pool boom");
        }
        Ok::<_, String>(())
    });
    s.start().await.unwrap();
    let id = s
        .add_job(
            JobSpec::new(task, once(at(0, 0, 0) + chrono::TimeDelta::days(400_000)))
                .executor("pool"),
        )
        .await
        .unwrap();
    s.run_job_now(&id).await.unwrap();
    eventually("the panic event", Duration::from_secs(10), || {
        !errors.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(errors.lock().unwrap()[0], "panicked: pool boom");
    s.shutdown(ShutdownMode::Wait).await;
}

// 100,000 jobs far in the future and one due soon: adding them is cheap (no O(n) work per
// add), and the due one fires on time among them.
#[tokio::test(start_paused = true)]
async fn a_hundred_thousand_jobs_are_held_and_the_due_one_fires() {
    let (s, clock, rec) = scheduler();
    s.start().await.unwrap();
    let runs = Runs::default();
    let idle = closure_task("idle", |_ctx: JobContext| async { Ok::<_, String>(()) });
    let real = std::time::Instant::now();
    for _ in 0..100_000 {
        s.add_job(JobSpec::new(idle.clone(), Every::minute_from(at(1, 0, 0))))
            .await
            .unwrap();
    }
    let add_time = real.elapsed();
    s.add_job(JobSpec::new(
        runs.task(&clock, Duration::ZERO),
        once(at(0, 0, 30)),
    ))
    .await
    .unwrap();
    until(&clock, at(0, 0, 31)).await;
    assert_eq!(runs.started(), [at(0, 0, 30)]);
    assert_eq!(rec.count(EventKind::JobAdded), 100_001);
    assert!(
        add_time < Duration::from_secs(30),
        "adding took {add_time:?}"
    );
}

// The command task runs a real program: exit status and output are in the result, and a
// failing program is a job error naming its status and stderr.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_task_captures_status_and_output() {
    use sched_runtime::Command;
    let s = Scheduler::builder().build();
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    s.add_listener(
        EventKind::JobExecuted | EventKind::JobError,
        move |e: &Event| {
            if let Event::Execution(x) = e {
                sink.lock().unwrap().push(x.clone());
            }
        },
    );
    s.start().await.unwrap();
    let far = once(at(0, 0, 0) + chrono::TimeDelta::days(400_000));
    let ok = Command::new("sh")
        .arg("-c")
        .arg("echo out; echo err >&2")
        .env("X", "1");
    let bad = Command::new("sh").arg("-c").arg("echo oops >&2; exit 3");
    let ok = s
        .add_job(JobSpec::new(ok.into_task(), far.clone()))
        .await
        .unwrap();
    let bad = s.add_job(JobSpec::new(bad.into_task(), far)).await.unwrap();
    s.run_job_now(&ok).await.unwrap();
    s.run_job_now(&bad).await.unwrap();
    eventually("both commands", Duration::from_secs(20), || {
        events.lock().unwrap().len() == 2
    })
    .await;
    let events = events.lock().unwrap().clone();
    let done = events.iter().find(|e| e.job_id == ok).unwrap();
    assert_eq!(
        done.return_value,
        Some(serde_json::json!({"status": 0, "stdout": "out\n", "stderr": "err\n"}))
    );
    let failed = events.iter().find(|e| e.job_id == bad).unwrap();
    assert_eq!(failed.kind, EventKind::JobError);
    assert_eq!(
        failed.failure.as_ref().unwrap().message,
        "\"sh\" exited with status 3: oops"
    );
    s.shutdown(ShutdownMode::Wait).await;
}

// The blocking front, from a plain thread: a job added with run_job_now runs on the
// scheduler's own runtime.
#[test]
fn blocking_front_runs_jobs_without_async_code() {
    use sched_runtime::BlockingScheduler;
    let s = BlockingScheduler::new(Scheduler::builder()).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let task = closure_task("count", move |_ctx: JobContext| {
        let r = r.clone();
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(())
        }
    });
    s.start().unwrap();
    let id = s
        .add_job(JobSpec::new(
            task,
            once(at(0, 0, 0) + chrono::TimeDelta::days(400_000)),
        ))
        .unwrap();
    assert_eq!(s.get_jobs().unwrap().len(), 1);
    s.run_job_now(&id).unwrap();
    let start = std::time::Instant::now();
    while ran.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the job did not run"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    s.remove_job(&id).unwrap();
    s.shutdown(ShutdownMode::Wait);
}
