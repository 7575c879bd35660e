//! The `calendarinterval` trigger: every so many years, months, weeks and days, at a fixed
//! wall-clock time.

use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde_json::{Map, Value};

use crate::jitter::{normalize_jitter, read_jitter, write_jitter};
use crate::spec::SpecReader;
use crate::trigger::Trigger;
use crate::{LocalTime, TriggerError, Zone};

/// The largest value accepted for each of `years`, `months`, `weeks` and `days`.
const MAX_PERIOD: i64 = 1_000_000;
/// The last year a calendar interval fires in: later dates give `None`.
const LAST_YEAR: i32 = 9999;
/// How many dates one call may step over (skipped dates included) before giving up.
const MAX_STEPS: usize = 100_000;

/// Fires every `years`/`months`/`weeks`/`days` at `hour:minute:second` local time.
///
/// APScheduler 3.11.3's `CalendarIntervalTrigger`, exactly:
///
/// * The first fire (`previous` is `None`) is on `start_date`, even when that is before
///   `now` (`now` is ignored).
/// * Then: take the previous fire's local date, add `years` and `months` keeping the day of
///   the month (if that date does not exist, keep adding until it does: monthly from the
///   31st skips shorter months, yearly from February 29 fires every four years), then add
///   `weeks`·7 + `days` days.
/// * A date after `end_date` (inclusive) ends the trigger.
/// * A date whose time of day falls in a DST gap is skipped (the period is added again
///   from it); a time that exists twice fires at its first occurrence.
///
/// **Without a start date** (an extension of the spec format): the sequence starts on
/// `now`'s local date, and the first fire is the first date of that sequence whose fire
/// instant is at or after `now` (today if the time has not passed yet).
///
/// Fire times are limited to year 9999; later dates end the trigger.
///
/// Spec: `{"type": "calendarinterval", "years"?, "months"?, "weeks"?, "days"?, "hour"?,
/// "minute"?, "second"?: int, "start_date"?: RFC3339 or YYYY-MM-DD, "end_date"?: RFC3339 or
/// YYYY-MM-DD, "timezone": IANA, "jitter"?: seconds}`. An RFC 3339 date counts as its date
/// in the trigger's zone.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use sched_core::trigger::{CalendarIntervalTrigger, Trigger};
/// use sched_core::Zone;
///
/// let trigger = CalendarIntervalTrigger::builder()
///     .months(1)
///     .hour(9)
///     .start_date(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap())
///     .timezone(Zone::from_name("Europe/Berlin", "timezone")?)
///     .build()?;
/// let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let first = trigger.next_fire_time(None, now).unwrap();
/// let second = trigger.next_fire_time(Some(first), first).unwrap();
/// assert_eq!(trigger.zone().format(first), "2026-01-31T09:00:00+01:00");
/// assert_eq!(trigger.zone().format(second), "2026-03-31T09:00:00+02:00"); // no Feb 31
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CalendarIntervalTrigger {
    years: u32,
    months: u32,
    weeks: u32,
    days: u32,
    time: NaiveTime,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    zone: Zone,
    jitter: Option<Duration>,
}

/// Builds a [`CalendarIntervalTrigger`]; see [`CalendarIntervalTrigger::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct CalendarIntervalBuilder {
    years: u32,
    months: u32,
    weeks: u32,
    days: u32,
    hour: u32,
    minute: u32,
    second: u32,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    zone: Zone,
    jitter: Option<Duration>,
}

impl CalendarIntervalBuilder {
    /// Years between fires.
    pub fn years(mut self, n: u32) -> Self {
        self.years = n;
        self
    }

    /// Months between fires.
    pub fn months(mut self, n: u32) -> Self {
        self.months = n;
        self
    }

    /// Weeks between fires.
    pub fn weeks(mut self, n: u32) -> Self {
        self.weeks = n;
        self
    }

    /// Days between fires.
    pub fn days(mut self, n: u32) -> Self {
        self.days = n;
        self
    }

