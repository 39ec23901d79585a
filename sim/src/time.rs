//! Simulated time: [`SimTime`], integer milliseconds since the start of a run.
//!
//! Integer time (not `f64`) makes event ordering exact and runs bit-for-bit reproducible
//! (the nexosim `MonotonicTime` lesson in STYLE.md).

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in simulated time, in whole milliseconds since the start of the run.
///
/// Ordering is total; arithmetic saturates at zero when subtracting a later time.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of every run (t = 0 ms).
    pub const ZERO: SimTime = SimTime(0);

    /// A time `ms` milliseconds after the start.
    pub const fn from_millis(ms: u64) -> Self {
        SimTime(ms)
    }

    /// A time `s` whole seconds after the start.
    pub const fn from_secs(s: u64) -> Self {
        SimTime(s * 1000)
    }

    /// A time from fractional seconds, rounded to the nearest millisecond (negative -> 0).
    pub fn from_secs_f64(s: f64) -> Self {
        SimTime((s * 1000.0).round().max(0.0) as u64)
    }

    /// Milliseconds since the start.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Seconds since the start, as `f64`.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// The time elapsed since `earlier` (zero if `earlier` is later than `self`).
    pub fn saturating_since(self, earlier: SimTime) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `self - d`, saturating at [`SimTime::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> SimTime {
        SimTime(self.0.saturating_sub(d.as_millis() as u64))
    }
}

impl Add<Duration> for SimTime {
    type Output = SimTime;
    fn add(self, rhs: Duration) -> SimTime {
        SimTime(self.0 + rhs.as_millis() as u64)
    }
}

impl AddAssign<Duration> for SimTime {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 += rhs.as_millis() as u64;
    }
}

impl Sub for SimTime {
    type Output = Duration;
    /// Elapsed time between two instants; saturates at zero.
    fn sub(self, rhs: SimTime) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_exact_in_milliseconds() {
        let t = SimTime::from_secs(15) + Duration::from_millis(250);
        assert_eq!(t.as_millis(), 15_250);
        assert_eq!(t - SimTime::from_secs(15), Duration::from_millis(250));
        // Subtracting a later time saturates rather than wrapping.
        assert_eq!(
            SimTime::from_secs(1) - SimTime::from_secs(2),
            Duration::ZERO
        );
        assert_eq!(SimTime::from_secs_f64(1.2345).as_millis(), 1235);
    }
}
