//! Adding and removing stores and executors while the scheduler lives (APScheduler's
//! `add_jobstore`, `remove_jobstore`, `add_executor`, `remove_executor`).

use std::sync::{Arc, PoisonError};

use sched_core::event::{Event, EventKind, SchedulerEvent};
use sched_stores::{BoxJobStore, JobStore};

use crate::scheduler::SchedulerState;
use crate::{Executor, Scheduler, SchedulerError};

impl Scheduler {
    /// Adds a job store under `name` (APScheduler's `add_jobstore`). Once started, the
    /// scheduler reports it with a `JobstoreAdded` event and looks at its jobs at once (a
    /// persistent store may hold due ones). Before start nothing is reported: `start`
    /// reports every store it starts with.
    ///
    /// ```
    /// use sched_core::EventKind;
    /// use sched_runtime::{Executor, Scheduler, ShutdownMode};
    /// use sched_stores::MemoryStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scheduler = Scheduler::builder().build();
    /// let mut events = scheduler.subscribe(EventKind::JobstoreAdded | EventKind::ExecutorRemoved);
    /// scheduler.start().await?;
    /// assert_eq!(events.next().await.expect("open")?.kind(), EventKind::JobstoreAdded); // default
    ///
    /// scheduler.add_store("archive", MemoryStore::new()).await?;
    /// assert_eq!(events.next().await.expect("open")?.kind(), EventKind::JobstoreAdded);
    ///
    /// scheduler.add_executor("pool", Executor::blocking(4))?;
    /// scheduler.remove_executor("pool")?;
    /// assert_eq!(events.next().await.expect("open")?.kind(), EventKind::ExecutorRemoved);
    /// scheduler.remove_store("archive").await?;
    /// scheduler.shutdown(ShutdownMode::Wait).await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`StoreExists`](SchedulerError::StoreExists) when the name is taken.
    pub async fn add_store(
        &self,
        name: impl Into<String>,
        store: impl JobStore,
    ) -> Result<(), SchedulerError> {
        let name = name.into();
        let sh = &self.shared;
        {
            // Under the ops lock, as every change of what the dispatcher reads.
            let _ops = sh.ops.lock().await;
            let mut stores = sh.stores.write().unwrap_or_else(PoisonError::into_inner);
            if stores.iter().any(|(n, _)| *n == name) {
                return Err(SchedulerError::StoreExists(name));
            }
            let mut next = Vec::clone(&stores);
            next.push((name.clone(), BoxJobStore::new(store)));
            *stores = Arc::new(next);
        }
        if self.announces() {
            sh.emit(Event::Scheduler(SchedulerEvent::new(
                EventKind::JobstoreAdded,
                Some(name),
            )));
            // Its jobs may be due before the dispatcher's wake-up, and some of its
            // quarantined jobs may run with the tasks registered here.
            sh.release_check
                .store(true, std::sync::atomic::Ordering::SeqCst);
            sh.wake.notify_one();
        }
        Ok(())
    }

    /// Removes the job store `name` and hands it back (APScheduler's `remove_jobstore`).
    /// Its jobs stay in it, and no longer run here; runs already going finish. Jobs still
    /// pending for it (added before start) are dropped with it. Reported with a
    /// `JobstoreRemoved` event once started.
    ///
    /// # Errors
    /// [`UnknownStore`](SchedulerError::UnknownStore).
    pub async fn remove_store(&self, name: &str) -> Result<BoxJobStore, SchedulerError> {
        let sh = &self.shared;
        let removed = {
            let _ops = sh.ops.lock().await;
            let mut stores = sh.stores.write().unwrap_or_else(PoisonError::into_inner);
            let Some(i) = stores.iter().position(|(n, _)| n == name) else {
                return Err(SchedulerError::UnknownStore(name.to_owned()));
            };
            let mut next = Vec::clone(&stores);
            let (_, removed) = next.remove(i);
            *stores = Arc::new(next);
            sh.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|p| *p.job.store != *name);
            removed
        };
        if self.announces() {
            sh.emit(Event::Scheduler(SchedulerEvent::new(
                EventKind::JobstoreRemoved,
                Some(name.to_owned()),
            )));
        }
        Ok(removed)
    }

    /// Adds an executor under `name` (APScheduler's `add_executor`); reported with an
    /// `ExecutorAdded` event once started.
    ///
    /// # Errors
    /// [`ExecutorExists`](SchedulerError::ExecutorExists) when the name is taken.
    pub fn add_executor(
        &self,
        name: impl Into<String>,
        executor: Executor,
    ) -> Result<(), SchedulerError> {
        let name = name.into();
        {
            let mut executors = self
                .shared
                .executors
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if executors.contains_key(&name) {
                return Err(SchedulerError::ExecutorExists(name));
            }
            executors.insert(name.clone(), executor);
        }
        if self.announces() {
            self.shared.emit(Event::Scheduler(SchedulerEvent::new(
                EventKind::ExecutorAdded,
                Some(name),
            )));
        }
        Ok(())
    }

    /// Removes the executor `name` and hands it back (APScheduler's `remove_executor`).
    /// Runs already going on it finish; later runs of jobs naming it fail with a job error
    /// event until the job is given another executor or one is added under that name.
    /// Reported with an `ExecutorRemoved` event once started.
    ///
    /// # Errors
    /// [`UnknownExecutor`](SchedulerError::UnknownExecutor).
    pub fn remove_executor(&self, name: &str) -> Result<Executor, SchedulerError> {
        let removed = self
            .shared
            .executors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .ok_or_else(|| SchedulerError::UnknownExecutor(name.to_owned()))?;
        if self.announces() {
            self.shared.emit(Event::Scheduler(SchedulerEvent::new(
                EventKind::ExecutorRemoved,
                Some(name.to_owned()),
            )));
        }
        Ok(removed)
    }

    /// Whether store and executor changes are reported now: between start and shutdown
    /// (`start` reports what it starts with).
    fn announces(&self) -> bool {
        matches!(
            self.state(),
            SchedulerState::Running | SchedulerState::Paused
        )
    }
}
