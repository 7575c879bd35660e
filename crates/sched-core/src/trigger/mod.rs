//! Triggers: pure functions from (previous fire time, now) to the next fire time.
//!
//! Every trigger kind is a public type in its own file, implements [`Trigger`], and is one
//! variant of [`AnyTrigger`], the serializable form jobs carry. The JSON form of each kind is
//! the spec in `docs/triggers.md`; parsing validates everything up front, so a built trigger
//! never fails later.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::spec::SpecReader;
use crate::{TriggerError, Zone};

mod calendar_interval;
mod combine;
mod cron;
mod crontab;
mod date;
pub(crate) mod engine;
mod interval;

pub use calendar_interval::{CalendarIntervalBuilder, CalendarIntervalTrigger};
pub use combine::{AndTrigger, OrTrigger};
pub use cron::{CronTrigger, CronTriggerBuilder};
pub use crontab::CrontabTrigger;
pub use date::DateTrigger;
pub use interval::IntervalTrigger;

/// Re-exported here because `cron` and `crontab` triggers take it.
pub use crate::zone::DstRepeat;

/// What decides when a job runs.
///
/// Implementations are pure and clock-free: the answer depends only on the arguments, so a
/// trigger can be evaluated anywhere (the dispatcher, the CLI, a test) and gives the same
/// times.
pub trait Trigger: fmt::Debug + Send + Sync {
    /// The next fire time after a fire at `previous` (or the first one, when `previous` is
    /// `None`), given that the current time is `now`. `None` means the trigger is finished.
    ///
    /// The scheduler calls this with the fire time it just ran and `now` equal to it, which
    /// is the iteration rule the conformance vectors follow.
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>>;

    /// The zone the trigger's times are written in.
    fn zone(&self) -> Zone;

    /// The largest random delay the scheduler may add to each fire (see [`crate::jitter`]).
    /// It never changes [`next_fire_time`](Trigger::next_fire_time).
    fn jitter(&self) -> Option<Duration> {
        None
    }
}

/// Any trigger, in the form that is stored with a job and serialized as the JSON spec.
///
/// Serde uses the spec format: `{"type": "cron", "hour": "9-17", "timezone": "Europe/Berlin"}`.
/// Deserializing validates the whole spec and rejects unknown keys.
///
/// ```
/// use sched_core::trigger::{AnyTrigger, Trigger};
/// use chrono::{TimeZone, Utc};
///
/// let t: AnyTrigger = r#"{"type": "crontab", "expr": "0 9 * * mon-fri", "timezone": "Europe/Berlin"}"#.parse()?;
/// let now = Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap();
/// let next = t.next_fire_time(None, now).unwrap();
/// assert_eq!(t.zone().format(next), "2026-03-30T09:00:00+02:00");
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AnyTrigger {
    /// Fires once.
    Date(DateTrigger),
    /// Fires at a fixed period in absolute time.
    Interval(IntervalTrigger),
    /// APScheduler-style cron fields.
    Cron(CronTrigger),
    /// A standard crontab expression.
    Crontab(CrontabTrigger),
    /// Every so many years/months/weeks/days at a wall-clock time.
    CalendarInterval(CalendarIntervalTrigger),
    /// The times all children agree on.
    And(AndTrigger),
    /// The earliest time of any child.
    Or(OrTrigger),
}

macro_rules! each_kind {
    ($self:expr, $t:ident => $e:expr) => {
        match $self {
            AnyTrigger::Date($t) => $e,
            AnyTrigger::Interval($t) => $e,
            AnyTrigger::Cron($t) => $e,
            AnyTrigger::Crontab($t) => $e,
            AnyTrigger::CalendarInterval($t) => $e,
            AnyTrigger::And($t) => $e,
            AnyTrigger::Or($t) => $e,
        }
    };
}

