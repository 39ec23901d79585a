#!/usr/bin/env bash
# Starts a real Kubernetes v1.20.2 control plane on 127.0.0.1, in the background: etcd (Debian's
# etcd-server), kube-apiserver (token auth + RBAC), kube-controller-manager and kube-scheduler,
# all --leader-elect=false. There is no kubelet: pods stay Pending unless something plays
# kubelet (the project's `nimbusguard node-agent`). The binaries come from
# build-control-plane.sh (cached; the first call builds them, 5-20 min). Stop with down.sh.
#
# Each call makes a fresh cluster in STATE_DIR (its pki/, etcd/, logs/ and pids/ are replaced):
#   pki/sa.key, pki/sa.pub     ServiceAccount signing key pair (openssl)
#   pki/tokens.csv             token auth file: the admin token, group system:masters
#   pki/apiserver.{crt,key}    self-signed serving cert written by the apiserver (--cert-dir)
#   pki/ca.crt                 its CA, the second PEM block of apiserver.crt
#   admin.kubeconfig           server https://127.0.0.1:APISERVER_PORT, CA pki/ca.crt, the token
#   cluster.env                KEY=VALUE lines, shell-sourceable (`set -a; . cluster.env; set +a`):
#                              KUBECONFIG APISERVER_URL ADMIN_TOKEN CA_FILE KUBECTL K8S_BIN
#                              ETCD_URL ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT
#                              SCHEDULER_PORT ETCD_PID APISERVER_PID KCM_PID SCHEDULER_PID
#   logs/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler}.log
#   pids/<component>.pid       what down.sh stops
# Ready means: apiserver /readyz OK, kcm and scheduler /healthz OK, and the ServiceAccount
# `default` in namespace `default` exists with its token Secret (proves kcm and its token
# controller work; the 1.20 ServiceAccount admission rejects pods until that Secret exists).
# On success prints the path of cluster.env on stdout; progress and timings go to stderr.
#
# Args: STATE_DIR (created if missing; made absolute)
# Env:  ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT
#                        fixed ports; each one unset gets a free port picked at random in
#                        10000..(start of the ephemeral range), so clusters can run side by side
#       ADMIN_TOKEN      the admin bearer token (default: 32 random hex digits)
#       READY_TIMEOUT    seconds to wait for each readiness stage (default 60)
#       NIMBUSGUARD_CACHE  passed to build-control-plane.sh (binary cache root)
# Exit: 0  cluster up and ready
#       3  the binaries cannot be built on this machine (from build-control-plane.sh), or etcd,
#          openssl or curl is missing and cannot be installed: callers/tests should skip
#       1  anything else (a component failed to start or get ready: the tail of its log is
#          printed and everything started is stopped), 2 usage (no STATE_DIR, a *_PORT that is
#          not a port number, READY_TIMEOUT not a whole number)
set -euo pipefail

me="up.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $me STATE_DIR" >&2
  exit 2
