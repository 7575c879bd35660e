//! The cron field engine shared by the `cron` and `crontab` triggers.
//!
//! Ground rules:
//!
//! * Every field is parsed once, when the trigger is built, into a bitmask ([`Schedule`]);
//!   nothing here parses at search time and nothing here can fail after building.
//! * [`Schedule::next_match`] searches **local wall time** (`NaiveDateTime`) with
//!   next-set-bit jumps: it knows calendars, not zones.
//! * [`search::Searcher`] maps wall times to instants in the trigger's zone, once per
//!   candidate, and applies the DST rules documented on [`CronTrigger`](super::CronTrigger).

pub(crate) mod options;
pub(crate) mod parse;
pub(crate) mod search;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// First and last year a schedule can name.
pub(crate) const YEAR_MIN: i32 = 1970;
/// See [`YEAR_MIN`].
pub(crate) const YEAR_MAX: i32 = 9999;
const YEAR_WORDS: usize = ((YEAR_MAX - YEAR_MIN) as usize) / 64 + 1;

/// A day rule that depends on the month it is evaluated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DaySpecial {
    /// The last day of the month minus `n` days (`last`, `L`, `L-3`).
    LastDay(u8),
    /// The last given weekday of the month (`last fri`, `5L`); weekday 0 = Monday.
    LastWeekday(u8),
    /// The `n`th (1-5) given weekday of the month (`3rd mon`, `1#3`); weekday 0 = Monday.
    NthWeekday(u8, u8),
    /// The weekday (Monday-Friday) nearest to day `n`, within the month (`15W`).
    NearestWeekday(u8),
    /// The last Monday-Friday of the month (`LW`).
    LastBusinessDay,
}

/// How the day-of-month and day-of-week rules combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DayMode {
    /// APScheduler: `day`, `week` and `day_of_week` must all match.
    All,
    /// Standard cron: when both the day-of-month and the day-of-week rule are restricted, a
    /// day matches if either does; otherwise only the restricted one counts.
    Either,
}

/// A compiled set of cron fields: every value a field accepts, as bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// Bit `y - YEAR_MIN` set when year `y` is accepted.
    pub(crate) years: Box<[u64; YEAR_WORDS]>,
    /// Bits 1..=12.
    pub(crate) months: u16,
    /// Bits 1..=31 (plain day numbers).
    pub(crate) days: u32,
    /// Day rules evaluated per month (`last`, `3rd mon`, `L`, `15W`, ...).
    pub(crate) day_specials: Vec<DaySpecial>,
    /// Whether the day-of-month rule restricts anything (for [`DayMode::Either`]).
    pub(crate) days_restricted: bool,
    /// ISO weeks, bits 1..=53.
    pub(crate) weeks: u64,
    /// Weekdays, bit 0 = Monday .. bit 6 = Sunday.
    pub(crate) weekdays: u8,
    /// Weekday rules evaluated per month (`5L`, `1#3` in crontab).
    pub(crate) weekday_specials: Vec<DaySpecial>,
    /// Whether the day-of-week rule restricts anything (for [`DayMode::Either`]).
    pub(crate) weekdays_restricted: bool,
    /// Bits 0..=23.
    pub(crate) hours: u32,
    /// Bits 0..=59.
    pub(crate) minutes: u64,
    /// Bits 0..=59.
    pub(crate) seconds: u64,
    /// How day rules combine.
    pub(crate) mode: DayMode,
}

const ALL_WEEKS: u64 = ((1u64 << 54) - 1) & !1;
const ALL_WEEKDAYS: u8 = 0x7f;
/// Bits 0, 7, 14, 21, 28: one weekday through a month, before shifting to its first day.
const WEEKLY: u64 = 1 | 1 << 7 | 1 << 14 | 1 << 21 | 1 << 28;

/// The lowest set bit of `mask` at or above `from`, if any.
#[inline]
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let m = mask & (u64::MAX << from);
    if m == 0 {
        None
    } else {
        Some(m.trailing_zeros())
    }
}

