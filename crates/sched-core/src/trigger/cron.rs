//! The `cron` trigger: APScheduler-style cron fields, evaluated on local wall time (the
//! rules are documented on [`CronTrigger`]).

use std::fmt::Display;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::jitter::normalize_jitter;
use crate::spec::SpecReader;
use crate::trigger::Trigger;
use crate::trigger::engine::options::Options;
use crate::trigger::engine::parse::{
    CRON_DAY, CRON_HOUR, CRON_MINUTE, CRON_MONTH, CRON_WEEK, CRON_WEEKDAY, CRON_YEAR, FieldRules,
    parse_field,
};
use crate::trigger::engine::search::Searcher;
use crate::trigger::engine::{DayMode, Schedule, YEAR_MIN};
use crate::zone::DstRepeat;
use crate::{TriggerError, Zone};

/// The cron field names, most significant first (see [`CronTrigger::FIELDS`]).
const FIELDS: [&str; 8] = [
    "year",
    "month",
    "day",
    "week",
    "day_of_week",
    "hour",
    "minute",
    "second",
];
const DEFAULTS: [&str; 8] = ["*", "1", "1", "*", "*", "0", "0", "0"];
const RULES: [FieldRules; 8] = [
    CRON_YEAR,
    CRON_MONTH,
    CRON_DAY,
    CRON_WEEK,
    CRON_WEEKDAY,
    CRON_HOUR,
    CRON_MINUTE,
    CRON_MINUTE,
];

/// Fires when the local wall time matches every given cron field (APScheduler 3 field
/// semantics, with our own DST rules).
///
/// # Fields
///
/// `year` (1970-9999), `month` (1-12, `jan`-`dec`), `day` (1-31), `week` (ISO week 1-53),
/// `day_of_week` (0-6, **0 = Monday**, `mon`-`sun`), `hour` (0-23), `minute` and `second`
/// (0-59). All given fields must match. Each field is a comma-separated list of `*`, `*/s`,
/// `a`, `a-b`, `a-b/s`, `a/s`; `day` also takes `last`, `last fri` and `1st`..`5th` +
/// weekday (`3rd mon`). Unset fields more significant than the least significant given one
/// are `*`; the ones after it take their minimum (`week` and `day_of_week` stay `*`); a
/// trigger with no fields fires every second.
///
/// # Where a search starts
///
/// With a previous fire time, at the earlier of `now` and `previous + 1µs` (so missed times
/// are caught up and `start_date` is not consulted); without one, at the later of `now`
/// and `start_date`. The start is rounded up to a whole second and fires itself if it
/// matches. A time after `end_date` (inclusive) ends the trigger.
///
/// # Daylight saving time
///
/// Fields are matched against **local wall time**, and a wall-clock change is never added
/// as absolute time. The result is always the smallest matching instant at or after the
/// start. `crontab` follows the same rules.
///
/// 1. A matching wall time that exists once fires at its instant.
///
/// 2. A repeated wall time (fall-back) fires at both instants, the earlier first, also when
///    the search starts inside the second pass. When it starts inside the *first* pass,
///    second-pass occurrences of earlier wall times are later instants and count too:
///
///    ```text
///    America/New_York, 2025-11-02, minute "*/20", search from 01:30 EDT
///    01:40 EDT  | 01:00 EST  01:20 EST  01:40 EST  02:00 EST
///      fire     |   fire       fire       fire       fire
///    ```
///
/// 3. A wall time inside a spring-forward gap does not exist. A **fixed-time** trigger (its
///    hour, minute and second fields each accept exactly one value, such as a daily 02:30
///    job) fires once, shifted forward by the gap's length; any other trigger skips it. A
///    shifted time that coincides with a real match fires once.
///
///    ```text
///    America/New_York, 2025-03-09, clocks go 02:00 EST -> 03:00 EDT
///    hour 2, minute 30 (fixed-time):  fires 03:30 EDT (02:30 + the 1-hour gap)
///    Australia/Lord_Howe, 2023-10-01, clocks go 02:00 -> 02:30 (+10:30 -> +11:00)
///    minute "*/20" (not fixed-time):  01:40, [02:00 and 02:20 do not exist], 02:40
///    ```
///
/// 4. With [`DstRepeat::First`] (`"dst_repeat": "first"`), a repeated wall time fires only
///    at its first instant.
///
/// 5. Roll-overs stay on the wall clock: `{"day": 1}` in New York from 2025-02-27 fires
///    Mar 1, Apr 1 and May 1 at 00:00 local (APScheduler 3 skips April), and a daily 00:00
///    job in America/Santiago, where DST starts at midnight, still fires on that day, at
///    01:00 (00:00 shifted by the gap).
///
///    ```text
///    America/New_York, {"day": 1}, evaluated on 2025-02-27
///    Mar 1 00:00 EST | Mar 9: 02:00 EST -> 03:00 EDT | Apr 1 00:00 EDT | May 1 00:00 EDT
///       fire                                             fire              fire
///    ```
///
/// # Example
///
/// ```
/// use sched_core::trigger::{CronTrigger, Trigger};
/// use sched_core::Zone;
/// use chrono::{TimeZone, Utc};
///
/// let berlin = Zone::from_name("Europe/Berlin", "timezone")?;
/// let trigger = CronTrigger::builder()
///     .day_of_week("mon-fri")
///     .hour(9)
///     .timezone(berlin)
///     .build()?;
/// let now = Utc.with_ymd_and_hms(2026, 3, 28, 0, 0, 0).unwrap(); // a Saturday
/// let next = trigger.next_fire_time(None, now).unwrap();
/// assert_eq!(berlin.format(next), "2026-03-30T09:00:00+02:00");
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CronTrigger {
    // Boxed, as in `CrontabTrigger`: `AnyTrigger` is as large as its largest variant, and
    // every job holds one.
    fields: Box<[Option<String>; 8]>,
    options: Box<Options>,
    searcher: Box<Searcher>,
}

