//! [`Schedule`]: when each request of a rate series is sent (arrival offsets in seconds).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use sim::trace::RateSeries;
use sim::workload::Arrivals;

use crate::{Error, Result};

/// The arrival instants of a rate series: offsets in seconds from the start of the run, in
/// increasing order, generated lazily (a month-long trace does not need its offsets in memory).
///
/// * [`Arrivals::Poisson`]: in each bin, a Poisson process with the bin's rate (exponential
///   gaps drawn from a ChaCha8 stream seeded with `seed`, restarted at every bin boundary, which
///   the memoryless property allows). The count in a bin of rate `r` and width `w` is
///   Poisson(`r*w`).
/// * [`Arrivals::Deterministic`]: evenly spaced; the `k`-th arrival (from 0) is where the
///   integral of the rate reaches `k + 0.5`. A bin whose `r*w` is a whole number, preceded by
///   bins with whole numbers, gets exactly `r*w` arrivals.
///
/// The same series, mode and seed always give the same offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    series: RateSeries,
    arrivals: Arrivals,
    seed: u64,
}

impl Schedule {
    /// A schedule for `series` (requests/s per bin of `step_s` seconds).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] (`series.step_s`, `series.values`) if the step is not finite
    /// and > 0, a rate is negative or not finite, or the series is empty.
    pub fn new(series: RateSeries, arrivals: Arrivals, seed: u64) -> Result<Schedule> {
        if !(series.step_s.is_finite() && series.step_s > 0.0) {
            return Err(Error::input(
                "series.step_s",
                format!("expected a finite bin width > 0 s, got {}", series.step_s),
            ));
        }
        if series.values.is_empty() {
            return Err(Error::input("series.values", "the rate series is empty"));
        }
        if let Some((i, v)) = series
            .values
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(Error::input(
                "series.values",
                format!("bin {i} has rate {v}; expected a finite rate >= 0 requests/s"),
            ));
        }
        Ok(Schedule {
            series,
            arrivals,
            seed,
        })
    }

    /// The rate series.
    pub fn series(&self) -> &RateSeries {
        &self.series
    }

    /// The arrival mode.
    pub fn arrivals(&self) -> Arrivals {
        self.arrivals
    }

    /// The seed of the arrival stream.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Length of the schedule in seconds (the series' length).
    pub fn duration_s(&self) -> f64 {
        self.series.duration_s()
    }

    /// Expected number of requests (the integral of the rate).
    pub fn expected_requests(&self) -> f64 {
        self.series.total_requests()
    }

    /// Index of the bin holding `offset_s` (the last bin for offsets at or past the end).
    pub fn bin_of(&self, offset_s: f64) -> usize {
        let i = (offset_s / self.series.step_s).floor();
        (i.max(0.0) as usize).min(self.series.values.len().saturating_sub(1))
    }

    /// The arrival offsets in seconds, in increasing order, lazily.
    pub fn iter(&self) -> ScheduleIter<'_> {
        ScheduleIter {
            schedule: self,
            rng: ChaCha8Rng::seed_from_u64(self.seed),
            bin: 0,
            t: 0.0,
            cum_before: 0.0,
            k: 0,
        }
    }

    /// Every arrival offset in seconds, collected (see [`Schedule::iter`] for long series).
    pub fn offsets(&self) -> Vec<f64> {
        self.iter().collect()
    }
}

/// Iterator over a [`Schedule`]'s offsets (seconds, increasing).
#[derive(Debug, Clone)]
pub struct ScheduleIter<'a> {
    schedule: &'a Schedule,
    rng: ChaCha8Rng,
    /// Current bin.
    bin: usize,
    /// Poisson: time of the last arrival (or the bin start).
    t: f64,
    /// Deterministic: integral of the rate before the current bin.
    cum_before: f64,
    /// Deterministic: arrivals emitted so far.
    k: u64,
}

