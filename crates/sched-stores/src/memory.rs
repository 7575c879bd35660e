//! [`MemoryStore`]: jobs packed in a slab, found by id through a hash map, and an index of
//! next run times that groups the jobs due at the same instant.
//!
//! # Layout
//!
//! - **Slab.** Each job is an [`Entry`] in a `Vec` slot (a removed job's slot is reused):
//!   its id, trigger, next run time, its place in the time index, and an `Arc` of the
//!   options it shares with other jobs ([`Common`]: name, task, executor, store, misfire
//!   grace time, coalescing, instance limit, jitter, timeout, retry). Jobs added one after
//!   the other with the same options — a program adding many jobs of one task — share one
//!   `Common`, so a job costs about 56 bytes here instead of a whole [`Job`] (280).
//! - **By id.** A hash map from each id's hash (foldhash, seeded per process) to its slot,
//!   16 bytes a job, whose growth rehashes without reading any id's text; the slab entry
//!   the hash leads to confirms the id. An id whose hash is another stored id's — almost
//!   never — is kept by id in a second map ([`Ids`]).
//! - **By time.** A B-tree map from each instant at which some job is due (scheduled, not
//!   quarantined), as one integer ([`TimeKey`]), to the [`Bucket`] of the jobs due then.
//!   A bucket of one job is just its slot, with no allocation of its own: jobs at distinct
//!   instants cost one small map entry each. A bucket of several jobs is a [`Group`]: a
//!   `Vec` of slots (the *run*) that adding a job appends to, in O(1). The jobs appended
//!   since the bucket was last read in order ([`due_jobs`](JobStore::due_jobs),
//!   [`all_jobs`](JobStore::all_jobs)) are ordered by id when it is read next: the whole
//!   bucket is sorted again when they are as many as the others, or else they go into a
//!   small B-tree set of the bucket that reads merge with the run, so ordering costs
//!   O(log n) amortized per job added. Each job in a run knows its position there, so it
//!   leaves in O(1): its position becomes a tombstone. A read that skips tombstones at the
//!   front of the run moves them behind a consumed-head cursor, and a run more than half
//!   tombstones is compacted, so taking the jobs of a big bucket batch after batch,
//!   removing or rescheduling each, costs O(1) amortized per job.
//!
//! Within a bucket, the order is by id, so `due_jobs` and `all_jobs` come out in
//! `(next_run_time, id)` order as the [`JobStore`] contract says. Sorting compares the
//! first 16 bytes of the ids as integers and reads the whole ids only on a tie.
//!
//! The map, the index and the slab change together under one lock, in critical sections
//! that cannot panic half-way (every insert/remove pair completes or none starts).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, btree_map, hash_map};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sched_core::job::{Coalesce, Job, JobId, JobTrigger, RetryPolicy, TaskRef};

use crate::{JobStore, QuarantinedJob, ScheduleChange, ScheduleWrite, StoreError};

/// A store that keeps jobs in memory: the default store, lost when the process ends.
///
/// It holds any job, closures and trigger objects included. Adding a job costs O(1)
/// amortized when jobs are due at its instant already and O(log n) otherwise; updating,
/// advancing and removing a job cost O(log n) amortized, finding the next run time
/// O(log n), and taking `k` due jobs O(log n + k) amortized (jobs added at one instant are
/// ordered by id when that instant is next read in order; see the module docs for the
/// layout). [`advance_job`](JobStore::advance_job) changes the stored time and the index
/// in place, without matching the shared options again or moving a whole job in. Each call
/// holds a lock only for the map and index operations and completes in its first poll, so
/// every method is cancel safe.
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

/// [`Entry::place`] of a quarantined job (in no bucket).
const QUARANTINED: u32 = u32::MAX;
/// [`Entry::place`] of a job in its bucket's [`Group::later`] set.
const IN_LATER: u32 = u32::MAX - 1;
/// A run position whose job has left the bucket.
const TOMB: u32 = u32::MAX;

