//! The `crontab` trigger: a standard cron expression, evaluated on local wall time (the
//! rules are documented on [`CrontabTrigger`]).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::spec::SpecReader;
use crate::trigger::Trigger;
use crate::trigger::engine::options::Options;
use crate::trigger::engine::parse::{
    FieldError, FieldRules, TAB_DAY, TAB_HOUR, TAB_MINUTE, TAB_MONTH, TAB_WEEKDAY, TAB_YEAR,
    parse_field,
};
use crate::trigger::engine::search::Searcher;
use crate::trigger::engine::{DayMode, Schedule, YEAR_MIN};
use crate::zone::DstRepeat;
use crate::{TriggerError, Zone};

/// Fires when the local wall time matches a standard cron expression.
///
/// `m h dom mon dow`: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
/// `jan`-`dec`), day of week (0-7 with **0 and 7 = Sunday**, or `sun`-`sat`). Six fields
/// add a leading seconds field, seven also a trailing year (1970-9999). Each field is a
/// comma-separated list of `*`, `a`, `a-b`, `*/s`, `a-b/s`, `a/s`; a step larger than the
/// range just keeps its start (`*/60` in the minute field means minute 0). `?` means `*` in
/// the two day fields. `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
/// `@midnight` and `@hourly` are accepted.
///
/// When both day fields are restricted (their values do not cover the whole range; `*/2`
/// is restricted), a day matches if **either** matches; otherwise only the restricted one
/// counts.
///
/// Extensions (as croner reads them): in the day of month `L` (last day), `L-n` (n days
/// before the last), `LW` (last weekday Monday-Friday) and `nW` (the Monday-Friday nearest
/// to day n, within the month); in the day of week `5L` or `friL` (the last Friday of the
/// month) and `5#2` or `fri#2` (the second Friday).
///
/// Start, end and DST behaviour are those of [`CronTrigger`](super::CronTrigger); see its
/// documentation for the rules and timelines.
///
/// # Example
///
/// ```
/// use sched_core::trigger::{CrontabTrigger, Trigger};
/// use sched_core::Zone;
/// use chrono::{TimeZone, Utc};
///
/// let berlin = Zone::from_name("Europe/Berlin", "timezone")?;
/// let trigger = CrontabTrigger::new("*/5 * * * *", berlin)?;
/// let now = Utc.with_ymd_and_hms(2026, 3, 27, 11, 2, 0).unwrap();
/// let next = trigger.next_fire_time(None, now).unwrap();
/// assert_eq!(berlin.format(next), "2026-03-27T12:05:00+01:00");
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CrontabTrigger {
    expr: String,
    // Boxed: `AnyTrigger` is as large as its largest variant, and every job holds one; the
    // compiled schedule is hundreds of bytes, an interval trigger a few dozen.
    options: Box<Options>,
    searcher: Box<Searcher>,
}

impl CrontabTrigger {
    /// Parses `expr` for `zone`.
    ///
    /// # Errors
    /// [`TriggerError::InvalidExpression`] naming the field, the text and the column.
    pub fn new(expr: &str, zone: Zone) -> Result<CrontabTrigger, TriggerError> {
        let options = Options {
            zone,
            start_date: None,
            end_date: None,
            jitter: None,
            repeat: DstRepeat::Both,
        };
        CrontabTrigger::compile(expr.to_owned(), options, "")
    }

    fn compile(expr: String, options: Options, prefix: &str) -> Result<Self, TriggerError> {
        let schedule = compile_expr(&expr).map_err(|e| TriggerError::InvalidExpression {
            field: format!("{prefix}expr"),
            text: expr.clone(),
            column: e.column,
            reason: e.reason,
        })?;
        let searcher = Searcher::new(schedule, options.zone, options.repeat, options.end_date);
        Ok(CrontabTrigger {
            expr,
            options: Box::new(options),
            searcher: Box::new(searcher),
        })
    }

    fn rebuild(mut self) -> Self {
        *self.searcher = Searcher::new(
            self.searcher.schedule,
            self.options.zone,
            self.options.repeat,
            self.options.end_date,
        );
        self
    }

    /// Sets the earliest first fire time (used only when there is no previous fire time).
    pub fn start_date<Tz: TimeZone>(mut self, t: DateTime<Tz>) -> Self {
        self.options.start_date = Some(t.to_utc());
        self
    }

    /// Sets the last possible fire time (inclusive).
    pub fn end_date<Tz: TimeZone>(mut self, t: DateTime<Tz>) -> Self {
        self.options.end_date = Some(t.to_utc());
        self.rebuild()
    }

