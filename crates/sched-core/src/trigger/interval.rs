//! The `interval` trigger: a fixed period in absolute time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::jitter::{micros_as_seconds, normalize_jitter, read_jitter, write_jitter};
use crate::spec::SpecReader;
use crate::trigger::Trigger;
use crate::trigger::date::{in_spec_range, instant_value};
use crate::{TriggerError, Zone};

const MICROS_PER_SECOND: i64 = 1_000_000;
const UNITS: [(&str, i64); 5] = [
    ("weeks", 7 * 86_400 * MICROS_PER_SECOND),
    ("days", 86_400 * MICROS_PER_SECOND),
    ("hours", 3_600 * MICROS_PER_SECOND),
    ("minutes", 60 * MICROS_PER_SECOND),
    ("seconds", MICROS_PER_SECOND),
];

/// Fires every `period`, counted in absolute time (exact whole microseconds).
///
/// * With a previous fire time: `previous + period`, whatever `now` is.
/// * First fire (`previous` is `None`): `start_date` if it is later than `now`, else the
///   first `start_date + k·period` at or after `now` (`now` itself when it is on that grid).
/// * A result later than `end_date` (inclusive) ends the trigger.
/// * Fire times stay within the years RFC 3339 can write (0000–9999); beyond, `None`.
/// * Because the period is absolute, a `days: 1` interval stays 24 hours apart across a DST
///   change and its wall-clock time moves by the shift.
///
/// **Without a start date** (an extension of the spec format): the first fire is
/// `now + period`, as APScheduler does when it defaults the start date to "now plus one
/// interval"; later fires follow from the previous one.
///
/// Spec: `{"type": "interval", "weeks"?, "days"?, "hours"?, "minutes"?, "seconds"?: number,
/// "start_date"?: RFC3339, "end_date"?: RFC3339, "timezone"?: IANA, "jitter"?: seconds}`.
/// Units may be fractional and are each rounded to whole microseconds; all of them zero or
/// absent means one second. Without `timezone`, times are written in the fixed offset of
/// `start_date` (UTC when there is no start date).
///
/// ```
/// use std::time::Duration;
/// use chrono::{TimeZone, Utc};
/// use sched_core::trigger::{IntervalTrigger, Trigger};
///
/// let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let trigger = IntervalTrigger::new(Duration::from_secs(90 * 60)).start_date(start);
/// let now = Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap();
/// let first = trigger.next_fire_time(None, now).unwrap();
/// assert_eq!(first, Utc.with_ymd_and_hms(2026, 1, 1, 3, 0, 0).unwrap());
/// let second = trigger.next_fire_time(Some(first), first).unwrap();
/// assert_eq!(second, Utc.with_ymd_and_hms(2026, 1, 1, 4, 30, 0).unwrap());
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct IntervalTrigger {
    /// The period in microseconds, always positive.
    period: i64,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    zone: Zone,
    jitter: Option<Duration>,
}

impl IntervalTrigger {
    /// A trigger firing every `period`, written in UTC, with no start date (first fire one
    /// period after `now`), no end date and no jitter.
    ///
    /// The period is rounded to whole microseconds; a zero period means one second (as in
    /// the spec), and periods beyond about 292,000 years are capped there.
    pub fn new(period: Duration) -> IntervalTrigger {
        let micros = period
            .as_nanos()
            .saturating_add(500)
            .checked_div(1000)
            .unwrap_or(0);
        let micros = i64::try_from(micros).unwrap_or(i64::MAX);
        IntervalTrigger {
            period: if micros == 0 {
                MICROS_PER_SECOND
            } else {
                micros
            },
            start_date: None,
            end_date: None,
            zone: Zone::UTC,
            jitter: None,
        }
    }

    /// Sets the instant the period is counted from (the first fire time, or the grid the
    /// first fire is taken from when that instant has passed).
    #[must_use]
    pub fn start_date(mut self, start: DateTime<Utc>) -> IntervalTrigger {
        self.start_date = Some(start);
        self
    }

    /// Sets the last instant the trigger may fire at (inclusive).
    #[must_use]
    pub fn end_date(mut self, end: DateTime<Utc>) -> IntervalTrigger {
        self.end_date = Some(end);
        self
    }

    /// Sets the zone times are written in. It does not change any instant: the period is
    /// absolute time.
    ///
    /// The spec writes a named zone as `timezone` and a fixed offset through the offset of
    /// `start_date`; a fixed-offset zone without a start date cannot be written and reads
    /// back as UTC.
    #[must_use]
    pub fn timezone(mut self, zone: Zone) -> IntervalTrigger {
        self.zone = zone;
        self
    }

    /// Sets the largest random delay the scheduler adds to each fire (see
    /// [`crate::jitter`]); zero means none. [`Trigger::jitter`] reads it back.
    #[must_use]
    pub fn with_jitter(mut self, jitter: Duration) -> IntervalTrigger {
        self.jitter = normalize_jitter(jitter);
        self
    }