/// One stored job.
struct Entry {
    id: JobId,
    trigger: JobTrigger,
    next_run_time: Option<DateTime<Utc>>,
    /// [`QUARANTINED`]; or, for a job in a bucket of several, its position in the run or
    /// [`IN_LATER`]; 0 otherwise.
    place: u32,
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

    fn quarantined(&self) -> bool {
        self.place == QUARANTINED
    }

    /// The instant of the job's bucket, when it is in the index (scheduled, not
    /// quarantined).
    fn indexed_at(&self) -> Option<DateTime<Utc>> {
        self.next_run_time.filter(|_| !self.quarantined())
    }
}

type Slab = [Option<Entry>];

fn entry(slab: &Slab, slot: u32) -> &Entry {
    slab[slot as usize]
        .as_ref()
        .expect("the map and the index only name occupied slots")
}

fn entry_mut(slab: &mut Slab, slot: u32) -> &mut Entry {
    slab[slot as usize]
        .as_mut()
        .expect("the map and the index only name occupied slots")
}

/// The first 16 bytes of an id, big-endian, zero-padded: ordered as the ids are, except
/// that ids sharing them are equal here.
fn prefix(id: &JobId) -> u128 {
    let bytes = id.as_str().as_bytes();
    let mut head = [0u8; 16];
    let n = bytes.len().min(16);
    head[..n].copy_from_slice(&bytes[..n]);
    u128::from_be_bytes(head)
}

/// Ids compared byte-wise, as the contract orders them.
fn cmp_ids(a: &JobId, b: &JobId) -> Ordering {
    a.as_str().as_bytes().cmp(b.as_str().as_bytes())
}

/// The id map: from each id's hash to its job's slot.
///
/// Keying by the hash (foldhash, seeded per process) keeps the table small (16 bytes a
/// job) and lets it grow without reading any id's text again; the id is checked against
/// the slab entry the hash leads to. Ids whose hash is another stored id's — almost never
/// — are kept by id in `collided`, which every method checks only when it is not empty.
#[derive(Default)]
struct Ids {
    seed: foldhash::quality::RandomState,
    by_hash: HashMap<u64, u32, BuildHasherDefault<HashIsKey>>,
    collided: HashMap<JobId, u32, foldhash::quality::RandomState>,
}

impl Ids {
    fn hash(&self, id: &JobId) -> u64 {
        let hash = self.seed.hash_one(id);
        // The unit tests make most ids collide.
        if cfg!(test) { hash & 7 } else { hash }
    }

    fn len(&self) -> usize {
        self.by_hash.len() + self.collided.len()
    }

    fn get(&self, slab: &Slab, id: &JobId) -> Option<u32> {
        if let Some(&slot) = self.by_hash.get(&self.hash(id))
            && entry(slab, slot).id == *id
        {
            return Some(slot);
        }
        if self.collided.is_empty() {
            return None;
        }
        self.collided.get(id).copied()
    }

    /// Records that `id` is at `slot`, unless it is stored already (`false` then).
    fn insert(&mut self, slab: &Slab, id: &JobId, slot: u32) -> bool {
        if !self.collided.is_empty() && self.collided.contains_key(id) {
            return false;
        }
        match self.by_hash.entry(self.hash(id)) {
            hash_map::Entry::Vacant(v) => {
                v.insert(slot);
                true
            }
            hash_map::Entry::Occupied(o) => {
                if entry(slab, *o.get()).id == *id {
                    return false;
                }
                self.collided.insert(id.clone(), slot);
                true
            }
        }
    }

    /// Forgets `id` (its job still in the slab); its slot.
    fn remove(&mut self, slab: &Slab, id: &JobId) -> Option<u32> {
        let hash = self.hash(id);
        if let hash_map::Entry::Occupied(o) = self.by_hash.entry(hash)
            && entry(slab, *o.get()).id == *id
        {
            return Some(o.remove());
        }
        if self.collided.is_empty() {
            return None;
        }
        self.collided.remove(id)
    }

