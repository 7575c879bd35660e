//! [`MemoryStore`]: jobs packed in a slab, found by id through a hash map, and an ordered
//! index of next run times.
//!
//! # Layout
//!
//! - **Slab.** Each job is an [`Entry`] in a `Vec` slot (a removed job's slot is reused):
//!   its id, trigger, next run time, and an `Arc` of the options it shares with other jobs
//!   ([`Common`]: name, task, executor, store, misfire grace time, coalescing, instance
//!   limit, jitter, timeout, retry). Jobs added one after the other with the same options —
//!   a program adding many jobs of one task — share one `Common`, so a job costs about 56
//!   bytes here instead of a whole [`Job`] (280).
//! - **By id.** A hash map from id to slot, hashed with foldhash (seeded per process).
//! - **By time.** A B-tree set of [`Key`]s, one per scheduled job that is not quarantined,
//!   ordered by `(next_run_time, id)` as the [`JobStore`] contract says. A key carries the
//!   first eight bytes of the id as a big-endian number, so jobs due at the same instant
//!   are ordered by comparing integers; only ids sharing those eight bytes compare their
//!   text. The key also carries the slot, so the index leads to the job without a lookup.
//!
//! The map, the index and the slab change together under one lock, in critical sections
//! that cannot panic half-way (every insert/remove pair completes or none starts).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet, hash_map};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sched_core::job::{Coalesce, Job, JobId, JobTrigger, RetryPolicy, TaskRef};

use crate::{JobStore, QuarantinedJob, StoreError};

/// A store that keeps jobs in memory: the default store, lost when the process ends.
///
/// It holds any job, closures and trigger objects included. Adding, updating and removing a
/// job cost O(log n), finding the next run time O(log n), and taking `k` due jobs
/// O(log n + k) (see the module docs for the layout). Each call holds a lock only for the
/// map and index operations and completes in its first poll, so every method is cancel
/// safe.
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

/// The options of a job that many jobs usually have in common.
struct Common {
    name: Arc<str>,
    task: TaskRef,
    executor: Arc<str>,
    store: Arc<str>,
    misfire_grace_time: Option<Duration>,
    coalesce: Coalesce,
    max_instances: u32,
    jitter: Option<Duration>,
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
}

impl Common {
    fn of(job: &Job) -> Common {
        Common {
            name: job.name.clone(),
            task: job.task.clone(),
            executor: job.executor.clone(),
            store: job.store.clone(),
            misfire_grace_time: job.misfire_grace_time,
            coalesce: job.coalesce,
            max_instances: job.max_instances,
            jitter: job.jitter,
            timeout: job.timeout,
            retry: job.retry,
        }
    }

    /// Whether `job` has exactly these options.
    fn matches(&self, job: &Job) -> bool {
        // Names usually come from one shared text: compare pointers first.
        let same = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || **a == **b;
        same(&self.name, &job.name)
            && same(&self.executor, &job.executor)
            && same(&self.store, &job.store)
            && self.misfire_grace_time == job.misfire_grace_time
            && self.coalesce == job.coalesce
            && self.max_instances == job.max_instances
            && self.jitter == job.jitter
            && self.timeout == job.timeout
            && self.retry == job.retry
            && self.task.is_same(&job.task)
    }
}

/// One stored job.
struct Entry {
    id: JobId,
    trigger: JobTrigger,
    next_run_time: Option<DateTime<Utc>>,
    quarantined: bool,
    common: Arc<Common>,
}

impl Entry {
    fn to_job(&self) -> Job {
        let c = &*self.common;
        let mut job = Job::new(self.id.clone(), c.task.clone(), self.trigger.clone());
        job.name = c.name.clone();
        job.executor = c.executor.clone();
        job.store = c.store.clone();
        job.misfire_grace_time = c.misfire_grace_time;
        job.coalesce = c.coalesce;
        job.max_instances = c.max_instances;
        job.next_run_time = self.next_run_time;
        job.jitter = c.jitter;
        job.timeout = c.timeout;
        job.retry = c.retry;
        job
    }

