#!/usr/bin/env bash
# Brings NimbusGuard up on a local Kind cluster: creates the cluster (cluster.yaml) if it does
# not exist, builds the two images, loads them onto the nodes, applies the NimbusScaler CRD and
# waits until the API server serves it, applies an overlay and waits for the rollouts.
#
# Usage: deploy/kind/up.sh [OVERLAY]        OVERLAY: a folder of deploy/overlays/ (default kind)
#   kind      the operator scales workload-app (sample NimbusScaler, HPA-rules policy)
#   ab-hpa    the Kubernetes HPA scales it instead (needs metrics-server)
#   ab-keda   KEDA scales it on the request rate (needs KEDA)
# Re-running is safe: it reuses the cluster, rebuilds and reloads the images, removes the
# autoscaler of the previous overlay (two would fight over the replica count) and restarts the
# pods that run our images, so each run starts from the same state (see "restart" below).
#
# Env: KIND_CLUSTER_NAME  cluster name (default nimbusguard; the kubectl context is kind-NAME)
#      SKIP_BUILD=1       reuse the images already loaded (no docker build, no kind load)
# Needs: kind, docker (a running engine, BuildKit), kubectl (>= 1.14, for -k).
set -euo pipefail

me="deploy/kind/up.sh"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
overlay="${1:-kind}"
cluster="${KIND_CLUSTER_NAME:-nimbusguard}"
ns=nimbusguard
images=(nimbusguard/workload:dev nimbusguard/operator:dev)
deployments=(prometheus nimbusguard-operator workload-app loadgen)
ours=(nimbusguard-operator workload-app loadgen) # the Deployments that run our images

die() {
  echo "$me: $*" >&2
  exit 1
}
step() { echo "==> $*" >&2; }