    fn reserve(&mut self, more: usize) {
        self.by_hash.reserve(more);
    }
}

/// The hasher of [`Ids::by_hash`], whose keys are hashes already.
#[derive(Default)]
struct HashIsKey(u64);

impl Hasher for HashIsKey {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; this keeps any other use correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// An instant as an integer ordered as the instants are: the Unix timestamp's seconds in
/// the high bits, its nanoseconds (up to 2·10⁹ in a leap second) in the low 32, so index
/// searches compare one integer.
type TimeKey = i128;

fn time_key(at: DateTime<Utc>) -> TimeKey {
    (i128::from(at.timestamp()) << 32) | i128::from(at.timestamp_subsec_nanos())
}

fn key_time(key: TimeKey) -> DateTime<Utc> {
    let secs = i64::try_from(key >> 32).expect("made from a timestamp");
    let nanos = u32::try_from(key & 0xffff_ffff).expect("32 bits");
    // Round-trips: chrono guarantees it for `timestamp` and `timestamp_subsec_nanos`.
    DateTime::from_timestamp(secs, nanos).expect("made from a valid time")
}

/// The jobs due at one instant.
enum Bucket {
    One(u32),
    Many(Box<Group>),
}

/// The jobs due at one instant, when there are several.
///
/// Invariants: `run[head..]` holds every job of the group not in `later`, each at its
/// [`Entry::place`], and `dead` tombstones; positions before `head` are unused.
/// `run[head..sorted]` (tombstones aside) is ordered by id, and `run[sorted..]` holds the
/// jobs appended since, in no order. The group is never empty.
struct Group {
    run: Vec<u32>,
    head: usize,
    sorted: usize,
    dead: usize,
    /// Jobs ordered by id, read merged with the run: those appended after the run was
    /// sorted, when they were few next to it.
    later: BTreeSet<Later>,
}

/// A job in [`Group::later`], ordered by id (the slot does not take part).
struct Later {
    prefix: u128,
    id: JobId,
    slot: u32,
}

impl Later {
    fn new(id: &JobId, slot: u32) -> Later {
        Later {
            prefix: prefix(id),
            id: id.clone(),
            slot,
        }
    }
}

impl Ord for Later {
    fn cmp(&self, other: &Later) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| cmp_ids(&self.id, &other.id))
    }
}

