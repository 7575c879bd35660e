//! Executors: where a job's runs are driven.

use std::sync::Arc;

use sched_core::event::{FailureKind, JobFailure};
use tokio::sync::Semaphore;

use crate::task::{BoxTaskFuture, CatchUnwind, TaskResult, panic_message};

/// Where a job's runs are driven. A scheduler has several, by name; jobs name theirs
/// (`default` unless set).
///
/// - [`Executor::tokio`] (the default) polls each run as a task on the tokio runtime. Use it
///   for async code.
/// - [`Executor::blocking`] drives each run on tokio's blocking thread pool, at most
///   `max_workers` at once; further runs wait for a worker (they are not reported missed).
///   Use it for code that blocks the thread (synchronous I/O, heavy computation): the task is
///   still written as an async closure, and may block inside it freely.
///
/// Panics are caught in both and reported as job errors.
///
/// ```
/// use sched_runtime::Executor;
///
/// let pool = Executor::blocking(4);
/// assert_eq!(pool.max_workers(), Some(4));
/// assert_eq!(Executor::tokio().max_workers(), None);
/// ```
#[derive(Clone, Debug)]
pub struct Executor {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Tokio,
    Blocking {
        workers: Arc<Semaphore>,
        max_workers: usize,
    },
}

impl Executor {
    /// Runs jobs as tokio tasks.
    pub fn tokio() -> Executor {
        Executor { kind: Kind::Tokio }
    }

    /// Runs jobs on the blocking thread pool, at most `max_workers` (at least 1) at once.
    pub fn blocking(max_workers: usize) -> Executor {
        let max_workers = max_workers.max(1);
        Executor {
            kind: Kind::Blocking {
                workers: Arc::new(Semaphore::new(max_workers)),
                max_workers,
            },
        }
    }

    /// The worker limit of a blocking executor.
    pub fn max_workers(&self) -> Option<usize> {
        match &self.kind {
            Kind::Tokio => None,
            Kind::Blocking { max_workers, .. } => Some(*max_workers),
        }
    }

    /// Drives one run to its end. Cancel safe for the tokio executor (dropping it drops the
    /// run); for the blocking one, dropping it leaves the thread to finish on its own.
    pub(crate) async fn run(&self, fut: BoxTaskFuture) -> TaskResult {
        match &self.kind {
            Kind::Tokio => CatchUnwind(fut).await,
            // Boxed: the wait for a worker and the thread's handle would otherwise make
            // every run's future larger, the tokio executor's too.
            Kind::Blocking { workers, .. } => Box::pin(run_blocking(workers.clone(), fut)).await,
        }
    }
}

/// Drives `fut` on the blocking thread pool once one of `workers` is free.
async fn run_blocking(workers: Arc<Semaphore>, fut: BoxTaskFuture) -> TaskResult {
    let Ok(worker) = workers.acquire_owned().await else {
        return Err(JobFailure::new(FailureKind::Setup, "executor closed"));
    };
    let handle = tokio::runtime::Handle::current();
    let joined = tokio::task::spawn_blocking(move || {
        let _worker = worker;
        handle.block_on(CatchUnwind(fut))
    })
    .await;
    match joined {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(JobFailure::new(
            FailureKind::Panic,
            panic_message(&*e.into_panic()),
        )),
        Err(_) => Err(JobFailure::new(FailureKind::Cancelled, "cancelled")),
    }
}

impl Default for Executor {
    fn default() -> Executor {
        Executor::tokio()
    }
}
