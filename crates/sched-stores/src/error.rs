//! The one error type every store returns.

use sched_core::job::{JobId, NotPersistable};
use thiserror::Error;

/// A boxed error from a backend driver, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store call failed.
///
/// Every backend reports the same situation with the same variant, so callers branch on
/// [`StoreError::kind`] and never on backend error codes: "this id already exists" is
/// [`StoreError::Conflict`] for memory, SQLite, PostgreSQL and Redis alike.
///
/// [`Unavailable`](StoreError::Unavailable) is **transient** (the server is down, a
/// connection dropped, a lock timed out): the same call may succeed later, and the
/// dispatcher retries it with backoff. The other variants are **permanent** for the given
/// input: retrying the same call fails the same way.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A job with this id is already in the store.
    #[error("job {id} already exists")]
    Conflict {
        /// The id.
        id: JobId,
    },
    /// No job with this id is in the store.
    #[error("job {id} not found")]
    NotFound {
        /// The id.
        id: JobId,
    },
    /// The store cannot be reached or did not answer in time.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A job cannot be written (a closure task, a trigger without a spec) or what is
    /// stored cannot be read back.
    #[error("cannot store or load job{}: {message}", id.as_ref().map(|id| format!(" {id}")).unwrap_or_default())]
    Serialization {
        /// The job, when known.
        id: Option<JobId>,
        /// What is wrong.
        message: String,
        /// The serializer's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The store does not implement this operation (a third-party store that predates it).
    #[error("store does not support {operation}")]
    Unsupported {
        /// The operation, such as `quarantine_job`.
        operation: &'static str,
    },
    /// An argument the caller gave cannot be used (such as an empty node id).
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What is wrong with it.
        message: String,
    },
}

/// The kind of a [`StoreError`], the same for every backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// See [`StoreError::Conflict`]. Permanent.
    Conflict,
    /// See [`StoreError::NotFound`]. Permanent.
    NotFound,
    /// See [`StoreError::Unavailable`]. Transient.
    Unavailable,
    /// See [`StoreError::Serialization`]. Permanent.
    Serialization,
    /// See [`StoreError::Unsupported`]. Permanent.
    Unsupported,
    /// See [`StoreError::InvalidArgument`]. Permanent.
    InvalidArgument,
}

impl StoreError {
    /// The kind of error.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Conflict { .. } => StoreErrorKind::Conflict,
            StoreError::NotFound { .. } => StoreErrorKind::NotFound,
            StoreError::Unavailable { .. } => StoreErrorKind::Unavailable,
            StoreError::Serialization { .. } => StoreErrorKind::Serialization,
            StoreError::Unsupported { .. } => StoreErrorKind::Unsupported,
            StoreError::InvalidArgument { .. } => StoreErrorKind::InvalidArgument,
        }
    }

    /// Whether the same call may succeed later (only [`StoreError::Unavailable`]).
    pub fn is_transient(&self) -> bool {
        self.kind() == StoreErrorKind::Unavailable
    }

    /// Whether this is [`StoreError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        self.kind() == StoreErrorKind::Conflict
    }

    /// Whether this is [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind() == StoreErrorKind::NotFound
    }

    /// An [`StoreError::Unavailable`] with a message and an optional driver error.
    pub fn unavailable(message: impl Into<String>, source: Option<BoxError>) -> StoreError {
        StoreError::Unavailable {
            message: message.into(),
            source,
        }
    }
}

impl StoreError {
    /// A [`StoreError::InvalidArgument`] saying what is wrong.
    pub fn invalid_argument(message: impl Into<String>) -> StoreError {
        StoreError::InvalidArgument {
            message: message.into(),
        }
    }

    /// A [`StoreError::Serialization`] about what is stored for job `id`.
    pub fn serialization(
        id: Option<JobId>,
        message: impl Into<String>,
        source: Option<BoxError>,
    ) -> StoreError {
        StoreError::Serialization {
            id,
            message: message.into(),
            source,
        }
    }
}

impl From<NotPersistable> for StoreError {
    fn from(e: NotPersistable) -> StoreError {
        StoreError::Serialization {
            id: Some(e.id.clone()),
            message: e.reason.clone(),
            source: Some(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_messages() {
        let id = JobId::new("j1").unwrap();
        let e = StoreError::Conflict { id: id.clone() };
        assert!(e.is_conflict() && !e.is_transient());
        assert_eq!(e.to_string(), "job j1 already exists");
        let e = StoreError::NotFound { id: id.clone() };
        assert!(e.is_not_found());
        let e = StoreError::unavailable("connection refused", None);
        assert!(e.is_transient());
        assert_eq!(e.kind(), StoreErrorKind::Unavailable);
        let e: StoreError = NotPersistable {
            id,
            reason: "closure".into(),
        }
        .into();
        assert_eq!(e.kind(), StoreErrorKind::Serialization);
        assert_eq!(e.to_string(), "cannot store or load job j1: closure");
        let e = StoreError::Unsupported {
            operation: "quarantine_job",
        };
        assert_eq!(e.kind(), StoreErrorKind::Unsupported);
        assert!(!e.is_transient());
        assert_eq!(e.to_string(), "store does not support quarantine_job");
    }
}
