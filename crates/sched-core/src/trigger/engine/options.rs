//! The spec keys `cron` and `crontab` share: dates, zone, jitter and `dst_repeat`.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use crate::jitter::{read_jitter, write_jitter};
use crate::spec::{SpecReader, timestamp_value};
use crate::zone::DstRepeat;
use crate::{TriggerError, Zone};

/// Start and end, zone, jitter and the repeated-time policy of a cron-like trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) zone: Zone,
    pub(crate) start_date: Option<DateTime<Utc>>,
    pub(crate) end_date: Option<DateTime<Utc>>,
    pub(crate) jitter: Option<Duration>,
    pub(crate) repeat: DstRepeat,
}

impl Options {
    /// Reads `timezone` (required), `start_date`, `end_date`, `jitter` and `dst_repeat`.
    pub(crate) fn read(r: &mut SpecReader) -> Result<Options, TriggerError> {
        let zone = match r.zone("timezone")? {
            Some(z) => z,
            None => {
                return Err(TriggerError::MissingField {
                    kind: r.kind(),
                    field: r.path("timezone"),
                });
            }
        };
        let start_date = r.timestamp("start_date")?.map(|t| t.to_utc());
        let end_date = r.timestamp("end_date")?.map(|t| t.to_utc());
        let jitter = read_jitter(r)?;
        let repeat = match r.take("dst_repeat") {
            None => DstRepeat::Both,
            Some(v) => match v.as_str().map(str::parse::<DstRepeat>) {
                Some(Ok(d)) => d,
                Some(Err(reason)) => return Err(r.invalid("dst_repeat", &v, reason)),
                None => return Err(r.invalid("dst_repeat", &v, "expected \"both\" or \"first\"")),
            },
        };
        Ok(Options {
            zone,
            start_date,
            end_date,
            jitter,
            repeat,
        })
    }

    /// Writes the keys that differ from their defaults (and `timezone`, always).
    pub(crate) fn write(&self, map: &mut Map<String, Value>) {
        if let Some(t) = self.start_date {
            map.insert("start_date".into(), timestamp_value(self.zone, t));
        }
        if let Some(t) = self.end_date {
            map.insert("end_date".into(), timestamp_value(self.zone, t));
        }
        map.insert("timezone".into(), Value::String(self.zone.name()));
        write_jitter(map, self.jitter);
        if self.repeat != DstRepeat::Both {
            map.insert(
                "dst_repeat".into(),
                Value::String(self.repeat.as_str().into()),
            );
        }
    }

    /// Where a search starts (the conformance README's rule): with a previous fire time,
    /// the earlier of `now` and `previous + 1µs` (plus 1µs if that is `previous`); without
    /// one, the later of `now` and `start_date`.
    pub(crate) fn search_start(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match previous {
            Some(p) => {
                let p1 = p.checked_add_signed(TimeDelta::microseconds(1))?;
                let s = now.min(p1);
                Some(if s == p { p1 } else { s })
            }
            None => Some(self.start_date.map_or(now, |d| now.max(d))),
        }
    }
}
