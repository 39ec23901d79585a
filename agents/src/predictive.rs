//! Predictive scaling: load forecasts (and anomaly flags) as observation features of learned
//! agents, the same features in training and serving, and a proactive rule baseline.
//!
//! - [`PredictiveFeatures`] turns the request rate seen at each decision into extra
//!   observation features: the forecast `horizon` ahead, its uncertainty, an anomaly flag.
//! - [`PredictiveEnv`] wraps [`ScalingEnv`] and appends those features to every observation,
//!   so Q-learning and DQN train on them through the ordinary [`Env`] trait.
//! - [`PredictiveAutoscaler`] serves a policy trained on a [`PredictiveEnv`]: same encoder, same
//!   features, same action map.
//! - [`ProactiveRule`] is the baseline: the Kubernetes HPA, plus a floor that provisions for the
//!   forecast peak within the pod start-up time.
//!
//! # A forecast alone never scales in
//! As in production predictive scalers (AWS EC2 Auto Scaling predictive scaling, for one, only
//! ever raises capacity and leaves scale-in to dynamic scaling), a forecast can raise the
//! replica count or keep it up, never lower it: with `scale_in_on_forecast = false` (the
//! default) the proactive rule decides `max(hpa, forecast floor)`, and a learned hybrid may
//! scale in only down to the replicas the forecast needs ([`scale_in_guard`]). Set
//! `scale_in_on_forecast = true` to let the forecast decide alone.
//!
//! # Capacity
//! How many requests per second one pod serves at the target utilization is estimated online
//! from what every controller sees ([`CapacityEstimate`]): `rate / (ready * utilization) *
//! target`, smoothed; no simulator internals, so the same code runs on a live cluster.

use std::sync::Arc;

use envs::{ActionMap, BoxSpace, Discrete, Env, ObsEncoder, ScalingEnv, Step, StepInfo};
use serde::{Deserialize, Serialize};
use sim::{ClusterState, ScaleDecision};

use crate::anomaly::AnomalyDetector;
use crate::autoscaler::{Autoscaler, Policy};
use crate::forecast::{ForecastError, Forecaster};
use crate::hpa::Hpa;

/// Longest forecast horizon or season accepted, seconds (one year).
pub const MAX_SPAN_S: f64 = 365.0 * 86_400.0;

/// A fitted forecaster shared by every episode and thread (forecasting reads it only).
pub type SharedForecaster = Arc<dyn Forecaster + Sync>;

/// Which forecaster a predictive agent uses (`[agents.predictive.forecaster]`, tagged by
/// `kind`). Its step is the agent's decision interval; it is fitted on the training window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ForecasterConfig {
    /// The last observed rate ([`crate::forecast::baselines::LastValue`]).
    LastValue,
    /// The rate one season earlier ([`crate::forecast::baselines::SeasonalNaive`]).
    SeasonalNaive {
        /// Season, seconds (default one day).
        #[serde(default = "day_s")]
        period_s: f64,
    },
    /// Exponentially weighted moving average ([`crate::forecast::baselines::Ewma`]).
    Ewma {
        /// Smoothing weight of the newest point, in `(0, 1]` (default 0.3).
        #[serde(default = "ewma_alpha")]
        alpha: f64,
    },
    /// Additive Holt-Winters, parameters fitted on the training window
    /// ([`crate::forecast::baselines::HoltWinters`]).
    HoltWinters {
        /// Season, seconds (default one day).
        #[serde(default = "day_s")]
        period_s: f64,
    },
    /// The seed's LSTM ([`crate::forecast::LstmForecaster`]: 3 x 128, 60-step window, dropout
    /// 0.2 by default). Its `horizon_steps` is ignored: `horizon_s` sets it.
    Lstm(crate::forecast::LstmForecasterConfig),
}

fn day_s() -> f64 {
    86_400.0
}

fn ewma_alpha() -> f64 {
    0.3
}

impl Default for ForecasterConfig {
    fn default() -> Self {
        ForecasterConfig::Ewma {
            alpha: ewma_alpha(),
        }
    }
}

