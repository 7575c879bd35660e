//! Parsing cron field expressions into [`Schedule`](super::Schedule) bitmasks.
//!
//! One grammar serves both dialects; they differ in names, ranges, step rules and which
//! month-dependent forms a field allows ([`Dialect`]). Errors carry the 1-based character
//! column where the problem starts, so the caller can name field, text and place.

use super::{DaySpecial, YEAR_MAX, YEAR_MIN};

/// A parse failure inside one field's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// 1-based character column in the field text.
    pub(crate) column: usize,
    /// What is wrong.
    pub(crate) reason: String,
}

fn err<T>(column: usize, reason: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        column,
        reason: reason.into(),
    })
}

/// Which month-dependent forms a field accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Specials {
    /// None.
    None,
    /// APScheduler's day field: `last`, `last fri`, `1st`..`5th` + weekday.
    CronDay,
    /// Crontab day of month: `L`, `L-n`, `LW`, `nW`.
    CrontabDay,
    /// Crontab day of week: `5L` / `friL`, `5#2` / `fri#2`.
    CrontabWeekday,
}

/// The rules of one field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldRules {
    /// Smallest value (also where `*/s` starts).
    pub(crate) min: u32,
    /// Largest value.
    pub(crate) max: u32,
    /// Largest value `*` covers (crontab's day of week accepts 7 but `*` means 0-6).
    pub(crate) star_max: u32,
    /// Names and their values, lower case.
    pub(crate) names: &'static [(&'static str, u32)],
    /// APScheduler's rule: a step may not exceed the span it steps over.
    pub(crate) strict_step: bool,
    /// Month-dependent forms.
    pub(crate) specials: Specials,
}

const MONTH_NAMES: &[(&str, u32)] = &[
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("may", 5),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];
/// APScheduler weekdays: 0 = Monday.
const CRON_WEEKDAYS: &[(&str, u32)] = &[
    ("mon", 0),
    ("tue", 1),
    ("wed", 2),
    ("thu", 3),
    ("fri", 4),
    ("sat", 5),
    ("sun", 6),
];
/// Crontab weekdays: 0 (and 7) = Sunday.
const CRONTAB_WEEKDAYS: &[(&str, u32)] = &[
    ("sun", 0),
    ("mon", 1),
    ("tue", 2),
    ("wed", 3),
    ("thu", 4),
    ("fri", 5),
    ("sat", 6),
];

const fn rules(min: u32, max: u32, strict: bool) -> FieldRules {
    FieldRules {
        min,
        max,
        star_max: max,
        names: &[],
        strict_step: strict,
        specials: Specials::None,
    }
}

/// APScheduler `year`.
pub(crate) const CRON_YEAR: FieldRules = rules(YEAR_MIN as u32, YEAR_MAX as u32, true);
/// APScheduler `month`.
pub(crate) const CRON_MONTH: FieldRules = FieldRules {
    names: MONTH_NAMES,
    ..rules(1, 12, true)
};
/// APScheduler `day`.
pub(crate) const CRON_DAY: FieldRules = FieldRules {
    specials: Specials::CronDay,
    ..rules(1, 31, true)
};
/// APScheduler `week` (ISO).
pub(crate) const CRON_WEEK: FieldRules = rules(1, 53, true);
/// APScheduler `day_of_week` (0 = Monday).
pub(crate) const CRON_WEEKDAY: FieldRules = FieldRules {
    names: CRON_WEEKDAYS,
    ..rules(0, 6, true)
};
/// APScheduler `hour`.
pub(crate) const CRON_HOUR: FieldRules = rules(0, 23, true);
/// APScheduler `minute` and `second`.
pub(crate) const CRON_MINUTE: FieldRules = rules(0, 59, true);

/// Crontab seconds and minutes.
pub(crate) const TAB_MINUTE: FieldRules = rules(0, 59, false);
/// Crontab hours.
pub(crate) const TAB_HOUR: FieldRules = rules(0, 23, false);
/// Crontab day of month.
pub(crate) const TAB_DAY: FieldRules = FieldRules {
    specials: Specials::CrontabDay,
    ..rules(1, 31, false)
};
/// Crontab month.
pub(crate) const TAB_MONTH: FieldRules = FieldRules {
    names: MONTH_NAMES,
    ..rules(1, 12, false)
};
/// Crontab day of week (0 and 7 = Sunday).
pub(crate) const TAB_WEEKDAY: FieldRules = FieldRules {
    names: CRONTAB_WEEKDAYS,
    star_max: 6,
    specials: Specials::CrontabWeekday,
    ..rules(0, 7, false)
};
/// Crontab year (seventh field).
pub(crate) const TAB_YEAR: FieldRules = rules(YEAR_MIN as u32, YEAR_MAX as u32, false);