    /// The index key, when the job is in the index (scheduled, not quarantined).
    fn key(&self, slot: u32) -> Option<Key> {
        let at = self.next_run_time.filter(|_| !self.quarantined)?;
        Some(Key::new(at, slot, &self.id))
    }
}

/// An entry of the time index, ordered by `(at, id)`; `slot` does not take part.
#[derive(Clone)]
struct Key {
    at: DateTime<Utc>,
    slot: u32,
    /// The id's first eight bytes, big-endian, zero-padded: ordered as the ids are, except
    /// that ids sharing them are equal here and compare their whole text.
    prefix: u64,
    id: JobId,
}

impl Key {
    fn new(at: DateTime<Utc>, slot: u32, id: &JobId) -> Key {
        let bytes = id.as_str().as_bytes();
        let mut head = [0u8; 8];
        let n = bytes.len().min(8);
        head[..n].copy_from_slice(&bytes[..n]);
        Key {
            at,
            slot,
            prefix: u64::from_be_bytes(head),
            id: id.clone(),
        }
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        self.at
            .cmp(&other.at)
            .then(self.prefix.cmp(&other.prefix))
            .then_with(|| {
                self.id
                    .as_str()
                    .as_bytes()
                    .cmp(other.id.as_str().as_bytes())
            })
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

#[derive(Default)]
struct Inner {
    /// The jobs; `None` is a free slot, listed in `free`.
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: HashMap<JobId, u32, foldhash::quality::RandomState>,
    by_time: BTreeSet<Key>,
    /// Reasons of quarantined jobs; those are in the slab but not in `by_time`.
    quarantine: HashMap<JobId, String>,
    /// The options of the job written last, shared with the next job that has the same.
    last_common: Option<Arc<Common>>,
}

impl Inner {
    fn entry(&self, slot: u32) -> &Entry {
        self.slots[slot as usize]
            .as_ref()
            .expect("the map and the index only name occupied slots")
    }

    /// The shared options for `job`: `current` or the last written ones when they match.
    fn common(&mut self, job: &Job, current: Option<&Arc<Common>>) -> Arc<Common> {
        if let Some(c) = current.filter(|c| c.matches(job)) {
            return c.clone();
        }
        if let Some(c) = self.last_common.as_ref().filter(|c| c.matches(job)) {
            return c.clone();
        }
        let c = Arc::new(Common::of(job));
        self.last_common = Some(c.clone());
        c
    }

    /// Adds a job unless its id is stored (`Err` with the id then).
    fn insert(&mut self, job: Job) -> Result<(), JobId> {
        let slot = self.free.last().copied().unwrap_or_else(|| {
            u32::try_from(self.slots.len()).expect("fewer than 2^32 jobs in memory")
        });
        match self.by_id.entry(job.id.clone()) {
            hash_map::Entry::Occupied(_) => return Err(job.id),
            hash_map::Entry::Vacant(v) => v.insert(slot),
        };
        if self.free.pop().is_none() {
            self.slots.push(None);
        }
        let common = self.common(&job, None);
        let entry = Entry {
            id: job.id,
            trigger: job.trigger,
            next_run_time: job.next_run_time,
            quarantined: false,
            common,
        };
        if let Some(key) = entry.key(slot) {
            self.by_time.insert(key);
        }
        self.slots[slot as usize] = Some(entry);
        Ok(())
    }

    fn all_jobs(&self) -> Vec<Job> {
        let mut jobs: Vec<Job> = self
            .by_time
            .iter()
            .map(|k| self.entry(k.slot).to_job())
            .collect();
        let mut paused: Vec<&Entry> = self
            .slots
            .iter()
            .flatten()
            .filter(|e| e.next_run_time.is_none() && !e.quarantined)
            .collect();
        paused.sort_by(|a, b| a.id.cmp(&b.id));
        jobs.extend(paused.into_iter().map(Entry::to_job));
        jobs
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many jobs the store holds.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether the store holds no job.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The critical sections cannot leave the slab, map and index out of step when they
        // panic (every insert/remove pair completes or none starts), so a poisoned lock
        // holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("jobs", &inner.by_id.len())
            .field("scheduled", &inner.by_time.len())
            .finish()
    }
}

impl JobStore for MemoryStore {
    async fn add_job(&self, job: Job) -> Result<(), StoreError> {
        self.lock()
            .insert(job)
            .map_err(|id| StoreError::Conflict { id })
    }

    async fn update_job(&self, job: Job) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(&slot) = inner.by_id.get(&job.id) else {
            return Err(StoreError::NotFound { id: job.id });
        };
        let current = inner.entry(slot).common.clone();
        let common = inner.common(&job, Some(&current));
        let entry = inner.slots[slot as usize]
            .as_mut()
            .expect("the map only names occupied slots");
        if entry.next_run_time != job.next_run_time {
            if let Some(old) = entry.key(slot) {
                inner.by_time.remove(&old);
            }
            entry.next_run_time = job.next_run_time;
            if let Some(new) = entry.key(slot) {
                inner.by_time.insert(new);
            }
        }
        entry.trigger = job.trigger;
        entry.common = common;
        Ok(())
    }

    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Some(slot) = inner.by_id.remove(id) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        let entry = inner.slots[slot as usize]
            .take()
            .expect("the map only names occupied slots");
        if let Some(key) = entry.key(slot) {
            inner.by_time.remove(&key);
        }
        if entry.quarantined {
            inner.quarantine.remove(id);
        }
        inner.free.push(slot);
        Ok(())
    }

