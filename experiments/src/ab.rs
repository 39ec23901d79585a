//! A/B statistics of paired comparisons over seeds, beside the t interval and p-value of
//! [`crate::stats`]: a percentile bootstrap confidence interval of the relative change, the
//! paired effect size (Cohen's d_z) and the Holm-Bonferroni correction for many comparisons.
//!
//! Sources: Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 13 (percentile
//! interval; pairs resampled together, so the baseline's mean is resampled with the
//! differences); Cohen, *Statistical Power Analysis* (1988), d_z = mean(d) / sd(d) for paired
//! samples; Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist.
//! 6 (1979). Quantiles come from `statrs` (`OrderStatistics::quantile`), every resample from a
//! seeded ChaCha8 stream, so the intervals are the same on every machine.
//!
//! ```
//! use experiments::ab::{bootstrap_relative_ci95, cohens_dz, holm_adjust};
//! // Agent 10% above the baseline on every seed: the interval is exactly [10, 10].
//! let pairs: Vec<(f64, f64)> = (1..=8).map(|i| (1.1 * i as f64, i as f64)).collect();
//! let (lo, hi) = bootstrap_relative_ci95(&pairs, 2_000, 7).unwrap();
//! assert!((lo - 10.0).abs() < 1e-9 && (hi - 10.0).abs() < 1e-9);
//! assert_eq!(cohens_dz(&[1.0, 2.0, 3.0]), Some(2.0));
//! assert_eq!(holm_adjust(&[Some(0.01), Some(0.04), None]), [Some(0.02), Some(0.04), None]);
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::statistics::{Data, OrderStatistics};

/// Bootstrap resamples per comparison in `summary.json`.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// Seed of the bootstrap stream of every comparison (fixed, so summaries are reproducible).
pub const BOOTSTRAP_SEED: u64 = 20_260_401;

/// 95% percentile-bootstrap interval of the relative change 100 * mean(x - y) / |mean(y)| from
/// per-seed `pairs` (x = agent, y = baseline), resampling pairs with replacement `resamples`
/// times from a ChaCha8 stream seeded with `seed`. Resamples whose baseline mean is 0 are left
/// out. Returns `None` with no pairs, fewer than 2 pairs, or when the baseline's mean is 0.
pub fn bootstrap_relative_ci95(
    pairs: &[(f64, f64)],
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    let n = pairs.len();
    let mean_y = pairs.iter().map(|p| p.1).sum::<f64>() / n as f64;
    if n < 2 || resamples == 0 || mean_y.abs() < 1e-12 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let (mut sd, mut sy) = (0.0, 0.0);
        for _ in 0..n {
            let (x, y) = pairs[rng.random_range(0..n)];
            sd += x - y;
            sy += y;
        }
        if sy.abs() >= 1e-12 * n as f64 {
            stats.push(100.0 * sd / sy.abs());
        }
    }
    if stats.is_empty() {
        return None;
    }
    let mut data = Data::new(stats);
    Some((data.quantile(0.025), data.quantile(0.975)))
}

/// Cohen's d_z of paired differences `d`: mean(d) / sd(d) (sample sd, n - 1). `None` with
/// fewer than 2 differences or when sd = 0 (all differences equal).
pub fn cohens_dz(d: &[f64]) -> Option<f64> {
    let n = d.len();
    if n < 2 {
        return None;
    }
    let m = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64;
    (var > 0.0).then(|| m / var.sqrt())
}

/// Holm-Bonferroni adjusted p-values of one family of tests (same order; `None` stays `None`
/// and does not count in the family size m). With the m p-values sorted ascending,
/// p_adj(i) = max over j <= i of min(1, (m - j + 1) p(j)). Rejecting where p_adj < alpha
/// controls the family-wise error rate at alpha.
pub fn holm_adjust(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_some()).collect();
    idx.sort_by(|&a, &b| p[a].unwrap_or(1.0).total_cmp(&p[b].unwrap_or(1.0)));
    let m = idx.len();
    let mut out = vec![None; p.len()];
    let mut running = 0.0f64;
    for (j, &i) in idx.iter().enumerate() {
        let adj = ((m - j) as f64 * p[i].unwrap_or(1.0)).min(1.0);
        running = running.max(adj);
        out[i] = Some(running);
    }
    out
}

