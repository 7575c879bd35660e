//! [`StoreOptions`]: what the persistent stores share in their configuration.

use std::fmt;
use std::sync::Arc;

use crate::{JobCodec, StoredJobCodec};

/// Options of a persistent store: where its tables or keys live, and how jobs become text.
///
/// * `prefix` starts the name of every table (SQL) or key (Redis) the store uses, so that
///   several schedulers, or several tests, share one database without seeing each other's
///   jobs. SQL stores default to `sched_` (tables `sched_jobs` and `sched_schema_version`),
///   Redis to `sched:`. Names are quoted, so any text is safe; servers limit their length
///   (63 bytes for PostgreSQL, 64 for MySQL).
/// * `schema` is the PostgreSQL schema or the MySQL database holding the tables (default:
///   the connection's search path or current database). SQLite and Redis ignore it.
/// * `codec` turns jobs into text and back, [`StoredJobCodec`] by default.
///
/// ```
/// use sched_stores::StoreOptions;
///
/// let options = StoreOptions::new().prefix("billing_").schema("scheduler");
/// assert_eq!(options.prefix_or("sched_"), "billing_");
/// assert_eq!(options.schema_name(), Some("scheduler"));
/// ```
#[derive(Clone)]
pub struct StoreOptions {
    prefix: Option<String>,
    schema: Option<String>,
    codec: Arc<dyn JobCodec>,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            prefix: None,
            schema: None,
            codec: Arc::new(StoredJobCodec),
        }
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("prefix", &self.prefix)
            .field("schema", &self.schema)
            .field("codec", &self.codec)
            .finish()
    }
}

impl StoreOptions {
    /// The defaults: the backend's prefix, no schema, [`StoredJobCodec`].
    pub fn new() -> StoreOptions {
        StoreOptions::default()
    }

    /// The prefix of table or key names.
    pub fn prefix(mut self, prefix: impl Into<String>) -> StoreOptions {
        self.prefix = Some(prefix.into());
        self
    }

    /// The PostgreSQL schema or MySQL database that holds the tables.
    pub fn schema(mut self, schema: impl Into<String>) -> StoreOptions {
        self.schema = Some(schema.into());
        self
    }

    /// The codec that turns jobs into text and back.
    pub fn codec(mut self, codec: impl JobCodec) -> StoreOptions {
        self.codec = Arc::new(codec);
        self
    }

    /// The codec, already shared.
    pub fn shared_codec(mut self, codec: Arc<dyn JobCodec>) -> StoreOptions {
        self.codec = codec;
        self
    }

    /// The prefix set, or `default`.
    pub fn prefix_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.prefix.as_deref().unwrap_or(default)
    }

    /// The schema set, if any.
    pub fn schema_name(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The codec.
    pub fn job_codec(&self) -> &Arc<dyn JobCodec> {
        &self.codec
    }
}