impl AnyTrigger {
    /// The spec's `type` name: `date`, `interval`, `cron`, `crontab`, `calendarinterval`,
    /// `and` or `or`.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyTrigger::Date(_) => "date",
            AnyTrigger::Interval(_) => "interval",
            AnyTrigger::Cron(_) => "cron",
            AnyTrigger::Crontab(_) => "crontab",
            AnyTrigger::CalendarInterval(_) => "calendarinterval",
            AnyTrigger::And(_) => "and",
            AnyTrigger::Or(_) => "or",
        }
    }

    /// Parses a JSON spec.
    ///
    /// # Errors
    /// A [`TriggerError`] naming the first thing wrong with the spec.
    pub fn from_json(json: &str) -> Result<AnyTrigger, TriggerError> {
        let value: Value = serde_json::from_str(json).map_err(|e| TriggerError::Malformed {
            path: "$".into(),
            reason: format!("not valid JSON: {e}"),
        })?;
        AnyTrigger::from_value(&value)
    }

    /// Builds a trigger from an already-parsed JSON spec.
    ///
    /// # Errors
    /// A [`TriggerError`] naming the first thing wrong with the spec.
    pub fn from_value(value: &Value) -> Result<AnyTrigger, TriggerError> {
        AnyTrigger::from_value_at(value, "")
    }

    /// Parses a spec found at `prefix` (used by `and`/`or` for their children).
    pub(crate) fn from_value_at(value: &Value, prefix: &str) -> Result<AnyTrigger, TriggerError> {
        let here = if prefix.is_empty() {
            "$".to_owned()
        } else {
            prefix.trim_end_matches('.').to_owned()
        };
        let Value::Object(map) = value else {
            return Err(TriggerError::Malformed {
                path: here,
                reason: format!("expected a JSON object, found {}", crate::spec::show(value)),
            });
        };
        let mut map: Map<String, Value> = map.clone();
        let kind = match map.remove("type") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(TriggerError::InvalidValue {
                    field: crate::spec::join(prefix, "type"),
                    value: crate::spec::show(&other),
                    reason: "expected a string".into(),
                });
            }
            None => {
                return Err(TriggerError::Malformed {
                    path: here,
                    reason: "missing field type".into(),
                });
            }
        };
        Ok(match kind.as_str() {
            "date" => AnyTrigger::Date(DateTrigger::read(SpecReader::new("date", prefix, map))?),
            "interval" => AnyTrigger::Interval(IntervalTrigger::read(SpecReader::new(
                "interval", prefix, map,
            ))?),
            "cron" => AnyTrigger::Cron(CronTrigger::read(SpecReader::new("cron", prefix, map))?),
            "crontab" => AnyTrigger::Crontab(CrontabTrigger::read(SpecReader::new(
                "crontab", prefix, map,
            ))?),
            "calendarinterval" => AnyTrigger::CalendarInterval(CalendarIntervalTrigger::read(
                SpecReader::new("calendarinterval", prefix, map),
            )?),
            "and" => AnyTrigger::And(AndTrigger::read(SpecReader::new("and", prefix, map))?),
            "or" => AnyTrigger::Or(OrTrigger::read(SpecReader::new("or", prefix, map))?),
            _ => {
                return Err(TriggerError::UnknownType {
                    path: crate::spec::join(prefix, "type"),
                    value: kind,
                });
            }
        })
    }

    /// The JSON spec of this trigger (with its `type` key).
    pub fn to_value(&self) -> Value {
        let mut map = each_kind!(self, t => t.write());
        map.insert("type".into(), Value::String(self.kind().into()));
        Value::Object(map)
    }

    /// The JSON spec as a compact string.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

impl Trigger for AnyTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        each_kind!(self, t => t.next_fire_time(previous, now))
    }

    fn zone(&self) -> Zone {
        each_kind!(self, t => t.zone())
    }

    fn jitter(&self) -> Option<Duration> {
        each_kind!(self, t => t.jitter())
    }
}

impl FromStr for AnyTrigger {
    type Err = TriggerError;

    /// Parses a JSON spec; see [`AnyTrigger::from_json`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AnyTrigger::from_json(s)
    }
}

impl fmt::Display for AnyTrigger {
    /// Writes the JSON spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl Serialize for AnyTrigger {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AnyTrigger {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        AnyTrigger::from_value(&value).map_err(serde::de::Error::custom)
    }
}

macro_rules! into_any {
    ($($ty:ident => $variant:ident),*) => {$(
        impl From<$ty> for AnyTrigger {
            fn from(t: $ty) -> AnyTrigger {
                AnyTrigger::$variant(t)
            }
        }
    )*};
}

into_any!(
    DateTrigger => Date,
    IntervalTrigger => Interval,
    CronTrigger => Cron,
    CrontabTrigger => Crontab,
    CalendarIntervalTrigger => CalendarInterval,
    AndTrigger => And,
    OrTrigger => Or
);