impl Iterator for ScheduleIter<'_> {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        let step = self.schedule.series.step_s;
        let values = &self.schedule.series.values;
        loop {
            let &rate = values.get(self.bin)?;
            let bin_start = self.bin as f64 * step;
            let bin_end = bin_start + step;
            match self.schedule.arrivals {
                Arrivals::Poisson => {
                    if rate > 0.0 {
                        if let Ok(exp) = Exp::new(rate) {
                            let t = self.t.max(bin_start) + exp.sample(&mut self.rng);
                            if t < bin_end {
                                self.t = t;
                                return Some(t);
                            }
                        }
                    }
                    self.bin += 1;
                    self.t = bin_end;
                }
                Arrivals::Deterministic => {
                    let target = self.k as f64 + 0.5;
                    let cum_after = self.cum_before + rate * step;
                    if rate > 0.0 && target < cum_after {
                        self.k += 1;
                        let t = bin_start + (target - self.cum_before) / rate;
                        return Some(t.clamp(bin_start, bin_end));
                    }
                    self.cum_before = cum_after;
                    self.bin += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: Vec<f64>, step_s: f64) -> RateSeries {
        RateSeries { step_s, values }
    }

    fn counts(s: &Schedule) -> Vec<usize> {
        let mut c = vec![0; s.series().values.len()];
        for t in s.iter() {
            c[s.bin_of(t)] += 1;
        }
        c
    }

    #[test]
    fn same_seed_same_offsets_different_seed_different() {
        let s = series(vec![50.0, 0.0, 120.0, 7.5], 2.0);
        let a = Schedule::new(s.clone(), Arrivals::Poisson, 7)
            .unwrap()
            .offsets();
        let b = Schedule::new(s.clone(), Arrivals::Poisson, 7)
            .unwrap()
            .offsets();
        let c = Schedule::new(s, Arrivals::Poisson, 8).unwrap().offsets();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        assert!(a.iter().all(|&t| (0.0..8.0).contains(&t)));
        // Nothing in the zero-rate bin [2, 4).
        assert!(!a.iter().any(|&t| (2.0..4.0).contains(&t)));
    }

    #[test]
    fn deterministic_counts_are_exact_and_evenly_spaced() {
        // Bins of 0.5 s: 10, 0, 4, 30 req/s -> 5, 0, 2, 15 arrivals.
        let s = Schedule::new(
            series(vec![10.0, 0.0, 4.0, 30.0], 0.5),
            Arrivals::Deterministic,
            3,
        )
        .unwrap();
        assert_eq!(counts(&s), vec![5, 0, 2, 15]);
        let o = s.offsets();
        // First bin: 0.05, 0.15, ..., 0.45 (spacing 1/10 s, half a spacing in).
        for (i, t) in o[..5].iter().enumerate() {
            assert!((t - (0.05 + 0.1 * i as f64)).abs() < 1e-9, "{t}");
        }
        // The seed does not matter.
        let s2 = Schedule::new(s.series().clone(), Arrivals::Deterministic, 99).unwrap();
        assert_eq!(s2.offsets(), o);
    }

    #[test]
    fn deterministic_fractional_rates_carry_over() {
        // 0.5 req/s over 10 bins of 1 s: 5 arrivals, at 1, 3, 5, 7, 9 s.
        let s = Schedule::new(series(vec![0.5; 10], 1.0), Arrivals::Deterministic, 0).unwrap();
        let o = s.offsets();
        assert_eq!(o.len(), 5);
        for (i, t) in o.iter().enumerate() {
            assert!((t - (1.0 + 2.0 * i as f64)).abs() < 1e-9, "{t}");
        }
    }

    #[test]
    fn poisson_counts_match_the_series_within_bounds() {
        // Means 400, 100, 2000, 0 per bin. A Poisson count lies within 5 standard deviations of
        // its mean with probability > 1 - 6e-7 (and the seed is fixed, so this cannot flake).
        let rates = vec![200.0, 50.0, 1000.0, 0.0];
        let s = Schedule::new(series(rates.clone(), 2.0), Arrivals::Poisson, 42).unwrap();
        let c = counts(&s);
        for (count, rate) in c.iter().zip(&rates) {
            let mean = rate * 2.0;
            let bound = 5.0 * mean.sqrt();
            assert!(
                (*count as f64 - mean).abs() <= bound,
                "count {count} vs mean {mean}"
            );
        }
        assert_eq!(c[3], 0);
        // Over 200 seeds the mean count of bin 0 is 400 within 5 standard errors (sqrt(400/200)).
        let total: usize = (0..200)
            .map(|seed| {
                let s = Schedule::new(series(vec![200.0], 2.0), Arrivals::Poisson, seed).unwrap();
                s.iter().count()
            })
            .sum();
        let mean = total as f64 / 200.0;
        assert!(
            (mean - 400.0).abs() <= 5.0 * (400.0f64 / 200.0).sqrt(),
            "{mean}"
        );
    }

    #[test]
    fn bad_series_is_rejected_with_the_field() {
        let e = Schedule::new(series(vec![1.0], 0.0), Arrivals::Poisson, 0).unwrap_err();
        assert!(e.to_string().contains("series.step_s"), "{e}");
        let e = Schedule::new(series(vec![1.0, -2.0], 1.0), Arrivals::Poisson, 0).unwrap_err();
        assert!(e.to_string().contains("bin 1"), "{e}");
        let e = Schedule::new(series(vec![f64::NAN], 1.0), Arrivals::Poisson, 0).unwrap_err();
        assert!(e.to_string().contains("series.values"), "{e}");
        assert!(Schedule::new(series(vec![], 1.0), Arrivals::Poisson, 0).is_err());
    }
}
