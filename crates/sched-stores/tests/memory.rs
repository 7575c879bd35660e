//! The conformance suite against the memory store, directly and behind `BoxJobStore`.

mod common;

use sched_stores::{BoxJobStore, MemoryStore, conformance};

#[tokio::test]
async fn memory_store_passes_the_suite() {
    conformance::run(|| async { MemoryStore::new() }, common::never_trigger).await;
}

#[tokio::test]
async fn boxed_memory_store_passes_the_suite() {
    conformance::run(
        || async { BoxJobStore::new(MemoryStore::new()) },
        common::never_trigger,
    )
    .await;
}