    /// The hour of the fire time (0-23, default 0).
    pub fn hour(mut self, hour: u32) -> Self {
        self.hour = hour;
        self
    }

    /// The minute of the fire time (0-59, default 0).
    pub fn minute(mut self, minute: u32) -> Self {
        self.minute = minute;
        self
    }

    /// The second of the fire time (0-59, default 0).
    pub fn second(mut self, second: u32) -> Self {
        self.second = second;
        self
    }

    /// The date of the first fire. Without one, the sequence starts on `now`'s local date.
    pub fn start_date(mut self, date: NaiveDate) -> Self {
        self.start_date = Some(date);
        self
    }

    /// The last date the trigger may fire on (inclusive).
    pub fn end_date(mut self, date: NaiveDate) -> Self {
        self.end_date = Some(date);
        self
    }

    /// The zone the wall-clock time is read in (default UTC). Must be a named IANA zone.
    pub fn timezone(mut self, zone: Zone) -> Self {
        self.zone = zone;
        self
    }

    /// The largest random delay the scheduler adds to each fire (see [`crate::jitter`]).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = normalize_jitter(jitter);
        self
    }

    /// Checks the settings and builds the trigger.
    ///
    /// # Errors
    /// [`TriggerError::InvalidValue`] when every period is zero (or one exceeds 1,000,000),
    /// the time of day is out of range, the end date is before the start date, or the zone
    /// is a bare offset.
    pub fn build(self) -> Result<CalendarIntervalTrigger, TriggerError> {
        let invalid = |field: &str, value: String, reason: &str| TriggerError::InvalidValue {
            field: field.to_owned(),
            value,
            reason: reason.to_owned(),
        };
        for (key, n) in [
            ("years", self.years),
            ("months", self.months),
            ("weeks", self.weeks),
            ("days", self.days),
        ] {
            if i64::from(n) > MAX_PERIOD {
                return Err(invalid(key, n.to_string(), "must be at most 1000000"));
            }
        }
        if self.years == 0 && self.months == 0 && self.weeks == 0 && self.days == 0 {
            return Err(invalid(
                "days",
                "0".into(),
                "at least one of years, months, weeks and days must be positive",
            ));
        }
        let time =
            NaiveTime::from_hms_opt(self.hour, self.minute, self.second).ok_or_else(|| {
                invalid(
                    "hour",
                    format!("{}:{}:{}", self.hour, self.minute, self.second),
                    "hour must be 0-23, minute and second 0-59",
                )
            })?;
        if let (Some(s), Some(e)) = (self.start_date, self.end_date)
            && e < s
        {
            return Err(invalid(
                "end_date",
                format!("\"{e}\""),
                &format!("must not be before start_date {s}"),
            ));
        }
        for (key, date) in [("start_date", self.start_date), ("end_date", self.end_date)] {
            if let Some(d) = date.filter(|d| !(1..=LAST_YEAR).contains(&d.year())) {
                return Err(invalid(key, format!("\"{d}\""), "must be in years 1-9999"));
            }
        }
        if !self.zone.is_named() {
            return Err(invalid(
                "timezone",
                format!("\"{}\"", self.zone.name()),
                "a calendar interval needs a named IANA time zone",
            ));
        }
        Ok(CalendarIntervalTrigger {
            years: self.years,
            months: self.months,
            weeks: self.weeks,
            days: self.days,
            time,
            start_date: self.start_date,
            end_date: self.end_date,
            zone: self.zone,
            jitter: self.jitter,
        })
    }
}

impl CalendarIntervalTrigger {
    /// A builder with every period zero, time 00:00:00, no start or end date, zone UTC.
    pub fn builder() -> CalendarIntervalBuilder {
        CalendarIntervalBuilder {
            years: 0,
            months: 0,
            weeks: 0,
            days: 0,
            hour: 0,
            minute: 0,
            second: 0,
            start_date: None,
            end_date: None,
            zone: Zone::UTC,
            jitter: None,
        }
    }

