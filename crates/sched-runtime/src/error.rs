//! The error of scheduler operations.

use sched_core::job::{JobId, NotPersistable};
use sched_stores::StoreError;
use thiserror::Error;

use crate::cluster::ClusterOptionsError;
use crate::config::ConfigError;

/// Why a scheduler operation failed.
///
/// Only [`SchedulerError::Store`] with a transient store error
/// ([`StoreError::is_transient`]) may succeed when retried as is; every other variant is
/// permanent for the same call.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// No job has this id (in any store, or in the one named).
    #[error("job {id} not found")]
    JobNotFound {
        /// The id.
        id: JobId,
    },
    /// A job with this id exists and `replace_existing` was not set.
    #[error("job {id} already exists in store {store}")]
    JobExists {
        /// The id.
        id: JobId,
        /// The store holding it.
        store: String,
    },
    /// No store has this name.
    #[error("unknown job store {0:?}")]
    UnknownStore(String),
    /// No executor has this name.
    #[error("unknown executor {0:?}")]
    UnknownExecutor(String),
    /// No task is registered under this name.
    #[error("task {0:?} is not registered")]
    UnknownTask(String),
    /// The job cannot go to a persistent store.
    #[error(transparent)]
    NotPersistable(#[from] NotPersistable),
    /// A store call failed.
    #[error("job store {store}: {source}")]
    Store {
        /// The store's name.
        store: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// `start` was called on a scheduler that was already started.
    #[error("the scheduler is already running")]
    AlreadyRunning,
    /// The operation needs a started scheduler.
    #[error("the scheduler is not running")]
    NotRunning,
    /// The scheduler was shut down; it cannot be started again.
    #[error("the scheduler has been shut down")]
    ShutDown,
    /// `run_job_now` found the job at its `max_instances`.
    #[error("job {id} already has its maximum of {max} runs going")]
    MaxInstances {
        /// The job.
        id: JobId,
        /// Its limit.
        max: u32,
    },
    /// `start` was called outside a tokio runtime.
    #[error("the scheduler must be started inside a tokio runtime")]
    NoRuntime,
    /// `add_store` was given a name a store already has.
    #[error("a job store named {0:?} already exists")]
    StoreExists(String),
    /// `add_executor` was given a name an executor already has.
    #[error("an executor named {0:?} already exists")]
    ExecutorExists(String),
    /// A cluster store's options cannot work (see [`ClusterOptionsError`]).
    #[error(transparent)]
    Cluster(#[from] ClusterOptionsError),
    /// The configuration is invalid (see [`ConfigError`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl SchedulerError {
    /// Whether the same call may succeed later as it is: only a transient store error.
    pub fn is_transient(&self) -> bool {
        matches!(self, SchedulerError::Store { source, .. } if source.is_transient())
    }

    pub(crate) fn store(store: &str, source: StoreError) -> SchedulerError {
        SchedulerError::Store {
            store: store.to_owned(),
            source,
        }
    }
}
