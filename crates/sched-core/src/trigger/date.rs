//! The `date` trigger: fires once, at a given instant.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::spec::{SpecReader, timestamp_value};
use crate::trigger::Trigger;
use crate::{TriggerError, Zone};
use chrono::SecondsFormat;

/// Fires exactly once, at `run_date`.
///
/// The first call (`previous` is `None`) returns `run_date` whatever `now` is, so a run date
/// in the past is still returned once (the scheduler's misfire policy decides whether it
/// runs); any call with a previous fire time returns `None`. A run date outside the years
/// RFC 3339 can write (0000–9999) never fires.
///
/// Spec: `{"type": "date", "run_date": RFC3339, "timezone"?: IANA}`. The zone only decides
/// the offset times are written in; without `timezone` it is the offset written in
/// `run_date`. A `date` trigger has no jitter.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use sched_core::trigger::{DateTrigger, Trigger};
/// use sched_core::Zone;
///
/// let at = Utc.with_ymd_and_hms(2026, 5, 1, 7, 0, 0).unwrap();
/// let trigger = DateTrigger::new(at).timezone(Zone::from_name("Europe/Berlin", "timezone")?);
/// let now = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
/// assert_eq!(trigger.next_fire_time(None, now), Some(at));
/// assert_eq!(trigger.next_fire_time(Some(at), at), None);
/// assert_eq!(trigger.zone().format(at), "2026-05-01T09:00:00+02:00");
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DateTrigger {
    run_date: DateTime<Utc>,
    zone: Zone,
}

impl DateTrigger {
    /// A trigger firing once at `run_date`, written in UTC until [`timezone`](Self::timezone)
    /// says otherwise.
    pub fn new(run_date: DateTime<Utc>) -> DateTrigger {
        DateTrigger {
            run_date,
            zone: Zone::UTC,
        }
    }

    /// Sets the zone the fire time is written in (the instant does not change).
    #[must_use]
    pub fn timezone(mut self, zone: Zone) -> DateTrigger {
        self.zone = zone;
        self
    }

    /// The instant the trigger fires at.
    pub fn run_date(&self) -> DateTime<Utc> {
        self.run_date
    }

    pub(crate) fn read(mut r: SpecReader) -> Result<Self, TriggerError> {
        let zone = r.zone("timezone")?;
        let Some(run_date) = r.timestamp("run_date")? else {
            return Err(missing(&r, "run_date"));
        };
        r.finish()?;
        Ok(DateTrigger {
            run_date: run_date.with_timezone(&Utc),
            zone: zone.unwrap_or(Zone::Fixed(*run_date.offset())),
        })
    }

    pub(crate) fn write(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("run_date".into(), instant_value(self.zone, self.run_date));
        if self.zone.is_named() {
            map.insert("timezone".into(), Value::String(self.zone.name()));
        }
        map
    }
}

/// Whether `t` lies in the range an RFC 3339 timestamp can name (years 0000 to 9999 in
/// some UTC offset). Triggers never return instants outside it, so every fire time can be
/// written to a spec and formatted in any zone.
pub(crate) fn in_spec_range(t: DateTime<Utc>) -> bool {
    let at = |y, m, d, h, min| {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .map(|n| n.and_utc())
    };
    // From 0000-01-01T00:00:00+23:59 up to (not including) 10000-01-01T00:00:00-23:59.
    match (at(-1, 12, 31, 0, 1), at(10_000, 1, 1, 23, 59)) {
        (Some(lo), Some(hi)) => lo <= t && t < hi,
        _ => false,
    }
}

/// `t` as an RFC 3339 spec value in `zone`'s offset. An instant outside what RFC 3339 can
/// name (only reachable through the Rust API) is written in UTC with an extended year; it
/// does not parse back, which is the honest answer.
pub(crate) fn instant_value(zone: Zone, t: DateTime<Utc>) -> Value {
    if in_spec_range(t) {
        timestamp_value(zone, t)
    } else {
        Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// The error for a required key that is absent.
pub(crate) fn missing(r: &SpecReader, key: &str) -> TriggerError {
    TriggerError::MissingField {
        kind: r.kind(),
        field: r.path(key),
    }
}

impl Trigger for DateTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match previous {
            None => in_spec_range(self.run_date).then_some(self.run_date),
            Some(_) => None,
        }
    }

    fn zone(&self) -> Zone {
        self.zone
    }
}