    pub(crate) fn read(mut r: SpecReader) -> Result<Self, TriggerError> {
        let prefix = r.prefix().to_owned();
        let mut b = CalendarIntervalTrigger::builder();
        let mut ints = [0u32; 7];
        let keys = [
            ("years", MAX_PERIOD),
            ("months", MAX_PERIOD),
            ("weeks", MAX_PERIOD),
            ("days", MAX_PERIOD),
            ("hour", 23),
            ("minute", 59),
            ("second", 59),
        ];
        for (slot, (key, max)) in ints.iter_mut().zip(keys) {
            if let Some(n) = r.integer(key, 0, max)? {
                // In 0..=MAX_PERIOD, so it fits.
                *slot = u32::try_from(n).unwrap_or(0);
            }
        }
        let Some(zone) = r.zone("timezone")? else {
            return Err(TriggerError::MissingField {
                kind: r.kind(),
                field: r.path("timezone"),
            });
        };
        let start = r.date("start_date", zone)?;
        let end = r.date("end_date", zone)?;
        b.jitter = read_jitter(&mut r)?;
        r.finish()?;
        let [years, months, weeks, days, hour, minute, second] = ints;
        b = b
            .years(years)
            .months(months)
            .weeks(weeks)
            .days(days)
            .hour(hour)
            .minute(minute)
            .second(second)
            .timezone(zone);
        b.start_date = start;
        b.end_date = end;
        b.build().map_err(|e| match e {
            TriggerError::InvalidValue {
                field,
                value,
                reason,
            } => TriggerError::InvalidValue {
                field: format!("{prefix}{field}"),
                value,
                reason,
            },
            other => other,
        })
    }

    pub(crate) fn write(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let ints = [
            ("years", self.years),
            ("months", self.months),
            ("weeks", self.weeks),
            ("days", self.days),
            ("hour", self.time.hour()),
            ("minute", self.time.minute()),
            ("second", self.time.second()),
        ];
        for (key, n) in ints {
            if n != 0 {
                map.insert(key.into(), Value::from(n));
            }
        }
        if let Some(s) = self.start_date {
            map.insert("start_date".into(), Value::String(s.to_string()));
        }
        if let Some(e) = self.end_date {
            map.insert("end_date".into(), Value::String(e.to_string()));
        }
        map.insert("timezone".into(), Value::String(self.zone.name()));
        write_jitter(&mut map, self.jitter);
        map
    }

    /// The date after `date` in the sequence (before checking that its time exists).
    fn advance(&self, date: NaiveDate) -> Option<NaiveDate> {
        let mut date = date;
        if self.years > 0 || self.months > 0 {
            let step = i64::from(self.years) * 12 + i64::from(self.months);
            let mut index = i64::from(date.year()) * 12 + i64::from(date.month0());
            // Keep the day of the month; skip months that lack it. Every day exists at
            // least once in any 400 years, so this ends quickly or runs past year 9999.
            loop {
                index += step;
                let year = i32::try_from(index.div_euclid(12)).ok()?;
                if year > LAST_YEAR {
                    return None;
                }
                let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
                if let Some(d) = NaiveDate::from_ymd_opt(year, month, date.day()) {
                    date = d;
                    break;
                }
            }
        }
        let days = u64::from(self.weeks) * 7 + u64::from(self.days);
        let date = date.checked_add_days(Days::new(days))?;
        (date.year() <= LAST_YEAR).then_some(date)
    }

    /// The fire instant on `date`, `None` when its time falls in a DST gap.
    fn fire_on(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        if !(1..=LAST_YEAR).contains(&date.year()) {
            return None;
        }
        match self.zone.resolve(NaiveDateTime::new(date, self.time)) {
            LocalTime::Single(t) | LocalTime::Repeated(t, _) => Some(t),
            LocalTime::Missing { .. } => None,
        }
    }

