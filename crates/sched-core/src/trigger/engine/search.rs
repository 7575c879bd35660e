//! From wall-time matches to instants: the DST rules of `cron` and `crontab`.
//!
//! [`Searcher::search_from`] returns the smallest matching instant at or after a start
//! instant. It asks [`Schedule::next_match`] for wall times in order and maps each to
//! instants once. Wall order and instant order agree except next to a DST change, and the
//! three places where they differ are handled explicitly:
//!
//! * the start lies in the **first pass** of a repeated period: second-pass occurrences of
//!   wall times before the start's wall time are later instants ([`Searcher::second_pass`]);
//! * the start lies shortly **after a gap**: a fixed-time trigger's gap time, shifted forward
//!   by the gap, may still be ahead;
//! * a wall time in a gap (non-fixed triggers) or in a second pass (`DstRepeat::First`) is
//!   skipped as a whole range, so each loop turn makes progress.

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::GapInfo;

use super::{Schedule, YEAR_MAX};
use crate::Zone;
use crate::zone::{DstRepeat, LocalTime};

/// How one wall time maps to instants.
enum Wall {
    /// Exists once; the offset (seconds east of UTC) in force.
    Single(DateTime<Utc>, i32),
    /// Exists twice: earlier, later.
    Repeated(DateTime<Utc>, DateTime<Utc>),
    /// In a gap: shifted forward by the gap's length, and the first wall time after the gap.
    Gap {
        shifted: DateTime<Utc>,
        end: Option<NaiveDateTime>,
    },
}

/// A compiled schedule in a zone, with the options that shape the search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Searcher {
    pub(crate) schedule: Schedule,
    pub(crate) zone: Zone,
    pub(crate) repeat: DstRepeat,
    pub(crate) end: Option<DateTime<Utc>>,
    fixed: bool,
}

fn add_secs(t: NaiveDateTime, secs: i64) -> Option<NaiveDateTime> {
    t.checked_add_signed(TimeDelta::try_seconds(secs)?)
}

fn utc(t: NaiveDateTime, offset: i32) -> Option<DateTime<Utc>> {
    add_secs(t, -i64::from(offset)).map(|n| n.and_utc())
}

const DAY: i64 = 86_400;

impl Searcher {
    pub(crate) fn new(
        schedule: Schedule,
        zone: Zone,
        repeat: DstRepeat,
        end: Option<DateTime<Utc>>,
    ) -> Searcher {
        let fixed = schedule.is_fixed_time();
        Searcher {
            schedule,
            zone,
            repeat,
            end,
            fixed,
        }
    }

    fn offset(&self, t: DateTime<Utc>) -> i32 {
        self.zone.offset_at(t).local_minus_utc()
    }

    fn resolve(&self, w: NaiveDateTime) -> Option<Wall> {
        let tz = match self.zone {
            Zone::Fixed(off) => {
                let o = off.local_minus_utc();
                return Some(Wall::Single(utc(w, o)?, o));
            }
            Zone::Named(tz) => tz,
        };
        Some(match tz.offset_from_local_datetime(&w) {
            LocalResult::Single(o) => {
                let o = o.fix().local_minus_utc();
                Wall::Single(utc(w, o)?, o)
            }
            LocalResult::Ambiguous(x, y) => {
                let a = utc(w, x.fix().local_minus_utc())?;
                let b = utc(w, y.fix().local_minus_utc())?;
                Wall::Repeated(a.min(b), a.max(b))
            }
            LocalResult::None => match GapInfo::new(&w, &tz) {
                Some(GapInfo {
                    begin: Some((_, before)),
                    end,
                }) => Wall::Gap {
                    shifted: utc(w, before.fix().local_minus_utc())?,
                    end: end.map(|e| e.naive_local()),
                },
                _ => match self.zone.resolve(w) {
                    LocalTime::Missing { shifted } => Wall::Gap { shifted, end: None },
                    LocalTime::Single(t) => Wall::Single(t, self.offset(t)),
                    LocalTime::Repeated(a, b) => Wall::Repeated(a, b),
                },
            },
        })
    }

