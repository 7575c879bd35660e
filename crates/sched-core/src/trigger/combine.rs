//! The `and` and `or` triggers: combinations of other triggers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::jitter::{normalize_jitter, read_jitter, write_jitter};
use crate::spec::SpecReader;
use crate::trigger::{AnyTrigger, Trigger};
use crate::{TriggerError, Zone};

/// How many candidate steps one call of an `and` may take (over all nesting levels) before
/// it gives up and answers `None`, as APScheduler 4 does.
pub(crate) const MAX_CANDIDATE_STEPS: u32 = 10_000;

/// Fires when any child fires: the earliest time any child gives.
///
/// Every child is asked with the same `(previous, now)`, so children see the OR's previous
/// fire time even when another child produced it: an interval child restarts from it, and a
/// `date` child is finished after the first fire of the OR. The instants are those the
/// children give; [`zone`](Trigger::zone) is the first child's zone, so formatting with it
/// writes every time in that zone's offset, whichever child produced it.
///
/// Spec: `{"type": "or", "triggers": [SPEC, ...], "jitter"?: seconds}` (at least one child;
/// children may be `and`/`or` themselves, up to 32 levels deep).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use sched_core::trigger::{DateTrigger, OrTrigger, Trigger};
///
/// let a = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap();
/// let b = Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap();
/// let or = OrTrigger::new(vec![DateTrigger::new(a).into(), DateTrigger::new(b).into()])?;
/// assert_eq!(or.next_fire_time(None, a), Some(b));
/// assert_eq!(or.next_fire_time(Some(b), b), None); // an OR of dates fires once
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct OrTrigger {
    triggers: Vec<AnyTrigger>,
    jitter: Option<Duration>,
}

/// Fires when all children agree: the first time every child would fire at.
///
/// Each call first asks every child with `(previous, now)`: if any child is finished, so is
/// the AND; if all answers are equal, that is the result. Otherwise a bounded search moves
/// every child that is behind the latest answer `m` to its own first fire time at or after
/// `m` (continuing its sequence from `previous`), and repeats until all agree. Each step
/// jumps, so searches over months of candidates stay fast; after 10,000 steps (counted
/// over nested ANDs too), or 200,000 calendar dates looked at by `calendarinterval`
/// children, the answer is `None`. Unlike APScheduler 3, an AND therefore never
/// hangs, including after its first fire.
///
/// [`zone`](Trigger::zone) is the first child's zone.
///
/// Spec: `{"type": "and", "triggers": [SPEC, ...], "jitter"?: seconds}` (at least one
/// child; children may be `and`/`or` themselves, up to 32 levels deep).
///
/// ```
/// use std::time::Duration;
/// use chrono::{TimeZone, Utc};
/// use sched_core::trigger::{AndTrigger, IntervalTrigger, Trigger};
///
/// let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let every_2h = IntervalTrigger::new(Duration::from_secs(2 * 3600)).start_date(start);
/// let every_3h = IntervalTrigger::new(Duration::from_secs(3 * 3600)).start_date(start);
/// let and = AndTrigger::new(vec![every_2h.into(), every_3h.into()])?;
/// let now = start + chrono::Duration::minutes(1);
/// let first = and.next_fire_time(None, now).unwrap();
/// assert_eq!(first, start + chrono::Duration::hours(6));
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AndTrigger {
    triggers: Vec<AnyTrigger>,
    jitter: Option<Duration>,
}

macro_rules! combinator {
    ($ty:ident) => {
        impl $ty {
            /// Combines `triggers` (at least one).
            ///
            /// # Errors
            /// [`TriggerError::InvalidValue`] for an empty list.
            pub fn new(triggers: Vec<AnyTrigger>) -> Result<$ty, TriggerError> {
                if triggers.is_empty() {
                    return Err(TriggerError::InvalidValue {
                        field: "triggers".into(),
                        value: "[]".into(),
                        reason: "needs at least one trigger".into(),
                    });
                }
                Ok($ty {
                    triggers,
                    jitter: None,
                })
            }

            /// Sets the largest random delay the scheduler adds to each fire (see
            /// [`crate::jitter`]); zero means none. [`Trigger::jitter`] reads it back.
            #[must_use]
            pub fn with_jitter(mut self, jitter: Duration) -> $ty {
                self.jitter = normalize_jitter(jitter);
                self
            }

            /// The children, in order.
            pub fn triggers(&self) -> &[AnyTrigger] {
                &self.triggers
            }

            pub(crate) fn read(mut r: SpecReader) -> Result<Self, TriggerError> {
                let triggers = read_children(&mut r)?;
                let jitter = read_jitter(&mut r)?;
                r.finish()?;
                Ok($ty { triggers, jitter })
            }

            pub(crate) fn write(&self) -> Map<String, Value> {
                let mut map = Map::new();
                map.insert(
                    "triggers".into(),
                    Value::Array(self.triggers.iter().map(AnyTrigger::to_value).collect()),
                );
                write_jitter(&mut map, self.jitter);
                map
            }
        }
    };
}