/// The number of days in `month` of `year`.
pub(crate) fn month_len(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Bits 1..=len.
#[inline]
fn days_upto(len: u32) -> u32 {
    (((1u64 << (len + 1)) - 1) & !1) as u32
}

impl Schedule {
    /// A schedule accepting everything (every second of every day).
    pub(crate) fn every_second(mode: DayMode) -> Schedule {
        Schedule {
            years: Box::new([u64::MAX; YEAR_WORDS]),
            months: 0x1ffe,
            days: days_upto(31),
            day_specials: Vec::new(),
            days_restricted: false,
            weeks: ALL_WEEKS,
            weekdays: ALL_WEEKDAYS,
            weekday_specials: Vec::new(),
            weekdays_restricted: false,
            hours: (1 << 24) - 1,
            minutes: (1 << 60) - 1,
            seconds: (1 << 60) - 1,
            mode,
        }
    }

    /// Whether the time of day is one value: one hour, one minute and one second. Such a
    /// trigger fires once, shifted by the gap's length, when its time falls in a DST gap.
    pub(crate) fn is_fixed_time(&self) -> bool {
        self.hours.count_ones() == 1
            && self.minutes.count_ones() == 1
            && self.seconds.count_ones() == 1
    }

    /// The first accepted year at or after `year`.
    fn next_year(&self, year: i32) -> Option<i32> {
        let year = year.max(YEAR_MIN);
        if year > YEAR_MAX {
            return None;
        }
        let idx = (year - YEAR_MIN) as usize;
        let mut word = idx / 64;
        let mut from = (idx % 64) as u32;
        while let Some(w) = self.years.get(word) {
            if let Some(bit) = next_bit(*w, from) {
                let y = YEAR_MIN + (word * 64) as i32 + bit as i32;
                return (y <= YEAR_MAX).then_some(y);
            }
            word += 1;
            from = 0;
        }
        None
    }

    /// Evaluates a month-dependent rule in `year`/`month`, as a day bit.
    fn special_bits(spec: DaySpecial, len: u32, first_wd: u32) -> u32 {
        // Weekday (0 = Monday) of day `d` is (first_wd + d - 1) % 7.
        let wd = |d: u32| (first_wd + d - 1) % 7;
        match spec {
            DaySpecial::LastDay(n) => {
                let n = u32::from(n);
                if n < len { 1 << (len - n) } else { 0 }
            }
            DaySpecial::LastWeekday(w) => {
                let back = (wd(len) + 7 - u32::from(w) % 7) % 7;
                1 << (len - back)
            }
            DaySpecial::NthWeekday(w, n) => {
                let first = 1 + (u32::from(w) % 7 + 7 - first_wd) % 7;
                let d = first + 7 * (u32::from(n).max(1) - 1);
                if d <= len { 1 << d } else { 0 }
            }
            DaySpecial::NearestWeekday(n) => {
                let n = u32::from(n);
                if n == 0 || n > len {
                    return 0;
                }
                let d = match wd(n) {
                    5 if n == 1 => 3,       // Saturday the 1st: Monday the 3rd
                    5 => n - 1,             // Saturday: Friday before
                    6 if n == len => n - 2, // Sunday, last day: Friday before
                    6 => n + 1,             // Sunday: Monday after
                    _ => n,
                };
                if d >= 1 && d <= len { 1 << d } else { 0 }
            }
            DaySpecial::LastBusinessDay => {
                let d = match wd(len) {
                    5 => len - 1,
                    6 => len - 2,
                    _ => len,
                };
                1 << d
            }
        }
    }

    /// The accepted days of `year`/`month`, as bits 1..=31.
    pub(crate) fn day_mask(&self, year: i32, month: u32) -> u32 {
        let len = month_len(year, month);
        let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
            return 0;
        };
        let first_wd = first.weekday().num_days_from_monday();
        let valid = days_upto(len);
        let mut dom = self.days & valid;
        for s in &self.day_specials {
            dom |= Self::special_bits(*s, len, first_wd);
        }
        let mut dow: u32 = 0;
        if self.weekdays == ALL_WEEKDAYS {
            dow = valid;
        } else {
            let mut w = self.weekdays;
            while w != 0 {
                let k = w.trailing_zeros();
                w &= w - 1;
                let d0 = 1 + (k + 7 - first_wd) % 7;
                dow |= (WEEKLY << d0) as u32;
            }
            dow &= valid;
        }
        for s in &self.weekday_specials {
            dow |= Self::special_bits(*s, len, first_wd);
        }
        let days = match self.mode {
            DayMode::All => dom & dow,
            DayMode::Either => match (self.days_restricted, self.weekdays_restricted) {
                (true, true) => dom | dow,
                (true, false) => dom,
                (false, true) => dow,
                (false, false) => valid,
            },
        };
        if self.weeks == ALL_WEEKS || days == 0 {
            days
        } else {
            days & self.week_mask(first, len, first_wd)
        }
    }

    /// The days of the month starting at `first` whose ISO week is accepted.
    fn week_mask(&self, first: NaiveDate, len: u32, first_wd: u32) -> u32 {
        let mut mask = 0u32;
        let mut week = first.iso_week().week();
        let mut d = 1;
        while d <= len {
            if d > 1
                && let Some(date) = first.with_day(d)
            {
                week = date.iso_week().week();
            }
            // Days d .. the next Monday share `week`.
            let run = if d == 1 { 7 - first_wd } else { 7 };
            if self.weeks & (1u64 << week) != 0 {
                let end = (d + run - 1).min(len);
                mask |= days_upto(end) & !days_upto(d - 1);
            }
            d += run;
        }
        mask
    }

    /// The first wall time at or after `from` (whole seconds) that every field accepts.
    pub(crate) fn next_match(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut year = from.year();
        let mut month = from.month();
        let mut day = from.day();
        let mut hour = from.hour();
        let mut minute = from.minute();
        let mut second = from.second();
        // Each step either accepts the current value of a field or moves it forward and
        // resets the less significant fields; the year only grows, so this ends.
        'year: loop {
            let y = self.next_year(year)?;
            if y != year {
                (year, month, day, hour, minute, second) = (y, 1, 1, 0, 0, 0);
            }
            'month: loop {
                let Some(m) = next_bit(u64::from(self.months), month) else {
                    (year, month, day, hour, minute, second) = (year + 1, 1, 1, 0, 0, 0);
                    continue 'year;
                };
                if m != month {
                    (month, day, hour, minute, second) = (m, 1, 0, 0, 0);
                }
                let days = self.day_mask(year, month);
                'day: loop {
                    let Some(d) = next_bit(u64::from(days), day) else {
                        if month >= 12 {
                            (year, month, day, hour, minute, second) = (year + 1, 1, 1, 0, 0, 0);
                            continue 'year;
                        }
                        (month, day, hour, minute, second) = (month + 1, 1, 0, 0, 0);
                        continue 'month;
                    };
                    if d != day {
                        (day, hour, minute, second) = (d, 0, 0, 0);
                    }
                    'hour: loop {
                        let Some(h) = next_bit(u64::from(self.hours), hour) else {
                            (day, hour, minute, second) = (day + 1, 0, 0, 0);
                            continue 'day;
                        };
                        if h != hour {
                            (hour, minute, second) = (h, 0, 0);
                        }
                        loop {
                            let Some(mi) = next_bit(self.minutes, minute) else {
                                (hour, minute, second) = (hour + 1, 0, 0);
                                continue 'hour;
                            };
                            if mi != minute {
                                (minute, second) = (mi, 0);
                            }
                            let Some(s) = next_bit(self.seconds, second) else {
                                (minute, second) = (minute + 1, 0);
                                continue;
                            };
                            let date = NaiveDate::from_ymd_opt(year, month, day)?;
                            let time = NaiveTime::from_hms_opt(hour, minute, s)?;
                            return Some(NaiveDateTime::new(date, time));
                        }
                    }
                }
            }
        }
    }
}