    /// The instant at which the offset changes, in `(lo, hi]` (the offsets at `lo` and `hi`
    /// differ).
    fn transition(&self, lo: DateTime<Utc>, hi: DateTime<Utc>) -> DateTime<Utc> {
        let before = self.offset(lo);
        let (mut lo, mut hi) = (lo.timestamp(), hi.timestamp());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match DateTime::from_timestamp(mid, 0) {
                Some(m) if self.offset(m) == before => lo = mid,
                _ => hi = mid,
            }
        }
        DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// When `s` (wall time `l`) lies in the first pass of a repeated period, the first
    /// second-pass occurrence of a matching wall time (its instant is after `s`).
    fn second_pass(&self, s: DateTime<Utc>, l: NaiveDateTime) -> Option<DateTime<Utc>> {
        let Some(Wall::Repeated(a, b)) = self.resolve(l) else {
            return None;
        };
        if a != s {
            return None;
        }
        let (o1, o2) = (self.offset(a), self.offset(b));
        let t = self.transition(a, b).naive_utc();
        let fold_start = add_secs(t, i64::from(o2))?;
        let fold_end = add_secs(t, i64::from(o1))?;
        let w = self.schedule.next_match(fold_start)?;
        if w < fold_end { utc(w, o2) } else { None }
    }

    /// The first wall time after the repeated range holding the wall time whose instants
    /// are `a` and `b`.
    fn fold_end(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Option<NaiveDateTime> {
        let o1 = self.offset(a);
        add_secs(self.transition(a, b).naive_utc(), i64::from(o1))
    }

    /// The first matching instant at or after `start` (rounded up to a whole second), or
    /// `None` when there is none before `end` (inclusive) or before the year 10000.
    pub(crate) fn search_from(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let s = if start.timestamp_subsec_nanos() > 0 {
            DateTime::from_timestamp(start.timestamp().checked_add(1)?, 0)?
        } else {
            start
        };
        if self.end.is_some_and(|e| s > e) || s.year() > YEAR_MAX + 1 {
            return None;
        }
        let found = self.search(s)?;
        if self.end.is_some_and(|e| found > e) {
            None
        } else {
            Some(found)
        }
    }

    fn search(&self, s: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let named = self.zone.is_named();
        let o_s = self.offset(s);
        let sn = s.naive_utc();
        let l = add_secs(sn, i64::from(o_s))?;
        // A fixed-time trigger's gap time just before `s` may fire, shifted, after `s`.
        let mut pre = None;
        if named && self.fixed {
            let o_b = s
                .checked_sub_signed(TimeDelta::days(1))
                .map_or(o_s, |t| self.offset(t));
            if o_b < o_s {
                let from = add_secs(sn, i64::from(o_b))?;
                if let Some(w) = self.schedule.next_match(from).filter(|w| *w < l)
                    && let Some(Wall::Gap { shifted, .. }) = self.resolve(w)
                {
                    pre = (shifted >= s).then_some(shifted);
                }
            }
        }
        let limit = self.end.and_then(|e| add_secs(e.naive_utc(), DAY));
        let mut from = l;
        // (instant, whether it was read with the start's offset)
        let mut found: Option<(DateTime<Utc>, bool)> = None;
        // Every turn either ends the search or skips a whole gap or repeated range.
        for _ in 0..1000 {
            let Some(w) = self.schedule.next_match(from) else {
                break;
            };
            if limit.is_some_and(|lim| w > lim) {
                break;
            }
            match self.resolve(w)? {
                Wall::Single(t, off) => {
                    found = Some((t, off == o_s));
                    break;
                }
                Wall::Repeated(a, b) => {
                    if a >= s {
                        found = Some((a, true));
                        break;
                    }
                    if self.repeat == DstRepeat::Both && b >= s {
                        found = Some((b, true));
                        break;
                    }
                    let next = self.fold_end(a, b)?;
                    from = if next > w { next } else { add_secs(w, 1)? };
                }
                Wall::Gap { shifted, end } => {
                    if self.fixed && shifted >= s {
                        found = Some((shifted, false));
                        break;
                    }
                    from = match end {
                        Some(e) if e > w => e,
                        _ => add_secs(w, 1)?,
                    };
                }
            }
        }
        let mut best = found.map(|f| f.0);
        // If `s` lies in the first pass of a repeated period, second-pass occurrences of
        // wall times before `l` come before anything found after the period. That can only
        // be so when the offset changed on the way, or the result is far away.
        let fold_possible = match found {
            None => true,
            Some((t, same_offset)) => !same_offset || (t - s).num_seconds() > DAY,
        };
        if named
            && self.repeat == DstRepeat::Both
            && fold_possible
            && let Some(b) = self.second_pass(s, l)
        {
            best = Some(best.map_or(b, |x| x.min(b)));
        }
        match (best, pre) {
            (Some(x), Some(p)) => Some(x.min(p)),
            (x, p) => x.or(p),
        }
    }
}