    /// Sets the largest random delay the scheduler may add to each fire (see
    /// [`crate::jitter`]), rounded to whole microseconds; zero means none. (Named
    /// `with_jitter` because [`Trigger::jitter`] reads it back.)
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.options.jitter = crate::jitter::normalize_jitter(jitter);
        self
    }

    /// Sets which instants of a repeated wall time fire (default [`DstRepeat::Both`]).
    pub fn dst_repeat(mut self, repeat: DstRepeat) -> Self {
        self.options.repeat = repeat;
        self.rebuild()
    }

    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub(crate) fn read(mut r: SpecReader) -> Result<Self, TriggerError> {
        let expr = match r.take("expr") {
            None => {
                return Err(TriggerError::MissingField {
                    kind: r.kind(),
                    field: r.path("expr"),
                });
            }
            Some(Value::String(s)) => s,
            Some(v) => return Err(r.invalid("expr", &v, "expected a string")),
        };
        let options = Options::read(&mut r)?;
        let prefix = r.prefix().to_owned();
        r.finish()?;
        CrontabTrigger::compile(expr, options, &prefix)
    }

    pub(crate) fn write(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("expr".into(), Value::String(self.expr.clone()));
        self.options.write(&mut map);
        map
    }

    /// The first matching instant at or after `start` (rounded up to a whole second),
    /// honouring `end_date` but not `start_date`.
    pub(crate) fn search_from(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.searcher.search_from(start)
    }
}

const NICKNAMES: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Compiles a whole expression; columns in errors count from the expression's start.
fn compile_expr(expr: &str) -> Result<Schedule, FieldError> {
    let trimmed = expr.trim();
    let expr = NICKNAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(trimmed))
        .map_or(expr, |(_, e)| e);
    // (column of the field's first character, its text)
    let mut parts: Vec<(usize, &str)> = Vec::new();
    let mut start: Option<(usize, usize)> = None; // (byte, column)
    let mut column = 0;
    for (i, c) in expr.char_indices() {
        column += 1;
        if c.is_whitespace() {
            if let Some((b, col)) = start.take() {
                parts.push((col, &expr[b..i]));
            }
        } else if start.is_none() {
            start = Some((i, column));
        }
    }
    if let Some((b, col)) = start {
        parts.push((col, &expr[b..]));
    }
    let n = parts.len();
    if !(5..=7).contains(&n) {
        return Err(FieldError {
            column: parts.get(7).map_or(1, |p| p.0),
            reason: format!(
                "expected 5 fields (minute hour day month weekday), 6 with leading seconds or 7 with a trailing year, found {n}"
            ),
        });
    }
    let mut names: Vec<(&str, FieldRules)> = Vec::with_capacity(7);
    if n >= 6 {
        names.push(("second", TAB_MINUTE));
    }
    names.extend([
        ("minute", TAB_MINUTE),
        ("hour", TAB_HOUR),
        ("day of month", TAB_DAY),
        ("month", TAB_MONTH),
        ("day of week", TAB_WEEKDAY),
    ]);
    if n == 7 {
        names.push(("year", TAB_YEAR));
    }
    let mut s = Schedule::every_second(DayMode::Either);
    s.seconds = 1;
    for ((col, text), (name, rules)) in parts.into_iter().zip(names) {
        let f = parse_field(text, &rules).map_err(|e| FieldError {
            column: col + e.column - 1,
            reason: format!("{name} field: {}", e.reason),
        })?;
        match name {
            "second" => s.seconds = f.mask(),
            "minute" => s.minutes = f.mask(),
            "hour" => s.hours = f.mask() as u32,
            "day of month" => {
                s.days = f.mask() as u32;
                s.days_restricted = s.days != 0xffff_fffe || !f.specials.is_empty();
                s.day_specials = f.specials;
            }
            "month" => s.months = f.mask() as u16,
            "day of week" => {
                let mut w = 0u8;
                // Crontab 0 and 7 are Sunday; the engine's bit 0 is Monday.
                f.for_each(|v| w |= 1 << ((v + 6) % 7));
                s.weekdays = w;
                s.weekdays_restricted = w != 0x7f || !f.specials.is_empty();
                s.weekday_specials = f.specials;
            }
            _ => {
                s.years.fill(0);
                f.for_each(|y| {
                    let idx = y.saturating_sub(YEAR_MIN as u32) as usize;
                    if let Some(w) = s.years.get_mut(idx / 64) {
                        *w |= 1 << (idx % 64);
                    }
                });
            }
        }
    }
    Ok(s)
}

impl Trigger for CrontabTrigger {
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