impl ForecasterConfig {
    /// The forecaster's report name (`last-value`, `seasonal-naive`, `ewma`, `holt-winters`).
    pub fn name(&self) -> &'static str {
        match self {
            ForecasterConfig::LastValue => "last-value",
            ForecasterConfig::SeasonalNaive { .. } => "seasonal-naive",
            ForecasterConfig::Ewma { .. } => "ewma",
            ForecasterConfig::HoltWinters { .. } => "holt-winters",
            ForecasterConfig::Lstm(_) => "lstm",
        }
    }

    /// Builds the (unfitted) forecaster for a series sampled every `step_s` seconds,
    /// forecasting `horizon_s` ahead (`max(1, round(horizon_s / step_s))` steps).
    ///
    /// # Errors
    /// [`ForecastError::Config`] for a non-positive step or horizon or a bad parameter (a season
    /// under two steps, say).
    pub fn build(
        &self,
        step_s: f64,
        horizon_s: f64,
    ) -> Result<Box<dyn Forecaster + Sync>, ForecastError> {
        use crate::forecast::baselines::{Ewma, HoltWinters, LastValue, SeasonalNaive};
        if !(step_s > 0.0 && step_s.is_finite()) {
            return Err(ForecastError::Config(format!(
                "step: expected seconds > 0, got {step_s}"
            )));
        }
        if !(horizon_s > 0.0 && horizon_s <= MAX_SPAN_S) {
            return Err(ForecastError::Config(format!(
                "horizon_s: expected seconds in (0, {MAX_SPAN_S}] (one year), got {horizon_s}"
            )));
        }
        let h = (horizon_s / step_s).round().max(1.0) as usize;
        let period = |p: f64| {
            if !(p > 0.0 && p <= MAX_SPAN_S) {
                return Err(ForecastError::Config(format!(
                    "period_s: expected seconds in (0, {MAX_SPAN_S}] (one year), got {p}"
                )));
            }
            let steps = (p / step_s).round() as usize;
            if steps < 2 {
                return Err(ForecastError::Config(format!(
                    "period_s: {p} s is under two decision intervals of {step_s} s"
                )));
            }
            Ok(steps)
        };
        Ok(match self {
            ForecasterConfig::LastValue => Box::new(LastValue::new(h)?),
            ForecasterConfig::SeasonalNaive { period_s } => {
                Box::new(SeasonalNaive::new(period(*period_s)?, h)?)
            }
            ForecasterConfig::Ewma { alpha } => Box::new(Ewma::new(*alpha, h)?),
            ForecasterConfig::Lstm(c) => {
                let c = crate::forecast::LstmForecasterConfig {
                    horizon_steps: h,
                    ..c.clone()
                };
                Box::new(crate::forecast::LstmForecaster::new(c)?)
            }
            ForecasterConfig::HoltWinters { period_s } => {
                Box::new(HoltWinters::new(period(*period_s)?, h)?)
            }
        })
    }
}

/// `[agents.predictive]`: makes a `q-learning` or `dqn` agent a predictive hybrid, and
/// configures the `proactive` rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictiveConfig {
    /// The forecaster (default: EWMA, alpha 0.3).
    pub forecaster: ForecasterConfig,
    /// How far ahead the forecast looks, seconds (default 300, the seed's 5 minutes; for the
    /// proactive rule, set it to the pod start-up time).
    pub horizon_s: f64,
    /// Observation features after the base ones.
    pub features: FeatureConfig,
    /// Let the forecast scale in on its own (default false; see the module docs).
    pub scale_in_on_forecast: bool,
    /// CPU utilization the capacity estimate provisions for (fraction of the request,
    /// default 0.7 like the HPA's default target).
    pub target_utilization: f64,
}

impl Default for PredictiveConfig {
    fn default() -> Self {
        Self {
            forecaster: ForecasterConfig::default(),
            horizon_s: 300.0,
            features: FeatureConfig::default(),
            scale_in_on_forecast: false,
            target_utilization: 0.7,
        }
    }
}

