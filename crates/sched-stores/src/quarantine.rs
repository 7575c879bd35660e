//! [`QuarantinedJob`]: a job set aside instead of deleted.

use sched_core::job::JobId;

/// A job a store keeps aside: its task is not registered, its arguments no longer
/// deserialize, or what is stored cannot be read back (an unknown format version, corrupt
/// text, a trigger spec that no longer parses).
///
/// Listed by [`JobStore::quarantined_jobs`](crate::JobStore::quarantined_jobs) and brought
/// back by [`JobStore::release_job`](crate::JobStore::release_job).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuarantinedJob {
    /// The job's id.
    pub id: JobId,
    /// Why it was set aside.
    pub reason: String,
    /// The text the store holds for it, exactly as stored (the stored job's JSON for a
    /// persistent store; a debug rendering for a memory job that has no stored form).
    pub raw: String,
}

impl QuarantinedJob {
    /// A quarantined job.
    pub fn new(id: JobId, reason: impl Into<String>, raw: impl Into<String>) -> QuarantinedJob {
        QuarantinedJob {
            id,
            reason: reason.into(),
            raw: raw.into(),
        }
    }
}
