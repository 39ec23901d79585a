#!/usr/bin/env bash
# Stops the control plane that up.sh started in STATE_DIR, in reverse start order
# (kube-scheduler, kube-controller-manager, kube-apiserver, etcd): SIGTERM, then SIGKILL if a
# process is still there after STOP_TIMEOUT seconds. Reads STATE_DIR/pids/<component>.pid and
# signals a pid only while its command line still names STATE_DIR (a recycled pid is left
# alone). Idempotent: nothing running, or no STATE_DIR at all, is success. Leaves STATE_DIR
# (logs, pki, etcd data, cluster.env) in place; only the pid files go.
#
# Args: STATE_DIR
# Env:  STOP_TIMEOUT  seconds between SIGTERM and SIGKILL (default 5)
# Exit: 0 nothing of this cluster is running any more; 1 a process survived SIGKILL; 2 usage
set -euo pipefail

me="down.sh"
if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $me STATE_DIR" >&2
  exit 2
fi
if [[ ! -d "$1/pids" ]]; then
  exit 0
fi
state="$(cd "$1" && pwd)"
grace="${STOP_TIMEOUT:-5}"

ours() { # ours PID: running (not a zombie) and started for this STATE_DIR
  [[ -n "$1" && -r "/proc/$1/cmdline" ]] || return 1
  grep -qaF -- "$state" "/proc/$1/cmdline" 2>/dev/null || return 1
  [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}
gone_within() { # gone_within PID SECONDS
  local deadline=$((SECONDS + $2))
  while ours "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

status=0
for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f="$state/pids/$name.pid"
  [[ -f "$f" ]] || continue
  pid="$(cat "$f")"
  if ours "$pid"; then
    t0=$SECONDS
    kill -TERM "$pid" 2>/dev/null || true
    if ! gone_within "$pid" "$grace"; then
      echo "$me: $name (pid $pid) still running after SIGTERM + ${grace} s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      if ! gone_within "$pid" 5; then
        echo "$me: $name (pid $pid) survived SIGKILL" >&2
        status=1
        continue
      fi
    fi
    echo "$me: stopped $name (pid $pid) in $((SECONDS - t0)) s" >&2
  fi
  rm -f "$f"
done
exit "$status"