impl PredictiveConfig {
    /// Checks the fields (`horizon_s` in `(0, 1 year]`, `target_utilization` in `(0, 10]`) and
    /// that the forecaster builds for `step_s`.
    ///
    /// # Errors
    /// The field (`target_utilization`, `horizon_s`, `forecaster`) and what is wrong.
    pub fn validate(&self, step_s: f64) -> Result<(), (&'static str, String)> {
        if !(self.target_utilization > 0.0 && self.target_utilization <= 10.0) {
            return Err((
                "target_utilization",
                format!(
                    "expected a fraction in (0, 10], got {}",
                    self.target_utilization
                ),
            ));
        }
        if !(self.horizon_s > 0.0 && self.horizon_s <= MAX_SPAN_S) {
            return Err((
                "horizon_s",
                format!(
                    "expected seconds in (0, {MAX_SPAN_S}] (one year), got {}",
                    self.horizon_s
                ),
            ));
        }
        self.forecaster
            .build(step_s, self.horizon_s)
            .map(|_| ())
            .map_err(|e| ("forecaster", e.to_string()))
    }

    /// Builds the forecaster for decisions every `step_s` seconds and fits it on `train` (the
    /// training window's request rate sampled at that step, requests per second).
    ///
    /// # Errors
    /// [`ForecastError`] from building or fitting (a training window shorter than the
    /// forecaster needs, say).
    pub fn fit_forecaster(
        &self,
        step_s: f64,
        train: &[f64],
    ) -> Result<SharedForecaster, ForecastError> {
        let mut f = self.forecaster.build(step_s, self.horizon_s)?;
        f.fit(train)?;
        Ok(Arc::from(f))
    }
}

/// Which predictive features a hybrid observation carries after the base `scaling-v0` ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// Append the forecast's uncertainty (its standard deviation).
    pub uncertainty: bool,
    /// Append an anomaly flag (needs a detector).
    pub anomaly_flag: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            uncertainty: true,
            anomaly_flag: false,
        }
    }
}

/// The predictive part of a hybrid observation, updated once per decision from the request rate
/// the controller sees (`ClusterState::request_rate_per_s`, requests per second):
///
/// | feature | unit before normalisation | normalisation |
/// |---|---|---|
/// | forecast `horizon_steps` decisions ahead | requests per second | `min(f / rate_scale, 2) / 2` |
/// | forecast standard deviation (if `uncertainty`) | requests per second | `min(sd / rate_scale, 1)`; 0 when unknown |
/// | anomaly flag of this decision's rate (if `anomaly_flag`) | - | 0 or 1 |
///
/// Until `min_history` rates are seen, the forecast is the current rate (last value) and the
/// uncertainty 0. The forecaster's step must be the decision interval.
pub struct PredictiveFeatures {
    forecaster: SharedForecaster,
    detector: Option<Box<dyn AnomalyDetector>>,
    config: FeatureConfig,
    rate_scale_rps: f64,
    history: Vec<f64>,
    forecast_rps: f64,
    forecast_std_rps: Option<f64>,
    flagged: bool,
    flags: u64,
}

impl std::fmt::Debug for PredictiveFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictiveFeatures")
            .field("forecaster", &self.forecaster.name())
            .field("config", &self.config)
            .field("forecast_rps", &self.forecast_rps)
            .finish_non_exhaustive()
    }
}

impl PredictiveFeatures {
    /// Features from a fitted `forecaster` (step = decision interval), an optional anomaly
    /// `detector` (required when `config.anomaly_flag`) and the rate that maps to 0.5
    /// (`rate_scale_rps`, the workload's peak, as in [`ObsEncoder`]).
    ///
    /// # Errors
    /// A message when `anomaly_flag` is set without a detector.
    pub fn new(
        forecaster: SharedForecaster,
        detector: Option<Box<dyn AnomalyDetector>>,
        config: FeatureConfig,
        rate_scale_rps: f64,
    ) -> Result<Self, String> {
        if config.anomaly_flag && detector.is_none() {
            return Err("features.anomaly_flag needs an [anomaly] detector".into());
        }
        let keep = forecaster.min_history().max(1);
        Ok(Self {
            forecaster,
            detector,
            config,
            rate_scale_rps: rate_scale_rps.max(1e-9),
            history: Vec::with_capacity(2 * keep),
            forecast_rps: 0.0,
            forecast_std_rps: None,
            flagged: false,
            flags: 0,
        })
    }

    /// Number of features appended (1 to 3).
    pub fn dim(&self) -> usize {
        1 + usize::from(self.config.uncertainty) + usize::from(self.config.anomaly_flag)
    }

