//! The controller's start-up and stop: failed lists and watches of NimbusScalers explained in
//! words an operator can act on (CRD not installed, credentials rejected, RBAC, API server
//! unreachable), and how long a stop waits for the reconciles in flight.
//!
//! Until the first list of NimbusScalers succeeds, the controller cannot do anything; it
//! retries (the watcher's back-off), logs each failure at `warn` with [`explain_watch_error`],
//! and gives up after [`super::ControllerConfig::startup_timeout`] with
//! [`crate::Error::KubeStartup`], so that a misconfigured operator crash-loops visibly
//! instead of hanging.

use std::time::Duration;

use kube::runtime::watcher;

use crate::error::error_chain;

/// How long a stop (SIGTERM, SIGINT) waits for the reconciles in flight to finish before the
/// controller stops anyway: one decision takes at most a Prometheus timeout and the API
/// retries, a few seconds.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// What a failed list or watch of NimbusScalers at `api_server` (the API server's URL) means,
/// with what to do about it.
pub fn explain_watch_error(e: &watcher::Error, api_server: &str) -> String {
    match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => explain_kube_error(k, api_server),
        watcher::Error::WatchError(s) => format!(
            "{api_server} ended the watch of nimbusscalers with HTTP {} {}: {} (it restarts)",
            s.code, s.reason, s.message
        ),
        other => format!("{api_server}: {other}"),
    }
}

/// What a failed list of NimbusScalers at `api_server` means: 404 (the CRD is not installed),
/// 401 (credentials rejected), 403 (RBAC), other HTTP statuses, transport failures (the API
/// server cannot be reached), each with the error's chain of causes.
pub fn explain_kube_error(e: &kube::Error, api_server: &str) -> String {
    match e {
        kube::Error::Api(s) if s.code == 404 => format!(
            "{api_server} does not serve nimbusscalers.nimbusguard.io (HTTP 404): the \
             NimbusScaler CRD is not installed; apply it with `nimbusguard crd | kubectl apply \
             -f -` (or deploy/base/crd.yaml)"
        ),
        kube::Error::Api(s) if s.code == 401 => format!(
            "{api_server} rejected this identity's credentials (HTTP 401 Unauthorized): check \
             the kubeconfig's token or client certificate"
        ),
        kube::Error::Api(s) if s.code == 403 => format!(
            "listing nimbusscalers is forbidden for this identity at {api_server} (HTTP 403): \
             grant get, list and watch on nimbusscalers.nimbusguard.io in the operator's Role \
             (deploy/base/operator-rbac.yaml): {}",
            s.message
        ),
        kube::Error::Api(s) => format!(
            "{api_server} answered HTTP {} {}: {}",
            s.code, s.reason, s.message
        ),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            format!(
                "cannot reach the API server at {api_server}: {}",
                error_chain(e)
            )
        }
        other => format!("{api_server}: {}", error_chain(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    const API: &str = "https://127.0.0.1:6443/";

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    #[test]
    fn missing_crd_names_the_crd_and_how_to_install_it() {
        let e = watcher::Error::InitialListFailed(api(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
        let m = explain_watch_error(&e, API);
        assert!(m.contains("CRD is not installed"), "{m}");
        assert!(m.contains("nimbusguard crd | kubectl apply -f -"), "{m}");
        assert!(m.contains(API), "{m}");
    }

    #[test]
    fn rejected_token_and_rbac_are_named() {
        let m = explain_watch_error(
            &watcher::Error::InitialListFailed(api(401, "Unauthorized", "Unauthorized")),
            API,
        );
        assert!(
            m.contains("HTTP 401 Unauthorized") && m.contains("token"),
            "{m}"
        );
        let m = explain_watch_error(
            &watcher::Error::WatchStartFailed(api(
                403,
                "Forbidden",
                "User \"x\" cannot list resource \"nimbusscalers\"",
            )),
            API,
        );
        assert!(
            m.contains("HTTP 403") && m.contains("cannot list resource"),
            "{m}"
        );
        assert!(m.contains("operator-rbac.yaml"), "{m}");
    }

    #[test]
    fn other_statuses_keep_code_reason_and_message() {
        let m = explain_watch_error(
            &watcher::Error::WatchError(
                Status::failure("too old resource version", "Expired")
                    .with_code(410)
                    .boxed(),
            ),
            API,
        );
        assert_eq!(
            m,
            format!("{API} ended the watch of nimbusscalers with HTTP 410 Expired: too old resource version (it restarts)")
        );
        let m = explain_kube_error(&api(500, "InternalError", "etcd timeout"), API);
        assert_eq!(
            m,
            format!("{API} answered HTTP 500 InternalError: etcd timeout")
        );
    }
}