overlays() { # the overlay names, space-separated
  local d
  for d in "$repo"/deploy/overlays/*/; do printf '%s ' "$(basename "$d")"; done
}

# --- prerequisites -------------------------------------------------------------------------
[[ $# -le 1 ]] || die "usage: $me [OVERLAY]   (one of: $(overlays))"
[[ "$overlay" =~ ^[a-z0-9-]+$ && -f "$repo/deploy/overlays/$overlay/kustomization.yaml" ]] ||
  die "no overlay '$overlay'; expected one of: $(overlays)"
command -v kind >/dev/null ||
  die "kind not found on PATH; install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
command -v docker >/dev/null ||
  die "docker not found on PATH; Kind runs its nodes as Docker containers: https://docs.docker.com/engine/install/"
command -v kubectl >/dev/null ||
  die "kubectl not found on PATH: https://kubernetes.io/docs/tasks/tools/"
docker info >/dev/null 2>&1 ||
  die "the Docker engine is not reachable ('docker info' fails): start it, or check that this user may use it"

ctx="kind-$cluster"
k() { kubectl --context "$ctx" "$@"; }

# --- cluster ---------------------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  step "cluster '$cluster' exists; reusing it"
else
  step "creating Kind cluster '$cluster' (1 control-plane, 2 workers)"
  kind create cluster --name "$cluster" --config "$repo/deploy/kind/cluster.yaml" --wait 120s
fi
# Every kubectl call names the context, so nothing lands on another cluster whatever the
# current context is.
k cluster-info >/dev/null || die "cannot reach the cluster through context '$ctx'"

# --- what the overlay needs (checked before the long image builds) ---------------------------
case "$overlay" in
  ab-hpa)
    k get apiservice v1beta1.metrics.k8s.io >/dev/null 2>&1 ||
      die "overlay ab-hpa needs metrics-server (Kind has none); install it, then re-run:
  kubectl --context $ctx apply -f https://github.com/kubernetes-sigs/metrics-server/releases/latest/download/components.yaml
  kubectl --context $ctx -n kube-system patch deployment metrics-server --type=json \\
    -p '[{\"op\":\"add\",\"path\":\"/spec/template/spec/containers/0/args/-\",\"value\":\"--kubelet-insecure-tls\"}]'
(Kind's kubelets serve self-signed certificates, hence --kubelet-insecure-tls.)"
    ;;
  ab-keda)
    k get crd scaledobjects.keda.sh >/dev/null 2>&1 ||
      die "overlay ab-keda needs KEDA; install it, then re-run:
  helm repo add kedacore https://kedacore.github.io/charts && helm repo update
  helm install keda kedacore/keda --kube-context $ctx --namespace keda --create-namespace"
    ;;
esac

# --- images ----------------------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
  step "SKIP_BUILD=1: using the images already loaded"
else
  # BuildKit: the Dockerfiles use cache mounts and per-Dockerfile .dockerignore files.
  export DOCKER_BUILDKIT=1
  step "building nimbusguard/workload:dev (workload-app, loadgen); the first build takes a while"
  docker build -f "$repo/deploy/docker/workload.Dockerfile" -t nimbusguard/workload:dev "$repo"
  step "building nimbusguard/operator:dev (nimbusguard)"
  docker build -f "$repo/deploy/docker/operator.Dockerfile" -t nimbusguard/operator:dev "$repo"
  step "loading the images onto the nodes of '$cluster'"
  kind load docker-image --name "$cluster" "${images[@]}"
fi

# --- CRD first -------------------------------------------------------------------------------
# A NimbusScaler is refused until the API server serves its type, which takes a moment after
# the CRD is created: apply it alone and wait for the Established condition.
step "applying the NimbusScaler CRD"
k apply -f "$repo/deploy/base/crd.yaml"
k wait --for condition=established --timeout=60s crd/nimbusscalers.nimbusguard.io

# --- one autoscaler at a time ----------------------------------------------------------------
# `kubectl apply` never deletes, so switching overlays would leave the previous autoscaler in
# place next to the new one. Remove the ones this overlay does not define.
step "removing the autoscalers other overlays left"
[[ "$overlay" == kind ]] || k -n "$ns" delete nimbusscaler workload-app --ignore-not-found
[[ "$overlay" == ab-hpa ]] || k -n "$ns" delete horizontalpodautoscaler workload-app --ignore-not-found
if [[ "$overlay" != ab-keda ]] && k get crd scaledobjects.keda.sh >/dev/null 2>&1; then
  k -n "$ns" delete scaledobject workload-app --ignore-not-found
fi

# --- apply -----------------------------------------------------------------------------------
existing=()
for d in "${ours[@]}"; do
  if k -n "$ns" get deployment "$d" >/dev/null 2>&1; then existing+=("deployment/$d"); fi
done
step "applying deploy/overlays/$overlay"
k apply -k "$repo/deploy/overlays/$overlay"
# Restart what ran before: the images keep their :dev tag across rebuilds, so running pods get
# a new build only when they restart; and every run then starts from the same state, which an
# A/B comparison needs: the replay from seed 0 (identical arrivals), workload-app at the
# manifest's 1 replica (`apply` has just reset it), and the operator's counters from zero (a
# NimbusScaler's decision counter left over from the kind overlay would otherwise stall and
# raise NimbusGuardDecisionsStalled under ab-hpa / ab-keda).
if [[ ${#existing[@]} -gt 0 ]]; then
  step "restarting ${existing[*]}"
  k -n "$ns" rollout restart "${existing[@]}"
fi

step "waiting for the rollouts"
for d in "${deployments[@]}"; do
  if ! k -n "$ns" rollout status "deployment/$d" --timeout=300s; then
    k -n "$ns" get pods -l "app.kubernetes.io/name=$d" -o wide >&2 || true
    die "deployment/$d did not become ready; see: kubectl --context $ctx -n $ns describe deployment/$d; kubectl --context $ctx -n $ns logs deployment/$d"
  fi
done

cat <<MSG

NimbusGuard is up on Kind cluster '$cluster' (context $ctx), overlay '$overlay'.

  Watch the autoscaler:
    kubectl --context $ctx -n $ns get nsc -w                  # NimbusScaler (overlay kind)
    kubectl --context $ctx -n $ns get hpa -w                  # HPA (ab-hpa; KEDA's in ab-keda)
    kubectl --context $ctx -n $ns get deploy workload-app -w
  Prometheus (alerts, PromQL):
    kubectl --context $ctx -n $ns port-forward svc/prometheus 9090:9090
    then http://127.0.0.1:9090  (Grafana: import deploy/grafana/nimbusguard-dashboard.json)
  Operator metrics and decisions:
    kubectl --context $ctx -n $ns logs -f deploy/nimbusguard-operator
  Tear down:
    deploy/kind/down.sh
MSG
