//! The job store contract of the `sched` job scheduler, and its backends.
//!
//! A store keeps jobs and answers "which jobs are due up to this time" and "when is the next
//! run" in order of next run time. [`JobStore`] is the contract every backend implements
//! with plain `async fn`s; [`BoxJobStore`] erases a backend's type so a scheduler can hold
//! several stores by name; [`StoreError`] reports failures the same way for every backend.
//! [`MemoryStore`] is the default store. The [`conformance`] suite is the contract as code:
//! every backend runs it.
//!
//! # Persistent backends
//!
//! | feature | store | where the jobs are |
//! | --- | --- | --- |
//! | `sqlite` | [`sqlite::SqliteStore`] | one SQLite file (WAL), the embedded default |
//! | `postgres` | [`postgres::PostgresStore`] | a PostgreSQL table |
//! | `mysql` | [`mysql::MySqlStore`] | a MySQL 8 / MariaDB table |
//! | `redis` | [`redis::RedisStore`] | a Redis hash and sorted set |
//!
//! Each keeps a job as text written by a [`JobCodec`] ([`StoredJobCodec`] by default: the
//! JSON of [`StoredJob`](sched_core::job::StoredJob), which carries a format version), next
//! to an indexed next run time, so due jobs and the next run time are index range scans.
//! Each creates and migrates its schema when it opens, under a lock that lets several
//! processes start at once, and records the schema version. [`StoreOptions`] gives a table
//! or key prefix (several schedulers, or tests, in one database), a schema or database, and
//! the codec. A job that cannot be persisted (a closure task, a trigger without a JSON spec)
//! is refused with [`StoreError::Serialization`] naming the job.
//!
//! # Never losing a job
//!
//! A stored job that cannot be read back (an unknown format version, corrupt text, a
//! trigger spec that no longer parses) does not make [`JobStore::due_jobs`] or
//! [`JobStore::all_jobs`] fail for the others, and is never deleted: the store
//! *quarantines* it, keeping the text and the reason. The runtime quarantines a job whose
//! task is not registered or whose arguments no longer deserialize with
//! [`JobStore::quarantine_job`]. [`JobStore::quarantined_jobs`] lists them and
//! [`JobStore::release_job`] brings one back once it can run again.
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
mod codec;
pub mod conformance;
mod error;
pub mod lease;
mod memory;
mod options;
mod quarantine;
mod store;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sql;

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use boxed::BoxJobStore;
pub use codec::{JobCodec, StoredJobCodec};
pub use error::{BoxError, StoreError, StoreErrorKind};
pub use lease::{
    Adopted, BoxLeaseStore, ChangeFeed, Claim, Commit, CommitRequest, Finished, FireId, Heartbeat,
    LeaseStore, NodeInfo, NodeRecord, RunningFire,
};
pub use memory::MemoryStore;
pub use options::StoreOptions;
pub use quarantine::QuarantinedJob;
pub use store::{JobStore, ScheduleChange, ScheduleWrite};