    async fn remove_all_jobs(&self) -> Result<(), StoreError> {
        *self.lock() = Inner::default();
        Ok(())
    }

    async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let inner = self.lock();
        Ok(inner.by_id.get(id).map(|&slot| inner.entry(slot).to_job()))
    }

    async fn due_jobs(&self, up_to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .by_time
            .iter()
            .take_while(|k| k.at <= up_to)
            .take(limit)
            .map(|k| inner.entry(k.slot).to_job())
            .collect())
    }

    async fn next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.lock().by_time.first().map(|k| k.at))
    }

    async fn all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(self.lock().all_jobs())
    }

    async fn add_jobs(&self, jobs: Vec<Job>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let mut seen = HashSet::with_capacity(jobs.len());
        for job in &jobs {
            if inner.by_id.contains_key(&job.id) || !seen.insert(&job.id) {
                return Err(StoreError::Conflict { id: job.id.clone() });
            }
        }
        for job in jobs {
            // Checked above, under the same lock.
            let _ = inner.insert(job);
        }
        Ok(())
    }

    async fn quarantine_job(&self, id: &JobId, reason: &str) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(&slot) = inner.by_id.get(id) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        let entry = inner.slots[slot as usize]
            .as_mut()
            .expect("the map only names occupied slots");
        if let Some(key) = entry.key(slot) {
            inner.by_time.remove(&key);
        }
        entry.quarantined = true;
        inner.quarantine.insert(id.clone(), reason.to_owned());
        Ok(())
    }

    async fn quarantined_jobs(&self) -> Result<Vec<QuarantinedJob>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<QuarantinedJob> = inner
            .quarantine
            .iter()
            .filter_map(|(id, reason)| {
                let job = inner.entry(*inner.by_id.get(id)?).to_job();
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
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(&slot) = inner.by_id.get(id) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        let entry = inner.slots[slot as usize]
            .as_mut()
            .expect("the map only names occupied slots");
        if inner.quarantine.remove(id).is_some() {
            entry.quarantined = false;
            if let Some(key) = entry.key(slot) {
                inner.by_time.insert(key);
            }
        }
        Ok(entry.to_job())
    }
}
