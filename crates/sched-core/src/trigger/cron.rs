//! PLACEHOLDER: replaced by the real implementation.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::spec::SpecReader;
use crate::trigger::Trigger;
use crate::{TriggerError, Zone};

/// Placeholder.
#[derive(Clone, Debug, PartialEq)]
pub struct CronTrigger {
    zone: Zone,
}

impl CronTrigger {
    pub(crate) fn read(r: SpecReader) -> Result<Self, TriggerError> {
        Err(TriggerError::Malformed {
            path: r.path("type"),
            reason: "not implemented yet".into(),
        })
    }

    pub(crate) fn write(&self) -> Map<String, Value> {
        Map::new()
    }

    /// The first fire time at or after `start` (placeholder: the cron engine replaces it).
    pub(crate) fn search_from(&self, _start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        None
    }
}

impl Trigger for CronTrigger {
    fn next_fire_time(
        &self,
        _previous: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        None
    }

    fn zone(&self) -> Zone {
        self.zone
    }
}
