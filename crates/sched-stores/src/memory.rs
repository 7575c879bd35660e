//! [`MemoryStore`]: jobs in a map, with an ordered index of next run times.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};

use crate::{JobStore, QuarantinedJob, StoreError};

/// A store that keeps jobs in memory: the default store, lost when the process ends.
///
/// It holds any job, closures and trigger objects included. Jobs live in a hash map by id,
/// and scheduled jobs also in an ordered set of `(next_run_time, id)`, so adding, updating
/// and removing a job cost O(log n), finding the next run time O(log n), and taking `k` due
/// jobs O(log n + k). Each call holds a lock only for the map and index operations and
/// completes in its first poll, so every method is cancel safe.
///
/// ```
/// use sched_stores::{JobStore, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// assert!(store.all_jobs().await?.is_empty());
/// # Ok::<(), sched_stores::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Boxed: a map slot is a pointer, not a whole `Job`, so the map's spare capacity and
    /// its rehashing cost little, and an update overwrites the job in place.
    jobs: HashMap<JobId, Box<Job>>,
    by_time: BTreeSet<(DateTime<Utc>, JobId)>,
    /// Reasons of quarantined jobs; those are in `jobs` but not in `by_time`.
    quarantine: HashMap<JobId, String>,
}

impl Inner {
    fn index(&mut self, job: &Job) {
        if self.quarantine.contains_key(&job.id) {
            return;
        }
        if let Some(t) = job.next_run_time {
            self.by_time.insert((t, job.id.clone()));
        }
    }

    fn unindex(&mut self, job: &Job) {
        if let Some(t) = job.next_run_time {
            self.by_time.remove(&(t, job.id.clone()));
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many jobs the store holds.
    pub fn len(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Whether the store holds no job.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The critical sections cannot leave the map and index out of step when they
        // panic (every insert/remove pair completes or none starts), so a poisoned lock
        // holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("jobs", &inner.jobs.len())
            .field("scheduled", &inner.by_time.len())
            .finish()
    }
}

impl JobStore for MemoryStore {
    async fn add_job(&self, job: Job) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.jobs.contains_key(&job.id) {
            return Err(StoreError::Conflict { id: job.id });
        }
        inner.index(&job);
        inner.jobs.insert(job.id.clone(), Box::new(job));
        Ok(())
    }

    async fn update_job(&self, job: Job) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(slot) = inner.jobs.get_mut(&job.id) else {
            return Err(StoreError::NotFound { id: job.id });
        };
        if slot.next_run_time != job.next_run_time {
            if let Some(t) = slot.next_run_time {
                inner.by_time.remove(&(t, job.id.clone()));
            }
            if let Some(t) = job.next_run_time
                && !inner.quarantine.contains_key(&job.id)
            {
                inner.by_time.insert((t, job.id.clone()));
            }
        }
        **slot = job;
        Ok(())
    }

    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Some(old) = inner.jobs.remove(id) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        inner.unindex(&old);
        inner.quarantine.remove(id);
        Ok(())
    }

    async fn remove_all_jobs(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.jobs.clear();
        inner.by_time.clear();
        inner.quarantine.clear();
        Ok(())
    }

    async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.lock().jobs.get(id).map(|j| Job::clone(j)))
    }

    async fn due_jobs(&self, up_to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .by_time
            .iter()
            .take_while(|(t, _)| *t <= up_to)
            .take(limit)
            .filter_map(|(_, id)| inner.jobs.get(id).map(|j| Job::clone(j)))
            .collect())
    }

    async fn next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.lock().by_time.first().map(|(t, _)| *t))
    }

    async fn all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let inner = self.lock();
        let mut jobs: Vec<Job> = inner
            .by_time
            .iter()
            .filter_map(|(_, id)| inner.jobs.get(id).map(|j| Job::clone(j)))
            .collect();
        let mut paused: Vec<Job> = inner
            .jobs
            .values()
            .filter(|j| j.next_run_time.is_none() && !inner.quarantine.contains_key(&j.id))
            .map(|j| Job::clone(j))
            .collect();
        paused.sort_by(|a, b| a.id.cmp(&b.id));
        jobs.extend(paused);
        Ok(jobs)
    }

    async fn add_jobs(&self, jobs: Vec<Job>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let mut seen = std::collections::HashSet::with_capacity(jobs.len());
        for job in &jobs {
            if inner.jobs.contains_key(&job.id) || !seen.insert(&job.id) {
                return Err(StoreError::Conflict { id: job.id.clone() });
            }
        }
        for job in jobs {
            inner.index(&job);
            inner.jobs.insert(job.id.clone(), Box::new(job));
        }
        Ok(())
    }

    async fn quarantine_job(&self, id: &JobId, reason: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.get(id).map(|j| Job::clone(j)) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        inner.unindex(&job);
        inner.quarantine.insert(id.clone(), reason.to_owned());
        Ok(())
    }

    async fn quarantined_jobs(&self) -> Result<Vec<QuarantinedJob>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<QuarantinedJob> = inner
            .quarantine
            .iter()
            .filter_map(|(id, reason)| {
                let job = inner.jobs.get(id)?;
                // A memory job need not be persistable: show its stored form when it has
                // one, its debug rendering otherwise.
                let raw = job
                    .to_stored()
                    .ok()
                    .and_then(|s| serde_json::to_string(&s).ok())
                    .unwrap_or_else(|| format!("{job:?}"));
                Some(QuarantinedJob::new(id.clone(), reason.clone(), raw))
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn release_job(&self, id: &JobId) -> Result<Job, StoreError> {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.get(id).map(|j| Job::clone(j)) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        if inner.quarantine.remove(id).is_some() {
            inner.index(&job);
        }
        Ok(job)
    }
}