impl PartialOrd for Later {
    fn partial_cmp(&self, other: &Later) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Later {
    fn eq(&self, other: &Later) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Later {}

impl Group {
    /// Checks the invariants of a small group, in debug builds (the tests): O(group size).
    fn debug_check(&self, slab: &Slab) {
        if !cfg!(debug_assertions) || self.run.len() + self.later.len() > 64 {
            return;
        }
        let live = &self.run[self.head..];
        assert_eq!(
            live.iter().filter(|&&slot| slot == TOMB).count(),
            self.dead,
            "dead counts the tombstones after the head"
        );
        for (i, &slot) in live.iter().enumerate() {
            if slot != TOMB {
                assert_eq!(entry(slab, slot).place as usize, self.head + i, "run place");
            }
        }
        for later in &self.later {
            assert_eq!(entry(slab, later.slot).place, IN_LATER, "later place");
        }
        assert!(
            self.head <= self.sorted && self.sorted <= self.run.len(),
            "sorted part"
        );
        let ids: Vec<&JobId> = self.run[self.head..self.sorted]
            .iter()
            .filter(|&&slot| slot != TOMB)
            .map(|&slot| &entry(slab, slot).id)
            .collect();
        assert!(
            ids.windows(2)
                .all(|w| cmp_ids(w[0], w[1]) == Ordering::Less),
            "the sorted part is ordered by id"
        );
    }

    fn len(&self) -> usize {
        self.run.len() - self.head - self.dead + self.later.len()
    }

    fn push(&mut self, slab: &mut Slab, slot: u32) {
        let place = u32::try_from(self.run.len()).expect("fewer jobs than slots");
        self.run.push(slot);
        entry_mut(slab, slot).place = place;
        self.debug_check(slab);
    }

    /// Takes `slot` out; whether the group is empty then.
    fn remove(&mut self, slab: &mut Slab, slot: u32) -> bool {
        let e = entry(slab, slot);
        if e.place == IN_LATER {
            self.later.remove(&Later::new(&e.id, slot));
        } else {
            self.run[e.place as usize] = TOMB;
            self.dead += 1;
        }
        if self.len() == 0 {
            return true;
        }
        self.compact_if_sparse(slab);
        self.debug_check(slab);
        false
    }

    /// Drops the tombstones and the consumed head when they are more than half the run.
    fn compact_if_sparse(&mut self, slab: &mut Slab) {
        if (self.head + self.dead) * 2 <= self.run.len() {
            return;
        }
        let mut w = 0;
        let mut sorted = 0;
        for r in self.head..self.run.len() {
            if r == self.sorted {
                sorted = w;
            }
            let slot = self.run[r];
            if slot != TOMB {
                self.run[w] = slot;
                entry_mut(slab, slot).place = w as u32;
                w += 1;
            }
        }
        if self.sorted == self.run.len() {
            sorted = w;
        }
        self.run.truncate(w);
        if self.run.capacity() > 4 * w + 16 {
            self.run.shrink_to_fit();
        }
        self.head = 0;
        self.sorted = sorted;
        self.dead = 0;
    }

    /// Orders the jobs appended since the last read: few next to the sorted part, into
    /// `later` (O(log n) each); otherwise, the whole group is sorted again into the run
    /// (O(n log n), paid for by the at least n/2 jobs appended or in `later`).
    fn settle(&mut self, slab: &mut Slab) {
        let appended = self.run.len() - self.sorted;
        if appended == 0 {
            return;
        }
        if appended + self.later.len() >= self.sorted - self.head {
            self.sort(slab);
            return;
        }
        for r in self.sorted..self.run.len() {
            let slot = self.run[r];
            if slot == TOMB {
                self.dead -= 1;
            } else {
                self.later.insert(Later::new(&entry(slab, slot).id, slot));
                entry_mut(slab, slot).place = IN_LATER;
            }
        }
        self.run.truncate(self.sorted);
    }

    /// Sorts the whole group by id into the run, dropping its tombstones.
    fn sort(&mut self, slab: &mut Slab) {
        let later = std::mem::take(&mut self.later);
        let mut keyed: Vec<(u128, u32)> = self.run[self.head..]
            .iter()
            .filter(|&&slot| slot != TOMB)
            .map(|&slot| (prefix(&entry(slab, slot).id), slot))
            .chain(later.into_iter().map(|l| (l.prefix, l.slot)))
            .collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| cmp_ids(&entry(slab, a.1).id, &entry(slab, b.1).id))
        });
        self.run.clear();
        for (place, &(_, slot)) in keyed.iter().enumerate() {
            self.run.push(slot);
            entry_mut(slab, slot).place = place as u32;
        }
        self.head = 0;
        self.sorted = self.run.len();
        self.dead = 0;
    }

    /// Appends the first `limit` jobs of the group, by id, to `out`.
    fn take(&mut self, slab: &mut Slab, limit: usize, out: &mut Vec<u32>) {
        self.settle(slab);
        let end = out.len().saturating_add(limit);
        let mut r = self.head;
        let mut tombs = 0;
        let mut later = self.later.iter().peekable();
        while out.len() < end {
            while r < self.run.len() && self.run[r] == TOMB {
                tombs += 1;
                r += 1;
            }
            let from_run = self.run.get(r).copied();
            let from_later = later.peek().map(|l| (l.slot, &l.id));
            match (from_run, from_later) {
                (None, None) => break,
                (Some(slot), None) => {
                    out.push(slot);
                    r += 1;
                }
                (None, Some((slot, _))) => {
                    out.push(slot);
                    later.next();
                }
                (Some(a), Some((b, b_id))) => {
                    if cmp_ids(&entry(slab, a).id, b_id) == Ordering::Less {
                        out.push(a);
                        r += 1;
                    } else {
                        out.push(b);
                        later.next();
                    }
                }
            }
        }
        if tombs > 0 {
            // Move the jobs read from `run[head..r]` behind its tombstones, and the head
            // past these: no later read skips them again.
            let mut w = r;
            for i in (self.head..r).rev() {
                let slot = self.run[i];
                if slot != TOMB {
                    w -= 1;
                    self.run[w] = slot;
                    entry_mut(slab, slot).place = w as u32;
                }
            }
            self.run[self.head..w].fill(TOMB);
            self.head = w;
            self.dead -= tombs;
            self.compact_if_sparse(slab);
        }
        self.debug_check(slab);
    }
}

