//! Types shared by training and serving, so they cannot drift apart: [`ObsEncoder`] turns a
//! [`ClusterState`] into the normalised observation vector, [`ActionMap`] turns a discrete
//! action into a replica change, [`ScaleGuard`] applies bounds and cooldown to a desired count.

use std::time::Duration;

use sim::{ClusterState, SimTime};

/// Number of base observation features (CPU, memory, request rate, replicas).
pub const BASE_FEATURES: usize = 4;

/// Encodes a [`ClusterState`] as the `scaling-v0` observation, every feature in `[0, 1]`:
///
/// | index | feature | unit before normalisation | normalisation |
/// |---|---|---|---|
/// | 0 | CPU utilization of Ready pods (HPA's definition) | fraction of CPU request | `min(u, 2) / 2` |
/// | 1 | memory utilization of Ready pods | fraction of memory request | `min(u, 2) / 2` |
/// | 2 | scraped request rate | requests per second | `min(r / rate_scale_rps, 2) / 2` |
/// | 3 | desired replicas | pods | `r / max_replicas` (clipped to 1) |
/// | 4 (optional) | trend: rate change over the last step | requests per second | `clamp((Δr / rate_scale_rps + 1) / 2, 0, 1)` |
#[derive(Debug, Clone, PartialEq)]
pub struct ObsEncoder {
    /// Request rate that maps to 0.5 (the workload's peak, requests per second).
    pub rate_scale_rps: f64,
    /// Replica count that maps to 1.0.
    pub max_replicas: u32,
    /// Append the trend feature (index 4).
    pub trend_feature: bool,
}

impl ObsEncoder {
    /// Dimension of the encoded observation.
    pub fn dim(&self) -> usize {
        BASE_FEATURES + usize::from(self.trend_feature)
    }

    /// Encodes `state` into `out` (cleared first; no allocation once `out` has capacity).
    /// `prev_rate_per_s` is the rate seen at the previous step (for the trend feature).
    pub fn encode_into(&self, state: &ClusterState, prev_rate_per_s: f64, out: &mut Vec<f32>) {
        out.clear();
        let scale = self.rate_scale_rps.max(1e-9);
        out.push((state.cpu_utilization().clamp(0.0, 2.0) / 2.0) as f32);
        out.push((state.memory_utilization().clamp(0.0, 2.0) / 2.0) as f32);
        out.push(((state.request_rate_per_s / scale).clamp(0.0, 2.0) / 2.0) as f32);
        out.push(
            (f64::from(state.desired_replicas) / f64::from(self.max_replicas.max(1))).min(1.0)
                as f32,
        );
        if self.trend_feature {
            let d = (state.request_rate_per_s - prev_rate_per_s) / scale;
            out.push(((d + 1.0) / 2.0).clamp(0.0, 1.0) as f32);
        }
    }
}

/// Maps a discrete action to a replica change: action `i` of `0..2*max_step+1` means
/// `i - max_step` replicas (scale down `max_step..1`, no action, scale up `1..max_step`).
/// The seed design uses `max_step = 10`, i.e. 21 actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionMap {
    /// Largest change in one action, pods.
    pub max_step: u32,
}

impl Default for ActionMap {
    fn default() -> Self {
        Self { max_step: 10 }
    }
}

impl ActionMap {
    /// Number of actions, `2 * max_step + 1`.
    pub fn n(&self) -> usize {
        2 * self.max_step as usize + 1
    }

    /// The "no action" index.
    pub fn noop(&self) -> usize {
        self.max_step as usize
    }

    /// Replica change of action `a` (pods; negative = scale down). Out-of-range actions are
    /// clamped to the nearest valid one.
    pub fn delta(&self, a: usize) -> i64 {
        a.min(self.n() - 1) as i64 - i64::from(self.max_step)
    }

    /// Desired replicas after applying action `a` to `current` (not yet clamped to bounds).
    pub fn target(&self, a: usize, current: u32) -> u32 {
        (i64::from(current) + self.delta(a)).max(0) as u32
    }
}

/// Applies replica bounds and a cooldown to desired counts (the seed design: min 1, max 50,
/// cooldown 300 s; cooldown 0 disables it). A change is refused while less than `cooldown`
/// has passed since the last change it let through.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleGuard {
    /// Lowest allowed replica count.
    pub min_replicas: u32,
    /// Highest allowed replica count.
    pub max_replicas: u32,
    /// Minimum time between two changes.
    pub cooldown: Duration,
    last_change: Option<SimTime>,
}

impl ScaleGuard {
    /// A guard with no change recorded yet.
    pub fn new(min_replicas: u32, max_replicas: u32, cooldown: Duration) -> Self {
        Self {
            min_replicas,
            max_replicas,
            cooldown,
            last_change: None,
        }
    }

    /// Forgets the last change (a new episode).
    pub fn reset(&mut self) {
        self.last_change = None;
    }

    /// The replica count to set at `now` when `desired` is asked for and `current` is set:
    /// `desired` clamped to the bounds, or `current` (clamped) while cooling down.
    pub fn apply(&mut self, now: SimTime, current: u32, desired: u32) -> u32 {
        let target = desired.clamp(self.min_replicas, self.max_replicas);
        if target == current {
            return current;
        }
        let cooling = self.last_change.is_some_and(|t| now - t < self.cooldown);
        let inside = (self.min_replicas..=self.max_replicas).contains(&current);
        if cooling && inside {
            return current;
        }
        self.last_change = Some(now);
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_map_covers_minus_ten_to_plus_ten() {
        let m = ActionMap::default();
        assert_eq!(m.n(), 21);
        assert_eq!(m.delta(0), -10);
        assert_eq!(m.delta(10), 0);
        assert_eq!(m.delta(20), 10);
        assert_eq!(m.target(0, 3), 0);
        assert_eq!(m.target(15, 3), 8);
    }

    #[test]
    fn guard_clamps_and_cools_down() {
        let mut g = ScaleGuard::new(1, 50, Duration::from_secs(300));
        assert_eq!(g.apply(SimTime::from_secs(0), 2, 80), 50);
        // 100 s later a change is refused...
        assert_eq!(g.apply(SimTime::from_secs(100), 50, 10), 50);
        // ...but exactly 300 s later it is allowed.
        assert_eq!(g.apply(SimTime::from_secs(300), 50, 10), 10);
        assert_eq!(g.apply(SimTime::from_secs(301), 10, 0), 10);
        assert_eq!(g.apply(SimTime::from_secs(600), 10, 0), 1);
    }
}