    fn after_end(&self, date: NaiveDate) -> bool {
        self.end_date.is_some_and(|e| date > e) || date.year() > LAST_YEAR
    }

    /// The first date of the sequence at or after `date` (itself included when
    /// `inclusive`) whose fire instant exists and is at or after `t`, with that instant.
    fn scan(
        &self,
        mut date: NaiveDate,
        inclusive: bool,
        t: Option<DateTime<Utc>>,
        steps: &mut usize,
    ) -> Option<(NaiveDate, DateTime<Utc>)> {
        if !inclusive {
            date = self.advance(date)?;
        }
        loop {
            *steps = steps.checked_sub(1)?;
            if let Some(target) = t {
                date = self.jump_towards(date, target);
            }
            if self.after_end(date) {
                return None;
            }
            if let Some(fire) = self.fire_on(date)
                && t.is_none_or(|t| fire >= t)
            {
                return Some((date, fire));
            }
            date = self.advance(date)?;
        }
    }

    /// For periods of whole days (no years or months) the sequence is an arithmetic grid
    /// of dates: skip whole periods that end before `target`'s local date.
    fn jump_towards(&self, date: NaiveDate, target: DateTime<Utc>) -> NaiveDate {
        if self.years > 0 || self.months > 0 {
            return date;
        }
        let period = i64::from(self.weeks) * 7 + i64::from(self.days);
        let Some(target_date) = local_date(self.zone, target) else {
            return date;
        };
        let behind = target_date.signed_duration_since(date).num_days();
        // Stop two periods short so that DST offsets near midnight cannot overshoot.
        let periods = behind / period - 2;
        if periods <= 0 {
            return date;
        }
        u64::try_from(periods * period)
            .ok()
            .and_then(|n| date.checked_add_days(Days::new(n)))
            .unwrap_or(date)
    }

    /// Where the sequence starts when there is no previous fire time.
    fn start(&self, now: DateTime<Utc>) -> Option<(NaiveDate, Option<DateTime<Utc>>)> {
        match self.start_date {
            Some(s) => Some((s, None)),
            None => Some((local_date(self.zone, now)?, Some(now))),
        }
    }

    /// The first fire time of the sequence continuing from `previous` (or starting afresh
    /// for `now`) that is at or after `t`. `from`, when given, is a fire time of that same
    /// sequence before `t`: the scan resumes there instead of at the start. Every date
    /// looked at uses one of `steps`.
    pub(crate) fn first_at_or_after(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        from: Option<DateTime<Utc>>,
        t: DateTime<Utc>,
        steps: &mut usize,
    ) -> Option<DateTime<Utc>> {
        let (date, inclusive, t) = match (from, previous) {
            (Some(f), _) => (local_date(self.zone, f)?, true, t),
            (None, Some(p)) => (local_date(self.zone, p)?, false, t),
            (None, None) => {
                let (date, not_before) = self.start(now)?;
                (date, true, not_before.map_or(t, |n| n.max(t)))
            }
        };
        self.scan(date, inclusive, Some(t), steps).map(|(_, f)| f)
    }
}

/// The local date of `t` in `zone`, `None` at the very ends of the supported range.
fn local_date(zone: Zone, t: DateTime<Utc>) -> Option<NaiveDate> {
    t.naive_utc()
        .checked_add_offset(zone.offset_at(t))
        .map(|l| l.date())
}

impl Trigger for CalendarIntervalTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut steps = MAX_STEPS;
        match previous {
            Some(p) => self.scan(local_date(self.zone, p)?, false, None, &mut steps),
            None => {
                let (date, not_before) = self.start(now)?;
                self.scan(date, true, not_before, &mut steps)
            }
        }
        .map(|(_, fire)| fire)
    }

    fn zone(&self) -> Zone {
        self.zone
    }

    fn jitter(&self) -> Option<Duration> {
        self.jitter
    }
}