fi
for var in ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT; do
  v="${!var:-}"
  if [[ -n "$v" ]] && { [[ ! "$v" =~ ^[0-9]{1,5}$ ]] || ((10#$v < 1 || 10#$v > 65535)); }; then
    echo "$me: $var=$v: expected a port number 1-65535, or unset for a free one" >&2
    exit 2
  fi
done
if [[ -n "${READY_TIMEOUT:-}" && ! "$READY_TIMEOUT" =~ ^[0-9]+$ ]]; then
  echo "$me: READY_TIMEOUT=$READY_TIMEOUT: expected a whole number of seconds" >&2
  exit 2
fi
mkdir -p "$1"
state="$(cd "$1" && pwd)"
timeout="${READY_TIMEOUT:-60}"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

now_ms() { local t="${EPOCHREALTIME//[.,]/}"; echo $((t / 1000)); }
secs() { printf '%d.%d s' $(($1 / 1000)) $(($1 % 1000 / 100)); } # secs MS -> "1.2 s"
t_start="$(now_ms)"
t_stage="$t_start"
stage() { # stage DONE_MESSAGE: timing of what just finished
  local t
  t="$(now_ms)"
  echo "$me: $* ($(secs $((t - t_stage))); $(secs $((t - t_start))) total)" >&2
  t_stage="$t"
}

# ---- refuse to start twice in one STATE_DIR ----------------------------------------------
for f in "$state"/pids/*.pid; do
  [[ -f "$f" ]] || continue
  pid="$(cat "$f")"
  if [[ -n "$pid" ]] && grep -qaF -- "$state" "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$me: a cluster is already running in $state ($(basename "$f" .pid) pid $pid); run down.sh $state first" >&2
    exit 1
  fi
done

# ---- binaries -------------------------------------------------------------------------------
rc=0
bin="$("$here/build-control-plane.sh")" || rc=$?
if ((rc != 0)); then
  echo "$me: no control-plane binaries (build-control-plane.sh exit $rc)" >&2
  exit $((rc == 3 ? 3 : 1))
fi
stage "binaries ready in $bin"

# etcd, openssl and curl: build-control-plane.sh installs them on a build, but a cache hit
# does not run apt, so a machine with a copied cache may lack them.
need_pkgs=()
command -v etcd >/dev/null || need_pkgs+=(etcd-server)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v curl >/dev/null || need_pkgs+=(curl)
if ((${#need_pkgs[@]})); then
  echo "$me: installing ${need_pkgs[*]}" >&2
  sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "$me: cannot install ${need_pkgs[*]}: needs root or passwordless sudo" >&2
      exit 3
    fi
  fi
  install() { DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2; }
  if ! install; then
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
    install || {
      echo "$me: cannot install ${need_pkgs[*]} (apt-get failed)" >&2
      exit 3
    }
  fi
  stage "installed ${need_pkgs[*]}"
fi
etcd_bin="$(command -v etcd)"

# ---- ports ----------------------------------------------------------------------------------
# Free ports below the ephemeral range, so no outgoing connection grabs one before its server
# binds it; all picked in one go so they are distinct. SO_REUSEADDR: a port in TIME_WAIT
# after a previous cluster is still usable (the Go servers set it too).
pick_ports() { # pick_ports WANT... (each a number or empty) -> the ports, space separated
  if command -v python3 >/dev/null; then
    python3 - "$@" <<'EOF'
import random, socket, sys
try:
    eph_lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    eph_lo = 32768
lo, hi = 10000, max(eph_lo, 20000) - 1
held, ports = [], []
def try_bind(p):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
        s.listen(1)
    except OSError:
        s.close()
        return False
    held.append(s)
    return True
for want in sys.argv[1:]:
    if want:
        p = int(want)
        if p in ports:
            sys.exit(f"up.sh: port {p} is given twice")
        if not try_bind(p):
            sys.exit(f"up.sh: port {p} is in use")
    else:
        for _ in range(1000):
            p = random.randint(lo, hi)
            if p not in ports and p not in [int(w) for w in sys.argv[1:] if w] and try_bind(p):
                break
        else:
            sys.exit("up.sh: no free port found")
    ports.append(p)
print(*ports)
EOF
  else # no python3: probe with bash's /dev/tcp (a connect that fails means nobody listens)
    local out=() w p
    for w in "$@"; do
      if [[ -n "$w" ]]; then p="$w"; else
        while :; do
          p=$((10000 + RANDOM % 22000))
          [[ " ${out[*]} $* " != *" $p "* ]] && break
        done
      fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        echo "$me: port $p is in use" >&2
        return 1
      fi
      out+=("$p")
    done
    echo "${out[*]}"
  fi
}
if ! ports="$(pick_ports "${ETCD_PORT:-}" "${ETCD_PEER_PORT:-}" "${APISERVER_PORT:-}" "${KCM_PORT:-}" "${SCHEDULER_PORT:-}")"; then
  echo "$me: cannot use the ports (ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT)" >&2
  exit 1
fi
read -r etcd_port etcd_peer_port api_port kcm_port sched_port <<<"$ports"
echo "$me: ports etcd $etcd_port (peer $etcd_peer_port), apiserver $api_port, kcm $kcm_port, scheduler $sched_port" >&2

# ---- fresh state ----------------------------------------------------------------------------
rm -rf "$state/pki" "$state/etcd" "$state/logs" "$state/pids" "$state/admin.kubeconfig" "$state/cluster.env"
mkdir -p "$state/pki" "$state/logs" "$state/pids"
chmod 700 "$state/pki"
pki="$state/pki"
kubeconfig="$state/admin.kubeconfig"
token="${ADMIN_TOKEN:-$(openssl rand -hex 16)}"
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
printf '%s,admin,1,"system:masters"\n' "$token" >"$pki/tokens.csv"
chmod 600 "$pki/sa.key" "$pki/tokens.csv"
stage "PKI in $pki"

# ---- process handling -----------------------------------------------------------------------
failing_log=""
die() { # die MESSAGE: show the failing log's tail and exit 1 (the EXIT trap stops what started)
  echo "$me: FAILED: $*" >&2
  if [[ -n "$failing_log" && -f "$failing_log" ]]; then
    echo "$me: last lines of $failing_log:" >&2
    tail -n 30 "$failing_log" | sed 's/^/  | /' >&2
  fi
  exit 1
}
# From here on, any exit before the end (die, an unexpected error, a signal) stops what started.
up_ok=0
on_exit() { ((up_ok)) || "$here/down.sh" "$state" >&2 || true; }
trap on_exit EXIT
trap 'echo "$me: interrupted" >&2; exit 130' INT TERM

start() { # start NAME CMD...: in its own session, detached from our stdio; pid in pids/NAME.pid
  local name="$1"
  shift
  # setsid (no fork: a background job is not a group leader) keeps the component out of the
  # caller's process group, so it outlives this script until down.sh.
  setsid "$@" </dev/null >>"$state/logs/$name.log" 2>&1 &
  echo $! >"$state/pids/$name.pid"
}
alive() { kill -0 "$(cat "$state/pids/$1.pid")" 2>/dev/null; }
wait_for() { # wait_for NAME WHAT CMD...: poll CMD every 0.2 s until it succeeds, NAME dies or timeout
  local name="$1" what="$2" deadline=$((SECONDS + timeout))
  shift 2
  failing_log="$state/logs/$name.log"
  until "$@" >/dev/null 2>&1; do
    alive "$name" || die "$name exited before $what"
    ((SECONDS < deadline)) || die "$name: no $what after ${timeout} s"
    sleep 0.2
  done
}
curl_api() { # curl_api PATH: GET on the apiserver as admin; body on stdout, fails on HTTP >= 400
  curl -sf --noproxy '*' --max-time 5 --cacert "$pki/ca.crt" -H "Authorization: Bearer $token" \
    "https://127.0.0.1:$api_port$1"
}

# ---- etcd -----------------------------------------------------------------------------------
etcd_url="http://127.0.0.1:$etcd_port"
peer_url="http://127.0.0.1:$etcd_peer_port"
# env -u: etcd reads ETCD_* variables as flags and warns about ours.
start etcd env -u ETCD_PORT -u ETCD_PEER_PORT "$etcd_bin" --name local --data-dir "$state/etcd" \
  --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
  --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
  --initial-cluster "local=$peer_url"
etcd_healthy() { curl -sf --noproxy '*' --max-time 2 "$etcd_url/health" | grep -q '"health":"true"'; }
wait_for etcd "/health" etcd_healthy
stage "etcd ready on $etcd_url"

# ---- kube-apiserver -------------------------------------------------------------------------
start kube-apiserver "$bin/kube-apiserver" --etcd-servers="$etcd_url" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" --insecure-port=0 \
  --cert-dir="$pki" --token-auth-file="$pki/tokens.csv" --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" --service-cluster-ip-range=10.96.0.0/16
readyz() {
  curl -sf --noproxy '*' --max-time 5 -k -H "Authorization: Bearer $token" \
    "https://127.0.0.1:$api_port/readyz" | grep -qx ok
}
wait_for kube-apiserver "/readyz" readyz
# The self-signed apiserver.crt holds the serving cert, then the CA that signed it.
awk '/BEGIN CERTIFICATE/ {n++} n == 2' "$pki/apiserver.crt" >"$pki/ca.crt"
grep -q 'BEGIN CERTIFICATE' "$pki/ca.crt" || die "no second certificate (the CA) in $pki/apiserver.crt"
curl_api /readyz >/dev/null || die "/readyz does not verify against $pki/ca.crt"
stage "kube-apiserver ready on https://127.0.0.1:$api_port"

cat >"$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: local
  context:
    cluster: local
    user: admin
    namespace: default
current-context: local
EOF
chmod 600 "$kubeconfig"

# ---- kube-controller-manager, kube-scheduler ------------------------------------------------
start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig="$kubeconfig" \
  --authentication-kubeconfig="$kubeconfig" --authorization-kubeconfig="$kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$kcm_port" --port=0 --leader-elect=false \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --use-service-account-credentials=false --controllers='*'
start kube-scheduler "$bin/kube-scheduler" --kubeconfig="$kubeconfig" \
  --authentication-kubeconfig="$kubeconfig" --authorization-kubeconfig="$kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$sched_port" --port=0 --leader-elect=false
healthz() { curl -sf --noproxy '*' --max-time 2 -k "https://127.0.0.1:$1/healthz" | grep -qx ok; }
wait_for kube-controller-manager "/healthz" healthz "$kcm_port"
wait_for kube-scheduler "/healthz" healthz "$sched_port"
stage "kube-controller-manager (:$kcm_port) and kube-scheduler (:$sched_port) healthy"
default_sa_has_token() { curl_api /api/v1/namespaces/default/serviceaccounts/default | grep -q '"secrets"'; }
wait_for kube-controller-manager "ServiceAccount default/default with its token Secret" default_sa_has_token
stage "ServiceAccount default/default and its token Secret exist"

# ---- cluster.env ----------------------------------------------------------------------------
pid_of() { cat "$state/pids/$1.pid"; }
{
  echo "# written by deploy/local/up.sh $(date -u +%FT%TZ); stop with deploy/local/down.sh $state"
  printf '%s=%q\n' \
    KUBECONFIG "$kubeconfig" \
    APISERVER_URL "https://127.0.0.1:$api_port" \
    ADMIN_TOKEN "$token" \
    CA_FILE "$pki/ca.crt" \
    KUBECTL "$bin/kubectl" \
    K8S_BIN "$bin" \
    ETCD_URL "$etcd_url" \
    ETCD_PORT "$etcd_port" \
    ETCD_PEER_PORT "$etcd_peer_port" \
    APISERVER_PORT "$api_port" \
    KCM_PORT "$kcm_port" \
    SCHEDULER_PORT "$sched_port" \
    ETCD_PID "$(pid_of etcd)" \
    APISERVER_PID "$(pid_of kube-apiserver)" \
    KCM_PID "$(pid_of kube-controller-manager)" \
    SCHEDULER_PID "$(pid_of kube-scheduler)"
} >"$state/cluster.env.tmp"
mv "$state/cluster.env.tmp" "$state/cluster.env"
up_ok=1
echo "$me: control plane up in $(secs $(($(now_ms) - t_start))): KUBECONFIG=$kubeconfig (kubectl 1.20: $bin/kubectl)" >&2
echo "$state/cluster.env"
