//! The job store contract of the `sched` job scheduler, and its backends.
//!
//! A store keeps jobs and answers "which jobs are due up to this time" and "when is the next
//! run" in order of next run time. [`JobStore`] is the contract every backend implements
//! with plain `async fn`s; [`BoxJobStore`] erases a backend's type so a scheduler can hold
//! several stores by name; [`StoreError`] reports failures the same way for every backend.
//! [`MemoryStore`] is the default store. The [`conformance`] suite is the contract as code:
//! every backend runs it.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use sched_core::job::{Job, JobId, JobTrigger, TaskRef};
//! use sched_core::{Trigger, Zone};
//! use sched_stores::{JobStore, MemoryStore, StoreErrorKind};
//!
//! # #[derive(Debug)] struct Never;
//! # impl Trigger for Never {
//! #     fn next_fire_time(&self, _: Option<chrono::DateTime<Utc>>, _: chrono::DateTime<Utc>) -> Option<chrono::DateTime<Utc>> { None }
//! #     fn zone(&self) -> Zone { Zone::UTC }
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let noon = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
//!
//! let mut job = Job::new(
//!     JobId::new("report")?,
//!     TaskRef::named("send_report", serde_json::json!({"to": "ops"})),
//!     JobTrigger::dynamic(Never),
//! );
//! job.next_run_time = Some(noon);
//! store.add_job(job.clone()).await?;
//!
//! // The same id again is a conflict, whatever the backend.
//! let err = store.add_job(job).await.unwrap_err();
//! assert_eq!(err.kind(), StoreErrorKind::Conflict);
//!
//! assert_eq!(store.next_run_time().await?, Some(noon));
//! assert_eq!(store.due_jobs(noon, 100).await?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod boxed;
pub mod conformance;
mod error;
mod memory;
mod store;

pub use boxed::BoxJobStore;
pub use error::{BoxError, StoreError, StoreErrorKind};
pub use memory::MemoryStore;
pub use store::JobStore;