    /// The period.
    pub fn period(&self) -> Duration {
        Duration::from_micros(self.period.unsigned_abs())
    }

    pub(crate) fn read(mut r: SpecReader) -> Result<Self, TriggerError> {
        let mut total: i128 = 0;
        for (key, unit) in UNITS {
            if let Some(x) = r.non_negative(key)? {
                let micros = unit_micros(x, unit).ok_or_else(|| TriggerError::InvalidValue {
                    field: r.path(key),
                    value: crate::spec::number_value(x).to_string(),
                    reason: "is too large for an interval".into(),
                })?;
                total += micros;
            }
        }
        let period = i64::try_from(total).map_err(|_| TriggerError::InvalidValue {
            field: r.path("seconds"),
            value: total.to_string(),
            reason: "the interval is too long (the total must be below 292,000 years)".into(),
        })?;
        let named = r.zone("timezone")?;
        let start = r.timestamp("start_date")?;
        let end = r.timestamp("end_date")?;
        let jitter = read_jitter(&mut r)?;
        r.finish()?;
        let zone = match (named, &start) {
            (Some(z), _) => z,
            (None, Some(s)) => Zone::Fixed(*s.offset()),
            (None, None) => Zone::UTC,
        };
        Ok(IntervalTrigger {
            period: if period == 0 {
                MICROS_PER_SECOND
            } else {
                period
            },
            start_date: start.map(|s| s.with_timezone(&Utc)),
            end_date: end.map(|e| e.with_timezone(&Utc)),
            zone,
            jitter,
        })
    }

    pub(crate) fn write(&self) -> Map<String, Value> {
        let mut map = Map::new();
        // Whole units from the largest down, the remainder as (fractional) seconds.
        let mut rest = self.period;
        for (key, unit) in &UNITS[..4] {
            let n = rest / unit;
            if n > 0 {
                map.insert((*key).into(), Value::from(n));
                rest -= n * unit;
            }
        }
        if rest > 0 {
            map.insert(
                "seconds".into(),
                micros_as_seconds(rest.unsigned_abs().into()),
            );
        }
        if let Some(s) = self.start_date {
            map.insert("start_date".into(), instant_value(self.zone, s));
        }
        if let Some(e) = self.end_date {
            map.insert("end_date".into(), instant_value(self.zone, e));
        }
        if self.zone.is_named() && !(self.zone == Zone::UTC && self.start_date.is_none()) {
            map.insert("timezone".into(), Value::String(self.zone.name()));
        }
        write_jitter(&mut map, self.jitter);
        map
    }

    /// The first fire time of the sequence that starts at `previous` (or at the first fire
    /// for `now` when there is none) which is at or after `t`.
    pub(crate) fn first_at_or_after(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        t: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let (anchor, min_steps) = match previous {
            Some(p) => (p, 1),
            None => (self.first(now)?, 0),
        };
        self.within_end(self.grid_at_or_after(anchor, t, min_steps)?)
    }

    /// The first fire when there is no previous one (ignoring `end_date`).
    fn first(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.start_date {
            Some(start) if start > now => Some(start),
            Some(start) => self.grid_at_or_after(start, now, 0),
            None => add_micros(now, i128::from(self.period)),
        }
    }

    /// `anchor + k·period` for the smallest `k >= min_steps` that is at or after `t`.
    fn grid_at_or_after(
        &self,
        anchor: DateTime<Utc>,
        t: DateTime<Utc>,
        min_steps: i128,
    ) -> Option<DateTime<Utc>> {
        let gap = i128::from(t.timestamp_micros()) - i128::from(anchor.timestamp_micros());
        let period = i128::from(self.period);
        let steps = if gap <= 0 {
            0
        } else {
            (gap + period - 1) / period
        };
        add_micros(anchor, steps.max(min_steps) * period)
    }

    fn within_end(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.end_date {
            Some(end) if t > end => None,
            _ => in_spec_range(t).then_some(t),
        }
    }
}

/// `x` units of `unit` microseconds, rounded to whole microseconds; `None` when too large.
fn unit_micros(x: f64, unit: i64) -> Option<i128> {
    if x.fract() == 0.0 && x < 1e19 {
        // Whole: exact integer arithmetic.
        return i128::from(x as u64).checked_mul(i128::from(unit));
    }
    let micros = (x * unit as f64).round();
    (micros.is_finite() && micros < 1e19).then_some(micros as i128)
}

/// `t` plus `micros` microseconds; `None` outside the supported range.
fn add_micros(t: DateTime<Utc>, micros: i128) -> Option<DateTime<Utc>> {
    let total = i64::try_from(i128::from(t.timestamp_micros()).checked_add(micros)?).ok()?;
    DateTime::from_timestamp_micros(total)
}

impl Trigger for IntervalTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let next = match previous {
            Some(p) => add_micros(p, i128::from(self.period))?,
            None => self.first(now)?,
        };
        self.within_end(next)
    }

    fn zone(&self) -> Zone {
        self.zone
    }

    fn jitter(&self) -> Option<Duration> {
        self.jitter
    }
}
