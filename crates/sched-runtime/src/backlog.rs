//! Which run times of a due job are run, missed, and when it runs next: pure arithmetic on
//! a trigger, kept apart from the dispatcher so it can be tested alone.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sched_core::Trigger;
use sched_core::job::Coalesce;

/// The run times of a job due at or before `now`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Backlog {
    /// Due run times, ascending, all `<= now`, at most the cap.
    pub(crate) due: Vec<DateTime<Utc>>,
    /// Whether more times were due than the cap and the rest were skipped.
    pub(crate) truncated: bool,
    /// The next run time after these (`> now`, except after a misbehaving trigger), or
    /// `None` when the trigger is finished.
    pub(crate) next: Option<DateTime<Utc>>,
}

/// Collects the run times from `first` up to `now`, at most `cap` (≥ 1) of them.
///
/// The walk costs at most `cap` trigger calls. When more are due, the rest of the backlog is
/// skipped in one step: the next run time becomes the trigger's first fire time at or after
/// `now` (`next_fire_time(None, now)`), which every trigger computes directly. So a job that
/// fires every second and was down for a year costs `cap` steps, not 31 million.
pub(crate) fn backlog(
    trigger: &dyn Trigger,
    first: DateTime<Utc>,
    now: DateTime<Utc>,
    cap: usize,
) -> Backlog {
    let cap = cap.max(1);
    let mut due = Vec::new();
    let mut t = Some(first);
    let mut truncated = false;
    while let Some(x) = t {
        if x > now {
            break;
        }
        if due.len() == cap {
            truncated = true;
            // Jump over the rest; keep `x` should the trigger not move past the last time.
            let last = due[due.len() - 1];
            t = match trigger.next_fire_time(None, now) {
                Some(n) if n > last => Some(n),
                _ => Some(x),
            };
            break;
        }
        due.push(x);
        // A trigger must move strictly forward; one that does not is treated as finished
        // rather than looped on.
        t = trigger.next_fire_time(Some(x), x).filter(|n| *n > x);
    }
    Backlog {
        due,
        truncated,
        next: t,
    }
}

/// What to do with a job's due run times.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Times to run, ascending.
    pub(crate) run: Vec<DateTime<Utc>>,
    /// Times reported missed (later than the grace time).
    pub(crate) missed: Vec<DateTime<Utc>>,
}

/// Applies the misfire grace time and the coalescing policy to the due times.
pub(crate) fn plan(
    due: &[DateTime<Utc>],
    now: DateTime<Utc>,
    grace: Option<Duration>,
    coalesce: Coalesce,
) -> Plan {
    let grace = grace.map(|g| TimeDelta::from_std(g).unwrap_or(TimeDelta::MAX));
    let late = |t: &DateTime<Utc>| grace.is_some_and(|g| now.signed_duration_since(*t) > g);
    let Some(last) = due.last().copied() else {
        return Plan {
            run: Vec::new(),
            missed: Vec::new(),
        };
    };
    match coalesce {
        Coalesce::All => {
            let (missed, run): (Vec<_>, Vec<_>) = due.iter().partition(|t| late(t));
            Plan { run, missed }
        }
        Coalesce::Earliest => match due.iter().find(|t| !late(t)) {
            Some(t) => Plan {
                run: vec![*t],
                missed: Vec::new(),
            },
            None => Plan {
                run: Vec::new(),
                missed: vec![last],
            },
        },
        // Lateness only shrinks with time: if the latest is late, all are.
        Coalesce::Latest if late(&last) => Plan {
            run: Vec::new(),
            missed: vec![last],
        },
        Coalesce::Latest => Plan {
            run: vec![last],
            missed: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use sched_core::Zone;

    /// Every `period` seconds from `start`.
    #[derive(Debug)]
    struct Every {
        start: DateTime<Utc>,
        period: i64,
    }

    impl Trigger for Every {
        fn next_fire_time(
            &self,
            previous: Option<DateTime<Utc>>,
            now: DateTime<Utc>,
        ) -> Option<DateTime<Utc>> {
            let p = TimeDelta::seconds(self.period);
            match previous {
                Some(prev) => Some(prev + p),
                None if now <= self.start => Some(self.start),
                None => {
                    let n = (now - self.start).num_seconds().div_euclid(self.period);
                    let t = self.start + p * n as i32;
                    Some(if t < now { t + p } else { t })
                }
            }
        }
        fn zone(&self) -> Zone {
            Zone::UTC
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(s)
    }

    #[test]
    fn backlog_walks_due_times() {
        let tr = Every {
            start: t(0),
            period: 60,
        };
        let b = backlog(&tr, t(0), t(150), 100);
        assert_eq!(b.due, [t(0), t(60), t(120)]);
        assert!(!b.truncated);
        assert_eq!(b.next, Some(t(180)));
    }

    #[test]
    fn backlog_cap_skips_in_one_step() {
        // every second for a year: capped at 10, then jumps to the first time >= now
        let tr = Every {
            start: t(0),
            period: 1,
        };
        let now = t(365 * 86_400) + TimeDelta::milliseconds(500);
        let b = backlog(&tr, t(0), now, 10);
        assert_eq!(b.due.len(), 10);
        assert_eq!(b.due[9], t(9));
        assert!(b.truncated);
        assert_eq!(b.next, Some(t(365 * 86_400 + 1)));
    }

    #[test]
    fn plan_policies() {
        let due = [t(0), t(60), t(120)];
        let now = t(150);
        let g = Some(Duration::from_secs(100));
        assert_eq!(
            plan(&due, now, g, Coalesce::All),
            Plan {
                run: vec![t(60), t(120)],
                missed: vec![t(0)]
            }
        );
        assert_eq!(
            plan(&due, now, g, Coalesce::Earliest),
            Plan {
                run: vec![t(60)],
                missed: vec![]
            }
        );
        assert_eq!(
            plan(&due, now, g, Coalesce::Latest),
            Plan {
                run: vec![t(120)],
                missed: vec![]
            }
        );
        let tight = Some(Duration::from_secs(1));
        assert_eq!(
            plan(&due, now, tight, Coalesce::Latest),
            Plan {
                run: vec![],
                missed: vec![t(120)]
            }
        );
        assert_eq!(
            plan(&due, now, tight, Coalesce::Earliest),
            Plan {
                run: vec![],
                missed: vec![t(120)]
            }
        );
        assert_eq!(
            plan(&due, now, None, Coalesce::All),
            Plan {
                run: due.to_vec(),
                missed: vec![]
            }
        );
    }
}