/// A parsed field: inclusive stepped ranges plus month-dependent rules.
#[derive(Debug, Default)]
pub(crate) struct Field {
    /// `(first, last, step)` triples, all within the field's range.
    pub(crate) ranges: Vec<(u32, u32, u32)>,
    /// Month-dependent day rules (weekdays 0 = Monday).
    pub(crate) specials: Vec<DaySpecial>,
}

impl Field {
    /// Calls `f` with every accepted plain value.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u32)) {
        for &(a, b, s) in &self.ranges {
            let mut v = a;
            while v <= b {
                f(v);
                match v.checked_add(s.max(1)) {
                    Some(n) => v = n,
                    None => break,
                }
            }
        }
    }

    /// The plain values as a 64-bit mask (fields whose maximum is below 64).
    pub(crate) fn mask(&self) -> u64 {
        let mut m = 0u64;
        self.for_each(|v| {
            if v < 64 {
                m |= 1 << v;
            }
        });
        m
    }
}

/// A cursor over one field's characters, tracking columns.
struct Cursor<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn column(&self) -> usize {
        self.pos + 1
    }
    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    /// A run of ASCII letters, lower-cased.
    fn word(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_alphabetic) {
            s.push(c.to_ascii_lowercase());
            self.pos += 1;
        }
        s
    }
    /// A run of ASCII digits, as a number (saturating).
    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        let mut n: u32 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            n = n.saturating_mul(10).saturating_add(d);
            self.pos += 1;
        }
        (self.pos > start).then_some(n)
    }
}

fn describe(c: Option<char>) -> String {
    match c {
        Some(c) => format!("unexpected character {c:?}"),
        None => "unexpected end of expression".into(),
    }
}

/// A number or a name, checked against the field's range.
fn value(cur: &mut Cursor<'_>, r: &FieldRules) -> Result<u32, FieldError> {
    let col = cur.column();
    let v = if let Some(n) = cur.number() {
        n
    } else if cur.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
        let w = cur.word();
        match r.names.iter().find(|(name, _)| *name == w) {
            Some((_, v)) => *v,
            None if r.names.is_empty() => {
                return err(col, format!("expected a number, found {w:?}"));
            }
            None => return err(col, format!("unknown name {w:?}")),
        }
    } else {
        return err(col, format!("expected a value: {}", describe(cur.peek())));
    };
    if v < r.min || v > r.max {
        return err(
            col,
            format!("value {v} is out of range {}-{}", r.min, r.max),
        );
    }
    Ok(v)
}

fn weekday_name(w: &str) -> Option<u32> {
    CRON_WEEKDAYS.iter().find(|(n, _)| *n == w).map(|(_, v)| *v)
}

/// Parses a whole field text (a comma-separated list).
pub(crate) fn parse_field(text: &str, r: &FieldRules) -> Result<Field, FieldError> {
    let chars: Vec<char> = text.chars().collect();
    let mut cur = Cursor {
        chars: &chars,
        pos: 0,
    };
    let mut field = Field::default();
    loop {
        cur.skip_spaces();
        if cur.peek().is_none() || cur.peek() == Some(',') {
            return err(cur.column(), "empty list element");
        }
        element(&mut cur, r, &mut field)?;
        cur.skip_spaces();
        match cur.peek() {
            None => return Ok(field),
            Some(',') => cur.pos += 1,
            other => return err(cur.column(), describe(other)),
        }
    }
}

/// One list element.
fn element(cur: &mut Cursor<'_>, r: &FieldRules, field: &mut Field) -> Result<(), FieldError> {
    let start = cur.pos;
    let col = cur.column();
    if special(cur, r, field)? {
        return Ok(());
    }
    cur.pos = start;
    let (first, last, open) =
        if cur.eat('*') || (r.specials != Specials::None && !r.strict_step && cur.eat('?')) {
            (r.min, r.star_max, true)
        } else {
            let a = value(cur, r)?;
            if cur.eat('-') {
                let b = value(cur, r)?;
                if b < a {
                    return err(col, "range start after end");
                }
                (a, b, false)
            } else {
                (a, a, true)
            }
        };
    let single = first == last && !matches!(cur.chars.get(start), Some('*' | '?'));
    if cur.peek() == Some('/') {
        let slash = cur.column();
        cur.pos += 1;
        let Some(step) = cur.number() else {
            return err(
                cur.column(),
                format!("expected a step: {}", describe(cur.peek())),
            );
        };
        if step == 0 {
            return err(slash, "step must be at least 1");
        }
        // `a/s` runs from a to the field's maximum.
        let last = if single && open {
            r.star_max.max(first)
        } else {
            last
        };
        if r.strict_step && step > last - first {
            return err(
                slash,
                format!("step {step} is larger than the span {}", last - first),
            );
        }
        field.ranges.push((first, last, step));
    } else {
        field.ranges.push((first, last, 1));
    }
    Ok(())
}

