#!/usr/bin/env bash
# Prints the path of a Prometheus server binary, installing Debian's `prometheus` package first
# when none is on PATH (CI machines start without it). Quiet unless it installs; safe to call
# from concurrent tests (flock). apt-get needs root (or passwordless sudo).
set -euo pipefail
if p="$(command -v prometheus)"; then
  echo "$p"
  exit 0
fi
exec 9>"${TMPDIR:-/tmp}/nimbusguard-prometheus.lock"
flock 9
if ! p="$(command -v prometheus)"; then
  sudo=""
  if [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null; then sudo="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  echo "prometheus.sh: installing Debian's prometheus (once)" >&2
  install() { $sudo apt-get install -y -qq --no-install-recommends prometheus >&2; }
  if ! install; then
    $sudo apt-get update -qq >&2
    install
  fi
  p="$(command -v prometheus || echo /usr/bin/prometheus)"
fi
[[ -x "$p" ]] || { echo "prometheus.sh: no prometheus binary after install" >&2; exit 1; }
echo "$p"
