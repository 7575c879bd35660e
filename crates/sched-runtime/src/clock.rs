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
///
/// The exception is the system clock on Linux ([`is_system`](Clock::is_system)): there the
/// dispatcher waits for the wall time itself, with a kernel timer on the real-time clock
/// that also fires at once when the clock is set (see [`SystemClock`]).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall time.
    fn now(&self) -> DateTime<Utc>;

    /// Whether [`now`](Clock::now) reads the system's real-time clock, so that the
    /// scheduler may wait for a wall time with a kernel timer on that clock instead of
    /// tokio's timer. Default `false`.
    fn is_system(&self) -> bool {
        false
    }
}

/// The system's wall clock ([`Utc::now`]).
///
/// On Linux the dispatcher waits for a wall time with a `timerfd` on `CLOCK_REALTIME`,
/// armed with an absolute deadline and `TFD_TIMER_CANCEL_ON_SET`: it fires at that wall
/// time even across a suspend, and at once when the clock is set (an NTP step, `date -s`),
/// so the wait needs no splitting and an idle scheduler does not wake. When the timer
/// cannot be had (not Linux, or a runtime without its I/O driver), the dispatcher waits on
/// tokio's timer for at most a minute at a time, as with any other clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn is_system(&self) -> bool {
        true
    }
}

/// A wait for a wall time on the kernel's real-time clock (Linux): see [`SystemClock`].
#[cfg(target_os = "linux")]
pub(crate) struct WallTimer(tokio::io::unix::AsyncFd<TimerFd>);

/// The timer's descriptor, as tokio's `AsyncFd` wants it.
#[cfg(target_os = "linux")]
struct TimerFd(nix::sys::timerfd::TimerFd);

#[cfg(target_os = "linux")]
impl std::os::fd::AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

#[cfg(target_os = "linux")]
impl WallTimer {
    /// A timer on `CLOCK_REALTIME` registered with the current runtime's I/O driver;
    /// `None` when either cannot be had.
    pub(crate) fn new() -> Option<WallTimer> {
        use nix::sys::timerfd::{ClockId, TimerFlags};
        let fd = nix::sys::timerfd::TimerFd::new(
            ClockId::CLOCK_REALTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .ok()?;
        // tokio deprecates its safe constructors because a `T` could close or swap its
        // descriptor while registered, and its replacement is `unsafe` (forbidden here).
        // This `T` cannot: it owns the descriptor (an `OwnedFd` inside nix's `TimerFd`),
        // closes it only when dropped after the `AsyncFd` is, and always returns it.
        #[allow(deprecated)]
        let fd =
            tokio::io::unix::AsyncFd::with_interest(TimerFd(fd), tokio::io::Interest::READABLE);
        fd.ok().map(WallTimer)
    }

    /// Waits until the real-time clock reads `at`, or until the clock is set.
    ///
    /// # Errors
    /// An error of the timer's system calls; the caller then falls back to tokio's timer.
    ///
    /// # Cancel safety
    /// Cancel safe: the next call arms the timer again.
    pub(crate) async fn sleep_until(&self, at: DateTime<Utc>) -> std::io::Result<()> {
        use nix::errno::Errno;
        use nix::sys::time::TimeSpec;
        use nix::sys::timerfd::{Expiration, TimerSetTimeFlags};
        // A zero deadline disarms a timerfd: anything at or before the epoch is now.
        let secs = at.timestamp().max(0);
        let nanos = if secs == 0 && at.timestamp() <= 0 {
            1
        } else {
            at.timestamp_subsec_nanos()
        };
        let deadline = TimeSpec::new(secs, i64::from(nanos));
        let fd = self.0.get_ref();
        fd.0.set(
            Expiration::OneShot(deadline),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
        )
        .map_err(std::io::Error::from)?;
        loop {
            let mut ready = self.0.readable().await?;
            match ready.try_io(|fd| {
                let mut count = [0u8; 8];
                match nix::unistd::read(&fd.get_ref().0, &mut count) {
                    // Expired, or the clock was set (the wait is over either way).
                    Ok(_) | Err(Errno::ECANCELED) => Ok(()),
                    Err(e) => Err(std::io::Error::from(e)),
                }
            }) {
                Ok(result) => return result,
                // Not yet (readiness from an earlier arming): wait again.
                Err(_would_block) => {}
            }
        }
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

/// Elsewhere than on Linux there is no kernel wall-time wait: `new` gives none.
#[cfg(not(target_os = "linux"))]
pub(crate) struct WallTimer(std::convert::Infallible);

#[cfg(not(target_os = "linux"))]
impl WallTimer {
    pub(crate) fn new() -> Option<WallTimer> {
        None
    }

    pub(crate) async fn sleep_until(&self, _at: DateTime<Utc>) -> std::io::Result<()> {
        match self.0 {}
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The kernel timer returns at once for a time already past, and not before a time
    /// ahead (no upper bound is checked: the machine may be slow).
    #[tokio::test]
    async fn wall_timer_waits_until_the_wall_time() {
        let timer = WallTimer::new().expect("a timerfd on a runtime with I/O");
        timer
            .sleep_until(Utc::now() - TimeDelta::seconds(5))
            .await
            .unwrap();
        timer
            .sleep_until(DateTime::<Utc>::UNIX_EPOCH)
            .await
            .unwrap();
        for _ in 0..2 {
            let at = Utc::now() + TimeDelta::milliseconds(30);
            timer.sleep_until(at).await.unwrap();
            assert!(Utc::now() >= at);
        }
    }
}