/// Builds a [`CronTrigger`]; every field is optional, the time zone is required.
///
/// Field setters take any displayable value, so `.hour(9)` and `.hour("9-17")` both work.
#[derive(Clone, Debug, Default)]
pub struct CronTriggerBuilder {
    fields: [Option<String>; 8],
    zone: Option<Zone>,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    jitter: Option<Duration>,
    repeat: DstRepeat,
}

macro_rules! field_setters {
    ($($name:ident => $i:expr, $doc:literal;)*) => {$(
        #[doc = $doc]
        pub fn $name(mut self, expr: impl Display) -> Self {
            self.fields[$i] = Some(expr.to_string());
            self
        }
    )*};
}

impl CronTriggerBuilder {
    field_setters! {
        year => 0, "The `year` field (1970-9999).";
        month => 1, "The `month` field (1-12 or `jan`-`dec`).";
        day => 2, "The `day` field (1-31, `last`, `last fri`, `2nd mon`).";
        week => 3, "The `week` field (ISO week 1-53).";
        day_of_week => 4, "The `day_of_week` field (0-6 with 0 = Monday, or `mon`-`sun`).";
        hour => 5, "The `hour` field (0-23).";
        minute => 6, "The `minute` field (0-59).";
        second => 7, "The `second` field (0-59).";
    }

    /// The zone the fields are read in (required). Specs name IANA zones only, so a
    /// [`Zone::Fixed`] trigger works in Rust but its spec does not parse back.
    pub fn timezone(mut self, zone: Zone) -> Self {
        self.zone = Some(zone);
        self
    }

    /// The earliest first fire time (used only when there is no previous fire time).
    pub fn start_date<Tz: TimeZone>(mut self, t: DateTime<Tz>) -> Self {
        self.start_date = Some(t.to_utc());
        self
    }

    /// The last possible fire time (inclusive).
    pub fn end_date<Tz: TimeZone>(mut self, t: DateTime<Tz>) -> Self {
        self.end_date = Some(t.to_utc());
        self
    }

    /// The largest random delay the scheduler may add to each fire (see
    /// [`crate::jitter`]), rounded to whole microseconds; zero means none.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = normalize_jitter(jitter);
        self
    }

    /// Which instants of a repeated wall time fire (default [`DstRepeat::Both`]).
    pub fn dst_repeat(mut self, repeat: DstRepeat) -> Self {
        self.repeat = repeat;
        self
    }

    /// Checks every field and builds the trigger.
    ///
    /// # Errors
    /// [`TriggerError::InvalidExpression`] naming the first invalid field, its text and the
    /// column; [`TriggerError::MissingField`] without a time zone.
    pub fn build(self) -> Result<CronTrigger, TriggerError> {
        let zone = self.zone.ok_or_else(|| TriggerError::MissingField {
            kind: "cron",
            field: "timezone".into(),
        })?;
        let options = Options {
            zone,
            start_date: self.start_date,
            end_date: self.end_date,
            jitter: self.jitter,
            repeat: self.repeat,
        };
        CronTrigger::compile(self.fields, options, "")
    }
}