    /// Starts a new episode: forgets the history and the detector's stream (keeps what was
    /// fitted) and the flag count.
    pub fn reset(&mut self) {
        self.history.clear();
        self.forecast_rps = 0.0;
        self.forecast_std_rps = None;
        self.flagged = false;
        self.flags = 0;
        if let Some(d) = &mut self.detector {
            d.reset();
        }
    }

    /// Takes the rate seen at this decision (requests per second; a non-finite rate counts as
    /// 0) and updates the forecast and the anomaly flag. Keeps at most `2 * min_history`
    /// points, so a step costs one forecast and no allocation once warm.
    pub fn observe(&mut self, rate_rps: f64) {
        let rate = if rate_rps.is_finite() {
            rate_rps.max(0.0)
        } else {
            0.0
        };
        let keep = self.forecaster.min_history().max(1);
        if self.history.len() == 2 * keep {
            self.history.drain(..keep);
        }
        self.history.push(rate);
        match self.forecaster.forecast(&self.history) {
            Ok(f) if f.mean.is_finite() => {
                self.forecast_rps = f.mean.max(0.0);
                self.forecast_std_rps = f.std.filter(|s| s.is_finite());
            }
            _ => {
                self.forecast_rps = rate;
                self.forecast_std_rps = None;
            }
        }
        self.flagged = self
            .detector
            .as_mut()
            .is_some_and(|d| d.observe(rate).flagged);
        self.flags += u64::from(self.flagged);
    }

    /// The current forecast, requests per second.
    pub fn forecast_rps(&self) -> f64 {
        self.forecast_rps
    }

    /// The current forecast's standard deviation, requests per second, where known.
    pub fn forecast_std_rps(&self) -> Option<f64> {
        self.forecast_std_rps
    }

    /// Whether the last observed rate was flagged as anomalous.
    pub fn flagged(&self) -> bool {
        self.flagged
    }

    /// Decisions flagged since the last [`reset`](Self::reset).
    pub fn flags(&self) -> u64 {
        self.flags
    }

    /// The forecaster's name.
    pub fn forecaster_name(&self) -> &str {
        self.forecaster.name()
    }

    /// Appends the features (see the table above) to `obs`.
    pub fn append_to(&self, obs: &mut Vec<f32>) {
        let s = self.rate_scale_rps;
        obs.push(((self.forecast_rps / s).clamp(0.0, 2.0) / 2.0) as f32);
        if self.config.uncertainty {
            obs.push(
                self.forecast_std_rps
                    .map_or(0.0, |sd| (sd / s).clamp(0.0, 1.0)) as f32,
            );
        }
        if self.config.anomaly_flag {
            obs.push(f32::from(u8::from(self.flagged)));
        }
    }
}

/// Online estimate of the request rate one Ready pod serves at the target CPU utilization,
/// requests per second: `rate / (ready * utilization) * target`, exponentially smoothed
/// (`alpha` 0.2). Samples with no Ready pod, utilization under 5% or no traffic are skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityEstimate {
    /// Target utilization (fraction of the CPU request).
    pub target_utilization: f64,
    per_pod_rps: Option<f64>,
}

impl CapacityEstimate {
    /// No estimate yet.
    pub fn new(target_utilization: f64) -> Self {
        Self {
            target_utilization,
            per_pod_rps: None,
        }
    }

    /// Updates the estimate from `state`.
    pub fn observe(&mut self, state: &ClusterState) {
        let util = state.cpu_utilization();
        let rate = state.request_rate_per_s;
        let usable = util > 0.05 && rate > 0.0 && rate.is_finite();
        if state.ready_replicas == 0 || !usable {
            return;
        }
        let sample = rate / (f64::from(state.ready_replicas) * util) * self.target_utilization;
        self.per_pod_rps = Some(match self.per_pod_rps {
            Some(prev) => 0.8 * prev + 0.2 * sample,
            None => sample,
        });
    }

    /// Requests per second per pod at the target, once estimated.
    pub fn per_pod_rps(&self) -> Option<f64> {
        self.per_pod_rps
    }

    /// Pods needed to serve `rate_rps` at the target utilization (at least 1), once estimated.
    pub fn replicas_for(&self, rate_rps: f64) -> Option<u32> {
        let per_pod = self.per_pod_rps.filter(|p| *p > 0.0)?;
        Some(
            (rate_rps.max(0.0) / per_pod)
                .ceil()
                .clamp(1.0, f64::from(u32::MAX)) as u32,
        )
    }

