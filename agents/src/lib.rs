//! placeholder, module map written at integration
pub mod autoscaler;
pub mod baselines;
pub mod hpa;
pub mod tabular_q;
