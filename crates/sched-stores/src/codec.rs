//! How a persistent store turns a [`Job`] into text and back.

use std::fmt;

use sched_core::job::{Job, JobId, StoredJob};
use serde_json::Value;

use crate::StoreError;

/// Turns jobs into the text a persistent store writes, and that text back into jobs.
///
/// Every persistent store in this crate uses [`StoredJobCodec`] unless told otherwise; a
/// codec of your own can persist trigger kinds of your own (a [`JobTrigger::Dynamic`]
/// trigger has no JSON spec, so the default codec refuses it). A codec must be able to
/// read what earlier releases of it wrote, or fail: a job it cannot read is quarantined,
/// never deleted.
///
/// [`JobTrigger::Dynamic`]: sched_core::job::JobTrigger::Dynamic
pub trait JobCodec: fmt::Debug + Send + Sync + 'static {
    /// The stored text of `job`.
    ///
    /// # Errors
    /// [`StoreError::Serialization`] naming the job when it cannot be persisted.
    fn encode(&self, job: &Job) -> Result<String, StoreError>;

    /// The job stored as `text`.
    ///
    /// # Errors
    /// [`StoreError::Serialization`] saying what is wrong with the text; the store
    /// quarantines the job with that message as the reason.
    fn decode(&self, text: &str) -> Result<Job, StoreError>;
}

/// The default codec: a job is the JSON of its [`StoredJob`] form, which carries a format
/// version ([`StoredJob::FORMAT`]).
///
/// Encoding fails for a job whose task is a closure or whose trigger has no JSON spec (the
/// error names the job, as APScheduler's "cannot determine a reference to the callable").
/// Decoding refuses a format version newer than this release reads, so that a node of an
/// older release sharing the store during a rolling upgrade quarantines such a job instead
/// of misreading it.
///
/// ```
/// use sched_core::job::{Job, JobId, JobTrigger, LocalTask, TaskRef};
/// use sched_core::{Trigger, Zone};
/// use sched_stores::{JobCodec, StoreErrorKind, StoredJobCodec};
/// # #[derive(Debug)] struct Never;
/// # impl Trigger for Never {
/// #     fn next_fire_time(&self, _: Option<chrono::DateTime<chrono::Utc>>, _: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> { None }
/// #     fn zone(&self) -> Zone { Zone::UTC }
/// # }
///
/// let closure = Job::new(
///     JobId::new("tick")?,
///     TaskRef::Local(LocalTask::new("tick", ())),
///     JobTrigger::dynamic(Never),
/// );
/// let err = StoredJobCodec.encode(&closure).unwrap_err();
/// assert_eq!(err.kind(), StoreErrorKind::Serialization);
/// assert!(err.to_string().contains("job tick"));
///
/// let err = StoredJobCodec.decode(r#"{"format": 99, "id": "x"}"#).unwrap_err();
/// assert!(err.to_string().contains("format version 99"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredJobCodec;

impl JobCodec for StoredJobCodec {
    fn encode(&self, job: &Job) -> Result<String, StoreError> {
        let stored = job.to_stored()?;
        serde_json::to_string(&stored).map_err(|e| {
            StoreError::serialization(
                Some(job.id.clone()),
                format!("cannot write it as JSON: {e}"),
                Some(Box::new(e)),
            )
        })
    }

    fn decode(&self, text: &str) -> Result<Job, StoreError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            StoreError::serialization(None, format!("not valid JSON: {e}"), Some(Box::new(e)))
        })?;
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| JobId::new(s).ok());
        match value.get("format").and_then(Value::as_u64) {
            Some(f) if f >= 1 && f <= u64::from(StoredJob::FORMAT) => {}
            Some(f) => {
                return Err(StoreError::serialization(
                    id,
                    format!(
                        "unsupported format version {f} (this release reads versions 1 to {})",
                        StoredJob::FORMAT
                    ),
                    None,
                ));
            }
            None => {
                return Err(StoreError::serialization(
                    id,
                    "no format version (expected an integer field \"format\")",
                    None,
                ));
            }
        }
        let stored: StoredJob = serde_json::from_value(value)
            .map_err(|e| StoreError::serialization(id.clone(), e.to_string(), Some(Box::new(e))))?;
        Ok(Job::from(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreErrorKind;
    use chrono::{DateTime, Utc};
    use sched_core::job::{JobTrigger, LocalTask, TaskRef};
    use sched_core::{Trigger, Zone};

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

    fn id(s: &str) -> JobId {
        JobId::new(s).unwrap()
    }

    #[test]
    fn closures_and_dynamic_triggers_are_refused_naming_the_job() {
        let job = Job::new(
            id("closure-job"),
            TaskRef::Local(LocalTask::new("tick", ())),
            JobTrigger::dynamic(Never),
        );
        let err = StoredJobCodec.encode(&job).unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Serialization);
        assert!(
            err.to_string()
                .starts_with("cannot store or load job closure-job:"),
            "{err}"
        );
        assert!(err.to_string().contains("closure (tick)"), "{err}");

        let job = Job::new(
            id("dyn"),
            TaskRef::named("t", Value::Null),
            JobTrigger::dynamic(Never),
        );
        let err = StoredJobCodec.encode(&job).unwrap_err();
        assert!(err.to_string().contains("job dyn"), "{err}");
        assert!(err.to_string().contains("no JSON spec"), "{err}");
    }

    #[test]
    fn decode_says_what_is_wrong() {
        let err = StoredJobCodec.decode("{not json").unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Serialization);
        assert!(err.to_string().contains("not valid JSON"), "{err}");

        let err = StoredJobCodec
            .decode(r#"{"format": 7, "id": "j"}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot store or load job j: unsupported format version 7 (this release reads versions 1 to 1)"
        );

        let err = StoredJobCodec.decode(r#"{"id": "j"}"#).unwrap_err();
        assert!(err.to_string().contains("no format version"), "{err}");

        let text = r#"{"format": 1, "id": "j", "name": "n", "task": "t", "args": null,
            "trigger": {"type": "nonsense"}, "executor": "default", "store": "default",
            "misfire_grace_time": 1, "coalesce": "all", "max_instances": 1,
            "next_run_time": null}"#;
        let err = StoredJobCodec.decode(text).unwrap_err();
        assert!(err.to_string().starts_with("cannot store or load job j:"));
        assert!(err.to_string().contains("trigger"), "{err}");
    }
}