impl CronTrigger {
    /// The spec keys of the cron fields, most significant first: `year`, `month`, `day`,
    /// `week`, `day_of_week`, `hour`, `minute`, `second`.
    pub const FIELDS: [&'static str; 8] = FIELDS;

    /// Starts building a trigger.
    pub fn builder() -> CronTriggerBuilder {
        CronTriggerBuilder::default()
    }

    fn compile(
        fields: [Option<String>; 8],
        options: Options,
        prefix: &str,
    ) -> Result<CronTrigger, TriggerError> {
        let schedule = compile_fields(&fields, prefix)?;
        let searcher = Searcher::new(schedule, options.zone, options.repeat, options.end_date);
        Ok(CronTrigger {
            fields: Box::new(fields),
            options: Box::new(options),
            searcher: Box::new(searcher),
        })
    }

    /// The text of a field as given (`"year"`, `"month"`, ..., `"second"`), `None` when it
    /// was not set or the name is unknown.
    pub fn field(&self, name: &str) -> Option<&str> {
        let i = FIELDS.iter().position(|f| *f == name)?;
        self.fields.get(i)?.as_deref()
    }

    /// The earliest first fire time, if any.
    pub fn start_date(&self) -> Option<DateTime<Utc>> {
        self.options.start_date
    }

    /// The last possible fire time (inclusive), if any.
    pub fn end_date(&self) -> Option<DateTime<Utc>> {
        self.options.end_date
    }

    /// Which instants of a repeated wall time fire.
    pub fn dst_repeat(&self) -> DstRepeat {
        self.options.repeat
    }

    pub(crate) fn read(mut r: SpecReader) -> Result<Self, TriggerError> {
        let mut fields: [Option<String>; 8] = Default::default();
        for (slot, name) in fields.iter_mut().zip(FIELDS) {
            *slot = r.cron_field(name)?;
        }
        let options = Options::read(&mut r)?;
        let prefix = r.prefix().to_owned();
        r.finish()?;
        CronTrigger::compile(fields, options, &prefix)
    }

    pub(crate) fn write(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for (text, name) in self.fields.iter().zip(FIELDS) {
            if let Some(t) = text {
                map.insert(name.into(), Value::String(t.clone()));
            }
        }
        self.options.write(&mut map);
        map
    }

    /// The first matching instant at or after `start` (rounded up to a whole second),
    /// honouring `end_date` but not `start_date`.
    pub(crate) fn search_from(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.searcher.search_from(start)
    }
}

/// Compiles the eight fields (with APScheduler's defaults for unset ones).
fn compile_fields(fields: &[Option<String>; 8], prefix: &str) -> Result<Schedule, TriggerError> {
    let last_given = fields.iter().rposition(Option::is_some);
    let mut s = Schedule::every_second(DayMode::All);
    for i in 0..FIELDS.len() {
        let text: &str = match (&fields[i], last_given) {
            (Some(t), _) => t,
            (None, Some(g)) if i > g => DEFAULTS[i],
            (None, _) => "*",
        };
        let f = parse_field(text, &RULES[i]).map_err(|e| TriggerError::InvalidExpression {
            field: format!("{prefix}{}", FIELDS[i]),
            text: text.to_owned(),
            column: e.column,
            reason: e.reason,
        })?;
        match i {
            0 => {
                s.years.fill(0);
                f.for_each(|y| {
                    let idx = y.saturating_sub(YEAR_MIN as u32) as usize;
                    if let Some(w) = s.years.get_mut(idx / 64) {
                        *w |= 1 << (idx % 64);
                    }
                });
            }
            1 => s.months = f.mask() as u16,
            2 => {
                s.days = f.mask() as u32;
                s.day_specials = f.specials;
            }
            3 => s.weeks = f.mask(),
            4 => s.weekdays = f.mask() as u8,
            5 => s.hours = f.mask() as u32,
            6 => s.minutes = f.mask(),
            _ => s.seconds = f.mask(),
        }
    }
    Ok(s)
}

impl Trigger for CronTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.search_from(self.options.search_start(previous, now)?)
    }

    fn zone(&self) -> Zone {
        self.options.zone
    }

    fn jitter(&self) -> Option<Duration> {
        self.options.jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::CrontabTrigger;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// `search_from`: first match at or after the start rounded up to a whole second; the
    /// start fires itself; `start_date` is not consulted; `end_date` is inclusive.
    #[test]
    fn search_from_contract() {
        let t = CronTrigger::builder()
            .minute("*/5")
            .timezone(Zone::UTC)
            .start_date(at("2030-01-01T00:00:00Z"))
            .end_date(at("2026-01-01T10:10:00Z"))
            .build()
            .unwrap();
        assert_eq!(
            t.search_from(at("2026-01-01T10:05:00Z")),
            Some(at("2026-01-01T10:05:00Z"))
        );
        assert_eq!(
            t.search_from(at("2026-01-01T10:05:00.000001Z")),
            Some(at("2026-01-01T10:10:00Z"))
        );
        assert_eq!(t.search_from(at("2026-01-01T10:10:00.5Z")), None);

        let tab = CrontabTrigger::new("0 0 L 2 *", Zone::UTC).unwrap();
        assert_eq!(
            tab.search_from(at("2027-03-01T00:00:00Z")),
            Some(at("2028-02-29T00:00:00Z"))
        );
    }

    /// A field that matches nothing ends the trigger instead of searching forever.
    #[test]
    fn impossible_dates_end() {
        let t = CronTrigger::builder()
            .month(2)
            .day(30)
            .timezone(Zone::UTC)
            .build()
            .unwrap();
        assert_eq!(t.search_from(at("2026-01-01T00:00:00Z")), None);
        let t = CronTrigger::builder()
            .year("2024")
            .week(53)
            .timezone(Zone::UTC)
            .build()
            .unwrap();
        assert_eq!(t.search_from(at("2020-01-01T00:00:00Z")), None);
    }
}