combinator!(OrTrigger);
combinator!(AndTrigger);

/// How deeply `and`/`or` specs may nest.
pub(crate) const MAX_DEPTH: usize = 32;

fn read_children(r: &mut SpecReader) -> Result<Vec<AnyTrigger>, TriggerError> {
    let value = r.require("triggers")?;
    if r.prefix().matches("triggers[").count() >= MAX_DEPTH {
        return Err(r.invalid(
            "triggers",
            &Value::String("...".into()),
            format!("and/or triggers nest at most {MAX_DEPTH} levels deep"),
        ));
    }
    let Value::Array(items) = &value else {
        return Err(r.invalid("triggers", &value, "expected an array of trigger specs"));
    };
    if items.is_empty() {
        return Err(r.invalid("triggers", &value, "needs at least one trigger"));
    }
    let base = r.path("triggers");
    items
        .iter()
        .enumerate()
        .map(|(i, item)| AnyTrigger::from_value_at(item, &format!("{base}[{i}].")))
        .collect()
}

impl Trigger for OrTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.triggers
            .iter()
            .filter_map(|t| t.next_fire_time(previous, now))
            .min()
    }

    fn zone(&self) -> Zone {
        self.triggers.first().map_or(Zone::UTC, Trigger::zone)
    }

    fn jitter(&self) -> Option<Duration> {
        self.jitter
    }
}

impl Trigger for AndTrigger {
    fn next_fire_time(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut budget = Budget::new();
        let candidates = self
            .triggers
            .iter()
            .map(|t| t.next_fire_time(previous, now))
            .collect::<Option<Vec<_>>>()?;
        agree(&self.triggers, candidates, previous, now, &mut budget)
    }

    fn zone(&self) -> Zone {
        self.triggers.first().map_or(Zone::UTC, Trigger::zone)
    }

    fn jitter(&self) -> Option<Duration> {
        self.jitter
    }
}

/// How many calendar dates one call of an `and` may look at, over all its children.
pub(crate) const MAX_CALENDAR_STEPS: usize = 200_000;

/// What one top-level call of an `and` may still spend.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Candidate steps left.
    candidates: u32,
    /// Calendar dates left to look at.
    dates: usize,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            candidates: MAX_CANDIDATE_STEPS,
            dates: MAX_CALENDAR_STEPS,
        }
    }

    /// Uses one candidate step; `None` when none are left.
    fn take(&mut self) -> Option<()> {
        self.candidates = self.candidates.checked_sub(1)?;
        Some(())
    }
}

/// The bounded AND search: moves the children that are behind the latest candidate to their
/// first time at or after it, until all candidates are equal.
fn agree(
    children: &[AnyTrigger],
    mut candidates: Vec<DateTime<Utc>>,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    budget: &mut Budget,
) -> Option<DateTime<Utc>> {
    loop {
        let latest = *candidates.iter().max()?;
        if candidates.iter().all(|c| *c == latest) {
            return Some(latest);
        }
        budget.take()?;
        for (child, candidate) in children.iter().zip(candidates.iter_mut()) {
            if *candidate < latest {
                let from = Some(*candidate);
                *candidate = first_at_or_after(child, previous, now, from, latest, budget)?;
            }
        }
    }
}

/// The first fire time at or after `t` in `child`'s own sequence, continuing from
/// `previous` (or starting afresh for `now` when there is none). `None` when the child has
/// no such time (or the search budget is spent). `from`, when given, is a time of the
/// child's sequence before `t` that a search may resume from.
pub(crate) fn first_at_or_after(
    child: &AnyTrigger,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    from: Option<DateTime<Utc>>,
    t: DateTime<Utc>,
    budget: &mut Budget,
) -> Option<DateTime<Utc>> {
    match child {
        AnyTrigger::Date(d) => d.next_fire_time(previous, now).filter(|r| *r >= t),
        AnyTrigger::Interval(i) => i.first_at_or_after(previous, now, t),
        AnyTrigger::CalendarInterval(c) => {
            c.first_at_or_after(previous, now, from, t, &mut budget.dates)
        }
        AnyTrigger::Cron(c) => c.search_from(t),
        AnyTrigger::Crontab(c) => c.search_from(t),
        AnyTrigger::Or(o) => o
            .triggers
            .iter()
            .filter_map(|c| first_at_or_after(c, previous, now, None, t, budget))
            .min(),
        AnyTrigger::And(a) => {
            let candidates = a
                .triggers
                .iter()
                .map(|c| first_at_or_after(c, previous, now, None, t, budget))
                .collect::<Option<Vec<_>>>()?;
            agree(&a.triggers, candidates, previous, now, budget)
        }
    }
}
