//! Time zones: an IANA zone from the bundled database, or a fixed UTC offset.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, SecondsFormat, TimeZone, Utc};
use chrono_tz::{OffsetComponents, Tz};

use crate::TriggerError;

/// The zone a trigger reads wall-clock fields in and writes its times in.
///
/// IANA names come from the database bundled with `chrono-tz` (see `docs/triggers.md` for
/// its version and how to get updates). `Fixed` is used when a spec gives no zone and the
/// zone is taken from the offset written in a timestamp (an `interval` or `date` spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Zone {
    /// A named IANA zone such as `Europe/Berlin` (or `UTC`).
    Named(Tz),
    /// A fixed offset from UTC, with no DST changes.
    Fixed(FixedOffset),
}

/// How a local wall-clock time maps to instants in a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalTime {
    /// The wall time exists once.
    Single(DateTime<Utc>),
    /// The wall time exists twice (a fall-back change): the earlier and the later instant.
    Repeated(DateTime<Utc>, DateTime<Utc>),
    /// The wall time falls in a gap (a spring-forward change). `shifted` is the wall time
    /// read with the offset in force before the gap, which lands later by the gap's length
    /// (02:30 in a 02:00→03:00 gap gives 03:30 in the new offset).
    Missing {
        /// The instant the wall time is shifted to.
        shifted: DateTime<Utc>,
    },
}

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone::Named(Tz::UTC);

    /// Looks up an IANA zone name (`"UTC"` included).
    ///
    /// # Errors
    /// [`TriggerError::UnknownTimeZone`] naming `field` when the name is not in the database.
    pub fn from_name(name: &str, field: &str) -> Result<Zone, TriggerError> {
        Tz::from_str(name)
            .map(Zone::Named)
            .map_err(|_| TriggerError::UnknownTimeZone {
                field: field.to_owned(),
                name: name.to_owned(),
            })
    }

    /// The IANA name, or the offset (`+05:30`) for a fixed zone.
    pub fn name(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_owned(),
            Zone::Fixed(off) => off.to_string(),
        }
    }

    /// Whether this is a named IANA zone (as opposed to a bare offset).
    pub fn is_named(&self) -> bool {
        matches!(self, Zone::Named(_))
    }

    /// The UTC offset in force at `instant`.
    pub fn offset_at(&self, instant: DateTime<Utc>) -> FixedOffset {
        match self {
            Zone::Named(tz) => tz.offset_from_utc_datetime(&instant.naive_utc()).fix(),
            Zone::Fixed(off) => *off,
        }
    }

    /// The local wall-clock time of `instant`.
    pub fn local(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        // Only instants within a day of chrono's range limits (year ±262,143) cannot be
        // shifted; they keep their UTC reading rather than panic.
        let utc = instant.naive_utc();
        utc.checked_add_offset(self.offset_at(instant))
            .unwrap_or(utc)
    }

    /// `instant` as a `DateTime` carrying this zone's offset at that instant.
    pub fn fixed(&self, instant: DateTime<Utc>) -> DateTime<FixedOffset> {
        let offset = self.offset_at(instant);
        match instant.naive_utc().checked_add_offset(offset) {
            Some(_) => instant.with_timezone(&offset),
            // At chrono's range limits the local reading does not exist: stay in UTC.
            None => instant.fixed_offset(),
        }
    }

    /// How the wall time `local` maps to instants in this zone.
    pub fn resolve(&self, local: NaiveDateTime) -> LocalTime {
        let tz = match self {
            Zone::Named(tz) => *tz,
            Zone::Fixed(off) => return LocalTime::Single(naive_minus(local, *off)),
        };
        match tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(dt) => LocalTime::Single(dt.with_timezone(&Utc)),
            chrono::LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                if a <= b {
                    LocalTime::Repeated(a, b)
                } else {
                    LocalTime::Repeated(b, a)
                }
            }
            chrono::LocalResult::None => LocalTime::Missing {
                shifted: naive_minus(local, pre_gap_offset(tz, local)),
            },
        }
    }

    /// Formats `instant` as RFC 3339 in this zone's offset, with a fraction only when the
    /// sub-second part is non-zero.
    pub fn format(&self, instant: DateTime<Utc>) -> String {
        self.fixed(instant)
            .to_rfc3339_opts(SecondsFormat::AutoSi, false)
    }
}

fn naive_minus(local: NaiveDateTime, off: FixedOffset) -> DateTime<Utc> {
    // Saturates at chrono's range limits instead of panicking.
    Utc.from_utc_datetime(&local.checked_sub_offset(off).unwrap_or(local))
}

/// The offset in force immediately before the gap that swallows `local`.
fn pre_gap_offset(tz: Tz, local: NaiveDateTime) -> FixedOffset {
    // Walk back from `local` in one-minute steps until the wall time exists: that time lies
    // before the gap, and its offset is the pre-gap offset. Gaps are at most a few hours, so
    // this is bounded by a day; it runs only for wall times inside a gap.
    let mut t = local;
    for _ in 0..(24 * 60) {
        t = match t.checked_sub_signed(chrono::Duration::minutes(1)) {
            Some(earlier) => earlier,
            None => break,
        };
        match tz.from_local_datetime(&t) {
            chrono::LocalResult::Single(dt) => return dt.offset().fix(),
            chrono::LocalResult::Ambiguous(_, later) => return later.offset().fix(),
            chrono::LocalResult::None => {}
        }
    }
    // Unreachable with real zone data; fall back to the standard offset.
    let dt = tz.from_utc_datetime(&local);
    let o = dt.offset();
    FixedOffset::east_opt((o.base_utc_offset() + o.dst_offset()).num_seconds() as i32)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Which instants a wall time that exists twice (a fall-back change) fires at.
///
/// ```text
/// America/New_York, 2025-11-02, a daily 01:30 job:
///   01:00 EDT ── 01:30 EDT ── 01:00 EST ── 01:30 EST ── 02:00 EST
///                 ▲ Both, First             ▲ Both only
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DstRepeat {
    /// Fire at both instants, the earlier first (the default, as cron and APScheduler do).
    #[default]
    Both,
    /// Fire only at the first instant.
    First,
}

impl DstRepeat {
    /// The spec name: `"both"` or `"first"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DstRepeat::Both => "both",
            DstRepeat::First => "first",
        }
    }
}

impl FromStr for DstRepeat {
    type Err = String;

    /// Parses `"both"` or `"first"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "both" => Ok(DstRepeat::Both),
            "first" => Ok(DstRepeat::First),
            _ => Err("expected \"both\" or \"first\"".to_owned()),
        }
    }
}
