//! The operator's safety limits: every replica count it sets passes through [`Safety::apply`].
//!
//! Order (each limit named in the decision trace when it changed the count): clamp to
//! `[min_replicas, max_replicas]`, limit the change to `max_step` pods, then refuse any change
//! while the cooldown since the last change runs. These are the simulator's
//! [`envs::ScaleGuard`] rules (bounds, cooldown) plus a maximum step, so a policy trained
//! there meets the same limits here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Bounds, maximum step and cooldown (`[operator]` table fields).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyConfig {
    /// Lowest replica count the operator sets. Default 1; must be >= 1.
    pub min_replicas: u32,
    /// Highest replica count the operator sets. Default 10; must be >= `min_replicas`.
    pub max_replicas: u32,
    /// Largest change of one decision, pods. Default 4; must be >= 1.
    pub max_step: u32,
    /// Minimum time between two changes, seconds (0 = none). Default 30.
    pub cooldown_s: f64,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            min_replicas: 1,
            max_replicas: 10,
            max_step: 4,
            cooldown_s: 30.0,
        }
    }
}

impl SafetyConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// A message naming the field (`operator.<field>`) and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_replicas < 1 {
            return Err(format!(
                "operator.min_replicas: expected >= 1, got {}",
                self.min_replicas
            ));
        }
        if self.max_replicas < self.min_replicas {
            return Err(format!(
                "operator.max_replicas: expected >= min_replicas ({}), got {}",
                self.min_replicas, self.max_replicas
            ));
        }
        if self.max_step < 1 {
            return Err("operator.max_step: expected >= 1, got 0".into());
        }
        if !(self.cooldown_s.is_finite() && self.cooldown_s >= 0.0) {
            return Err(format!(
                "operator.cooldown_s: expected a finite number >= 0 seconds, got {}",
                self.cooldown_s
            ));
        }
        Ok(())
    }
}

/// A limit that changed a wished replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Raised to `min_replicas`.
    MinReplicas,
    /// Lowered to `max_replicas`.
    MaxReplicas,
    /// Cut to `max_step` pods of change.
    MaxStep,
    /// Held at the current count: the cooldown since the last change runs.
    Cooldown,
}

/// What [`Safety::apply`] let through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guarded {
    /// The replica count to set (equal to the current one when nothing is to change).
    pub replicas: u32,
    /// The limits that changed the wish, in the order applied.
    pub limited_by: Vec<Limit>,
}

/// Applies [`SafetyConfig`] to wished replica counts and remembers the last change.
#[derive(Debug, Clone)]
pub struct Safety {
    config: SafetyConfig,
    last_change: Option<Duration>,
}

impl Safety {
    /// Safety limits with no change recorded yet.
    pub fn new(config: SafetyConfig) -> Self {
        Self {
            config,
            last_change: None,
        }
    }

    /// The limits.
    pub fn config(&self) -> &SafetyConfig {
        &self.config
    }

    /// The count to set at `now` (time since the operator started) when `wished` is asked for
    /// and `current` is set. A result different from `current` is recorded as a change (call
    /// [`Safety::undo`] if setting it then fails). A `current` outside the bounds is brought
    /// back inside at once, cooldown or not.
    pub fn apply(&mut self, now: Duration, current: u32, wished: u32) -> Guarded {
        let c = &self.config;
        let mut limited_by = Vec::new();
        let mut target = wished;
        if target < c.min_replicas {
            target = c.min_replicas;
            limited_by.push(Limit::MinReplicas);
        } else if target > c.max_replicas {
            target = c.max_replicas;
            limited_by.push(Limit::MaxReplicas);
        }
        let inside = (c.min_replicas..=c.max_replicas).contains(&current);
        if inside {
            let step = c.max_step;
            if target > current.saturating_add(step) {
                target = current + step;
                limited_by.push(Limit::MaxStep);
            } else if target + step < current {
                target = current - step;
                limited_by.push(Limit::MaxStep);
            }
        }
        if target != current && inside {
            let cooldown = Duration::from_secs_f64(self.config.cooldown_s);
            if self
                .last_change
                .is_some_and(|t| now.saturating_sub(t) < cooldown)
            {
                limited_by.push(Limit::Cooldown);
                return Guarded {
                    replicas: current,
                    limited_by,
                };
            }
        }
        if target != current {
            self.last_change = Some(now);
        }
        Guarded {
            replicas: target,
            limited_by,
        }
    }

    /// Forgets the change recorded by the last [`Safety::apply`] (the scaler failed to make it),
    /// restoring `previous`.
    pub fn undo(&mut self, previous: Option<Duration>) {
        self.last_change = previous;
    }

    /// When the last change was let through (time since the operator started).
    pub fn last_change(&self) -> Option<Duration> {
        self.last_change
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn clamps_steps_and_cools_down_by_hand() {
        let mut s = Safety::new(SafetyConfig {
            min_replicas: 2,
            max_replicas: 8,
            max_step: 3,
            cooldown_s: 60.0,
        });
        // 20 -> max 8 -> step from 2 limited to 5.
        let g = s.apply(secs(0), 2, 20);
        assert_eq!(g.replicas, 5);
        assert_eq!(g.limited_by, vec![Limit::MaxReplicas, Limit::MaxStep]);
        // 30 s later: cooling down, held at 5.
        let g = s.apply(secs(30), 5, 7);
        assert_eq!(g.replicas, 5);
        assert_eq!(g.limited_by, vec![Limit::Cooldown]);
        // No change wished: no limit, no change recorded.
        assert_eq!(s.apply(secs(40), 5, 5).limited_by, vec![]);
        // 60 s after the change: allowed; 0 -> min 2, within a step of 5.
        let g = s.apply(secs(60), 5, 0);
        assert_eq!(g.replicas, 2);
        assert_eq!(g.limited_by, vec![Limit::MinReplicas]);
        assert_eq!(s.last_change(), Some(secs(60)));
    }

    #[test]
    fn out_of_bounds_current_is_corrected_even_in_cooldown() {
        let mut s = Safety::new(SafetyConfig {
            min_replicas: 1,
            max_replicas: 4,
            max_step: 1,
            cooldown_s: 300.0,
        });
        assert_eq!(s.apply(secs(0), 2, 3).replicas, 3);
        // Someone set 9 by hand: back to 4 at once, not one step at a time.
        assert_eq!(s.apply(secs(1), 9, 9).replicas, 4);
    }

    proptest! {
        /// Whatever is wished, the result lies in [min, max]; two changes are never closer
        /// than the cooldown; a step from inside the bounds never exceeds max_step.
        #[test]
        fn never_outside_bounds_or_cooldown(
            min in 1u32..5, span in 0u32..20, step in 1u32..6, cooldown in 0u64..120,
            wishes in proptest::collection::vec((0u32..40, 1u64..90), 1..60),
        ) {
            let cfg = SafetyConfig {
                min_replicas: min,
                max_replicas: min + span,
                max_step: step,
                cooldown_s: cooldown as f64,
            };
            let mut s = Safety::new(cfg);
            let (mut now, mut current) = (Duration::ZERO, min);
            let mut last: Option<Duration> = None;
            for (wish, dt) in wishes {
                now += Duration::from_secs(dt);
                let g = s.apply(now, current, wish);
                prop_assert!(g.replicas >= cfg.min_replicas && g.replicas <= cfg.max_replicas);
                prop_assert!(g.replicas.abs_diff(current) <= step);
                if g.replicas != current {
                    if let Some(t) = last {
                        prop_assert!(now - t >= Duration::from_secs(cooldown));
                    }
                    last = Some(now);
                }
                current = g.replicas;
            }
        }
    }
}
