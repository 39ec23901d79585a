//! The crate's one error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong on the live path.
///
/// Prometheus variants name the URL and the PromQL (or `-` for non-query calls) so an operator
/// log line says which query failed where. None of them is fatal to a control loop: a caller can
/// retry, fall back to a safe rule, or keep the current replica count.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Prometheus could not be reached (connection refused, DNS, reset). Retry later or fall back.
    #[error("Prometheus at {url} is unreachable (query `{query}`)")]
    PromUnreachable {
        /// Request URL.
        url: String,
        /// PromQL sent, or `-`.
        query: String,
        /// Transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The request to Prometheus took longer than the client's timeout. Retry or fall back.
    #[error("Prometheus at {url} timed out (query `{query}`)")]
    PromTimeout {
        /// Request URL.
        url: String,
        /// PromQL sent, or `-`.
        query: String,
        /// Transport error (its `is_timeout()` is true).
        #[source]
        source: reqwest::Error,
    },
    /// Prometheus rejected the PromQL (HTTP 400, `errorType` `bad_data`): a configuration error,
    /// retrying the same query will not help.
    #[error("Prometheus at {url} rejected query `{query}`: {message}")]
    BadQuery {
        /// Request URL.
        url: String,
        /// PromQL sent.
        query: String,
        /// Prometheus' own `error` message (e.g. `invalid parameter "query": 1:6: parse error: ...`).
        message: String,
    },
    /// Prometheus answered with another non-success status (HTTP 422 execution error, 503
    /// overloaded, 5xx). Usually transient.
    #[error(
        "Prometheus at {url} answered HTTP {status} to query `{query}`: {error_type}: {message}"
    )]
    PromStatus {
        /// Request URL.
        url: String,
        /// PromQL sent, or `-`.
        query: String,
        /// HTTP status code.
        status: u16,
        /// Prometheus' `errorType`, or `-` when the body had none.
        error_type: String,
        /// Prometheus' `error`, or the start of the body.
        message: String,
    },
    /// Prometheus' answer could not be decoded (not JSON, unexpected shape, a value that is not
    /// a number). Points at a proxy in the way or an incompatible server.
    #[error("undecodable answer from Prometheus at {url} to query `{query}`: {reason}")]
    PromDecode {
        /// Request URL.
        url: String,
        /// PromQL sent, or `-`.
        query: String,
        /// What was wrong.
        reason: String,
    },
    /// A configuration value is invalid (the message names the field). Fix the config.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A replica process could not be spawned (binary missing or not executable).
    #[error("cannot start replica {pod} from {binary}")]
    Spawn {
        /// Pod name of the replica.
        pod: String,
        /// Binary path.
        binary: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// A replica process started but did not print its listening line in time, or exited first
    /// (it was killed and reaped). The scaler keeps the replicas it had.
    #[error("replica {pod} did not start: {reason}")]
    ReplicaStart {
        /// Pod name of the replica.
        pod: String,
        /// What happened (timeout, exit status, malformed line).
        reason: String,
    },
    /// Replicas did not become Ready in time (their `/ready` kept failing).
    #[error("{ready} of {wanted} replicas Ready after {waited_s:.1} s")]
    NotReady {
        /// Replicas Ready at the deadline.
        ready: u32,
        /// Replicas waited for.
        wanted: u32,
        /// Seconds waited.
        waited_s: f64,
    },
    /// Sending a signal to a replica failed for another reason than "already gone".
    #[error("cannot signal replica {pod} (pid {pid})")]
    Signal {
        /// Pod name.
        pod: String,
        /// Process id.
        pid: u32,
        /// errno.
        #[source]
        source: nix::errno::Errno,
    },
    /// A file (Prometheus file_sd targets) could not be written or renamed.
    #[error("cannot write {path}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The front could not bind its listening address or start its runtime.
    #[error("cannot start the front on {addr}")]
    FrontStart {
        /// Address asked for.
        addr: SocketAddr,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP endpoint (`/metrics`, `POST /trigger`, `/health`) could not bind its address
    /// or start its runtime.
    #[error("cannot listen on {addr} (/metrics, /trigger, /health)")]
    Listen {
        /// Address asked for.
        addr: SocketAddr,
        /// OS error (e.g. address already in use).
        #[source]
        source: std::io::Error,
    },
    /// The controller's first list of NimbusScalers did not succeed within its start-up
    /// timeout ([`crate::k8s::controller::ControllerConfig::startup_timeout`]).
    #[error(
        "no NimbusScaler list from {api_server} within {waited_s} s; last error: {last_error}"
    )]
    KubeStartup {
        /// The API server's URL.
        api_server: String,
        /// Seconds waited.
        waited_s: f64,
        /// The last failure, explained ([`crate::k8s::controller::startup::explain_watch_error`]).
        last_error: String,
    },
    /// The Kubernetes API refused a call to this identity (HTTP 403): its RBAC lacks the verb.
    #[error(
        "Kubernetes API: `{verb}` on {resource} in namespace {namespace} is forbidden for this \
         identity (grant it in this identity's Role, or a ClusterRole for cluster-scoped \
         resources such as nodes): {message}"
    )]
    KubeForbidden {
        /// The API verb (`get`, `list`, `patch`, ...).
        verb: String,
        /// Resource (and subresource), e.g. `deployments/scale`.
        resource: String,
        /// Namespace.
        namespace: String,
        /// The API server's message.
        message: String,
    },
    /// The API server rejected the credentials (HTTP 401): an unknown or expired token or
    /// certificate.
    #[error(
        "Kubernetes API: `{what}`: the credentials were rejected (HTTP 401 Unauthorized): \
         check the kubeconfig's token or client certificate"
    )]
    KubeUnauthorized {
        /// The call, e.g. `create nodes local-node-1`.
        what: String,
    },
    /// The object does not exist (HTTP 404).
    #[error("Kubernetes API: {resource} {name} not found in namespace {namespace}")]
    KubeNotFound {
        /// Resource, e.g. `deployments/scale`.
        resource: String,
        /// Object name.
        name: String,
        /// Namespace.
        namespace: String,
    },
    /// Any other failed Kubernetes API call, after the retries.
    #[error("Kubernetes API: `{what}` failed after {attempts} attempt(s)")]
    Kube {
        /// The call, e.g. `patch deployments/scale default/web`.
        what: String,
        /// Attempts made (retries of conflicts, timeouts and 5xx included).
        attempts: u32,
        /// The last error.
        #[source]
        source: kube::Error,
    },
}

/// `e` and its sources on one line, joined by `": "`; a source whose text the line already
/// holds is left out (kube's and reqwest's errors often repeat their cause in their own text).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_joins_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(error_chain(&e), "outer: connection refused");
        // A cause the outer text already holds is not repeated.
        #[derive(Debug, thiserror::Error)]
        #[error("client error: connection refused")]
        struct Repeats(#[source] std::io::Error);
        let e = Repeats(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&e), "client error: connection refused");
    }
}