/// The `summary.md` section "A/B statistics" of `s`: for cost (`pod_hours`) and SLO
/// (`slo_violation_pct`), every agent against the baseline with the t and bootstrap intervals
/// of the relative change, d_z, the test's p-value, the Wilcoxon p-value and the Holm-adjusted
/// p-value (**bold** below [`crate::report::ALPHA`]). Empty when there are no comparisons.
pub fn render_ab_section(s: &crate::report::SummaryJson) -> String {
    use std::fmt::Write;
    let Some(first) = s.comparisons.first() else {
        return String::new();
    };
    let test = first.test;
    let fmt = |x: Option<f64>, digits: usize| x.map_or("n/a".into(), |v| format!("{v:+.digits$}"));
    let ci = |lo: Option<f64>, hi: Option<f64>| match (lo, hi) {
        (Some(a), Some(b)) => format!("[{a:+.1}, {b:+.1}]"),
        _ => "n/a".into(),
    };
    let p = |x: Option<f64>| match x {
        Some(v) if v < 0.001 => "<0.001".to_string(),
        Some(v) => format!("{v:.3}"),
        None => "n/a".into(),
    };
    let mut out = String::new();
    let family = s
        .comparisons
        .iter()
        .filter(|c| c.metric == "pod_hours" && c.test == test)
        .count();
    let _ = writeln!(
        out,
        "\n### A/B statistics vs {}\n\nRelative change of the mean in % of the baseline's, its 95% \
         t and percentile-bootstrap ({BOOTSTRAP_RESAMPLES} resamples of the seed pairs) \
         intervals, the paired effect size d_z = mean(d)/sd(d), the {} p-value, the Wilcoxon \
         signed-rank p-value and the {} p-value after the Holm-Bonferroni correction over the \
         {family} agents compared on each metric (**bold**: below {}).\n",
        first.baseline,
        test.as_str(),
        test.as_str(),
        crate::report::ALPHA
    );
    out.push_str("| Agent | Metric | Change % | t 95% CI | bootstrap 95% CI | d_z | p | p Wilcoxon | p Holm |\n");
    out.push_str("|---|---|---:|---|---|---:|---:|---:|---:|\n");
    for metric in ["pod_hours", "slo_violation_pct"] {
        for c in s
            .comparisons
            .iter()
            .filter(|c| c.metric == metric && c.test == test)
        {
            let holm = p(c.p_value_holm);
            let holm = if c.p_value_holm.is_some_and(|v| v < crate::report::ALPHA) {
                format!("**{holm}**")
            } else {
                holm
            };
            let _ = writeln!(
                out,
                "| {} | {metric} | {} | {} | {} | {} | {} | {} | {holm} |",
                c.agent,
                fmt(c.relative_change_pct, 1),
                ci(c.ci95_low, c.ci95_high),
                ci(c.bootstrap_ci95_low, c.bootstrap_ci95_high),
                fmt(c.effect_size_dz, 2),
                p(c.p_value),
                p(c.wilcoxon_p_value),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_matches_a_hand_computed_family() {
        // m = 4, sorted 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, 0.06 (monotone), 0.5.
        let p = [Some(0.03), Some(0.5), Some(0.01), Some(0.02)];
        let adj: Vec<f64> = holm_adjust(&p).into_iter().map(Option::unwrap).collect();
        let want = [0.06, 0.5, 0.04, 0.06];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
        assert_eq!(holm_adjust(&[Some(0.9), Some(0.8)]), [Some(1.0), Some(1.0)]);
        assert!(holm_adjust(&[]).is_empty());
    }

    #[test]
    fn bootstrap_interval_covers_the_estimate_and_is_reproducible() {
        let pairs: Vec<(f64, f64)> = [
            (9.0, 10.0),
            (8.5, 10.0),
            (10.2, 10.0),
            (9.1, 11.0),
            (8.0, 9.0),
        ]
        .to_vec();
        let (lo, hi) = bootstrap_relative_ci95(&pairs, 5_000, 1).unwrap();
        let est = 100.0 * (44.8 - 50.0) / 50.0; // -10.4%
        assert!(lo < est && est < hi, "[{lo}, {hi}] vs {est}");
        // Bounded by the most extreme resample: all pairs the same seed.
        let extremes: Vec<f64> = pairs.iter().map(|(x, y)| 100.0 * (x - y) / y).collect();
        let (mn, mx) = extremes
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(lo >= mn && hi <= mx);
        assert_eq!(bootstrap_relative_ci95(&pairs, 5_000, 1), Some((lo, hi)));
        assert_ne!(bootstrap_relative_ci95(&pairs, 5_000, 2), Some((lo, hi)));
        assert_eq!(bootstrap_relative_ci95(&pairs[..1], 100, 1), None);
        assert_eq!(
            bootstrap_relative_ci95(&[(1.0, 0.0), (2.0, 0.0)], 100, 1),
            None
        );
    }

    #[test]
    fn summaries_adjust_each_metric_family_with_holm() {
        use crate::records::tests::episode;
        // Three agents against hpa over 6 seeds, with different pod-hours shifts.
        let mut recs = Vec::new();
        for seed in 0..6u64 {
            let noise = [0.3, -0.2, 0.1, -0.4, 0.2, 0.0][seed as usize];
            recs.push(episode("hpa", "hpa", seed, 10.0));
            recs.push(episode("a", "static", seed, 10.5 + noise));
            recs.push(episode("b", "static", seed, 12.0 + noise));
            recs.push(episode("c", "static", seed, 10.0 + noise));
        }
        let s = crate::report::summarize("t", "env", "trace", &recs, "hpa");
        let fam: Vec<&crate::stats::Comparison> = s
            .comparisons
            .iter()
            .filter(|c| c.metric == "pod_hours")
            .collect();
        assert_eq!(fam.len(), 3);
        let p: Vec<Option<f64>> = fam.iter().map(|c| c.p_value).collect();
        let want = holm_adjust(&p);
        for (c, w) in fam.iter().zip(want) {
            assert_eq!(c.p_value_holm, w);
            assert!(c.p_value_holm.unwrap() >= c.p_value.unwrap());
            let (lo, hi) = (
                c.bootstrap_ci95_low.unwrap(),
                c.bootstrap_ci95_high.unwrap(),
            );
            assert!(lo <= c.relative_change_pct.unwrap() && c.relative_change_pct.unwrap() <= hi);
            let d: Vec<f64> = (0..6)
                .map(|i| {
                    recs[4 * i + 1 + fam.iter().position(|x| x.agent == c.agent).unwrap()]
                        .metrics
                        .pod_hours
                        - 10.0
                })
                .collect();
            assert_eq!(c.effect_size_dz, cohens_dz(&d));
            assert_eq!(
                c.wilcoxon_p_value,
                crate::stats::wilcoxon_signed_rank_p_value(&d)
            );
        }
    }

    #[test]
    fn effect_size_is_mean_over_sd() {
        // d = 1, 3: mean 2, sd sqrt(2).
        assert!((cohens_dz(&[1.0, 3.0]).unwrap() - 2.0 / 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(cohens_dz(&[1.0, 1.0]), None);
        assert_eq!(cohens_dz(&[1.0]), None);
    }
}
