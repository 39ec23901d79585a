//! The [`Scaler`] trait: what the live path needs from whatever runs the replicas (local
//! processes today, a Kubernetes Deployment's scale subresource later).

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::error::Result;

/// One replica as a scaler sees it (the pod list of the Kubernetes API, reduced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// Pod name (unique within the scaler's lifetime; the `pod` label of its metrics).
    pub name: String,
    /// Address its HTTP server listens on (`None` while a pod has no IP yet).
    pub addr: Option<SocketAddr>,
    /// The replica passed its readiness probe at the last [`Scaler::refresh`].
    pub ready: bool,
    /// When the replica last changed readiness (`None` = never probed yet).
    pub ready_since: Option<SystemTime>,
    /// When the replica's process (container) started (`None` while not started).
    pub started_at: Option<SystemTime>,
    /// The replica is being shut down (Terminating).
    pub terminating: bool,
}

/// Runs replicas of one service and scales them.
///
/// Implementations do blocking I/O; callers that need async wrap them in `spawn_blocking`.
/// A `KubeScaler` maps [`Scaler::set_replicas`] to the Deployment's scale subresource,
/// [`Scaler::pods`] to the pod list (label selector), and [`Scaler::refresh`] to a re-list.
pub trait Scaler: Send {
    /// A short name for logs (e.g. `process`, `kube:default/web`).
    fn name(&self) -> &str;
    /// The replica count last asked for (`spec.replicas`).
    fn desired_replicas(&self) -> u32;
    /// The replicas as of the last [`Scaler::refresh`] or [`Scaler::set_replicas`], oldest first.
    fn pods(&self) -> Vec<PodInfo>;
    /// Asks for `n` replicas. May return before new replicas are Ready.
    ///
    /// # Errors
    /// When the change could not be applied; the scaler then keeps a consistent (possibly
    /// partial) set of replicas and [`Scaler::pods`] shows which.
    fn set_replicas(&mut self, n: u32) -> Result<()>;
    /// Re-reads the replicas' state: readiness probes, exits. Call it once per control tick.
    ///
    /// # Errors
    /// When the state could not be read; the previous view is kept.
    fn refresh(&mut self) -> Result<()>;
}