impl Bucket {
    fn len(&self) -> usize {
        match self {
            Bucket::One(_) => 1,
            Bucket::Many(group) => group.len(),
        }
    }

    fn take(&mut self, slab: &mut Slab, limit: usize, out: &mut Vec<u32>) {
        match self {
            Bucket::One(slot) => {
                if limit > 0 {
                    out.push(*slot);
                }
            }
            Bucket::Many(group) => group.take(slab, limit, out),
        }
    }
}

/// The time index: the buckets by instant.
#[derive(Default)]
struct Index {
    buckets: BTreeMap<TimeKey, Bucket>,
}

impl Index {
    /// Adds the stored, unindexed job `slot` to the bucket of `at`.
    fn insert(&mut self, slab: &mut Slab, slot: u32, at: DateTime<Utc>) {
        match self.buckets.entry(time_key(at)) {
            btree_map::Entry::Vacant(v) => {
                v.insert(Bucket::One(slot));
                entry_mut(slab, slot).place = 0;
            }
            btree_map::Entry::Occupied(mut o) => {
                let bucket = o.get_mut();
                match bucket {
                    Bucket::One(first) => {
                        let first = *first;
                        *bucket = Bucket::Many(Box::new(Group {
                            run: vec![first, slot],
                            head: 0,
                            sorted: 0,
                            dead: 0,
                            later: BTreeSet::new(),
                        }));
                        entry_mut(slab, first).place = 0;
                        entry_mut(slab, slot).place = 1;
                    }
                    Bucket::Many(group) => group.push(slab, slot),
                }
            }
        }
    }

    /// Takes the job `slot` out of the bucket of `at`, where it is.
    fn remove(&mut self, slab: &mut Slab, slot: u32, at: DateTime<Utc>) {
        let btree_map::Entry::Occupied(mut o) = self.buckets.entry(time_key(at)) else {
            unreachable!("an indexed job is in the bucket of its time");
        };
        let empty = match o.get_mut() {
            Bucket::One(_) => true,
            Bucket::Many(group) => group.remove(slab, slot),
        };
        if empty {
            o.remove();
        }
    }

    /// Appends to `out` the first `limit` jobs by `(time, id)` of those due at or before
    /// `up_to` (all when `None`).
    fn take(
        &mut self,
        slab: &mut Slab,
        up_to: Option<DateTime<Utc>>,
        limit: usize,
        out: &mut Vec<u32>,
    ) {
        let end = out.len().saturating_add(limit);
        let up_to = up_to.map_or(TimeKey::MAX, time_key);
        // Not `range_mut`: it finds both ends of the range up front, where this walks from
        // the first bucket only as far as it takes.
        for (&at, bucket) in &mut self.buckets {
            if out.len() >= end || at > up_to {
                break;
            }
            bucket.take(slab, end - out.len(), out);
        }
    }