    /// Forgets the estimate.
    pub fn reset(&mut self) {
        self.per_pod_rps = None;
    }
}

/// A learned hybrid's desired count after the rule "a forecast alone never scales in": a
/// scale-in (`desired < current`) goes no lower than the replicas the forecast needs
/// (`forecast_replicas`, when known), and never below `desired` itself; scale-out and no-change
/// decisions pass unchanged. With `scale_in_on_forecast` the decision passes unchanged.
pub fn scale_in_guard(
    desired: u32,
    current: u32,
    forecast_replicas: Option<u32>,
    scale_in_on_forecast: bool,
) -> u32 {
    if scale_in_on_forecast || desired >= current {
        return desired;
    }
    match forecast_replicas {
        Some(p) => desired.max(p.min(current)),
        None => desired,
    }
}

/// [`ScalingEnv`] with [`PredictiveFeatures`] appended to every observation (observation space
/// `Box([0, 1]^(d + k))`, `k` = [`PredictiveFeatures::dim`]); actions, rewards and episode ends
/// are the inner env's. Id: the inner id with `+predictive`.
pub struct PredictiveEnv {
    inner: ScalingEnv,
    features: PredictiveFeatures,
    obs_space: BoxSpace,
    id: String,
}

impl PredictiveEnv {
    /// Wraps `inner`.
    pub fn new(inner: ScalingEnv, features: PredictiveFeatures) -> Self {
        let d = inner.observation_space().low.len() + features.dim();
        Self {
            id: format!("{}+predictive", inner.id()),
            obs_space: BoxSpace::new(vec![0.0; d], vec![1.0; d]),
            inner,
            features,
        }
    }

    /// The wrapped env.
    pub fn inner(&self) -> &ScalingEnv {
        &self.inner
    }

    /// The features (forecast, flags so far).
    pub fn features(&self) -> &PredictiveFeatures {
        &self.features
    }

    fn extend(&mut self, mut obs: Vec<f32>) -> Vec<f32> {
        self.features
            .observe(self.inner.cluster_state().request_rate_per_s);
        self.features.append_to(&mut obs);
        obs
    }
}

impl Env for PredictiveEnv {
    type Obs = Vec<f32>;
    type Action = usize;
    type Info = StepInfo;
    type ObsSpace = BoxSpace;
    type ActionSpace = Discrete;

    fn id(&self) -> &str {
        &self.id
    }

    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, StepInfo) {
        self.features.reset();
        let (obs, info) = self.inner.reset(seed);
        (self.extend(obs), info)
    }

    fn step(&mut self, action: usize) -> Step<Vec<f32>, StepInfo> {
        let s = self.inner.step(action);
        Step {
            obs: self.extend(s.obs),
            reward: s.reward,
            terminated: s.terminated,
            truncated: s.truncated,
            info: s.info,
        }
    }

    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }

    fn action_space(&self) -> &Discrete {
        self.inner.action_space()
    }
}

/// Serves a policy trained on a [`PredictiveEnv`]: encodes the state with the env's
/// [`ObsEncoder`], appends the same [`PredictiveFeatures`], maps the action with the env's
/// [`ActionMap`], then applies [`scale_in_guard`].
pub struct PredictiveAutoscaler<P: Policy> {
    policy: P,
    encoder: ObsEncoder,
    actions: ActionMap,
    features: PredictiveFeatures,
    capacity: CapacityEstimate,
    scale_in_on_forecast: bool,
    name: String,
    prev_rate: f64,
    obs: Vec<f32>,
}

impl<P: Policy> PredictiveAutoscaler<P> {
    /// Wraps `policy`; `target_utilization` is the capacity estimate's target (fraction of the
    /// CPU request).
    pub fn new(
        policy: P,
        encoder: ObsEncoder,
        actions: ActionMap,
        features: PredictiveFeatures,
        target_utilization: f64,
        scale_in_on_forecast: bool,
        name: impl Into<String>,
    ) -> Self {
        let obs = Vec::with_capacity(encoder.dim() + features.dim());
        Self {
            policy,
            encoder,
            actions,
            features,
            capacity: CapacityEstimate::new(target_utilization),
            scale_in_on_forecast,
            name: name.into(),
            prev_rate: f64::NAN,
            obs,
        }
    }

