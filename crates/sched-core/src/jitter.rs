//! Random delays added to fire times ("jitter"), so that many jobs on the same schedule do
//! not all start at the same instant.
//!
//! A trigger only *carries* its jitter ([`Trigger::jitter`](crate::Trigger::jitter), the
//! `jitter` key of the spec, in seconds); it never changes
//! [`next_fire_time`](crate::Trigger::next_fire_time). The scheduler (`sched-runtime`, in
//! progress) is to compute the next unjittered fire time from the previous **unjittered**
//! one and only then call [`jittered`] to decide when to actually start the run:
//!
//! ```text
//! unjittered:  10:00        10:05        10:10        10:15
//! jittered:      10:00:40     10:05:03       10:10:52   10:15:17
//!                 └─ each delay is drawn afresh in [0, jitter] from its own
//!                    unjittered time, so delays never add up
//! ```
//!
//! Because the delays are never fed back into the trigger, they cannot accumulate: the
//! `k`-th run starts within `jitter` of the `k`-th unjittered time, however many runs came
//! before.
//!
//! ```
//! use std::time::Duration;
//! use chrono::{TimeZone, Utc};
//! use sched_core::jitter::{SplitMix64, jittered};
//!
//! let fire = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
//! let next = Utc.with_ymd_and_hms(2026, 1, 1, 10, 5, 0).unwrap();
//! let mut rng = SplitMix64::new(7);
//! let run_at = jittered(fire, Duration::from_secs(60), Some(next), &mut rng);
//! assert!(run_at >= fire && run_at <= fire + chrono::Duration::seconds(60));
//! # Ok::<(), sched_core::TriggerError>(())
//! ```

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use crate::TriggerError;
use crate::spec::{SpecReader, number_value};

/// A source of uniformly distributed 64-bit values, injected so that jitter is testable.
///
/// The scheduler uses a properly seeded generator; tests use [`SplitMix64`] with a fixed
/// seed to get reproducible delays.
pub trait RandomSource {
    /// The next value, uniformly distributed over all of `u64`.
    fn next_u64(&mut self) -> u64;
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

/// A small, fast, deterministic generator (Steele, Lea and Flood's SplitMix64).
///
/// Not cryptographic; good enough to spread job start times, and reproducible from its seed.
///
/// ```
/// use sched_core::jitter::{RandomSource, SplitMix64};
///
/// let (mut a, mut b) = (SplitMix64::new(42), SplitMix64::new(42));
/// assert_eq!(a.next_u64(), b.next_u64());
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`; equal seeds give equal sequences.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The instant a run due at `fire` should actually start: `fire` plus a uniformly random
/// delay in `[0, jitter]`, with microsecond resolution.
///
/// When `next_fire` (the next **unjittered** fire time) is given, the delay is shortened so
/// that the run starts strictly before it: jitter never reorders or merges fires. A
/// `next_fire` at or before `fire`, a zero `jitter`, or a result that would overflow the
/// supported time range all give `fire` unchanged.
///
/// ```
/// use std::time::Duration;
/// use chrono::{TimeZone, Utc};
/// use sched_core::jitter::{SplitMix64, jittered};
///
/// // A fire every second with 10 s of jitter: the delay is capped below one second.
/// let fire = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let next = fire + chrono::Duration::seconds(1);
/// let run_at = jittered(fire, Duration::from_secs(10), Some(next), &mut SplitMix64::new(1));
/// assert!(run_at >= fire && run_at < next);
/// # Ok::<(), sched_core::TriggerError>(())
/// ```
pub fn jittered(
    fire: DateTime<Utc>,
    jitter: Duration,
    next_fire: Option<DateTime<Utc>>,
    rng: &mut impl RandomSource,
) -> DateTime<Utc> {
    let mut max = u64::try_from(jitter.as_micros()).unwrap_or(u64::MAX);
    if let Some(next) = next_fire {
        let room = next
            .signed_duration_since(fire)
            .num_microseconds()
            .unwrap_or(i64::MAX)
            .saturating_sub(1);
        max = max.min(u64::try_from(room).unwrap_or(0));
    }
    if max == 0 {
        return fire;
    }
    // Uniform in [0, max]: Lemire's multiply-shift (bias below 2^-64 per value).
    let span = u128::from(max) + 1;
    let delay = (u128::from(rng.next_u64()) * span) >> 64;
    i64::try_from(delay)
        .ok()
        .map(TimeDelta::microseconds)
        .and_then(|d| fire.checked_add_signed(d))
        .unwrap_or(fire)
}

/// The largest jitter a spec may carry: one year. Longer delays are surely a mistake.
const MAX_JITTER_SECS: f64 = 366.0 * 86_400.0;

/// Reads the optional `jitter` key (non-negative seconds, rounded to whole microseconds).
/// Zero is the same as no jitter.
pub(crate) fn read_jitter(r: &mut SpecReader) -> Result<Option<Duration>, TriggerError> {
    let Some(secs) = r.non_negative("jitter")? else {
        return Ok(None);
    };
    if secs > MAX_JITTER_SECS {
        return Err(TriggerError::InvalidValue {
            field: r.path("jitter"),
            value: number_value(secs).to_string(),
            reason: "must be at most one year (31622400 seconds)".into(),
        });
    }
    // In range: at most 3.2e13 microseconds, exact in both f64 and u64.
    let micros = (secs * 1e6).round() as u64;
    Ok(normalize_jitter(Duration::from_micros(micros)))
}

/// Jitter as stored in a trigger: whole microseconds, and zero as `None`.
pub(crate) fn normalize_jitter(jitter: Duration) -> Option<Duration> {
    let micros = u64::try_from(jitter.as_micros()).unwrap_or(u64::MAX);
    (micros > 0).then(|| Duration::from_micros(micros))
}

/// Writes `jitter` (seconds) into a spec when there is one.
pub(crate) fn write_jitter(map: &mut Map<String, Value>, jitter: Option<Duration>) {
    if let Some(j) = jitter {
        map.insert("jitter".into(), micros_as_seconds(j.as_micros()));
    }
}

/// Whole microseconds as a JSON number of seconds (an integer when it is whole).
pub(crate) fn micros_as_seconds(micros: u128) -> Value {
    if micros.is_multiple_of(1_000_000)
        && let Ok(s) = u64::try_from(micros / 1_000_000)
    {
        return Value::from(s);
    }
    // Fractional: f64 division gives the closest double, which rounds back to `micros`
    // for every value a trigger can hold (below 2^53 microseconds).
    number_value(micros as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn delays_stay_in_range_and_before_the_next_fire() {
        let fire = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut rng = SplitMix64::new(3);
        for _ in 0..1000 {
            let t = jittered(fire, Duration::from_millis(1500), None, &mut rng);
            assert!(t >= fire && t <= fire + TimeDelta::milliseconds(1500));
            let next = fire + TimeDelta::microseconds(2);
            let t = jittered(fire, Duration::from_secs(5), Some(next), &mut rng);
            assert!(t >= fire && t < next);
        }
        assert_eq!(
            jittered(fire, Duration::from_secs(5), Some(fire), &mut rng),
            fire
        );
        assert_eq!(jittered(fire, Duration::ZERO, None, &mut rng), fire);
    }

    #[test]
    fn no_overflow_at_the_end_of_time() {
        let fire = DateTime::<Utc>::MAX_UTC;
        let mut rng = SplitMix64::new(9);
        assert_eq!(jittered(fire, Duration::MAX, None, &mut rng), fire);
    }
}