    fn first(&self) -> Option<DateTime<Utc>> {
        self.buckets.first_key_value().map(|(&at, _)| key_time(at))
    }

    fn len(&self) -> usize {
        self.buckets.values().map(Bucket::len).sum()
    }
}

#[derive(Default)]
struct Inner {
    /// The jobs; `None` is a free slot, listed in `free`.
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: Ids,
    by_time: Index,
    /// Reasons of quarantined jobs; those are in the slab but not in `by_time`.
    quarantine: HashMap<JobId, String>,
    /// The options of the job written last, shared with the next job that has the same.
    last_common: Option<Arc<Common>>,
    /// Room for the slots a read takes from the index, kept between reads.
    taken: Vec<u32>,
}

impl Inner {
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
            u32::try_from(self.slots.len())
                .ok()
                .filter(|&slot| slot < IN_LATER)
                .expect("fewer than 2^32 - 2 jobs in memory")
        });
        if !self.by_id.insert(&self.slots, &job.id, slot) {
            return Err(job.id);
        }
        if self.free.pop().is_none() {
            self.slots.push(None);
        }
        let common = self.common(&job, None);
        self.slots[slot as usize] = Some(Entry {
            id: job.id,
            trigger: job.trigger,
            next_run_time: job.next_run_time,
            place: 0,
            common,
        });
        if let Some(at) = job.next_run_time {
            self.by_time.insert(&mut self.slots, slot, at);
        }
        Ok(())
    }

    /// Sets the next run time of the stored job `slot`, moving it in the index.
    fn reschedule(&mut self, slot: u32, next_run_time: Option<DateTime<Utc>>) {
        let e = entry_mut(&mut self.slots, slot);
        if e.next_run_time == next_run_time {
            return;
        }
        let old = e.indexed_at();
        let quarantined = e.quarantined();
        if let Some(at) = old {
            self.by_time.remove(&mut self.slots, slot, at);
        }
        entry_mut(&mut self.slots, slot).next_run_time = next_run_time;
        if let Some(at) = next_run_time.filter(|_| !quarantined) {
            self.by_time.insert(&mut self.slots, slot, at);
        }
    }

    /// Sets the next run time of the job `id`; whether it is stored.
    fn advance(&mut self, id: &JobId, next_run_time: Option<DateTime<Utc>>) -> bool {
        let Some(slot) = self.by_id.get(&self.slots, id) else {
            return false;
        };
        self.reschedule(slot, next_run_time);
        true
    }

    /// Removes the job `id`; whether it was stored.
    fn remove(&mut self, id: &JobId) -> bool {
        let Some(slot) = self.by_id.remove(&self.slots, id) else {
            return false;
        };
        if let Some(at) = entry(&self.slots, slot).indexed_at() {
            self.by_time.remove(&mut self.slots, slot, at);
        }
        let e = self.slots[slot as usize]
            .take()
            .expect("the map only names occupied slots");
        if e.quarantined() {
            self.quarantine.remove(id);
        }
        self.free.push(slot);
        true
    }

    /// The first `limit` jobs due at or before `up_to` (all when `None`), by `(time, id)`.
    fn take(&mut self, up_to: Option<DateTime<Utc>>, limit: usize) -> Vec<Job> {
        let mut taken = std::mem::take(&mut self.taken);
        taken.clear();
        self.by_time.take(&mut self.slots, up_to, limit, &mut taken);
        let jobs = taken
            .iter()
            .map(|&slot| entry(&self.slots, slot).to_job())
            .collect();
        if taken.capacity() <= 4096 {
            self.taken = taken;
        }
        jobs
    }

    fn all_jobs(&mut self) -> Vec<Job> {
        let mut jobs = self.take(None, usize::MAX);
        let mut paused: Vec<&Entry> = self
            .slots
            .iter()
            .flatten()
            .filter(|e| e.next_run_time.is_none() && !e.quarantined())
            .collect();
        paused.sort_by(|a, b| cmp_ids(&a.id, &b.id));
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
        let Some(slot) = inner.by_id.get(&inner.slots, &job.id) else {
            return Err(StoreError::NotFound { id: job.id });
        };
        let current = entry(&inner.slots, slot).common.clone();
        let common = inner.common(&job, Some(&current));
        inner.reschedule(slot, job.next_run_time);
        let e = entry_mut(&mut inner.slots, slot);
        e.trigger = job.trigger;
        e.common = common;
        Ok(())
    }

    /// Changes only the stored next run time and the job's place in the index: the other
    /// fields of `job` are not read (the stored ones stay).
    async fn advance_job(
        &self,
        job: &Job,
        next_run_time: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        if self.lock().advance(&job.id, next_run_time) {
            Ok(())
        } else {
            Err(StoreError::NotFound { id: job.id.clone() })
        }
    }

    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        if self.lock().remove(id) {
            Ok(())
        } else {
            Err(StoreError::NotFound { id: id.clone() })
        }
    }

    /// The whole batch under one hold of the lock; as [`advance_job`](JobStore::advance_job),
    /// an advance changes only the stored next run time.
    async fn advance_jobs(&self, changes: &[ScheduleChange<'_>]) -> ScheduleWrite {
        let mut inner = self.lock();
        let found = changes
            .iter()
            .map(|change| match *change {
                ScheduleChange::Advance { job, next_run_time } => {
                    inner.advance(&job.id, next_run_time)
                }
                ScheduleChange::Remove(id) => inner.remove(id),
            })
            .collect();
        ScheduleWrite { found, error: None }
    }

    async fn remove_all_jobs(&self) -> Result<(), StoreError> {
        *self.lock() = Inner::default();
        Ok(())
    }

    async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .by_id
            .get(&inner.slots, id)
            .map(|slot| entry(&inner.slots, slot).to_job()))
    }

    async fn due_jobs(&self, up_to: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        Ok(self.lock().take(Some(up_to), limit))
    }

    async fn next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.lock().by_time.first())
    }

    async fn all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(self.lock().all_jobs())
    }

    async fn add_jobs(&self, jobs: Vec<Job>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let mut seen = HashSet::with_capacity(jobs.len());
        for job in &jobs {
            if inner.by_id.get(&inner.slots, &job.id).is_some() || !seen.insert(&job.id) {
                return Err(StoreError::Conflict { id: job.id.clone() });
            }
        }
        inner.by_id.reserve(jobs.len());
        let new_slots = jobs.len().saturating_sub(inner.free.len());
        inner.slots.reserve(new_slots);
        for job in jobs {
            // Checked above, under the same lock.
            let _ = inner.insert(job);
        }
        Ok(())
    }

    async fn quarantine_job(&self, id: &JobId, reason: &str) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(slot) = inner.by_id.get(&inner.slots, id) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        if let Some(at) = entry(&inner.slots, slot).indexed_at() {
            inner.by_time.remove(&mut inner.slots, slot, at);
        }
        entry_mut(&mut inner.slots, slot).place = QUARANTINED;
        inner.quarantine.insert(id.clone(), reason.to_owned());
        Ok(())
    }

    async fn quarantined_jobs(&self) -> Result<Vec<QuarantinedJob>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<QuarantinedJob> = inner
            .quarantine
            .iter()
            .filter_map(|(id, reason)| {
                let job = entry(&inner.slots, inner.by_id.get(&inner.slots, id)?).to_job();
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
        let Some(slot) = inner.by_id.get(&inner.slots, id) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        if inner.quarantine.remove(id).is_some() {
            let e = entry_mut(&mut inner.slots, slot);
            e.place = 0;
            if let Some(at) = e.next_run_time {
                inner.by_time.insert(&mut inner.slots, slot, at);
            }
        }
        Ok(entry(&inner.slots, slot).to_job())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{NaiveDate, TimeZone};
    use sched_core::{Trigger, Zone};

    use super::*;
    use crate::conformance;

    #[derive(Debug)]
    struct Never;

    impl Trigger for Never {
        fn next_fire_time(
            &self,
            _: Option<DateTime<Utc>>,
            _: DateTime<Utc>,
        ) -> Option<DateTime<Utc>> {
            None
        }
        fn zone(&self) -> Zone {
            Zone::UTC
        }
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    /// In unit tests, ids hash to eight values: the suite runs with most ids colliding.
    #[test]
    fn passes_the_suite_with_colliding_id_hashes() {
        run(conformance::run(
            || async { MemoryStore::new() },
            || JobTrigger::dynamic(Never),
        ));
    }

    /// Random adds, updates, advances and removes of 200 ids whose hashes collide, checked
    /// against a map after each step.
    #[test]
    fn colliding_id_hashes_find_their_jobs() {
        let at =
            |m: u64| Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::from_secs(m);
        let store = MemoryStore::new();
        let mut model: BTreeMap<String, Option<DateTime<Utc>>> = BTreeMap::new();
        let mut rng = fastrand::Rng::with_seed(7);
        run(async {
            for step in 0..20_000 {
                let name = format!("id-{}", rng.u32(0..200));
                let id = JobId::new(&name).expect("id");
                let next = (rng.u8(0..4) > 0).then(|| at(rng.u64(0..3)));
                let mut job = Job::new(
                    id.clone(),
                    TaskRef::named("t", serde_json::Value::Null),
                    JobTrigger::dynamic(Never),
                );
                job.next_run_time = next;
                match rng.u8(0..4) {
                    0 => {
                        let added = store.add_job(job).await.is_ok();
                        assert_eq!(added, !model.contains_key(&name), "step {step}: add {name}");
                        model.entry(name.clone()).or_insert(next);
                    }
                    1 => {
                        let updated = store.update_job(job).await.is_ok();
                        assert_eq!(updated, model.contains_key(&name), "step {step}: update");
                        if let Some(m) = model.get_mut(&name) {
                            *m = next;
                        }
                    }
                    2 => {
                        let advanced = store.advance_job(&job, next).await.is_ok();
                        assert_eq!(advanced, model.contains_key(&name), "step {step}: advance");
                        if let Some(m) = model.get_mut(&name) {
                            *m = next;
                        }
                    }
                    _ => {
                        let removed = store.remove_job(&id).await.is_ok();
                        assert_eq!(
                            removed,
                            model.remove(&name).is_some(),
                            "step {step}: remove"
                        );
                    }
                }
                let got = store.lookup_job(&id).await.expect("lookup");
                assert_eq!(
                    got.map(|j| j.next_run_time),
                    model.get(&name).copied(),
                    "step {step}: lookup {name}"
                );
                assert_eq!(store.len(), model.len(), "step {step}: len");
            }
            let all = store.all_jobs().await.expect("all");
            assert_eq!(all.len(), model.len(), "all jobs listed once");
        });
    }

    #[test]
    fn time_keys_round_trip_in_order() {
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .expect("a leap second")
            .and_utc();
        let times = [
            DateTime::<Utc>::MIN_UTC,
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            DateTime::UNIX_EPOCH - chrono::Duration::nanoseconds(1),
            DateTime::UNIX_EPOCH,
            Utc.with_ymd_and_hms(2016, 12, 31, 23, 59, 59).unwrap()
                + chrono::Duration::nanoseconds(999_999_999),
            leap,
            Utc.with_ymd_and_hms(2017, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2017, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::nanoseconds(1),
            DateTime::<Utc>::MAX_UTC,
        ];
        for w in times.windows(2) {
            assert!(w[0] < w[1], "the samples are in order");
            assert!(time_key(w[0]) < time_key(w[1]), "{} < {}", w[0], w[1]);
        }
        for t in times {
            assert_eq!(key_time(time_key(t)), t, "round trip of {t}");
        }
    }
}