    /// The features (forecast, anomaly flags so far).
    pub fn features(&self) -> &PredictiveFeatures {
        &self.features
    }
}

impl<P: Policy> Autoscaler for PredictiveAutoscaler<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        let prev = if self.prev_rate.is_nan() {
            // The env's first observation after reset uses a previous rate of 0.
            0.0
        } else {
            self.prev_rate
        };
        self.encoder.encode_into(state, prev, &mut self.obs);
        self.prev_rate = state.request_rate_per_s;
        self.features.observe(state.request_rate_per_s);
        self.features.append_to(&mut self.obs);
        self.capacity.observe(state);
        let a = self.policy.act(&self.obs);
        let current = state.desired_replicas;
        let wanted = self.actions.target(a, current);
        let forecast_replicas = self.capacity.replicas_for(self.features.forecast_rps());
        let desired = scale_in_guard(
            wanted,
            current,
            forecast_replicas,
            self.scale_in_on_forecast,
        );
        let reason = if desired != wanted {
            "ForecastHeldScaleIn"
        } else if desired > current {
            "PolicyScaleUp"
        } else if desired < current {
            "PolicyScaleDown"
        } else {
            "PolicyNoChange"
        };
        ScaleDecision::new(desired, reason)
    }

    fn reset(&mut self) {
        self.prev_rate = f64::NAN;
        self.obs.clear();
        self.features.reset();
        self.capacity.reset();
    }
}

/// The proactive baseline: the Kubernetes HPA decides as usual, and the forecast of the request
/// rate `horizon` ahead (the horizon set to the pod start-up time, so pods ordered now are Ready
/// when the load arrives) sets a floor: `desired = max(hpa, replicas for max(rate, forecast))`.
/// With `scale_in_on_forecast` the forecast decides alone (`replicas for forecast`), falling
/// back to the HPA until the capacity is estimated.
pub struct ProactiveRule {
    hpa: Hpa,
    features: PredictiveFeatures,
    capacity: CapacityEstimate,
    scale_in_on_forecast: bool,
}

impl ProactiveRule {
    /// The rule over an HPA and the forecast features (their forecaster's horizon is the
    /// look-ahead). `target_utilization` is the capacity estimate's target.
    pub fn new(
        hpa: Hpa,
        features: PredictiveFeatures,
        target_utilization: f64,
        scale_in_on_forecast: bool,
    ) -> Self {
        Self {
            hpa,
            features,
            capacity: CapacityEstimate::new(target_utilization),
            scale_in_on_forecast,
        }
    }
}

