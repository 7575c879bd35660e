//! Wall-clock time, injected: the system clock, or a test clock driven by tokio's paused time.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

/// Where the scheduler reads wall time.
///
/// The dispatcher sleeps on tokio's monotonic [`Instant`]s and converts with the wall time
/// read here each time it wakes, so a clock that jumps (a settable test clock, an NTP step,
/// a suspended machine) is noticed at the next wake-up; waits are never longer than a
/// minute.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock ([`Utc::now`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall clock that moves with tokio's clock, and can be set.
///
/// Its time is `start + (tokio::time::Instant::now() - creation)`, so under
/// `#[tokio::test(start_paused = true)]` it advances exactly as tokio's paused time does
/// (`tokio::time::advance`, or auto-advance while every task sleeps): a test drives a job
/// through days of virtual time in milliseconds. [`set`](TestClock::set) and
/// [`jump`](TestClock::jump) move the wall time without moving tokio's time, as an NTP step
/// or a suspend would.
///
/// Create it inside the runtime it is used in (its reference instant is taken from tokio).
/// Clones share one clock.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use sched_runtime::clock::{Clock, TestClock};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let clock = TestClock::new(start);
/// tokio::time::sleep(std::time::Duration::from_secs(90)).await; // instant when paused
/// assert_eq!(clock.now(), start + chrono::TimeDelta::seconds(90));
/// clock.jump(chrono::TimeDelta::hours(-1));
/// assert_eq!(clock.now(), start + chrono::TimeDelta::seconds(90 - 3600));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TestClock {
    inner: Arc<Mutex<Anchor>>,
}

#[derive(Debug)]
struct Anchor {
    instant: Instant,
    wall: DateTime<Utc>,
}

impl TestClock {
    /// A clock reading `start` now.
    pub fn new(start: DateTime<Utc>) -> TestClock {
        TestClock {
            inner: Arc::new(Mutex::new(Anchor {
                instant: Instant::now(),
                wall: start,
            })),
        }
    }

    /// Sets the wall time to `wall` (forward or back) without moving tokio's time.
    pub fn set(&self, wall: DateTime<Utc>) {
        let mut a = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        a.instant = Instant::now();
        a.wall = wall;
    }

    /// Moves the wall time by `delta` (negative: back) without moving tokio's time.
    pub fn jump(&self, delta: TimeDelta) {
        let now = self.now();
        self.set(now + delta);
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        let a = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = Instant::now().saturating_duration_since(a.instant);
        TimeDelta::from_std(elapsed)
            .ok()
            .and_then(|d| a.wall.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
