//! The conformance suite against the memory store, directly and behind `BoxJobStore`.

use chrono::{DateTime, Utc};
use sched_core::job::JobTrigger;
use sched_core::{Trigger, Zone};
use sched_stores::{BoxJobStore, MemoryStore, conformance};

/// A trigger that never fires again: the suite only needs something to put in jobs.
#[derive(Debug)]
struct Never;

impl Trigger for Never {
    fn next_fire_time(&self, _: Option<DateTime<Utc>>, _: DateTime<Utc>) -> Option<DateTime<Utc>> {
        None
    }
    fn zone(&self) -> Zone {
        Zone::UTC
    }
}

#[tokio::test]
async fn memory_store_passes_the_suite() {
    conformance::run(
        || async { MemoryStore::new() },
        || JobTrigger::dynamic(Never),
    )
    .await;
}

#[tokio::test]
async fn boxed_memory_store_passes_the_suite() {
    conformance::run(
        || async { BoxJobStore::new(MemoryStore::new()) },
        || JobTrigger::dynamic(Never),
    )
    .await;
}