impl Autoscaler for ProactiveRule {
    fn name(&self) -> &str {
        "proactive"
    }

    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        self.features.observe(state.request_rate_per_s);
        self.capacity.observe(state);
        let reactive = Hpa::decide(&mut self.hpa, state);
        let peak = self
            .features
            .forecast_rps()
            .max(state.request_rate_per_s.max(0.0));
        match self.capacity.replicas_for(if self.scale_in_on_forecast {
            self.features.forecast_rps()
        } else {
            peak
        }) {
            Some(p) if self.scale_in_on_forecast => ScaleDecision::new(p, "ForecastReplicas"),
            Some(p) if p > reactive.desired_replicas => ScaleDecision::new(p, "ForecastPeakFloor"),
            _ => reactive,
        }
    }

    fn reset(&mut self) {
        Hpa::reset(&mut self.hpa);
        self.features.reset();
        self.capacity.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::Forecast;

    /// Forecasts `2 x` the last value, with standard deviation 1; needs 3 points.
    struct Double;
    impl Forecaster for Double {
        fn name(&self) -> &str {
            "double"
        }
        fn horizon_steps(&self) -> usize {
            1
        }
        fn min_history(&self) -> usize {
            3
        }
        fn fit(&mut self, _: &[f64]) -> Result<(), ForecastError> {
            Ok(())
        }
        fn forecast(&self, h: &[f64]) -> Result<Forecast, ForecastError> {
            if h.len() < 3 {
                return Err(ForecastError::TooShort {
                    needed: 3,
                    got: h.len(),
                });
            }
            Ok(Forecast {
                mean: 2.0 * h[h.len() - 1],
                std: Some(1.0),
            })
        }
    }

    #[test]
    fn features_fall_back_to_the_rate_until_the_window_fills() {
        let mut f = PredictiveFeatures::new(Arc::new(Double), None, FeatureConfig::default(), 10.0)
            .unwrap();
        assert_eq!(f.dim(), 2);
        f.observe(4.0);
        let mut obs = Vec::new();
        f.append_to(&mut obs);
        // Last value 4 -> 4 / 10 / 2 = 0.2; no uncertainty yet.
        assert_eq!(obs, vec![0.2, 0.0]);
        f.observe(4.0);
        f.observe(5.0);
        obs.clear();
        f.append_to(&mut obs);
        // 2 x 5 = 10 -> 10 / 10 / 2 = 0.5; sd 1 -> 1 / 10 = 0.1.
        assert_eq!(obs, vec![0.5, 0.1]);
        // The history never grows past 2 x min_history.
        for _ in 0..100 {
            f.observe(1.0);
        }
        assert!(f.history.len() <= 6);
        assert_eq!(f.forecast_rps(), 2.0);
    }

    #[test]
    fn forecaster_configs_parse_and_build_with_the_horizon_in_steps() {
        let c: ForecasterConfig =
            serde_json::from_str(r#"{"kind": "lstm", "hidden_size": 8, "num_layers": 1}"#).unwrap();
        // 300 s ahead at 15 s decisions = 20 steps.
        let f = c.build(15.0, 300.0).unwrap();
        assert_eq!(
            (f.name(), f.horizon_steps(), f.min_history()),
            ("lstm", 20, 60)
        );
        let c: ForecasterConfig = serde_json::from_str(r#"{"kind": "ewma"}"#).unwrap();
        assert_eq!(c, ForecasterConfig::Ewma { alpha: 0.3 });
        assert_eq!(c.build(15.0, 10.0).unwrap().horizon_steps(), 1);
        assert!(
            serde_json::from_str::<ForecasterConfig>(r#"{"kind": "lstm", "hiden": 3}"#).is_err()
        );
        assert!(c.build(15.0, 0.0).is_err());
    }

    #[test]
    fn the_forecast_never_scales_in_alone() {
        // Scale-in from 10 to 4 while the forecast needs 7: held at 7.
        assert_eq!(scale_in_guard(4, 10, Some(7), false), 7);
        // The forecast needs more than the current count: the scale-in is refused (10).
        assert_eq!(scale_in_guard(4, 10, Some(12), false), 10);
        // The forecast needs fewer than asked: the decision stands.
        assert_eq!(scale_in_guard(4, 10, Some(2), false), 4);
        // Scale-out passes; the opt-out passes everything.
        assert_eq!(scale_in_guard(12, 10, Some(2), false), 12);
        assert_eq!(scale_in_guard(4, 10, Some(7), true), 4);
        assert_eq!(scale_in_guard(4, 10, None, false), 4);
    }

    #[test]
    fn capacity_is_estimated_from_rate_and_utilization() {
        let mut c = CapacityEstimate::new(0.5);
        let mut s = ClusterState {
            ready_replicas: 4,
            request_rate_per_s: 40.0,
            ..Default::default()
        };
        // No pods with metrics: utilization 0 -> no estimate.
        c.observe(&s);
        assert_eq!(c.per_pod_rps(), None);
        s.pods = (0..4)
            .map(|i| sim::PodView {
                id: i,
                phase: sim::PodPhase::Running,
                ready: true,
                ready_last_transition: Some(sim::SimTime::ZERO),
                start_time: Some(sim::SimTime::ZERO),
                deleting: false,
                cpu_request_milli: 1000,
                memory_request_bytes: 1 << 28,
                cpu_usage_milli: Some(800),
                memory_usage_bytes: Some(1 << 27),
                metric_timestamp: Some(sim::SimTime::ZERO),
                metric_window_s: 60,
            })
            .collect();
        c.observe(&s);
        // 40 rps over 4 pods at 80% -> 12.5 rps per pod at 100%, 6.25 at the 50% target.
        assert_eq!(c.per_pod_rps(), Some(6.25));
        assert_eq!(c.replicas_for(50.0), Some(8));
        assert_eq!(c.replicas_for(0.0), Some(1));
    }
}