/// Tries the month-dependent forms; `Ok(false)` when the element is not one of them.
fn special(cur: &mut Cursor<'_>, r: &FieldRules, field: &mut Field) -> Result<bool, FieldError> {
    let col = cur.column();
    match r.specials {
        Specials::None => {
            let w = cur.word();
            if w == "last"
                || (cur.number().is_some()
                    && matches!(cur.word().as_str(), "st" | "nd" | "rd" | "th"))
            {
                return err(
                    col,
                    "\"last\" and \"1st\"..\"5th\" are only allowed in the day field",
                );
            }
            Ok(false)
        }
        Specials::CronDay => {
            let nth = if let Some(n) = cur.number() {
                let suffix = cur.word();
                if suffix.is_empty() {
                    return Ok(false);
                }
                let ok = matches!(
                    (n, suffix.as_str()),
                    (1, "st") | (2, "nd") | (3, "rd") | (4 | 5, "th")
                );
                if !ok {
                    return err(
                        col,
                        format!("expected 1st, 2nd, 3rd, 4th or 5th, found \"{n}{suffix}\""),
                    );
                }
                Some(n as u8)
            } else {
                if cur.word() != "last" {
                    return Ok(false);
                }
                None
            };
            let after = cur.pos;
            cur.skip_spaces();
            let spaced = cur.pos > after;
            let wd_col = cur.column();
            if spaced && cur.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                let w = cur.word();
                let Some(wd) = weekday_name(&w) else {
                    return err(wd_col, format!("unknown weekday {w:?}"));
                };
                field.specials.push(match nth {
                    None => DaySpecial::LastWeekday(wd as u8),
                    Some(n) => DaySpecial::NthWeekday(wd as u8, n),
                });
                Ok(true)
            } else if nth.is_none() && matches!(cur.peek(), None | Some(',')) {
                field.specials.push(DaySpecial::LastDay(0));
                Ok(true)
            } else {
                err(
                    wd_col,
                    format!("expected a weekday name: {}", describe(cur.peek())),
                )
            }
        }
        Specials::CrontabDay => {
            if cur.eat('L') || cur.eat('l') {
                if cur.eat('W') || cur.eat('w') {
                    field.specials.push(DaySpecial::LastBusinessDay);
                } else if cur.eat('-') {
                    let ncol = cur.column();
                    match cur.number() {
                        Some(n) if n <= 30 => field.specials.push(DaySpecial::LastDay(n as u8)),
                        Some(n) => return err(ncol, format!("offset {n} is out of range 0-30")),
                        None => {
                            return err(
                                ncol,
                                format!("expected a number: {}", describe(cur.peek())),
                            );
                        }
                    }
                } else {
                    field.specials.push(DaySpecial::LastDay(0));
                }
                return Ok(true);
            }
            if let Some(n) = cur.number()
                && (cur.eat('W') || cur.eat('w'))
            {
                if !(1..=31).contains(&n) {
                    return err(col, format!("value {n} is out of range 1-31"));
                }
                field.specials.push(DaySpecial::NearestWeekday(n as u8));
                return Ok(true);
            }
            Ok(false)
        }
        Specials::CrontabWeekday => {
            let v = if cur
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || c.is_ascii_alphabetic())
            {
                // A name may end in `l` (`fril`) only as the L form; read letters carefully.
                let save = cur.pos;
                match value(cur, r) {
                    Ok(v) => v,
                    Err(_) => {
                        cur.pos = save;
                        let w = cur.word();
                        match w
                            .strip_suffix('l')
                            .and_then(|n| CRONTAB_WEEKDAYS.iter().find(|(x, _)| *x == n))
                        {
                            Some((_, v)) => {
                                field
                                    .specials
                                    .push(DaySpecial::LastWeekday(((v + 6) % 7) as u8));
                                return Ok(true);
                            }
                            None => return Ok(false),
                        }
                    }
                }
            } else {
                return Ok(false);
            };
            let wd = ((v + 6) % 7) as u8;
            if cur.eat('L') || cur.eat('l') {
                field.specials.push(DaySpecial::LastWeekday(wd));
                return Ok(true);
            }
            if cur.eat('#') {
                let ncol = cur.column();
                match cur.number() {
                    Some(n @ 1..=5) => field.specials.push(DaySpecial::NthWeekday(wd, n as u8)),
                    Some(n) => return err(ncol, format!("occurrence {n} is out of range 1-5")),
                    None => {
                        return err(ncol, format!("expected a number: {}", describe(cur.peek())));
                    }
                }
                return Ok(true);
            }
            Ok(false)
        }
    }
}
