//! Property test: random sequences of operations on a [`MemoryStore`] give the same results
//! as a plain model (a map by id, sorted on every read). Next run times come from a few
//! instants, so many jobs share one and the store's same-instant buckets grow, are sorted,
//! taken from batch after batch, get jobs added after sorting, and shrink again; ids share
//! long prefixes, so ordering falls back from the integer prefix to the whole id.

mod common;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use sched_core::job::{Job, JobId, TaskRef};
use sched_stores::{JobStore, MemoryStore, StoreError, StoreErrorKind};
use serde_json::json;

/// How many distinct ids the operations use.
const IDS: usize = 48;

/// Id `n`: short ones, ones sharing 16 bytes or more, and ones differing only late.
fn id(n: usize) -> JobId {
    let text = match n % 4 {
        0 => format!("{n}"),
        1 => format!("job-0000000000000000-{n:03}"),
        2 => format!("job-000000000000{n:03}"),
        _ => format!("z{}", "x".repeat(n % 7)) + &n.to_string(),
    };
    JobId::new(text).expect("non-empty")
}

/// Instant `k` of a few: several jobs land on each.
fn at(k: u8) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
        + Duration::milliseconds(i64::from(k) * 1500)
}

fn time() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![4 => (0u8..5).prop_map(Some), 1 => Just(None)]
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize, Option<u8>),
    AddBatch(Vec<(usize, Option<u8>)>),
    Update(usize, Option<u8>, u32),
    Advance(usize, Option<u8>),
    Remove(usize),
    Quarantine(usize),
    Release(usize),
    Due(u8, bool, usize),
    Next,
    All,
    Lookup(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let ix = 0..IDS;
    prop_oneof![
        8 => (ix.clone(), time()).prop_map(|(i, t)| Op::Add(i, t)),
        1 => proptest::collection::vec((ix.clone(), time()), 0..6).prop_map(Op::AddBatch),
        3 => (ix.clone(), time(), 1u32..4).prop_map(|(i, t, m)| Op::Update(i, t, m)),
        3 => (ix.clone(), time()).prop_map(|(i, t)| Op::Advance(i, t)),
        4 => ix.clone().prop_map(Op::Remove),
        1 => ix.clone().prop_map(Op::Quarantine),
        1 => ix.clone().prop_map(Op::Release),
        4 => (0u8..6, any::<bool>(), 0usize..10).prop_map(|(t, e, l)| Op::Due(t, e, l)),
        1 => Just(Op::Next),
        1 => Just(Op::All),
        1 => ix.prop_map(Op::Lookup),
    ]
}

/// A job of the model: what the store must give back.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    next: Option<DateTime<Utc>>,
    /// Stands for the fields other than the next run time.
    max_instances: u32,
    quarantined: bool,
}

/// What a job read from the store is compared by.
type Seen = (String, Option<DateTime<Utc>>, u32);

fn seen(job: &Job) -> Seen {
    (job.id.to_string(), job.next_run_time, job.max_instances)
}

fn model_seen(id: &JobId, m: &Model) -> Seen {
    (id.to_string(), m.next, m.max_instances)
}

fn job(n: usize, t: Option<u8>, max_instances: u32) -> Job {
    let mut j = Job::new(
        id(n),
        TaskRef::named("task", json!({ "n": n })),
        common::never_trigger(),
    );
    j.next_run_time = t.map(at);
    j.max_instances = max_instances;
    j
}

/// The scheduled, unquarantined jobs of the model by `(time, id)`, byte-wise.
fn scheduled(model: &BTreeMap<JobId, Model>) -> Vec<Seen> {
    let mut v: Vec<(DateTime<Utc>, &JobId, &Model)> = model
        .iter()
        .filter(|(_, m)| !m.quarantined)
        .filter_map(|(id, m)| Some((m.next?, id, m)))
        .collect();
    v.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.as_str().as_bytes().cmp(b.1.as_str().as_bytes()))
    });
    v.into_iter().map(|(_, id, m)| model_seen(id, m)).collect()
}

fn kind<T>(r: &Result<T, StoreError>) -> Option<StoreErrorKind> {
    r.as_ref().err().map(StoreError::kind)
}

async fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = MemoryStore::new();
    let mut model: BTreeMap<JobId, Model> = BTreeMap::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Add(n, t) => {
                let got = store.add_job(job(n, t, 1)).await;
                let want = match model.entry(id(n)) {
                    Entry::Occupied(_) => Some(StoreErrorKind::Conflict),
                    Entry::Vacant(v) => {
                        v.insert(Model {
                            next: t.map(at),
                            max_instances: 1,
                            quarantined: false,
                        });
                        None
                    }
                };
                prop_assert_eq!(kind(&got), want, "step {}: add {}", step, n);
            }
            Op::AddBatch(batch) => {
                let jobs: Vec<Job> = batch.iter().map(|&(n, t)| job(n, t, 1)).collect();
                let got = store.add_jobs(jobs).await;
                let mut ids: Vec<usize> = batch.iter().map(|b| b.0).collect();
                ids.sort_unstable();
                ids.dedup();
                let clash =
                    ids.len() < batch.len() || batch.iter().any(|b| model.contains_key(&id(b.0)));
                if !clash {
                    for &(n, t) in &batch {
                        model.insert(
                            id(n),
                            Model {
                                next: t.map(at),
                                max_instances: 1,
                                quarantined: false,
                            },
                        );
                    }
                }
                prop_assert_eq!(
                    kind(&got),
                    clash.then_some(StoreErrorKind::Conflict),
                    "step {}: add_jobs",
                    step
                );
            }
            Op::Update(n, t, m) => {
                let got = store.update_job(job(n, t, m)).await;
                let want = match model.get_mut(&id(n)) {
                    Some(e) => {
                        e.next = t.map(at);
                        e.max_instances = m;
                        None
                    }
                    None => Some(StoreErrorKind::NotFound),
                };
                prop_assert_eq!(kind(&got), want, "step {}: update {}", step, n);
            }
            Op::Advance(n, t) => {
                // The job as the caller last saw it would carry other fields; the memory
                // store keeps the stored ones, which the model checks (max_instances 9 is
                // never stored).
                let got = store.advance_job(&job(n, Some(0), 9), t.map(at)).await;
                let want = match model.get_mut(&id(n)) {
                    Some(e) => {
                        e.next = t.map(at);
                        None
                    }
                    None => Some(StoreErrorKind::NotFound),
                };
                prop_assert_eq!(kind(&got), want, "step {}: advance {}", step, n);
            }
            Op::Remove(n) => {
                let got = store.remove_job(&id(n)).await;
                let want = match model.remove(&id(n)) {
                    Some(_) => None,
                    None => Some(StoreErrorKind::NotFound),
                };
                prop_assert_eq!(kind(&got), want, "step {}: remove {}", step, n);
            }
            Op::Quarantine(n) => {
                let got = store.quarantine_job(&id(n), "test").await;
                let want = match model.get_mut(&id(n)) {
                    Some(e) => {
                        e.quarantined = true;
                        None
                    }
                    None => Some(StoreErrorKind::NotFound),
                };
                prop_assert_eq!(kind(&got), want, "step {}: quarantine {}", step, n);
            }
            Op::Release(n) => {
                let got = store.release_job(&id(n)).await;
                match model.get_mut(&id(n)) {
                    Some(e) => {
                        e.quarantined = false;
                        let job = got.map_err(|e| {
                            TestCaseError::fail(format!("step {step}: release {n}: {e}"))
                        })?;
                        prop_assert_eq!(seen(&job), model_seen(&id(n), e), "step {}", step);
                    }
                    None => prop_assert_eq!(
                        kind(&got),
                        Some(StoreErrorKind::NotFound),
                        "step {}: release {}",
                        step,
                        n
                    ),
                }
            }
            Op::Due(t, exact, limit) => {
                // Exactly at an instant (the bound is inclusive) or just before it.
                let up_to = at(t) - Duration::milliseconds(if exact { 0 } else { 1 });
                let got = store.due_jobs(up_to, limit).await.expect("due_jobs");
                let want: Vec<Seen> = scheduled(&model)
                    .into_iter()
                    .filter(|s| s.1.is_some_and(|next| next <= up_to))
                    .take(limit)
                    .collect();
                let got: Vec<Seen> = got.iter().map(seen).collect();
                prop_assert_eq!(got, want, "step {}: due_jobs({}, {})", step, t, limit);
            }
            Op::Next => {
                let got = store.next_run_time().await.expect("next_run_time");
                let want = scheduled(&model).first().and_then(|s| s.1);
                prop_assert_eq!(got, want, "step {}: next_run_time", step);
            }
            Op::All => {
                let got: Vec<Seen> = store
                    .all_jobs()
                    .await
                    .expect("all")
                    .iter()
                    .map(seen)
                    .collect();
                let mut want = scheduled(&model);
                let mut paused: Vec<(&JobId, &Model)> = model
                    .iter()
                    .filter(|(_, m)| m.next.is_none() && !m.quarantined)
                    .collect();
                paused.sort_by(|a, b| a.0.as_str().as_bytes().cmp(b.0.as_str().as_bytes()));
                want.extend(paused.into_iter().map(|(id, m)| model_seen(id, m)));
                prop_assert_eq!(got, want, "step {}: all_jobs", step);
            }
            Op::Lookup(n) => {
                let got = store
                    .lookup_job(&id(n))
                    .await
                    .expect("lookup")
                    .map(|j| seen(&j));
                let want = model.get(&id(n)).map(|m| model_seen(&id(n), m));
                prop_assert_eq!(got, want, "step {}: lookup {}", step, n);
            }
        }
        prop_assert_eq!(store.len(), model.len(), "step {}: len", step);
    }
    // Everything left comes out in order, batch after batch, as a dispatcher takes it.
    let mut want = scheduled(&model).into_iter();
    loop {
        let batch = store.due_jobs(at(200), 3).await.expect("due");
        if batch.is_empty() {
            break;
        }
        for j in &batch {
            prop_assert_eq!(Some(seen(j)), want.next(), "drain");
            store.remove_job(&j.id).await.expect("remove");
        }
    }
    prop_assert_eq!(want.next(), None, "drain: everything came out");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn memory_store_matches_the_model(ops in proptest::collection::vec(op(), 1..400)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(check(ops))?;
    }
}
